"""Edge cases the drawn cases avoid on purpose: kinks, ties, bounds, zeros, tails."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _grads(fn_cr, fn_torch, *arrays: np.ndarray, g: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = fn_cr(*ours), fn_torch(*theirs)
    up = np.ones(ty.shape) if g is None else g
    y.backward(gradient=cr.tensor(up))
    ty.backward(torch.tensor(up))
    np.testing.assert_allclose(np.asarray(y.data), ty.detach().numpy(), rtol=1e-12)
    return [o.grad.data for o in ours], [t.grad.numpy() for t in theirs]


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, None), (None, 1.0)])
def test_clamp_passes_the_gradient_at_the_bounds_as_torch(bounds: tuple) -> None:
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    ours, theirs = _grads(lambda t: t.clamp(*bounds), lambda t: t.clamp(*bounds), x)
    np.testing.assert_array_equal(ours[0], theirs[0])


def test_amax_and_full_max_share_tied_gradients_as_torch() -> None:
    x = np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    for dim in [None, 1, (0, 1)]:
        ours, theirs = _grads(
            lambda t, d=dim: cr.amax(t, d),
            lambda t, d=dim: torch.amax(t, () if d is None else d),
            x,
        )
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    ours, theirs = _grads(lambda t: t.max(), lambda t: t.max(), x)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    np.testing.assert_allclose(ours[0], [[0.5, 0, 0.5], [0, 0, 0]])


def test_max_dim_gradient_goes_to_the_returned_index_only() -> None:
    x = np.array([[1.0, 4.0, 4.0], [0.0, -1.0, 2.0]])
    t = cr.tensor(x, requires_grad=True)
    result = t.max(dim=1)
    result.values.backward(gradient=cr.tensor(np.array([10.0, 20.0])))
    grad = np.zeros_like(x)
    grad[[0, 1], result.indices.data] = [10.0, 20.0]
    np.testing.assert_array_equal(t.grad.data, grad)
    assert t.grad.data.sum() == 30.0


def test_abs_and_relu_at_zero_match_torch() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    for fn in ("abs", "relu"):
        ours, theirs = _grads(lambda t, f=fn: getattr(t, f)(), lambda t, f=fn: getattr(t, f)(), x)
        np.testing.assert_array_equal(ours[0], theirs[0])


def test_pow_at_a_zero_base_matches_torch() -> None:
    a, b = np.array([0.0, 0.0, 2.0]), np.array([2.0, 1.0, 3.0])
    ours, theirs = _grads(lambda x, y: x**y, lambda x, y: x**y, a, b)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-15)
        assert np.isfinite(o).all()


def test_gather_with_repeated_indices_accumulates() -> None:
    x = cr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    x[cr.tensor([2, 0, 2, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 1], [0, 0], [3, 3]])

    y = cr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    y[[0, 0, 1], [1, 1, 1]].backward(gradient=cr.tensor(np.array([1.0, 2.0, 4.0])))
    np.testing.assert_array_equal(y.grad.data, [[0, 3], [0, 4], [0, 0]])


def test_boolean_mask_gradient_is_the_mask() -> None:
    x_np = np.array([[1.0, -2.0], [-3.0, 4.0]])
    x = cr.tensor(x_np, requires_grad=True)
    x[x > 0].sum().backward()
    np.testing.assert_array_equal(x.grad.data, x_np > 0)


def test_slice_with_negative_steps_scatters_back() -> None:
    x = cr.tensor(np.arange(10.0), requires_grad=True)
    y = x[8:1:-3]
    np.testing.assert_array_equal(y.data, [8.0, 5.0, 2.0])
    y.backward(gradient=cr.tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(x.grad.data, [0, 0, 3, 0, 0, 2, 0, 0, 1, 0])


def test_stack_and_cat_backward_split_the_gradient() -> None:
    a, b = (cr.tensor(np.full((2, 3), v), requires_grad=True) for v in (1.0, 2.0))
    g = np.arange(12.0).reshape(2, 2, 3)
    cr.stack([a, b], dim=1).backward(gradient=cr.tensor(g))
    np.testing.assert_array_equal(a.grad.data, g[:, 0])
    np.testing.assert_array_equal(b.grad.data, g[:, 1])

    c, d = (
        cr.tensor(np.ones((2, 1)), requires_grad=True),
        cr.tensor(np.ones((2, 3)), requires_grad=True),
    )
    g2 = np.arange(8.0).reshape(2, 4)
    cr.cat([c, d], dim=-1).backward(gradient=cr.tensor(g2))
    np.testing.assert_array_equal(c.grad.data, g2[:, :1])
    np.testing.assert_array_equal(d.grad.data, g2[:, 1:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_relative_precision_in_the_tails(dtype: type) -> None:
    x_np = np.array([-40.0, -20.0, -5.0, 0.0, 5.0, 20.0, 40.0], dtype)
    ours, theirs = cr.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y, ty = cr.sigmoid(ours), torch.sigmoid(theirs)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-6)
    # σ′ = σ(x)σ(−x) exactly, also where σ rounds to 1: PyTorch's y(1 − y) gives 0 at x = 20
    # and 40 in float32 (and at 40 in float64), chainrule the true 2.1e-9 and 4.2e-18.
    exact = 1 / (1 + np.exp(-x_np.astype(np.float64))) / (1 + np.exp(x_np.astype(np.float64)))
    np.testing.assert_allclose(ours.grad.data, exact, rtol=1e-5)
    np.testing.assert_allclose(ours.grad.data[:5], theirs.grad.numpy()[:5], rtol=1e-5)
    assert y.data[0] > 0  # 4.2e-18, not 0 from 1 + tanh cancelling


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_a_stack_times_a_matrix_is_one_product_of_rows_as_torch(layout: str) -> None:
    # (…, m, k) @ (k, n) runs as one (rows, k) product (ops.linalg._stacked_rows), with
    # dB = Aᵀ G over every row instead of a stack of products summed after; a transposed
    # stack is not a view of rows, so its rows are a copy.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4, 5))
    if layout == "transposed":
        a = a.transpose(1, 0, 2, 3)
    b = rng.standard_normal((5, 6))
    g = rng.standard_normal((*a.shape[:-1], 6))
    ours, theirs = _grads(lambda x, w: x @ w, lambda x, w: x @ w, a, b, g=g)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o, t, rtol=1e-12, atol=1e-13)
    ca, cb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    assert cr.autograd.gradcheck(lambda x, w: (x @ w).tanh(), (ca, cb))
    assert cr.autograd.gradgradcheck(lambda x, w: (x @ w).tanh(), (ca, cb))
