"""The lecture's worked cases, each checked against its explicit formula."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
rng = np.random.default_rng(7)


def test_linear_gradients_are_the_two_formulas() -> None:
    """y = W x:  dC/dx = Wᵀ dC/dy  and  dC/dW = dC/dy xᵀ."""
    w_np, x_np, g = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    w, x = cr.tensor(w_np, requires_grad=True), cr.tensor(x_np, requires_grad=True)
    y = w @ x
    y.backward(gradient=cr.tensor(g))
    np.testing.assert_allclose(y.data, w_np @ x_np, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, w_np.T @ g, rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, np.outer(g, x_np), rtol=1e-12)


def test_linear_batched_gradients_sum_over_the_batch() -> None:
    """Y = X Wᵀ for a batch of rows: dC/dX = G W and dC/dW = Gᵀ X (a sum of outer products)."""
    w_np, x_np, g = (rng.standard_normal(s) for s in [(3, 4), (5, 4), (5, 3)])
    w, x = cr.tensor(w_np, requires_grad=True), cr.tensor(x_np, requires_grad=True)
    (x @ w.T).backward(gradient=cr.tensor(g))
    np.testing.assert_allclose(x.grad.data, g @ w_np, rtol=1e-12)
    np.testing.assert_allclose(
        w.grad.data, sum(np.outer(g[i], x_np[i]) for i in range(5)), rtol=1e-12
    )


def test_relu_gradient_passes_only_where_the_input_is_positive() -> None:
    x = cr.tensor(np.array([-2.0, -0.0, 0.0, 1e-8, 3.0]), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    cr.relu(x).backward(gradient=cr.tensor(g))
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0, 4.0, 5.0])  # 0 at 0, as torch


def test_duplicate_sums_the_gradients_of_both_uses() -> None:
    """One tensor feeding two branches receives the sum of their gradients."""
    x_np = rng.standard_normal(4)
    x = cr.tensor(x_np, requires_grad=True)
    (x.exp() + x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x_np) + 3.0, rtol=1e-12)

    x2 = cr.tensor(x_np, requires_grad=True)
    (x2 * x2).sum().backward()  # the same tensor as both inputs of one op
    np.testing.assert_allclose(x2.grad.data, 2 * x_np, rtol=1e-12)


def test_add_passes_the_gradient_to_both_and_sums_broadcast_axes() -> None:
    a = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(3), requires_grad=True)
    g = rng.standard_normal((2, 3))
    (a + b).backward(gradient=cr.tensor(g))
    np.testing.assert_array_equal(a.grad.data, g)
    np.testing.assert_allclose(b.grad.data, g.sum(axis=0), rtol=1e-12)


def test_max_sends_the_gradient_to_the_larger_input_and_splits_ties() -> None:
    a_np, b_np = np.array([1.0, 5.0, 2.0]), np.array([3.0, 4.0, 2.0])
    g = np.array([10.0, 20.0, 30.0])
    a, b = cr.tensor(a_np, requires_grad=True), cr.tensor(b_np, requires_grad=True)
    y = cr.maximum(a, b)
    y.backward(gradient=cr.tensor(g))
    np.testing.assert_array_equal(y.data, [3.0, 5.0, 2.0])
    np.testing.assert_array_equal(a.grad.data, [0.0, 20.0, 15.0])  # the tie: half each
    np.testing.assert_array_equal(b.grad.data, [10.0, 0.0, 15.0])

    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    torch.maximum(ta, tb).backward(torch.tensor(g))
    np.testing.assert_array_equal(a.grad.data, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad.data, tb.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_at_plus_minus_1000_is_finite_and_exact(dtype: type) -> None:
    x_np = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -1000.0]], dtype)
    x = cr.tensor(x_np, requires_grad=True)
    y = cr.log_softmax(x, dim=1)
    m = x_np.max(axis=1, keepdims=True).astype(np.float64)
    expected = x_np - m - np.log(np.exp(x_np - m).sum(axis=1, keepdims=True))
    assert np.isfinite(y.data).all()
    np.testing.assert_allclose(y.data, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)

    g = rng.standard_normal(x_np.shape).astype(dtype)
    y.backward(gradient=cr.tensor(g))
    tx = torch.tensor(x_np, requires_grad=True)
    torch.log_softmax(tx, dim=1).backward(torch.tensor(g))
    assert np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")  # reference
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_is_finite_up_to_1e4(dtype: type) -> None:
    s_np = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype)
    s = cr.tensor(s_np, requires_grad=True)
    y = cr.softplus(s)
    y.sum().backward()
    exact = np.logaddexp(0.0, s_np.astype(np.float64))  # log(1 + eˢ) without overflow
    sigmoid = 1.0 / (1.0 + np.exp(-s_np.astype(np.float64)))
    assert np.isfinite(y.data).all() and np.isfinite(s.grad.data).all()
    np.testing.assert_allclose(y.data, exact, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(s.grad.data, sigmoid, rtol=1e-6, atol=1e-30)
    assert y.data[-1] == 1e4 and s.grad.data[-1] == 1.0
    # σ(−1e4) underflows: 0, or a subnormal left by the sigmoid kernel's clipped e⁻ˣ.
    assert 0.0 <= s.grad.data[0] < 10 * np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logsumexp_is_stable(dtype: type) -> None:
    x_np = np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [0.0, -np.inf]], dtype)
    x = cr.tensor(x_np, requires_grad=True)
    y = cr.logsumexp(x, dim=1)
    np.testing.assert_allclose(y.data, [1000 + np.log(2), -1000 + np.log(2), 0.0], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], rtol=1e-6)

    all_minus_inf = cr.logsumexp(cr.tensor(np.full((2,), -np.inf, dtype)))
    assert all_minus_inf.item() == -np.inf  # as torch: log of a sum of zeros
