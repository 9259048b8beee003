"""``detect_anomaly``: stop at the first backward formula that produces NaN or Inf."""

from __future__ import annotations

from types import TracebackType

from chainrule.autograd.grad_mode import clock, state


class detect_anomaly:
    """Within this context, every op records where it was created, and the first
    gradient containing NaN or Inf raises ``AnomalyError`` naming the op and that line.

    Slower (each op stores a stack trace, each gradient is scanned): for debugging.

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([0.0], requires_grad=True)
        >>> with cr.autograd.detect_anomaly():
        ...     x.sqrt().sum().backward()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        AnomalyError: SqrtBackward produced a gradient containing NaN or Inf during backward.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        self.prev = state.anomaly
        state.anomaly = self.enabled
        clock.anomaly_blocks += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state.anomaly = self.prev
        clock.anomaly_blocks -= 1


def is_anomaly_enabled() -> bool:
    return state.anomaly
