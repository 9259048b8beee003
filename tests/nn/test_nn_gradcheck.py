"""Every Function of ``chainrule.nn`` gradient-checked in float64 against finite
differences, and a coverage test that none is left out.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_cases import cases

import chainrule as cr
import chainrule.nn  # registers the nn Functions
import chainrule.nn.functional as F
from chainrule.autograd import PRIMITIVES, gradcheck

CASES = cases()


def nn_functions() -> set[str]:
    return {name for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.nn")}


def test_every_nn_function_has_a_gradcheck_case() -> None:
    missing = nn_functions() - {name for name, _, _ in CASES}
    assert not missing, f"Functions in chainrule.nn without a gradcheck case: {sorted(missing)}"
    assert len(nn_functions()) >= 15


@pytest.mark.parametrize(
    ("name", "fn", "inputs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_gradcheck(name: str, fn, inputs) -> None:
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    assert all(type(o.grad_fn).__name__ == name for o in outs), "case does not reach its Function"
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
    bias=st.booleans(),
)
def test_linear_gradcheck_over_shapes(lead: list[int], n_in: int, n_out: int, bias: bool) -> None:
    rng = np.random.default_rng(len(lead) * 100 + n_in * 10 + n_out)
    x = cr.tensor(rng.standard_normal((*lead, n_in)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((n_out, n_in)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(n_out), requires_grad=True) if bias else None
    assert gradcheck(F.linear, [x, w, b])
