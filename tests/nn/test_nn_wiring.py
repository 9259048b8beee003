"""The lecture's wiring modules (``nn.Duplicate``, ``nn.Add``, ``nn.Max``) on the core's
ops and the engine's fan-out: their gradients, the tie rule, and that they add no
Function of their own.
"""

from __future__ import annotations

import numpy as np
import pytest
from nn_cases import distinct, leaf

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import PRIMITIVES, gradcheck, gradgradcheck


def test_duplicate_is_the_input_n_times_and_gradients_add() -> None:
    x = leaf([1.0, 2.0])
    outs = nn.Duplicate(3)(x)
    assert len(outs) == 3 and all(o is x for o in outs)
    (outs[0] * 2 + outs[1] * 3 + outs[2] * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [10.0, 10.0])


def test_duplicate_unused_output_contributes_zero() -> None:
    x = leaf([1.0, 2.0])
    first, _second = F.duplicate(x, 2)
    (first * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_add_is_a_chain_of_core_adds_with_broadcasting() -> None:
    rng = np.random.default_rng(1)
    a, b, c = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal(4)), leaf([[1.0]] * 3)
    y = nn.Add()(a, b, c)
    expected = a.detach().numpy() + b.detach().numpy() + c.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), expected)
    assert type(y.grad_fn).__module__ == "chainrule.ops.elementwise"
    y.backward(cr.ones(3, 4, dtype=cr.float64))
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 4)))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 3.0))
    np.testing.assert_allclose(c.grad.numpy(), np.full((3, 1), 4.0))


def test_add_and_max_of_one_input_return_it() -> None:
    x = leaf([1.0])
    assert F.add(x) is x and F.maximum(x) is x


@pytest.mark.parametrize("n", [2, 3, 4])
def test_max_gradcheck_without_ties(n: int) -> None:
    inputs = distinct(np.random.default_rng(n), n, (2, 3))
    assert gradcheck(F.maximum, inputs)
    core = ("Maximum", "Stack", "Amax", "Expand")
    if not all(PRIMITIVES[name].has_backward_graph() for name in core):
        pytest.skip("the core's Maximum/Stack/Amax/Expand have no backward_graph yet")
    assert gradgradcheck(F.maximum, inputs)


def test_max_ties_share_the_gradient_equally() -> None:
    # The lecture's rule, for 1, 2 and 3 inputs tied; a chain of two-input maximums
    # would give 1/4, 1/4, 1/2 to three tied inputs.
    a = leaf([1.0, 5.0, 2.0])
    b = leaf([1.0, 3.0, 2.0])
    c = leaf([1.0, 0.0, 4.0])
    nn.Max()(a, b, c).backward(cr.tensor(np.array([3.0, 1.0, 1.0])))
    np.testing.assert_allclose(a.grad.numpy(), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(c.grad.numpy(), [1.0, 0.0, 1.0])


def test_max_of_two_is_the_core_maximum() -> None:
    a, b = leaf([1.0, 2.0]), leaf([1.0, 0.0])
    y = nn.Max()(a, b)
    assert type(y.grad_fn).__name__ == "Maximum"
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 1.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 0.0])


def test_max_broadcasts_its_inputs() -> None:
    a, b, c = leaf([[0.0, 3.0]]), leaf([[2.0], [1.0]]), leaf([1.5, -1.0])
    y = F.maximum(a, b, c)
    np.testing.assert_allclose(y.detach().numpy(), [[2.0, 3.0], [1.5, 3.0]])
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [[0.0, 2.0]])
    np.testing.assert_allclose(b.grad.numpy(), [[1.0], [0.0]])
    np.testing.assert_allclose(c.grad.numpy(), [1.0, 0.0])


def test_wiring_modules_add_no_function_of_their_own() -> None:
    names = {name for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.nn")}
    assert not names & {"DuplicateFunction", "AddNFunction", "MaxNFunction"}
    modules = {nn.Duplicate.__module__, nn.Add.__module__, nn.Max.__module__}
    assert modules == {"chainrule.nn.wiring"}
