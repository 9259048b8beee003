"""Conv2d and Conv1d: gradient checks over drawn geometries, parity with PyTorch (forward
and every gradient, float32 and float64), initialisation, and the errors users meet.
"""

from __future__ import annotations

import math
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

TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-10}}


@st.composite
def conv_cases(draw: Any) -> dict[str, Any]:
    """A small convolution: channels divisible by groups, a kernel that fits the input."""
    groups = draw(st.sampled_from([1, 1, 2]))
    c = groups * draw(st.integers(1, 2))
    o = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), 6))
    n = draw(st.integers(1, 2))
    return {
        "x": (n, c, h, w),
        "w": (o, c // groups, kh, kw),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
    }


def _inputs(case: dict[str, Any], dtype: Any, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(case["x"]), rng.standard_normal(case["w"])]
    if case["bias"]:
        arrays.append(rng.standard_normal(case["w"][0]))
    return [a.astype(dtype) for a in arrays]


def _ours(case: dict[str, Any]) -> Any:
    def fn(x: cr.Tensor, w: cr.Tensor, b: cr.Tensor | None = None) -> cr.Tensor:
        return F.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])

    return fn


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_conv2d_gradcheck(case: dict[str, Any]) -> None:
    inputs = [cr.tensor(a, requires_grad=True) for a in _inputs(case, np.float64)]
    assert cr.autograd.gradcheck(_ours(case), inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_conv2d_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    arrays = _inputs(case, dtype)
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = _ours(case)(*ours)
    bias = theirs[2] if case["bias"] else None
    geometry = (case["stride"], case["padding"], case["dilation"], case["groups"])
    yt = TF.conv2d(theirs[0], theirs[1], bias, *geometry)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(1).standard_normal(yt.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("kwargs", "length"),
    [
        ({"stride": 1, "padding": 0}, 9),
        ({"stride": 2, "padding": 1, "dilation": 2}, 11),
        ({"padding": "same", "dilation": 3}, 10),
        ({"groups": 2, "padding": "valid"}, 7),
    ],
)
def test_conv1d_matches_torch(dtype: Any, kwargs: dict[str, Any], length: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, length)).astype(dtype)
    w = rng.standard_normal((6, 4 // kwargs.get("groups", 1), 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    ours = [cr.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y, yt = F.conv1d(*ours, **kwargs), TF.conv1d(*theirs, **kwargs)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    y.sum().backward()
    yt.sum().backward()
    for a, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), **TOL[dtype])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (4, 1), ((2, 5), (3, 1))])
def test_same_padding_keeps_the_size_and_matches_torch(kernel: Any, dilation: Any) -> None:
    cr.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation).double()
    ref = torch.nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation).double()
    ref.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in conv.state_dict().items()}
    )
    x = np.random.default_rng(3).standard_normal((1, 2, 7, 6))
    y = conv(cr.tensor(x))
    assert y.shape == (1, 3, 7, 6)
    np.testing.assert_allclose(
        y.detach().numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-10
    )


def test_default_init_is_pytorchs_by_fan_in() -> None:
    """W and b ~ U(±1/√fan_in), fan_in = in/groups · kernel area (kaiming_uniform_(a=√5))."""
    cr.manual_seed(0)
    conv = nn.Conv2d(8, 64, (3, 5), groups=4)
    bound = 1.0 / math.sqrt(2 * 3 * 5)
    w = conv.weight.detach().numpy()
    assert conv.weight.shape == (64, 2, 3, 5)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound


def test_state_dict_keys_and_shapes_match_torch() -> None:
    ours = nn.Conv1d(3, 5, 4, bias=False)
    theirs = torch.nn.Conv1d(3, 5, 4, bias=False)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }


def test_conv2d_rejects_a_2d_input_naming_the_module() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(
        cr.ShapeError, match=r"model\.0 \(Conv2d\(1, 4.*4-D input.*or 3-D \(C, H, W\).*\(28, 28\)"
    ):
        model(cr.randn(28, 28))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_one_example_without_its_batch_dim_matches_torch(dtype: Any) -> None:
    """PyTorch's rule: (C, H, W) into Conv2d, (C, L) into Conv1d is one example; the
    output and every gradient are those of the batch of one, without the batch dim."""
    tol = {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    rng = np.random.default_rng(0)
    for ours, theirs, shape in (
        (nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1), (2, 5, 6)),
        (nn.Conv1d(2, 4, 3, stride=2), torch.nn.Conv1d(2, 4, 3, stride=2), (2, 9)),
    ):
        ours.to(dtype)
        theirs.to(tdtype)
        theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
        x = rng.standard_normal(shape).astype(dtype)
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yc, yt = ours(xc), theirs(xt)
        assert yc.shape == tuple(yt.shape) and yc.ndim == len(shape)
        np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), **tol)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        yc.backward(cr.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **tol)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **tol)
    with pytest.raises(cr.ShapeError, match=r"expected 2 input channels.*\(3, 5, 6\) with 3"):
        nn.Conv2d(2, 3, 3)(cr.randn(3, 5, 6))


def test_channel_mismatch_names_the_module_and_shapes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(
        cr.ShapeError, match=r"model\.0 .*expected 3 input channels.*\(2, 1, 8, 8\)"
    ):
        model(cr.randn(2, 1, 8, 8))


def test_kernel_larger_than_the_padded_input() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 5, padding=1))
    with pytest.raises(cr.ShapeError, match=r"model\.0 .*kernel \(5, 5\).*padded input \(4, 4\)"):
        model(cr.randn(1, 1, 2, 2))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="groups=3"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(NotImplementedError, match="reflect"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(cr.DTypeError, match="float64"):
        F.conv2d(cr.randn(1, 1, 4, 4), cr.randn(1, 1, 3, 3).double())
