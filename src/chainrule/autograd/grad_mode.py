"""Switching graph recording on and off: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

The flag is a plain module-level attribute, read once per op; a thread-local would cost
more than the rest of an op's bookkeeping. chainrule runs its graph on one thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState:
    enabled: bool = True
    anomaly: bool = False  # set by autograd.detect_anomaly


state = _GradState()


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
