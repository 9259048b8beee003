"""Collectives on tensors: every rank calls the same function, each gets the combined result.

The tensors are changed in place, as in ``torch.distributed``: ``all_reduce(t)`` leaves the
sum over ranks in ``t`` on every rank. In a world of one they leave the tensor as it is
(``all_gather`` copies it). Every wait is bounded by the timeout of ``init``.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from chainrule.backend import xp
from chainrule.distributed import world
from chainrule.tensor import Tensor


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values (PyTorch's names)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def _mpi_op(op: ReduceOp) -> Any:
    mpi = world.mpi()
    return {
        ReduceOp.SUM: mpi.SUM,
        ReduceOp.AVG: mpi.SUM,
        ReduceOp.PRODUCT: mpi.PROD,
        ReduceOp.MIN: mpi.MIN,
        ReduceOp.MAX: mpi.MAX,
    }[op]


def _contiguous(tensor: Tensor, what: str) -> Any:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"distributed.{what}: expected a Tensor, got {type(tensor).__name__}")
    data = tensor.data
    if not data.flags.c_contiguous:
        # MPI sends a flat buffer; write the result back into the strided tensor afterwards.
        data = xp.ascontiguousarray(data)
    return data


def _write_back(tensor: Tensor, data: Any) -> None:
    if data is not tensor.data:
        tensor.data[...] = data
    tensor.increment_version()


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM) -> None:
    """Combine ``tensor`` over all ranks, in place: xᵣ ← ⊕ₛ xₛ for every rank r.

    Args:
        tensor: the same shape and dtype on every rank.
        op: ``ReduceOp.SUM`` (default), ``AVG`` (the sum divided by the world size),
            ``PRODUCT``, ``MIN`` or ``MAX``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import distributed as dist
        >>> t = cr.tensor([1.0, 2.0])
        >>> dist.all_reduce(t)        # in a world of one, the sum is the tensor itself
        >>> t
        tensor([1., 2.])
    """
    op = ReduceOp(op)
    data = _contiguous(tensor, "all_reduce")
    if world.world_size() > 1:
        mpi = world.mpi()
        request = world.comm().Iallreduce(mpi.IN_PLACE, data, _mpi_op(op))
        world.wait_all([request], f"all_reduce of a tensor of shape {tensor.shape}")
    if op is ReduceOp.AVG:
        data /= world.world_size()
    _write_back(tensor, data)


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank, in place."""
    size = world.world_size()
    if not 0 <= src < size:
        raise ValueError(f"distributed.broadcast: src must be a rank in [0, {size}), got {src}")
    data = _contiguous(tensor, "broadcast")
    if size > 1:
        request = world.comm().Ibcast(data, root=src)
        world.wait_all([request], f"broadcast of a tensor of shape {tensor.shape}")
    _write_back(tensor, data)


def all_gather(tensor_list: list[Tensor], tensor: Tensor) -> None:
    """Gather every rank's ``tensor`` into ``tensor_list`` (entry r from rank r), on all ranks.

    Args:
        tensor_list: ``world_size()`` tensors of ``tensor``'s shape and dtype, overwritten.
        tensor: this rank's contribution; the same shape and dtype on every rank.
    """
    size = world.world_size()
    if len(tensor_list) != size:
        raise ValueError(
            f"distributed.all_gather: tensor_list must hold world_size()={size} tensors, "
            f"got {len(tensor_list)}"
        )
    for i, t in enumerate(tensor_list):
        if t.shape != tensor.shape or t.dtype != tensor.dtype:
            raise ValueError(
                f"distributed.all_gather: tensor_list[{i}] has shape {t.shape} and dtype "
                f"{t.dtype}, the tensor has shape {tensor.shape} and dtype {tensor.dtype}; "
                f"make every entry like the tensor (e.g. cr.zeros_like(tensor))"
            )
    send = _contiguous(tensor, "all_gather")
    gathered = xp.empty((size, *send.shape), dtype=send.dtype)
    if size > 1:
        request = world.comm().Iallgather(send, gathered)
        world.wait_all([request], f"all_gather of a tensor of shape {tensor.shape}")
    else:
        gathered[0] = send
    for t, part in zip(tensor_list, gathered):
        t.data[...] = part
        t.increment_version()


def all_gather_json(value: Any) -> list[Any]:
    """Every rank's ``value`` (anything ``json`` can write), in rank order, on every rank.

    For small descriptions (a model's parameter names and shapes, metrics). JSON rather
    than pickle: what another process sends is read as data, never executed.
    """
    payload = json.dumps(value).encode()
    size = world.world_size()
    if size == 1:
        return [json.loads(payload)]
    import numpy  # mpi4py sends host buffers: the lengths and bytes are NumPy arrays

    comm = world.comm()
    lengths = numpy.zeros(size, dtype=numpy.int64)
    mine = numpy.array([len(payload)], dtype=numpy.int64)
    world.wait_all([comm.Iallgather(mine, lengths)], "all_gather of descriptions")
    data = numpy.zeros(int(lengths.sum()), dtype=numpy.uint8)
    offsets = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
    send = numpy.frombuffer(payload, dtype=numpy.uint8)
    request = comm.Iallgatherv(send, [data, (lengths, offsets)])
    world.wait_all([request], "all_gather of descriptions")
    return [
        json.loads(data[o : o + n].tobytes().decode())
        for o, n in zip(offsets.tolist(), lengths.tolist())
    ]
