"""Large host-memory copies split over the CPU's cores.

NumPy runs a copy or an elementwise loop on one core; only the BLAS products use the
others. A convolution's im2col and col2im are such copies, over matrices of 10-100 MB at
a CNN's shapes, and NumPy releases the GIL while it copies, so splitting one over threads
along the batch axis lets it use every core, as PyTorch's kernels do. Copies are bound by
memory bandwidth, so the gain is modest: on a 2-core AMD EPYC, at the default CNN's
Conv2d(32, 32, 3) on 28×28, batch 128, im2col went from 21 to 18 ms and col2im from 30 to
22 ms.

The threads are as many as the BLAS library is told to use (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``), else the cores this process may run on:
a run limited to one BLAS thread stays on one core. Device arrays (CuPy) and small
arrays never go through here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chainrule import backend

# A judgement, not a measurement: below 2 MiB a copy takes well under a millisecond, and
# handing parts to other threads is not worth its overhead.
MIN_BYTES = 1 << 21


def _thread_count() -> int:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


THREADS = _thread_count()
_pool: ThreadPoolExecutor | None = None


def _forget_pool_in_child() -> None:
    # A forked child (a DataLoader worker, multiprocessing) inherits the pool object but
    # none of its threads: work submitted to it would wait forever. It starts its own.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="chainrule-copy")
    return _pool


def split(n: int, nbytes: int, like: Any, work: Callable[[slice], None]) -> None:
    """Run ``work(part)`` over parts that cover ``range(n)``: on several threads when
    ``like`` is a host (NumPy) array, ``nbytes`` is large and there are cores to use,
    else as one call with ``slice(0, n)``. The parts must touch disjoint memory."""
    threads = min(THREADS, n)
    # backend.xp is NumPy: threads only for host arrays, never for CuPy's.
    if threads < 2 or nbytes < MIN_BYTES or backend.get_array_module(like) is not backend.xp:
        work(slice(0, n))
        return
    bounds = [n * i // threads for i in range(threads + 1)]
    parts = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    # The caller's thread takes the first part; the pool the others.
    futures = [_executor().submit(work, part) for part in parts[1:]]
    work(parts[0])
    for future in futures:
        future.result()
