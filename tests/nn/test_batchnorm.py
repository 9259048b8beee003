"""BatchNorm1d/2d: parity with PyTorch over several training steps and in eval (values,
every gradient, running statistics, num_batches_tracked), the options (momentum None,
affine, track_running_stats), the state_dict, gradient checks, errors; and Dropout2d.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-10}}


def _pair(cls: str, c: int, dtype: Any, **kwargs: Any) -> tuple[nn.Module, Any]:
    ours = getattr(nn, cls)(c, **kwargs).to(dtype)
    theirs = getattr(torch.nn, cls)(c, **kwargs).to(
        torch.float32 if dtype == np.float32 else torch.float64
    )
    if ours.weight is not None:  # non-trivial affine parameters
        rng = np.random.default_rng(9)
        ours.weight.data[...] = rng.uniform(0.5, 1.5, c)
        ours.bias.data[...] = rng.standard_normal(c)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy().copy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.detach().numpy().copy()))
    return ours, theirs


def _step(ours: nn.Module, theirs: Any, x: np.ndarray, dtype: Any, seed: int) -> None:
    x = x.astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(seed).standard_normal(yt.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])


def _same_state(ours: nn.Module, theirs: Any, dtype: Any) -> None:
    theirs_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(theirs_state)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(
            value.numpy(), theirs_state[name].numpy(), err_msg=name, **TOL[dtype]
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("cls", "shape", "kwargs"),
    [
        ("BatchNorm2d", (4, 3, 5, 5), {}),
        ("BatchNorm2d", (2, 3, 4, 6), {"momentum": None}),
        ("BatchNorm2d", (3, 2, 3, 3), {"affine": False, "eps": 1e-3}),
        ("BatchNorm1d", (6, 4), {"momentum": 0.3}),
        ("BatchNorm1d", (3, 4, 5), {}),
        ("BatchNorm1d", (5, 3), {"track_running_stats": False}),
    ],
)
def test_batchnorm_matches_torch_over_training_steps_and_eval(
    dtype: Any, cls: str, shape: tuple[int, ...], kwargs: dict[str, Any]
) -> None:
    ours, theirs = _pair(cls, shape[1], dtype, **kwargs)
    rng = np.random.default_rng(0)
    for step in range(3):
        _step(ours, theirs, rng.standard_normal(shape) * 2 + 1, dtype, step)
    for p, (name, t) in zip(ours.parameters(), theirs.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), err_msg=name, **TOL[dtype])
    _same_state(ours, theirs, dtype)
    ours.eval()
    theirs.eval()
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    np.testing.assert_allclose(
        ours(cr.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), **TOL[dtype]
    )


def test_state_dict_round_trip_through_torch() -> None:
    ours = nn.BatchNorm2d(3)
    ours(cr.randn(4, 3, 2, 2) * 3)
    theirs = torch.nn.BatchNorm2d(3)
    theirs.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    )
    assert int(theirs.num_batches_tracked) == 1
    fresh = nn.BatchNorm2d(3)
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(fresh.running_var.numpy(), ours.running_var.numpy())


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 3, 2, 3)])
def test_batch_norm_gradcheck(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    x = cr.tensor(rng.standard_normal(shape), requires_grad=True)
    w = cr.tensor(rng.uniform(0.5, 1.5, shape[1]), requires_grad=True)
    b = cr.tensor(rng.standard_normal(shape[1]), requires_grad=True)
    # A non-uniform upstream weighting, so that the mean and variance paths matter.
    weights = cr.tensor(rng.standard_normal(shape))

    def fn(x: cr.Tensor, w: cr.Tensor, b: cr.Tensor) -> cr.Tensor:
        return (F.batch_norm(x, None, None, w, b, training=True) * weights).sum()

    assert cr.autograd.gradcheck(fn, [x, w, b])


def test_batchnorm_errors_name_the_module() -> None:
    with pytest.raises(cr.ShapeError, match=r"model\.0 \(BatchNorm2d\(4.*expected 4 channels"):
        nn.Sequential(nn.BatchNorm2d(4))(cr.randn(2, 3, 5, 5))
    with pytest.raises(cr.ShapeError, match=r"BatchNorm2d.*4-D .*\(2, 4\)"):
        nn.BatchNorm2d(4)(cr.randn(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(cr.randn(1, 4))


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest() -> None:
    layer = nn.Dropout2d(0.5, generator=cr.Generator(0))
    x = cr.ones(8, 16, 3, 3, requires_grad=True)
    y = layer(x)
    values = y.detach().numpy()
    per_channel = values.reshape(8, 16, 9)
    assert set(np.unique(values)) == {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # whole channels
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)
    assert layer.eval()(x) is x
