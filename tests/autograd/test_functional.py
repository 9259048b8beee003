"""grad, vjp, jacobian: the lecture's Jacobians with their shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr


def test_grad_returns_without_accumulating() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.autograd.grad((x**3).sum(), x)
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    assert x.grad is None


def test_grad_with_respect_to_intermediate() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gh, gx = cr.autograd.grad(y, [h, x])
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(gx.numpy(), [18.0, 36.0])


def test_grad_unused_input() -> None:
    x = cr.ones(2, requires_grad=True)
    z = cr.ones(2, requires_grad=True)
    with pytest.raises(cr.GraphError, match="allow_unused"):
        cr.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = cr.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx is not None


def test_grad_with_grad_outputs_is_a_vjp() -> None:
    x = cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64, requires_grad=True)
    v = cr.tensor([1.0, 0.0, -1.0], dtype=cr.float64)
    (g,) = cr.autograd.grad(x * x, x, grad_outputs=[v])
    np.testing.assert_allclose(g.numpy(), [2.0, 0.0, -6.0])


def test_array_only_function_says_so_when_asked_for_second_order() -> None:
    class Square(cr.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = cr.ones(2, requires_grad=True)
    with pytest.raises(cr.GraphError, match="SquareBackward: its backward runs on arrays"):
        cr.autograd.grad(Square.apply(x), x, [cr.ones(2)], create_graph=True)


def test_vjp() -> None:
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=cr.float64)
    out, g = cr.autograd.vjp(lambda t: t.exp(), x, cr.ones(2, 2, dtype=cr.float64))
    np.testing.assert_allclose(out.numpy(), np.exp(x.numpy()))
    np.testing.assert_allclose(g.numpy(), np.exp(x.numpy()))


def test_jacobian_of_linear_map_is_the_matrix() -> None:
    # f(x) = W x for x in R^N gives the M x N matrix W: the lecture's Jacobian shape.
    w = cr.randn(4, 3, dtype=cr.float64)
    x = cr.randn(3, dtype=cr.float64)
    jac = cr.autograd.jacobian(lambda v: w @ v, x)
    assert jac.shape == (4, 3)
    np.testing.assert_allclose(jac.numpy(), w.numpy())


def test_jacobian_shape_is_out_shape_plus_in_shape() -> None:
    x = cr.randn(4, 3, dtype=cr.float64)
    w = cr.randn(3, 2, dtype=cr.float64)
    jac = cr.autograd.jacobian(lambda v: (v @ w).tanh(), x)
    assert jac.shape == (4, 2, 4, 3)
    y = np.tanh(x.numpy() @ w.numpy())
    expected = np.zeros((4, 2, 4, 3))
    for i in range(4):
        for j in range(2):
            expected[i, j, i, :] = (1 - y[i, j] ** 2) * w.numpy()[:, j]
    np.testing.assert_allclose(jac.numpy(), expected, rtol=1e-12)


def test_jacobian_of_softmax_is_diag_minus_outer() -> None:
    x = cr.randn(5, dtype=cr.float64)
    jac = cr.autograd.jacobian(lambda v: v.softmax(0), x).numpy()
    s = np.exp(x.numpy()) / np.exp(x.numpy()).sum()
    np.testing.assert_allclose(jac, np.diag(s) - np.outer(s, s), atol=1e-14)


def test_jacobian_several_inputs_and_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    a = cr.randn(3, dtype=cr.float64)
    b = cr.randn(3, dtype=cr.float64)
    ja, jb = cr.autograd.jacobian(lambda p, q: (p * q).sigmoid(), (a, b))
    ta, tb = torch.autograd.functional.jacobian(
        lambda p, q: (p * q).sigmoid(), (torch.tensor(a.numpy()), torch.tensor(b.numpy()))
    )
    np.testing.assert_allclose(ja.numpy(), ta.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jb.numpy(), tb.numpy(), rtol=1e-12)
