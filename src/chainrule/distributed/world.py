"""The world: which process this is, how many there are, and what happens when one fails.

Under an MPI launcher (``mpirun``, ``srun`` with PMIx, Hydra) the world is MPI's
``COMM_WORLD``, reached through ``mpi4py``. Without a launcher it is a world of one process,
and ``mpi4py`` is not even imported: a script written for N processes runs unchanged, and
without MPI installed, on a laptop.

Failure policy: an MPI job must never hang because one process died. Three mechanisms
cover the cases:

- a rank that raises an uncaught exception (in any thread) prints it with its rank and
  calls ``MPI_Abort``, which ends every rank of the job;
- a rank that is killed (a signal, the out-of-memory killer) is noticed by ``mpirun``,
  which ends the others and names the rank;
- every wait on a collective polls with a deadline (``timeout``, default 300 s, or the
  environment variable ``CHAINRULE_DIST_TIMEOUT``), so a rank whose peers stopped
  calling collectives raises a ``DistributedError`` naming itself instead of waiting
  forever, and the first mechanism then ends the job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

# Variables that MPI launchers set in the processes they start.
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "MPI_LOCALNRANKS")
DEFAULT_TIMEOUT = 300.0


class DistributedError(RuntimeError):
    """A failure of the distributed job: a peer that stopped answering, ranks that disagree."""


class _World:
    def __init__(self) -> None:
        self.initialized = False
        self.comm: Any = None  # an mpi4py communicator, None in a world of one
        self.mpi: Any = None  # the mpi4py.MPI module once imported
        self.rank = 0
        self.size = 1
        self.timeout = DEFAULT_TIMEOUT
        self.thread_multiple = False


_world = _World()


def launched_by_mpi() -> bool:
    """True if this process was started by an MPI launcher (``mpirun`` and the like)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def init(timeout: float | None = None) -> None:
    """Join the job: rank and size from MPI under a launcher, a world of one otherwise.

    Calling it again only changes the timeout, if one is given. ``DistributedDataParallel``
    and the samplers call it themselves, so scripts only need it to read ``rank()`` early
    or to set the timeout.

    Args:
        timeout: seconds a collective may wait for the other ranks before this rank gives
            up with a ``DistributedError`` (default: ``CHAINRULE_DIST_TIMEOUT`` or 300).

    Raises:
        ImportError: started by ``mpirun`` but ``mpi4py`` is missing.

    Example:
        >>> from chainrule import distributed as dist
        >>> dist.init()
        >>> dist.rank(), dist.world_size()      # without mpirun
        (0, 1)
    """
    if timeout is not None:
        if timeout <= 0:
            raise ValueError(f"distributed.init: timeout must be positive seconds, got {timeout}")
        _world.timeout = float(timeout)
    if _world.initialized:
        return
    if timeout is None:
        _world.timeout = float(os.environ.get("CHAINRULE_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                "this process was started by an MPI launcher, but mpi4py is not installed; "
                "install the MPI extra: pip install 'chainrule[mpi]'"
            ) from exc
        _world.mpi = MPI
        # A communicator of our own, so that user code on COMM_WORLD never matches ours.
        _world.comm = MPI.COMM_WORLD.Dup()
        _world.rank = _world.comm.Get_rank()
        _world.size = _world.comm.Get_size()
        _world.thread_multiple = MPI.Query_thread() == MPI.THREAD_MULTIPLE
        if _world.size > 1:
            _install_abort_on_failure()
    _world.initialized = True


def is_initialized() -> bool:
    """True once ``init()`` has run."""
    return _world.initialized


def rank() -> int:
    """This process's index in the job, 0 ≤ rank < world_size (0 in a world of one)."""
    init()
    return _world.rank


def world_size() -> int:
    """The number of processes in the job (1 without an MPI launcher)."""
    init()
    return _world.size


def get_rank() -> int:
    """PyTorch's name for ``rank()``."""
    return rank()


def get_world_size() -> int:
    """PyTorch's name for ``world_size()``."""
    return world_size()


def barrier() -> None:
    """Wait until every rank has reached this call (bounded by the timeout)."""
    init()
    if _world.size > 1:
        wait_all([_world.comm.Ibarrier()], "barrier")


def comm() -> Any:
    """The mpi4py communicator of the job (None in a world of one)."""
    init()
    return _world.comm


def mpi() -> Any:
    """The ``mpi4py.MPI`` module (None in a world of one)."""
    init()
    return _world.mpi


def thread_multiple() -> bool:
    """True if MPI may be called from several threads at once (a progress thread can run)."""
    init()
    return _world.thread_multiple


def timeout() -> float:
    """Seconds a collective may wait for the other ranks."""
    return _world.timeout


def wait_all(requests: Sequence[Any], what: str) -> None:
    """Wait for MPI requests, polling, and give up after the timeout.

    Polling (``Testall``) rather than ``Waitall``: a blocked ``Waitall`` cannot be
    interrupted, so a dead peer would hang this rank. The sleeps grow from 10 µs to 1 ms
    so that a short wait stays short and a long one leaves the core to the other ranks
    (the tests oversubscribe two cores with four ranks).
    """
    if not requests:
        return
    deadline = time.monotonic() + _world.timeout
    pause = 1e-5
    while not _world.mpi.Request.Testall(list(requests)):
        if time.monotonic() > deadline:
            raise DistributedError(
                f"rank {_world.rank} of {_world.size}: {what} did not complete within "
                f"{_world.timeout:g} s; another rank has probably failed or stopped calling "
                f"the same collectives (every rank must run the same collectives in the same "
                f"order). Set CHAINRULE_DIST_TIMEOUT to wait longer."
            )
        time.sleep(pause)
        pause = min(pause * 2, 1e-3)


def abort(message: str, code: int = 1) -> None:
    """Print ``message`` naming this rank and end every process of the job."""
    sys.stderr.write(f"chainrule.distributed: rank {_world.rank} of {_world.size}: {message}\n")
    sys.stderr.flush()
    if _world.comm is not None and _world.size > 1:
        _world.mpi.COMM_WORLD.Abort(code)
    raise SystemExit(code)


def _install_abort_on_failure() -> None:
    """Make an uncaught exception on any rank, in any thread, end the whole job."""
    previous_hook = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        previous_hook(exc_type, exc, tb)
        abort(f"uncaught {exc_type.__name__}: {exc}; aborting all {_world.size} ranks")

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        sys.__excepthook__(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
        abort(
            f"uncaught {args.exc_type.__name__} in thread {args.thread}: {args.exc_value}; "
            f"aborting all {_world.size} ranks"
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
