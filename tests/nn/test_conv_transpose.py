"""``nn.ConvTranspose2d``/``ConvTranspose1d`` and their functional forms: PyTorch's values
and gradients over strides, padding, output padding, groups and dilation; its weight
layout and initialisation; the adjoint identity with Conv2d; and the errors.
(Gradient checks, first and second order: ``conv_cases.py``; devices:
``test_nn_devices.py``.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}
GEOMETRIES = [
    dict(),
    dict(stride=2),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2)),
    dict(stride=2, groups=2, dilation=2, output_padding=1),
    dict(padding=1, dilation=(1, 2), bias=False),
]


def _torch_twin(ours: nn.Module, theirs: Any, dtype: Any) -> Any:
    theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kwargs", GEOMETRIES, ids=[str(g) for g in GEOMETRIES])
def test_conv_transpose2d_matches_torch(kwargs: dict[str, Any], dtype: Any) -> None:
    ours = nn.ConvTranspose2d(4, 6, 3, **kwargs, dtype=dtype)
    theirs = _torch_twin(ours, torch.nn.ConvTranspose2d(4, 6, 3, **kwargs), dtype)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 4)).astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xc), theirs(xt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    for name, p in ours.named_parameters():
        theirs_grad = dict(theirs.named_parameters())[name].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), theirs_grad, err_msg=name, **TOL[dtype])


def test_conv_transpose1d_matches_torch_batched_and_one_example() -> None:
    ours = nn.ConvTranspose1d(3, 4, 5, stride=3, padding=2, output_padding=1, dtype=np.float64)
    theirs = _torch_twin(
        ours, torch.nn.ConvTranspose1d(3, 4, 5, stride=3, padding=2, output_padding=1), np.float64
    )
    x = np.random.default_rng(2).standard_normal((2, 3, 6))
    for sample in (x, x[0]):
        np.testing.assert_allclose(
            ours(cr.tensor(sample)).detach().numpy(),
            theirs(torch.tensor(sample)).detach().numpy(),
            rtol=1e-12,
            atol=1e-12,
        )


def test_it_is_the_adjoint_of_conv2d() -> None:
    """⟨conv2d(x, W), y⟩ = ⟨x, conv_transpose2d(y, W)⟩: the transposed convolution is the
    transpose of the convolution's linear map (what makes it Conv2d's input gradient)."""
    rng = np.random.default_rng(3)
    w = cr.tensor(rng.standard_normal((6, 2, 3, 3)))
    x = cr.tensor(rng.standard_normal((2, 4, 9, 8)))
    y_shape = F.conv2d(x, w, stride=2, padding=1, groups=2).shape
    y = cr.tensor(rng.standard_normal(y_shape))
    left = float((F.conv2d(x, w, stride=2, padding=1, groups=2) * y).sum())
    back = F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1), groups=2)
    assert back.shape == x.shape
    assert float((x * back).sum()) == pytest.approx(left, rel=1e-12)


def test_weight_layout_and_init_are_pytorchs() -> None:
    m = nn.ConvTranspose2d(8, 6, (3, 2), groups=2)
    t = torch.nn.ConvTranspose2d(8, 6, (3, 2), groups=2)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t.state_dict().items()
    }
    bound = 1 / np.sqrt(3 * 3 * 2)  # fan_in = weight.shape[1] · kernel area, as torch
    w = m.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    assert repr(nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, output_padding=1)) == (
        "ConvTranspose2d(4, 2, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1))"
    )


def test_errors_name_the_module_and_what_is_wrong() -> None:
    model = nn.Sequential(nn.ConvTranspose2d(4, 2, 3))
    with pytest.raises(
        cr.ShapeError, match=r"model\.0 .*expected 4 input channels.*\(1, 3, 5, 5\)"
    ):
        model(cr.randn(1, 3, 5, 5))
    with pytest.raises(
        ValueError, match=r"output_padding \(2, 2\) must be smaller than the stride"
    ):
        F.conv_transpose2d(cr.randn(1, 4, 5, 5), cr.randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(cr.ShapeError, match="lower the padding"):
        F.conv_transpose2d(cr.randn(1, 4, 1, 1), cr.randn(4, 2, 1, 1), padding=1)
    with pytest.raises(ValueError, match="groups=3 must divide the weight's 4 input channels"):
        F.conv_transpose2d(cr.randn(1, 4, 5, 5), cr.randn(4, 2, 3, 3), groups=3)
    with pytest.raises(cr.DTypeError, match="float64 but weight is float32"):
        F.conv_transpose2d(cr.randn(1, 4, 5, 5, dtype=cr.float64), cr.randn(4, 2, 3, 3))
