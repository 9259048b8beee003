"""Every primitive of ``chainrule.ops`` gradient-checked in float64 over drawn shapes.

The cases come from the spec table in ``tests/ops/op_specs.py``: broadcasting for binary
ops, 1-D/2-D/batched matmul, every kind of index, reductions over None/int/tuple dims.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

from op_specs import SPECS, graph_ops

import chainrule as cr
from chainrule.autograd.function import PRIMITIVES

OPS_PRIMITIVES = sorted(
    name for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.ops")
)


def test_every_ops_primitive_has_a_spec() -> None:
    missing = [name for name in OPS_PRIMITIVES if name not in SPECS]
    assert not missing, (
        f"primitives without an entry in tests/ops/op_specs.py SPECS: {missing}; "
        f"add one (public call, input domain, torch equivalent) so they get tested"
    )
    stale = sorted(set(SPECS) - set(OPS_PRIMITIVES))
    assert not stale, f"specs for primitives that no longer exist: {stale}"


@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_primitive_gradcheck(name: str, data: st.DataObject) -> None:
    case = data.draw(SPECS[name], label="case")
    inputs = [cr.tensor(x, requires_grad=True) for x in case.inputs]
    out = case.cr_fn(*inputs)
    assert name in graph_ops(out), f"{case.label} did not go through {name}"
    assert cr.autograd.gradcheck(case.cr_fn, inputs, eps=case.eps)


def test_gradcheck_catches_a_wrong_vjp() -> None:
    """The check above can fail: a primitive with a deliberately wrong backward is caught."""

    class WrongExp(cr.autograd.Function):
        @staticmethod
        def forward(ctx: object, x: np.ndarray) -> np.ndarray:
            return np.exp(x)

        @staticmethod
        def backward(ctx: object, g: np.ndarray) -> np.ndarray:
            return g  # should be g * exp(x)

    x = cr.tensor(np.array([0.5, 1.0]), requires_grad=True)
    assert not cr.autograd.gradcheck(WrongExp.apply, [x], raise_exception=False)
