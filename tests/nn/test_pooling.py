"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: gradient checks, parity with PyTorch (values,
indices, gradients in float32 and float64), ties routed to the first maximum.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


@st.composite
def pool_cases(draw: Any) -> dict[str, Any]:
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h = draw(st.integers(k[0], 7))
    w = draw(st.integers(k[1], 7))
    return {"shape": (2, 2, h, w), "kernel_size": k, "stride": stride, "padding": padding}


def _distinct(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values with no ties (spaced by 0.1), so max pooling is differentiable."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.1


def _both(fn_ours: Any, fn_theirs: Any, x: np.ndarray, dtype: Any) -> None:
    """Same values and the same input gradient for a random upstream gradient."""
    x = x.astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = fn_ours(xc), fn_theirs(xt)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(5).standard_normal(yt.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_cases(), dilation=st.integers(1, 2))
def test_max_pool2d_gradcheck_and_torch(case: dict[str, Any], dilation: int) -> None:
    kwargs = {k: v for k, v in case.items() if k != "shape"}
    span = [dilation * (k - 1) + 1 for k in case["kernel_size"]]
    if any(s > size + 2 * p for s, size, p in zip(span, case["shape"][2:], case["padding"])):
        return  # the dilated window does not fit: covered by the error test
    kwargs["dilation"] = dilation
    x = _distinct(case["shape"])
    assert cr.autograd.gradcheck(
        lambda t: F.max_pool2d(t, **kwargs), [cr.tensor(x, requires_grad=True)]
    )
    for dtype in (np.float32, np.float64):
        _both(lambda t: F.max_pool2d(t, **kwargs), lambda t: TF.max_pool2d(t, **kwargs), x, dtype)
    _, idx = F.max_pool2d(cr.tensor(x), return_indices=True, **kwargs)
    _, idx_t = TF.max_pool2d(torch.tensor(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(idx.numpy(), idx_t.numpy())


@pytest.mark.parametrize("kwargs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 1}])
def test_max_pool_ties_go_to_the_first_maximum_as_torch(kwargs: dict[str, Any]) -> None:
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1:3] = 1.0  # a tie inside several windows
    x[0, 0, 2, 0] = 1.0
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xc, return_indices=True, **kwargs)
    yt, idx_t = TF.max_pool2d(xt, return_indices=True, **kwargs)
    np.testing.assert_array_equal(idx.numpy(), idx_t.numpy())
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())
    # Each window's gradient went to exactly one pixel.
    assert xc.grad.numpy().sum() == y.numel()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pool_cases(), include_pad=st.booleans(), override=st.sampled_from([None, 3]))
def test_avg_pool2d_gradcheck_and_torch(
    case: dict[str, Any], include_pad: bool, override: int | None
) -> None:
    kwargs = {k: v for k, v in case.items() if k != "shape"}
    kwargs.update(count_include_pad=include_pad, divisor_override=override)
    x = np.random.default_rng(1).standard_normal(case["shape"])
    assert cr.autograd.gradcheck(
        lambda t: F.avg_pool2d(t, **kwargs), [cr.tensor(x, requires_grad=True)]
    )
    for dtype in (np.float32, np.float64):
        _both(lambda t: F.avg_pool2d(t, **kwargs), lambda t: TF.avg_pool2d(t, **kwargs), x, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "size"), [((2, 3, 7, 5), (3, 2)), ((1, 2, 4, 4), 1), ((1, 1, 5, 9), (None, 4))]
)
def test_adaptive_avg_pool2d_matches_torch(dtype: Any, shape: Any, size: Any) -> None:
    x = np.random.default_rng(2).standard_normal(shape)
    _both(
        lambda t: F.adaptive_avg_pool2d(t, size),
        lambda t: TF.adaptive_avg_pool2d(t, size),
        x,
        dtype,
    )
    assert cr.autograd.gradcheck(
        lambda t: F.adaptive_avg_pool2d(t, size), [cr.tensor(x, requires_grad=True)]
    )


def test_modules_and_their_errors() -> None:
    x = cr.randn(2, 3, 6, 6)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 3, 3)
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 6, 6)
    assert nn.AdaptiveAvgPool2d((1, 1))(x).shape == (2, 3, 1, 1)
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.dtype == cr.int64 and idx.shape == y.shape
    with pytest.raises(cr.ShapeError, match=r"model\.1 \(MaxPool2d.*4-D input.*\(6, 6\)"):
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))(cr.randn(6, 6))
    with pytest.raises(cr.ShapeError, match=r"kernel \(5, 5\).*padded input \(4, 4\)"):
        nn.MaxPool2d(5)(cr.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="at most half"):
        nn.MaxPool2d(2, padding=2)(x)


def test_one_example_without_its_batch_dim_pools_as_a_batch_of_one() -> None:
    """PyTorch's rule: (C, H, W) is one example; values, indices and gradients are the
    batch of one's, without the batch dim."""
    x = np.random.default_rng(3).permutation(2 * 7 * 6).reshape(2, 7, 6) * 0.1
    for pool in (
        lambda t: F.max_pool2d(t, 3, 2, 1),
        lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
        lambda t: F.adaptive_avg_pool2d(t, (2, 3)),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
    ):
        one = cr.tensor(x, requires_grad=True)
        batch = cr.tensor(x[None], requires_grad=True)
        y_one, y_batch = pool(one), pool(batch)
        assert y_one.shape == y_batch.shape[1:]
        np.testing.assert_array_equal(y_one.detach().numpy(), y_batch.detach().numpy()[0])
        g = np.random.default_rng(4).standard_normal(y_one.shape)
        y_one.backward(cr.tensor(g))
        y_batch.backward(cr.tensor(g[None]))
        np.testing.assert_array_equal(one.grad.numpy(), batch.grad.numpy()[0])
    y, idx = nn.MaxPool2d(2, return_indices=True)(cr.tensor(x))
    yt, idxt = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert idx.shape == (2, 3, 3)
    np.testing.assert_array_equal(idx.numpy(), idxt.numpy())
    np.testing.assert_array_equal(y.numpy(), yt.numpy())
