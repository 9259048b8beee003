"""Range checks for the options of optimizers and schedules, with messages that teach.

PyTorch checks most options for ``value >= 0`` (which also rejects NaN); chainrule
checks the same ranges, rejects infinities too (``lr=inf`` turns every weight into NaN
or ±inf on the first step), and closes the ranges PyTorch leaves open where a value
outside them breaks the rule's math: RMSprop's α beyond 1 makes the running mean of
squares negative (NaN weights after a few steps), a negative decay factor makes the
learning rate negative.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any


def check_number(
    owner: str,
    key: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> None:
    """Raise unless ``value`` is a finite real number in the given interval.

    Args:
        owner: who is checking (the optimizer's or scheduler's class name).
        key: the option's name, as the user wrote it.
        value: the option's value.
        low, high: the interval's ends (``high = inf`` means no upper end).
        low_open, high_open: exclude that end.
        hint: appended to the message (what a usual value is).

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN, infinite, or outside the interval.
    """
    if not isinstance(value, Real):
        raise TypeError(
            f"{owner}: {key} must be a number, got {type(value).__name__} {value!r}{hint}"
        )
    number = float(value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if above and below and math.isfinite(number):  # NaN fails every comparison
        return
    lower = f"{'>' if low_open else '>='} {low:g}"
    if high == math.inf:
        rule = f"{lower} and finite"
    else:
        rule = f"{lower} and {'<' if high_open else '<='} {high:g}"
    raise ValueError(f"{owner}: {key} must be {rule}, got {key}={value!r}{hint}")


def check_nonnegative(owner: str, group: dict[str, Any], *keys: str) -> None:
    """Check that each of ``keys`` in ``group`` (missing ones count as 0) is finite and >= 0."""
    for key in keys:
        check_number(owner, key, group.get(key, 0))
