"""Drive non-blocking MPI requests to completion while the main thread computes.

Open MPI makes no progress on a non-blocking collective unless some MPI call is made: an
``Iallreduce`` started during backward would sit still until the optimiser step waits
for it, and nothing would overlap. With ``MPI_THREAD_MULTIPLE`` (what mpi4py asks for by
default) a thread of our own calls ``Test`` on the pending requests every few tens of
microseconds; NumPy releases the GIL inside its kernels, so the thread runs alongside the
backward matmuls. It sleeps between polls instead of spinning inside ``MPI_Wait``: on a
machine shared by several ranks a spinning thread would take a core from the backward it
is meant to hide behind. Without ``THREAD_MULTIPLE`` the same ``poll()`` is called from
the gradient hooks instead, between backward nodes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

POLL_INTERVAL = 2e-5  # seconds between polls; Linux rounds sleeps up to ~60 µs


class Progress:
    """A set of in-flight requests, each with a callback run when it completes.

    Args:
        use_thread: poll from a background thread (needs ``MPI_THREAD_MULTIPLE``);
            otherwise the owner calls ``poll()``.
    """

    def __init__(self, use_thread: bool) -> None:
        self._pending: list[tuple[Any, Callable[[], None]]] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        if use_thread:
            self._thread = threading.Thread(
                target=self._run, name="chainrule-mpi-progress", daemon=True
            )
            self._thread.start()

    @property
    def threaded(self) -> bool:
        return self._thread is not None

    def add(self, request: Any, on_done: Callable[[], None]) -> None:
        """Watch ``request``; call ``on_done()`` (from the polling thread) when it completes."""
        with self._lock:
            self._pending.append((request, on_done))
            self._lock.notify()

    def poll(self) -> None:
        """Test every pending request once; run the callbacks of those that completed."""
        with self._lock:
            pending = list(self._pending)
        done = [(r, cb) for r, cb in pending if r.Test()]
        if done:
            with self._lock:
                for item in done:
                    self._pending.remove(item)
            for _, on_done in done:
                on_done()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._lock.wait()
            self.poll()
            time.sleep(POLL_INTERVAL)
