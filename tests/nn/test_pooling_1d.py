"""MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d/2d and their functional
forms: PyTorch's values, indices and gradients (float32 and float64) over the options,
gradient checks of first and second order, one example without its batch dim, devices,
and errors that name the 1-D function and the 1-D sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from device_cases import run_pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}
DTYPES = [np.float32, np.float64]


def _distinct(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values with no ties (spaced by 0.1), so max pooling is differentiable."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.1


def _both(fn_ours: Any, fn_theirs: Any, x: np.ndarray, dtype: Any) -> None:
    """Same values (and indices) and the same input gradient for a random upstream one."""
    x = x.astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = fn_ours(xc), fn_theirs(xt)
    if isinstance(yt, tuple):
        np.testing.assert_array_equal(y[1].numpy(), yt[1].numpy())
        assert y[1].dtype == cr.int64
        y, yt = y[0], yt[0]
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(5).standard_normal(yt.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])


def _checks(fn: Any, x: np.ndarray) -> None:
    """gradcheck and gradgradcheck in float64."""
    leaf = cr.tensor(x.astype(np.float64), requires_grad=True)
    assert gradcheck(fn, [leaf])
    assert gradgradcheck(fn, [leaf])


@st.composite
def windows(draw: Any, dilated: bool) -> dict[str, Any]:
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 2)) if dilated else 1
    p = draw(st.integers(0, k // 2))
    # At least the window's span: a shorter input lets a dilated window fall wholly in the
    # padding, where PyTorch sends the gradient of its −∞ to an input element, and the
    # 2-D pooling this reuses sends none.
    length = draw(st.integers(d * (k - 1) + 1, 9))
    kwargs = {"kernel_size": k, "stride": draw(st.sampled_from([None, 1, 2, 3])), "padding": p}
    if dilated:
        kwargs["dilation"] = d
    return {"shape": (2, 3, length), "kwargs": kwargs}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=windows(dilated=True), indices=st.booleans())
def test_max_pool1d_matches_torch(case: dict[str, Any], indices: bool) -> None:
    kwargs = {**case["kwargs"], "return_indices": indices}
    x = _distinct(case["shape"])
    for dtype in DTYPES:
        _both(lambda t: F.max_pool1d(t, **kwargs), lambda t: TF.max_pool1d(t, **kwargs), x, dtype)
    _checks(lambda t: F.max_pool1d(t, **case["kwargs"]), x)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=windows(dilated=False), include_pad=st.booleans())
def test_avg_pool1d_matches_torch(case: dict[str, Any], include_pad: bool) -> None:
    kwargs = {**case["kwargs"], "count_include_pad": include_pad}
    x = np.random.default_rng(1).standard_normal(case["shape"])
    for dtype in DTYPES:
        _both(lambda t: F.avg_pool1d(t, **kwargs), lambda t: TF.avg_pool1d(t, **kwargs), x, dtype)
    _checks(lambda t: F.avg_pool1d(t, **kwargs), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(("length", "size"), [(7, 3), (9, 1), (5, 5), (4, 6), (8, (4,))])
def test_adaptive_pool1d_matches_torch(length: int, size: Any, dtype: Any) -> None:
    x = _distinct((2, 3, length), seed=2)
    _both(
        lambda t: F.adaptive_avg_pool1d(t, size),
        lambda t: TF.adaptive_avg_pool1d(t, size),
        x,
        dtype,
    )
    for indices in (False, True):
        _both(
            lambda t, i=indices: F.adaptive_max_pool1d(t, size, i),
            lambda t, i=indices: TF.adaptive_max_pool1d(t, size, i),
            x,
            dtype,
        )
    _checks(lambda t: F.adaptive_avg_pool1d(t, size), x)
    _checks(lambda t: F.adaptive_max_pool1d(t, size), x)


# Windows of several sizes (7 → 3, 5 → 4), of one size (8 → 4: max_pool2d's fused path),
# a global pool, None keeping a dim, and more outputs than inputs (overlapping windows).
ADAPTIVE_2D = [((7, 5), (3, 4)), ((8, 6), (4, 3)), ((5, 6), 1), ((6, 7), (None, 3)), ((3, 2), 4)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(("hw", "size"), ADAPTIVE_2D, ids=[str(c) for c in ADAPTIVE_2D])
def test_adaptive_max_pool2d_matches_torch(hw: Any, size: Any, dtype: Any) -> None:
    x = _distinct((2, 3, *hw), seed=3)
    for indices in (False, True):
        _both(
            lambda t, i=indices: F.adaptive_max_pool2d(t, size, i),
            lambda t, i=indices: TF.adaptive_max_pool2d(t, size, i),
            x,
            dtype,
        )
    _checks(lambda t: F.adaptive_max_pool2d(t, size), x)


def test_adaptive_max_pool2d_ties_go_to_the_first_maximum_as_torch() -> None:
    x = np.zeros((1, 1, 5, 7))
    x[0, 0, 1, 2:4] = 1.0  # ties inside windows of different sizes
    x[0, 0, 3:, 5] = 1.0
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (y, idx), (yt, idx_t) = (
        F.adaptive_max_pool2d(xc, (2, 3), True),
        TF.adaptive_max_pool2d(xt, (2, 3), True),
    )
    np.testing.assert_array_equal(idx.numpy(), idx_t.numpy())
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())


MODULES = [
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1, "dilation": 2}),
    ("MaxPool1d", (2,), {"return_indices": True}),
    ("AvgPool1d", (3,), {"stride": 1, "padding": 1, "count_include_pad": False}),
    ("AvgPool1d", (4,), {}),
    ("AdaptiveAvgPool1d", (3,), {}),
    ("AdaptiveMaxPool1d", (4,), {"return_indices": True}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "args", "kwargs"), MODULES, ids=[m[0] for m in MODULES])
@pytest.mark.parametrize("shape", [(2, 3, 9), (3, 9)], ids=["batch", "one-example"])
def test_modules_match_torch(name: str, args: Any, kwargs: Any, shape: Any, dtype: Any) -> None:
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    _both(ours, theirs, _distinct(shape, seed=4), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 7, 6)], ids=["batch", "one-example"])
def test_adaptive_max_pool2d_module_matches_torch(shape: Any, dtype: Any) -> None:
    for args in (((3, 2),), ((2, None), True)):
        ours, theirs = nn.AdaptiveMaxPool2d(*args), torch.nn.AdaptiveMaxPool2d(*args)
        _both(ours, theirs, _distinct(shape, seed=5), dtype)


@pytest.mark.parametrize(
    ("name", "build", "shape"),
    [
        ("max", lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9)),
        ("avg", lambda: nn.AvgPool1d(3, padding=1, count_include_pad=False), (2, 3, 8)),
        ("adaptive-avg", lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 7)),
        ("adaptive-max", lambda: nn.AdaptiveMaxPool1d(3, return_indices=True), (2, 3, 7)),
        ("adaptive-max-2d", lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 3, 7, 5)),
        ("adaptive-max-2d-equal", lambda: nn.AdaptiveMaxPool2d(2), (2, 3, 6, 4)),
    ],
)
def test_modules_match_cpu_on_the_device(device: str, name: str, build: Any, shape: Any) -> None:
    run_pair(device, build, [_distinct(shape, seed=6)])


def test_repr() -> None:
    assert repr(nn.MaxPool1d(2)) == (
        "MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    )
    assert repr(nn.AdaptiveMaxPool2d((2, 3))) == "AdaptiveMaxPool2d(output_size=(2, 3))"


def test_errors_name_the_1d_function_and_sizes() -> None:
    x = cr.randn(2, 3, 4)
    with pytest.raises(cr.ShapeError, match=r"max_pool1d: expected a 3-D input \(N, C, L\).*"):
        F.max_pool1d(cr.randn(1, 2, 3, 4), 2)
    with pytest.raises(cr.ShapeError, match=r"model\.0 \(AvgPool1d.*2-D \(C, L\).*\(5,\)"):
        nn.Sequential(nn.AvgPool1d(2))(cr.randn(5))
    with pytest.raises(cr.ShapeError, match=r"adaptive_avg_pool1d: expected a 3-D input"):
        F.adaptive_avg_pool1d(cr.randn(1, 2, 3, 4), 2)
    with pytest.raises(cr.ShapeError, match=r"adaptive_max_pool2d: expected a 4-D input"):
        F.adaptive_max_pool2d(x[0], 2)
    with pytest.raises(
        cr.ShapeError,
        match=r"max_pool1d: the kernel 3 \(spanning 5 with dilation 2\) is larger than the "
        r"padded input length 4 \(input \(2, 3, 4\)\)",
    ):
        F.max_pool1d(x, 3, dilation=2)
    with pytest.raises(ValueError, match=r"avg_pool1d: padding 2 must be at most half"):
        F.avg_pool1d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"max_pool1d: kernel_size, stride and dilation must be"):
        F.max_pool1d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"max_pool1d: kernel_size must be an int or a 1-tuple"):
        F.max_pool1d(x, (2, 2))
    with pytest.raises(NotImplementedError, match=r"avg_pool1d: ceil_mode=True"):
        nn.AvgPool1d(2, ceil_mode=True)(x)
    with pytest.raises(ValueError, match=r"adaptive_max_pool1d: output_size must be positive"):
        F.adaptive_max_pool1d(x, 0)
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: output_size must be an int or"):
        F.adaptive_max_pool2d(cr.randn(1, 2, 3, 4), (1, 2, 3))
