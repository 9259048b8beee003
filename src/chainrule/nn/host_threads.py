"""Work over a batch of host arrays in cache-sized chunks, on every core.

A convolution by im2col builds, for every output pixel, the patch it reads: at the
default CNN's Conv2d(32, 32, 3) on 28×28, batch 128, a 115 MB matrix. Built for the whole
batch at once, that matrix is written to memory and read back by the product, and a copy
that large is bound by memory bandwidth: a second core hardly speeds it. Built a few
examples at a time instead, each chunk's matrix (a few MB) is written and read while it
is still in cache, and the chunks are independent, so each core takes its own run of
them: one thread per core, each doing its chunks' copies and products with BLAS told to
use one thread. Measured on a 2-core AMD EPYC at that shape (forward only, medians):
38.8 ms for the whole-batch im2col and one product on BLAS's two threads, 23.7 ms for
chunks of 8 examples on one thread (BLAS on two), 16.9 ms for the same chunks on two
threads with BLAS on one each. (OpenBLAS's pthreads build lets some products called from
two threads at once run only one after the other: two concurrent single-threaded products
took 2.2x one product at conv2's shapes, (64 × 288)·(288 × 1568), but 1.1x at conv1b's,
(32 × 288)·(288 × 6272). Where they queue, the second thread's gain is its copies, done
while the first one's product runs.) Batch normalisation and max pooling share out their
elementwise passes the same way.

Telling the BLAS library how many threads to use needs ``threadpoolctl`` (installed with
the ``train`` extra, and with scikit-learn). Without it the chunks run one after another
on the caller's thread, with BLAS on all its threads: still the cache's gain, not the
second core's.

The threads are as many as the BLAS library is told to use (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``), else the cores this process may run on:
a run limited to one BLAS thread stays on one core. Device arrays (CuPy) are never cut:
there one launch over the whole batch is what is fast.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from chainrule import backend

T = TypeVar("T")

# The scratch one chunk may use (its im2col matrix): the chunks of a thread then live in
# the 2 MiB L2 of a core and its share of L3. Measured at the default CNN's convolutions
# (batch 128, 2-core AMD EPYC): chunks of 2-4 MB ran 1.3-2.3x faster than the whole batch;
# of 7 MB, 10-20% slower than of 2-4 MB.
CHUNK_BYTES = 4 << 20
# A batch is cut into at least this many chunks (when it has as many examples), so that
# up to this many cores share it; more chunks than cores also evens out their loads.
MIN_CHUNKS = 16
# Work on less than this (the whole batch's scratch) is not worth handing to threads:
# it runs as one chunk on the caller's thread, in well under a millisecond.
SMALL_BYTES = 1 << 20


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
        _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="chainrule-chunk")
    return _pool


class _OneBlasThread:
    """A re-entrant, thread-safe limit of the BLAS libraries to one thread (through
    ``threadpoolctl``'s controllers): the first caller in sets it, the last one out
    restores what each library had.

    (``threadpoolctl``'s own context manager, entered from two threads at once, can
    restore the other's limit and leave BLAS on one thread for good.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._looked = False
        self._libraries: list[Any] = []
        self._saved: list[int] = []

    def available(self) -> bool:
        """Whether the BLAS libraries can be told (``threadpoolctl`` installed, one found)."""
        with self._lock:
            return bool(self._find())

    def _find(self) -> list[Any]:
        if not self._looked:
            self._looked = True
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                return []
            self._libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        return self._libraries

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = [lib.get_num_threads() for lib in self._find()]
                for lib in self._libraries:
                    lib.set_num_threads(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for lib, threads in zip(self._libraries, self._saved, strict=True):
                        lib.set_num_threads(threads)


one_blas_thread = _OneBlasThread()


def chunks(n: int, example_bytes: int, like: Any) -> list[slice]:
    """Consecutive slices covering ``range(n)``: as many examples each as fit in
    ``CHUNK_BYTES`` at ``example_bytes`` each, and at least ``MIN_CHUNKS`` chunks so that
    every core has some; one chunk when the whole batch is small, and for a device array.
    They depend on the sizes only, never on the thread count, so a sum over chunks gives
    the same bits on any machine's number of cores."""
    if backend.get_array_module(like) is not backend.xp:  # CuPy: one launch, never cut
        return [slice(0, n)]
    if n * example_bytes < SMALL_BYTES:
        return [slice(0, n)]
    per = max(1, min(CHUNK_BYTES // max(1, example_bytes), -(-n // MIN_CHUNKS)))
    return [slice(lo, min(n, lo + per)) for lo in range(0, n, per)]


def map_chunks(n: int, example_bytes: int, like: Any, work: Callable[[slice], T]) -> list[T]:
    """``[work(chunk) for chunk in chunks(n, example_bytes, like)]``, in that order, with
    the chunks shared among ``THREADS`` threads (contiguous runs, the caller's thread
    taking the first) and BLAS on one thread each. ``work`` may only write memory no
    other chunk touches; what it returns is collected in chunk order. (Also one chunk
    alone runs with BLAS on one thread: it is small, and see ``matmul`` for why BLAS's
    threads should not wake.)"""
    parts = chunks(n, example_bytes, like)
    threads = min(THREADS, len(parts))
    if threads < 2 or not one_blas_thread.available():
        # All on the caller's thread: one small chunk (with BLAS on one thread too), or
        # a single core, or no way to tell BLAS (then BLAS spreads each product).
        small = len(parts) == 1 and backend.get_array_module(like) is backend.xp
        with one_blas_thread() if small else contextlib.nullcontext():
            return [work(part) for part in parts]
    global _last_shared
    _last_shared = time.monotonic()
    bounds = [len(parts) * i // threads for i in range(threads + 1)]
    runs = [parts[lo:hi] for lo, hi in itertools.pairwise(bounds)]

    def do(run: list[slice]) -> Callable[[], list[T]]:
        return lambda: [work(part) for part in run]

    return [result for run in _on_threads([do(run) for run in runs]) for result in run]


def _on_threads(calls: list[Callable[[], T]]) -> list[T]:
    """[call() for call in calls]: the first on the caller's thread, the others on the
    pool's, with BLAS on one thread each."""
    with one_blas_thread():
        futures = [_executor().submit(call) for call in calls[1:]]
        try:
            first = calls[0]()
        finally:  # no thread may still write into the caller's arrays when this returns
            wait(futures)
        return [first, *(future.result() for future in futures)]


# How long after chainrule's threads last shared out a batch ``matmul`` still keeps BLAS on
# one thread: one training step of a network with convolutions, with room to spare.
QUIET_SECONDS = 1.0
_last_shared = -math.inf


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``, with BLAS on one thread while chainrule's threads are at work (a batch
    shared out by ``map_chunks`` in the last ``QUIET_SECONDS``), else as BLAS likes.

    Why: OpenBLAS's threads, after a product they share, spin for about 0.1 s waiting
    for the next one, each holding a core. The convolutions that follow, their chunks on
    chainrule's threads, then share those cores with spinning threads: measured on the
    default CNN's training step (2-core AMD EPYC), 250-290 ms with its Linear layers on
    OpenBLAS's threads, 200 ms with them on one. (Splitting the product over chainrule's
    threads instead was no faster there, and made an MLP's step 1.2-1.3x PyTorch's
    instead of 0.9-1.0x: BLAS shares one product among its threads better.) An MLP,
    with no convolution, keeps BLAS's threads.
    """
    busy = time.monotonic() - _last_shared < QUIET_SECONDS
    if busy and backend.get_array_module(a) is backend.xp:  # host arrays only: not CuPy's
        with one_blas_thread():
            return a @ b
    return a @ b
