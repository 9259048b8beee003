"""``nn.LayerNorm`` and ``F.layer_norm``: PyTorch's values and gradients with learned γ, β
(first and second order), precision far from zero, the same map in training and eval,
and errors that name the module and the shapes. (Gradient checks: ``conv_cases.py``;
devices: ``test_nn_devices.py``; the plain parity table: ``test_nn_torch_parity.py``.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _pair(shape: tuple[int, ...], normalized: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
    """Our LayerNorm and torch's, both with the same random γ and β."""
    rng = np.random.default_rng(1)
    ours = nn.LayerNorm(normalized, dtype=dtype)
    ours.weight.data[...] = rng.uniform(0.5, 1.5, normalized).astype(dtype)
    ours.bias.data[...] = rng.standard_normal(normalized).astype(dtype)
    theirs = torch.nn.LayerNorm(normalized).to(
        torch.float32 if dtype == np.float32 else torch.float64
    )
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("shape", "normalized"), [((8, 16), (16,)), ((2, 7, 5), (5,)), ((3, 4, 5, 6), (4, 5, 6))]
)
def test_learned_affine_matches_torch(
    shape: tuple[int, ...], normalized: tuple[int, ...], dtype: Any
) -> None:
    ours, theirs = _pair(shape, normalized, dtype)
    x = (np.random.default_rng(0).standard_normal(shape) * 3 + 1).astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    assert yc.dtype == cr.float32 if dtype == np.float32 else yc.dtype == cr.float64
    g = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), **TOL[dtype])


def test_double_backward_matches_torch() -> None:
    """A gradient penalty through LayerNorm: ∂/∂θ ‖∂L/∂x‖², against torch's."""
    ours, theirs = _pair((4, 6), (6,), np.float64)
    x = np.random.default_rng(3).standard_normal((4, 6))
    w_out = np.random.default_rng(4).standard_normal((6,))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lc = (ours(xc).tanh() * cr.tensor(w_out)).sum()
    lt = (theirs(xt).tanh() * torch.tensor(w_out)).sum()
    (gc,) = cr.autograd.grad(lc, [xc], create_graph=True)
    (gt,) = torch.autograd.grad(lt, [xt], create_graph=True)
    (gc * gc).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name in ("weight", "bias"):
        ours_grad = getattr(ours, name).grad.numpy()
        np.testing.assert_allclose(
            ours_grad, getattr(theirs, name).grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name
        )


def test_float32_far_from_zero_keeps_its_precision() -> None:
    """Rows with |μ| ≫ σ (μ = 1e4, σ = 1): x̂ from x − μ (two passes) stays within float32's
    rounding of the inputs; the one-pass E[x²] − μ² would lose every digit of σ²."""
    rng = np.random.default_rng(5)
    x64 = 1e4 + rng.standard_normal((6, 32))
    x32 = x64.astype(np.float32)
    y = F.layer_norm(cr.tensor(x32), 32).numpy()
    exact = F.layer_norm(cr.tensor(x32.astype(np.float64)), 32).numpy()
    # float32's step at 1e4 is 1e-3 of σ: the inputs themselves carry that error.
    np.testing.assert_allclose(y, exact, atol=5e-3)
    assert np.abs(y.std(axis=1) - 1).max() < 1e-3


def test_training_and_eval_are_the_same_map() -> None:
    m = nn.LayerNorm(5)
    x = cr.randn(3, 5)
    y_train = m(x).detach().numpy()
    m.eval()
    np.testing.assert_array_equal(m(x).detach().numpy(), y_train)
    # each row normalised on its own: a row does not depend on the others
    np.testing.assert_allclose(m(x[:1]).detach().numpy(), y_train[:1], rtol=1e-6)


def test_parameters_state_dict_and_repr() -> None:
    m = nn.LayerNorm((2, 3))
    assert m.weight.shape == (2, 3) and m.bias.shape == (2, 3)
    assert np.all(m.weight.detach().numpy() == 1) and np.all(m.bias.detach().numpy() == 0)
    assert sorted(m.state_dict()) == ["bias", "weight"]
    assert repr(m) == "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True)"
    assert list(nn.LayerNorm(4, elementwise_affine=False).parameters()) == []
    no_bias = nn.LayerNorm(4, bias=False)
    assert no_bias.bias is None and [p.shape for p in no_bias.parameters()] == [(4,)]
    assert nn.LayerNorm(4, dtype=cr.float64).weight.dtype == cr.float64


def test_errors_name_the_module_and_the_shapes() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(5))
    with pytest.raises(
        cr.ShapeError, match=r"1 \(LayerNorm.*expected input \(\.\.\., 5\), got \(2, 6\)"
    ):
        model(cr.randn(2, 4))
    with pytest.raises(
        cr.ShapeError, match=r"normalized_shape \(3,\) must be the input's last dims"
    ):
        F.layer_norm(cr.randn(2, 4), 3)
    with pytest.raises(
        cr.ShapeError, match=r"weight of shape \(3,\) must have normalized_shape \(4,\)"
    ):
        F.layer_norm(cr.randn(2, 4), 4, weight=cr.ones(3))
    with pytest.raises(ValueError, match="one or more positive sizes"):
        nn.LayerNorm(())
    with pytest.raises(ValueError, match="one or more positive sizes"):
        nn.LayerNorm((3, 0))
