"""Data-parallel training over MPI: the same model on N processes, on one machine or many.

Run a script with ``mpirun -np 4 python train.py`` (or ``chainrule train --nproc 4``);
without a launcher the same script runs as a world of one, without MPI.

- ``init``, ``rank``, ``world_size``, ``is_initialized``, ``barrier``: the job.
- ``all_reduce``, ``broadcast``, ``all_gather``: collectives on tensors, in place.
- ``DistributedDataParallel``: gradients averaged over ranks, overlapping backward.
- ``DistributedSampler``, ``DistributedBatchSampler``, ``DistributedStratifiedBatchSampler``:
  each rank's share of an epoch.

Example:
    >>> from chainrule import distributed as dist, nn
    >>> dist.init()
    >>> model = dist.DistributedDataParallel(nn.Linear(4, 2))
    >>> dist.world_size()
    1
"""

from chainrule.distributed.collectives import ReduceOp, all_gather, all_reduce, broadcast
from chainrule.distributed.ddp import DistributedDataParallel
from chainrule.distributed.sampler import (
    DistributedBatchSampler,
    DistributedSampler,
    DistributedStratifiedBatchSampler,
)
from chainrule.distributed.world import (
    DistributedError,
    barrier,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    launched_by_mpi,
    rank,
    world_size,
)

__all__ = [
    "DistributedBatchSampler",
    "DistributedDataParallel",
    "DistributedError",
    "DistributedSampler",
    "DistributedStratifiedBatchSampler",
    "ReduceOp",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "get_rank",
    "get_world_size",
    "init",
    "is_initialized",
    "launched_by_mpi",
    "rank",
    "world_size",
]
