"""Defects the differential fuzzer found in chainrule, each as its minimal reproduction.

Marked ``xfail(strict=True)``: when the fix lands, the test passes, the strict xfail
fails, and the marker must go (the test then guards the fix). The generator avoids these
patterns while they are open (``Builder._known_issue``) so that a campaign finds new
defects; ``python -m tests.fuzz --include-known`` draws them too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr

ZERO_DIM_PROMOTION = (
    "a 0-d float64 tensor meeting a float32 tensor of ≥ 1 dim widens the result to float64; "
    "PyTorch promotes only among the dimensioned operands here (a 0-d tensor of the same "
    "category counts like a Python number: torch.ones(3) * torch.tensor(2.0, "
    "dtype=torch.float64) is float32)"
)

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: b - a,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "maximum": cr.maximum,
    "minimum": cr.minimum,
    "where": lambda a, b: cr.where(cr.tensor(np.array([True, False, True])), a, b),
}


@pytest.mark.xfail(strict=True, reason=ZERO_DIM_PROMOTION)
@pytest.mark.parametrize("op", sorted(OPS))
def test_zero_dim_float64_keeps_float32(op: str) -> None:
    x = cr.tensor(np.array([0.5, 1.0, 2.0], dtype=np.float32), requires_grad=True)
    s = cr.tensor(np.array(1.5, dtype=np.float64), requires_grad=True)
    y = OPS[op](x, s)
    assert y.dtype == cr.float32
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == cr.float32
    assert s.grad is not None and s.grad.dtype == cr.float64
