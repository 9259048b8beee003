"""``nn.GroupNorm`` and ``F.group_norm``: PyTorch's values and gradients with learned γ, β
(first and second order), batches of one, and the errors. (Built on layer norm's Function,
gradient-checked in ``conv_cases.py``; devices: ``test_nn_devices.py``.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 2e-5, "atol": 5e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _pair(groups: int, channels: int, dtype: Any) -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    ours = nn.GroupNorm(groups, channels, dtype=dtype)
    ours.weight.data[...] = rng.uniform(0.5, 1.5, channels).astype(dtype)
    ours.bias.data[...] = rng.standard_normal(channels).astype(dtype)
    theirs = torch.nn.GroupNorm(groups, channels)
    theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("groups", "shape"),
    [(2, (3, 4, 5, 5)), (1, (2, 4, 7)), (4, (2, 4, 3, 3)), (2, (1, 4, 6, 6)), (2, (5, 4))],
)
def test_matches_torch(groups: int, shape: tuple[int, ...], dtype: Any) -> None:
    ours, theirs = _pair(groups, shape[1], dtype)
    x = (np.random.default_rng(0).standard_normal(shape) * 2 + 1).astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), **TOL[dtype])


def test_double_backward_matches_torch() -> None:
    ours, theirs = _pair(2, 4, np.float64)
    x = np.random.default_rng(3).standard_normal((2, 4, 3, 3))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gc,) = cr.autograd.grad(ours(xc).tanh().sum(), [xc], create_graph=True)
    (gt,) = torch.autograd.grad(theirs(xt).tanh().sum(), [xt], create_graph=True)
    (gc * gc).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12
    )


def test_no_affine_state_and_repr() -> None:
    m = nn.GroupNorm(2, 4, affine=False)
    assert list(m.parameters()) == [] and m.state_dict() == {}
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    y = m(cr.randn(3, 4, 2, 2)).detach().numpy().reshape(3, 2, -1)
    np.testing.assert_allclose(y.mean(axis=2), 0, atol=1e-6)  # each group centred
    np.testing.assert_allclose(y.std(axis=2), 1, atol=1e-3)


def test_errors_name_the_module_and_the_shapes() -> None:
    with pytest.raises(ValueError, match="num_groups=3 must divide num_channels=4"):
        nn.GroupNorm(3, 4)
    with pytest.raises(
        cr.ShapeError,
        match=r"model\.1 \(GroupNorm.*expected an input \(N, 4, \.\.\.\), got shape \(2, 6, 3, 3\)",
    ):
        nn.Sequential(nn.Conv2d(1, 6, 1), nn.GroupNorm(2, 4))(cr.randn(2, 1, 3, 3))
    with pytest.raises(ValueError, match="num_groups=4 must divide the 6 channels"):
        F.group_norm(cr.randn(2, 6), 4)
