"""Tensor: dtype rules, properties, conversions, in-place ops, printing."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def test_float_data_defaults_to_float32_and_float64_stays() -> None:
    assert cr.tensor([1.0, 2.0]).dtype == cr.float32
    assert cr.tensor(1.5).dtype == cr.float32
    assert cr.tensor(np.array([1.0, 2.0])).dtype == cr.float64
    assert cr.tensor([1.0], dtype=cr.float64).dtype == cr.float64
    assert cr.Tensor(np.zeros(2, np.float64)).dtype == cr.float64


def test_int_and_bool_data_stay_and_cannot_require_grad() -> None:
    assert cr.tensor([1, 2]).dtype == cr.int64
    assert cr.tensor([True, False]).dtype == cr.bool
    with pytest.raises(cr.DTypeError, match=r"int64.*\.float\(\)"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError):
        cr.arange(3).requires_grad_()


def test_properties() -> None:
    x = cr.zeros(2, 3)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and len(x) == 2
    assert x.size() == (2, 3) and x.size(1) == 3 and x.dim() == 2
    assert x.T.shape == (3, 2)
    assert x.is_leaf and x.grad_fn is None and x.grad is None


def test_float_double_conversions_are_differentiable() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == cr.float64 and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.dtype == cr.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert cr.tensor([1.7]).long().dtype == cr.int64


def test_detach_shares_memory_and_leaves_graph() -> None:
    x = cr.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)


def test_numpy_and_item() -> None:
    x = cr.tensor([[1.0, 2.0]])
    assert isinstance(x.numpy(), np.ndarray)
    assert cr.tensor([3.5]).item() == 3.5
    with pytest.raises(ValueError, match="one element"):
        x.item()
    with pytest.raises(cr.GraphError, match="detach"):
        cr.ones(2, requires_grad=True).numpy()


def test_requires_grad_() -> None:
    x = cr.ones(2)
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2
    with pytest.raises(cr.GraphError, match="detach"):
        y.requires_grad_(False)


def test_inplace_ops_under_no_grad() -> None:
    w = cr.ones(3, requires_grad=True)
    with cr.no_grad():
        w.add_(cr.ones(3), alpha=2.0)
        w.mul_(2)
        w[0] = 10.0
    np.testing.assert_allclose(w.detach().numpy(), [10.0, 6.0, 6.0])
    z = cr.zeros(2)
    z.fill_(3.0)
    z.clamp_(max=2.0)
    np.testing.assert_allclose(z.numpy(), [2.0, 2.0])
    z.zero_()
    np.testing.assert_allclose(z.numpy(), [0.0, 0.0])


def test_comparisons_give_bool_tensors() -> None:
    x = cr.tensor([1.0, 2.0, 3.0])
    assert (x > 1.5).dtype == cr.bool
    np.testing.assert_array_equal((x == 2.0).numpy(), [False, True, False])
    assert {x: 1}[x] == 1  # still hashable by identity


def test_reflected_operators() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    y = 1.0 - x + 2.0 * x + 6.0 / x + 2.0**x
    y.sum().backward()
    xv = np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), -1 + 2 - 6 / xv**2 + np.log(2) * 2**xv)
    a = np.ones((2, 2))
    assert isinstance(a @ cr.ones(2, 2, dtype=cr.float64), cr.Tensor)
    assert isinstance(a * x, cr.Tensor)


def test_repr() -> None:
    assert repr(cr.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(cr.ones(1, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(cr.ones(1, requires_grad=True) * 2)
    assert "dtype=float64" in repr(cr.ones(1, dtype=cr.float64))


def test_python_scalars_keep_float32() -> None:
    x = cr.ones(2)
    assert (x * 0.5 + 1.0).dtype == cr.float32
    assert (x / 3).dtype == cr.float32
