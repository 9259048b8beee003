"""Every primitive of ``chainrule.ops`` differentiated twice, in float64, over drawn shapes.

For each spec of ``tests/ops/op_specs.py``: ``backward_graph`` (the Tensor form of the VJP,
used with ``create_graph=True``) gives the same first-order gradients as the fast array
``backward``, and ``gradgradcheck`` confirms its own derivatives by finite differences.
A primitive without ``backward_graph`` fails the registry test.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

from op_specs import SPECS

import chainrule as cr
from chainrule.autograd.function import PRIMITIVES

OPS_PRIMITIVES = sorted(
    name for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.ops")
)
# Cast goes through float32, whose rounding swamps a finite difference of a derivative.
TOLERANCES: dict[str, tuple[float, float]] = {"Cast": (2e-2, 2e-2)}


def test_every_ops_primitive_is_twice_differentiable() -> None:
    missing = [name for name in OPS_PRIMITIVES if not PRIMITIVES[name].has_backward_graph()]
    assert not missing, f"primitives without backward_graph (second order): {missing}"


def _leaves(case: Any) -> list[cr.Tensor]:
    return [cr.tensor(x, requires_grad=True) for x in case.inputs]


@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_backward_graph_agrees_with_backward(name: str, data: st.DataObject) -> None:
    case = data.draw(SPECS[name], label="case")
    inputs = _leaves(case)
    out = case.cr_fn(*inputs)
    v = cr.tensor(np.random.default_rng(0).standard_normal(out.shape), dtype=out.dtype)
    fast = cr.autograd.grad(out, inputs, [v], retain_graph=True, allow_unused=True)
    graph = cr.autograd.grad(out, inputs, [v], create_graph=True, allow_unused=True)
    for a, b in zip(fast, graph, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert b is not None and a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_primitive_gradgradcheck(name: str, data: st.DataObject) -> None:
    case = data.draw(SPECS[name], label="case")
    atol, rtol = TOLERANCES.get(name, (1e-5, 1e-3))
    assert cr.autograd.gradgradcheck(case.cr_fn, _leaves(case), eps=case.eps, atol=atol, rtol=rtol)


def test_gradgradcheck_catches_a_wrong_second_derivative() -> None:
    """The check above can fail: a correct backward with a wrong backward_graph is caught."""

    class Cube(cr.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

        @staticmethod
        def backward_graph(ctx: Any, g: Any) -> Any:
            (x,) = ctx.inputs
            return 3 * x * g  # should be 3 x² g: right value nowhere but x = 0 and 1

    x = cr.tensor(np.array([0.5, 2.0]), requires_grad=True)
    assert cr.autograd.gradcheck(Cube.apply, [x])
    assert not cr.autograd.gradgradcheck(Cube.apply, [x], raise_exception=False)
