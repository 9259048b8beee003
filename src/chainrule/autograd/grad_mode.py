"""Switching graph recording on and off: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

The flags live in a thread-local object, as in PyTorch: ``no_grad`` in one thread does not
stop another thread from recording its graph, and the engine switching recording off for
the duration of a backward pass affects only the thread that runs it. Each op reads the
flag once; a thread-local attribute costs a few tens of nanoseconds more than a plain one.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    # Class attributes are every thread's defaults: a new thread starts with grad mode on
    # and anomaly mode off, whatever the thread that made it had set.
    enabled: bool = True
    anomaly: bool = False  # set by autograd.detect_anomaly


state = _GradState()


class _Clock:
    """One counter for the order of events in the graph, shared by all threads.

    Each node takes the next tick when it is created (``Function._seq``), so a node's
    inputs always carry earlier ticks than the node: creation order is a topological
    order, which the engine uses to run nodes newest first. Each in-place change stamps
    the tensor with the next tick (``Tensor._version[0]``), so a saved array whose tensor
    carries a later stamp than the node was changed after the forward pass. While no
    in-place change has happened since a node was made (the usual case) backward checks
    nothing. ``itertools.count`` hands out each tick once, also across threads.
    """

    def __init__(self) -> None:
        self._ticks = itertools.count(1)
        self.next_tick = self._ticks.__next__
        self.last_inplace = 0
        # How many detect_anomaly blocks are open, in any thread: each op reads this plain
        # attribute first and the (slower) thread-local flag only when it is nonzero.
        self.anomaly_blocks = 0

    def stamp_inplace(self) -> int:
        self.last_inplace = self.next_tick()
        return self.last_inplace


clock = _Clock()


def is_grad_enabled() -> bool:
    """Whether ops record the graph that ``backward`` needs."""
    return state.enabled


class set_grad_enabled:
    """Turn graph recording on or off, as a context manager, a decorator or a plain call.

    Example:
        >>> import chainrule as cr
        >>> with cr.set_grad_enabled(False):
        ...     y = cr.ones(2, requires_grad=True) * 2
        >>> y.requires_grad
        False
    """

    def __init__(self, mode: bool) -> None:
        self.prev = state.enabled
        self.mode = bool(mode)
        state.enabled = self.mode

    def __enter__(self) -> None:
        # __init__ already switched, so that the plain-call form works too.
        state.enabled = self.mode

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state.enabled = self.prev

    def __call__(self, fn: F) -> F:
        mode = self.mode
        # Decorating must not leave the mode switched.
        state.enabled = self.prev

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradModeContext:
    mode: bool

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = self.mode

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state.enabled = self.prev

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = state.enabled
            state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):
    """Run ops without recording a graph: for evaluation and hand-written updates.

    Works as a context manager and as a decorator.

    Example:
        >>> import chainrule as cr
        >>> w = cr.ones(3, requires_grad=True)
        >>> with cr.no_grad():
        ...     v = w * 2
        >>> v.requires_grad
        False
    """

    mode = False


class enable_grad(_GradModeContext):
    """Record the graph again inside a ``no_grad`` region (context manager or decorator)."""

    mode = True
