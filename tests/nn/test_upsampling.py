"""``F.interpolate`` and ``nn.Upsample`` (with ``UpsamplingNearest2d`` and
``UpsamplingBilinear2d``): PyTorch's values and gradients (float32 and float64) for
"nearest", "linear" and "bilinear" over sizes, scale factors (integer, fractional,
downsampling, one per dim), ``align_corners`` and ``recompute_scale_factor``; gradient
checks of first and second order; devices; and the errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from device_cases import run_pair

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float32: {"rtol": 1e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}
DTYPES = [np.float32, np.float64]
# The resizes of an (H, W) = (5, 6) or L = 6 input.
RESIZES_2D = [
    {"scale_factor": 2},
    {"scale_factor": 3.0},
    {"scale_factor": 1.7},
    {"scale_factor": (0.6, 2.5)},
    # Sizes n and 2n from other factors: PyTorch's 2-D kernels copy and halve exactly.
    {"scale_factor": (1.1, 2.1)},
    {"scale_factor": 0.5, "recompute_scale_factor": True},
    {"scale_factor": (1.3, 0.7), "recompute_scale_factor": True},
    {"size": 9},
    {"size": (3, 13)},
    {"size": (5, 1)},
]
RESIZES_1D = [
    {"scale_factor": 2},
    {"scale_factor": 2.4},
    {"scale_factor": 0.4},
    {"size": 11},
    {"size": (4,)},
    {"size": 1},
    {"scale_factor": (1.5,), "recompute_scale_factor": True},
]
MODES_2D = [("nearest", None), ("bilinear", False), ("bilinear", True)]
MODES_1D = [("nearest", None), ("linear", False), ("linear", True)]
CASES = [(4, m, a, r) for m, a in MODES_2D for r in RESIZES_2D] + [
    (3, m, a, r) for m, a in MODES_1D for r in RESIZES_1D
]
IDS = [f"{d}D-{m}-{a}-{r}" for d, m, a, r in CASES]
SHAPES = {4: (2, 3, 5, 6), 3: (2, 3, 6)}


def _both(fn_ours: Any, fn_theirs: Any, x: np.ndarray, dtype: Any) -> None:
    """Same values and the same input gradient for a random upstream gradient."""
    x = x.astype(dtype)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = fn_ours(xc), fn_theirs(xt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(5).standard_normal(yt.shape).astype(dtype)
    y.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(("dims", "mode", "align", "resize"), CASES, ids=IDS)
def test_interpolate_matches_torch(
    dims: int, mode: str, align: Any, resize: Any, dtype: Any
) -> None:
    x = np.random.default_rng(0).standard_normal(SHAPES[dims])
    kwargs = {"mode": mode, "align_corners": align, **resize}
    _both(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), x, dtype)


@pytest.mark.parametrize(("dims", "mode", "align", "resize"), CASES[::2], ids=IDS[::2])
def test_interpolate_gradcheck_first_and_second_order(
    dims: int, mode: str, align: Any, resize: Any
) -> None:
    x = cr.tensor(np.random.default_rng(1).standard_normal(SHAPES[dims]), requires_grad=True)

    def fn(t: cr.Tensor) -> cr.Tensor:
        return F.interpolate(t, mode=mode, align_corners=align, **resize)

    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


@pytest.mark.parametrize("n", [7, 13, 100, 1000])
def test_nearest_source_indices_round_in_float32_as_torch(n: int) -> None:
    """Fractional factors whose i·(1/s) lands near an integer: PyTorch rounds in float32."""
    x = np.arange(n, dtype=np.float64).reshape(1, 1, n)
    for scale in (1.1, 0.3, 2.9, 1 / 3):
        ours = F.interpolate(cr.tensor(x), scale_factor=scale).numpy()
        theirs = TF.interpolate(torch.tensor(x), scale_factor=scale).numpy()
        np.testing.assert_array_equal(ours, theirs)


def test_nearest_keeps_integer_dtypes() -> None:
    x = (np.arange(24) * 10).reshape(1, 2, 3, 4).astype(np.uint8)
    ours = F.interpolate(cr.tensor(x), scale_factor=2)
    assert ours.dtype == cr.uint8
    np.testing.assert_array_equal(
        ours.numpy(), TF.interpolate(torch.tensor(x), scale_factor=2).numpy()
    )


UPSAMPLERS = [
    ("Upsample", {"scale_factor": 2}),
    ("Upsample", {"size": (7, 4), "mode": "bilinear"}),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}),
    ("UpsamplingNearest2d", {"size": 8}),
    ("UpsamplingBilinear2d", {"scale_factor": 2}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "kwargs"), UPSAMPLERS, ids=[str(u) for u in UPSAMPLERS])
def test_modules_match_torch(name: str, kwargs: Any, dtype: Any) -> None:
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    _both(ours, theirs, np.random.default_rng(2).standard_normal((2, 3, 4, 5)), dtype)


def test_upsample_linear_module_and_repr() -> None:
    ours = nn.Upsample(scale_factor=3, mode="linear")
    theirs = torch.nn.Upsample(scale_factor=3, mode="linear")
    _both(ours, theirs, np.random.default_rng(3).standard_normal((2, 3, 4)), np.float64)
    assert repr(ours) == "Upsample(scale_factor=3, mode='linear')"


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
        (lambda: nn.Upsample(size=(7, 3), mode="bilinear", align_corners=True), (2, 3, 4, 5)),
        (lambda: nn.Upsample(scale_factor=1.5, mode="linear"), (2, 3, 5)),
    ],
)
def test_modules_match_cpu_on_the_device(device: str, build: Any, shape: Any) -> None:
    run_pair(device, build, [np.random.default_rng(4).standard_normal(shape)])


def test_errors_name_the_function_and_the_shapes() -> None:
    x4, x3 = cr.randn(1, 2, 4, 4), cr.randn(1, 2, 4)
    with pytest.raises(
        ValueError, match=r"interpolate: give exactly one of size and scale_factor, got both"
    ):
        F.interpolate(x4, size=8, scale_factor=2)
    with pytest.raises(ValueError, match=r"got neither"):
        nn.Upsample()(x4)
    with pytest.raises(
        cr.ShapeError,
        match=r"interpolate: mode 'bilinear' expects a 4-D \(N, C, H, W\) input, got shape "
        r"\(1, 2, 4\)",
    ):
        F.interpolate(x3, scale_factor=2, mode="bilinear")
    with pytest.raises(cr.ShapeError, match=r"mode 'linear' expects a 3-D \(N, C, L\) input"):
        F.interpolate(x4, scale_factor=2, mode="linear")
    with pytest.raises(cr.ShapeError, match=r"'nearest' expects a 3-D \(N, C, L\) or 4-D"):
        F.interpolate(cr.randn(4, 4), scale_factor=2)
    with pytest.raises(cr.ShapeError, match=r"size \(2, 3, 4\) must give one size per spatial dim"):
        F.interpolate(x4, size=(2, 3, 4))
    with pytest.raises(cr.ShapeError, match=r"scale_factor \(2.0,\) must give one factor"):
        F.interpolate(x4, scale_factor=(2,))
    with pytest.raises(cr.ShapeError, match=r"output size \(0, 0\).*must be positive"):
        F.interpolate(x4, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"align_corners can only be set with the interpolating"):
        F.interpolate(x4, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"recompute_scale_factor is not meaningful"):
        F.interpolate(x4, size=3, recompute_scale_factor=True)
    with pytest.raises(NotImplementedError, match=r"mode 'bicubic' is not supported"):
        F.interpolate(x4, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"mode must be one of"):
        F.interpolate(x4, scale_factor=2, mode="cubic")
    with pytest.raises(cr.DTypeError, match=r"needs a floating-point input"):
        F.interpolate(cr.tensor(np.ones((1, 1, 2, 2), dtype=np.int64)), size=3, mode="bilinear")
