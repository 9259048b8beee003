"""Defects the differential fuzzer found in chainrule, each as its minimal reproduction.

Each was a strict xfail while open (the generator steering clear of its pattern, see
``Builder._known_issue``, so that campaigns could find new ones); fixed, the test guards
the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr

# Fixed: a 0-d float64 tensor meeting a float32 tensor of ≥ 1 dim widened the result to
# float64; PyTorch promotes only among the dimensioned operands here (a 0-d tensor of the
# same category counts like a Python number: torch.ones(3) * torch.tensor(2.0,
# dtype=torch.float64) is float32).

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


@pytest.mark.parametrize("op", sorted(OPS))
def test_zero_dim_float64_keeps_float32(op: str) -> None:
    x = cr.tensor(np.array([0.5, 1.0, 2.0], dtype=np.float32), requires_grad=True)
    s = cr.tensor(np.array(1.5, dtype=np.float64), requires_grad=True)
    y = OPS[op](x, s)
    assert y.dtype == cr.float32
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == cr.float32
    assert s.grad is not None and s.grad.dtype == cr.float64
