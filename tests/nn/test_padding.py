"""``F.pad`` and the padding layers: PyTorch's values and gradients for every mode, in
float32 and float64, over 1-, 2- and 3-dim paddings, batched and one example; gradient
checks of first and second order; gradients piling up on the border elements; the layers
against PyTorch's; devices; and the errors. (Registry cases: ``pad_cases.py``.)
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

TOL = {np.float32: {"rtol": 1e-6, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}
MODES = ["constant", "reflect", "replicate", "circular"]
# (input shape, padding): k padded dims of a (k + 1)-D example or a (k + 2)-D batch.
GEOMETRIES = [
    ((3, 5), (2, 1)),
    ((2, 3, 5), (0, 4)),
    ((2, 3, 4, 5), (1, 2, 3, 0)),
    ((3, 4, 5), (4, 4, 3, 3)),
    ((1, 2, 3, 4, 5), (1, 2, 0, 2, 2, 1)),
]


def _allowed(mode: str, shape: tuple[int, ...], pad: tuple[int, ...]) -> bool:
    """Whether PyTorch accepts ``pad`` on ``shape`` in ``mode`` (reflect: widths below the
    dim's size; circular: at most it)."""
    sizes = shape[::-1]
    widths = [max(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]
    if mode == "reflect":
        return all(w < n for w, n in zip(widths, sizes))
    if mode == "circular":
        return all(w <= n for w, n in zip(widths, sizes))
    return True


# Every mode on every geometry it allows (the others: test_errors_name_the_rule_and_the_shapes).
CASES = [(m, s, p) for m in MODES for s, p in GEOMETRIES if _allowed(m, s, p)]
IDS = [f"{m}-{s}-{p}" for m, s, p in CASES]


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("mode", "shape", "pad"), CASES, ids=IDS)
def test_pad_matches_torch(mode: str, shape: Any, pad: Any, dtype: Any) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    _both(lambda t: F.pad(t, pad, mode), lambda t: TF.pad(t, pad, mode), x, dtype)


@pytest.mark.parametrize(("mode", "shape", "pad"), CASES, ids=IDS)
def test_pad_gradcheck_first_and_second_order(mode: str, shape: Any, pad: Any) -> None:
    x = cr.tensor(np.random.default_rng(1).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, pad, mode), [x])
    assert gradgradcheck(lambda t: F.pad(t, pad, mode), [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("pad", [(1, -2), (-1, 0, 2, -3), (0, 0, -1, -1), (2, 1, 0, 0, 1, 1)])
@pytest.mark.parametrize("value", [None, -1.5])
def test_constant_pad_fills_with_value_and_crops_with_negative_widths(
    pad: Any, value: Any, dtype: Any
) -> None:
    x = np.random.default_rng(2).standard_normal((2, 4, 6))
    _both(lambda t: F.pad(t, pad, value=value), lambda t: TF.pad(t, pad, value=value), x, dtype)


@pytest.mark.parametrize(
    ("mode", "pad", "expected"),
    [
        # x0 x1 x2 reflected by (2, 2): x2 x1 | x0 x1 x2 | x1 x0
        ("reflect", (2, 2), [2.0, 3.0, 2.0]),
        # x0 x0 | x0 x1 x2 | x2
        ("replicate", (2, 1), [3.0, 1.0, 2.0]),
        # x1 x2 | x0 x1 x2 | x0 x1 x2
        ("circular", (2, 3), [2.0, 3.0, 3.0]),
        ("constant", (2, 3), [1.0, 1.0, 1.0]),
    ],
)
def test_border_elements_collect_the_gradient_of_every_copy(
    mode: str, pad: Any, expected: list[float]
) -> None:
    x = cr.tensor(np.array([[0.0, 1.0, 2.0]]), requires_grad=True)
    F.pad(x, pad, mode).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [expected])


def test_second_order_through_a_pad_matches_torch() -> None:
    """A gradient penalty: ‖∇ₓ Σ w·pad(x)²‖² differentiated again, against PyTorch."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((1, 2, 7, 8))
    results = []
    for lib, F_ in ((cr, F), (torch, TF)):
        xt = lib.tensor(x, requires_grad=True)
        y = (lib.tensor(w) * F_.pad(xt, (2, 1, 1, 2), "reflect") ** 2).sum()
        (gx,) = (cr.autograd if lib is cr else torch.autograd).grad(y, [xt], create_graph=True)
        (gx**2).sum().backward()
        results.append(xt.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


LAYERS = [
    ("ZeroPad1d", (2, 1), (2, 3, 5)),
    ("ZeroPad2d", 2, (2, 3, 4, 5)),
    ("ZeroPad2d", (1, 0, 2, 3), (3, 4, 5)),
    ("ConstantPad1d", ((3, 1), 2.5), (3, 4)),
    ("ConstantPad2d", ((1, 2, 0, 1), -1.0), (2, 3, 4, 5)),
    ("ReflectionPad1d", 3, (2, 3, 5)),
    ("ReflectionPad2d", (1, 2, 3, 0), (2, 3, 4, 5)),
    ("ReplicationPad1d", (4, 0), (3, 5)),
    ("ReplicationPad2d", 2, (2, 3, 4, 5)),
    ("CircularPad1d", (2, 5), (2, 3, 5)),
    ("CircularPad2d", (1, 2, 3, 4), (1, 2, 4, 5)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "args", "shape"), LAYERS, ids=[f"{c[0]}{c[2]}" for c in LAYERS])
def test_layers_match_torch(name: str, args: Any, shape: Any, dtype: Any) -> None:
    args = args if isinstance(args, tuple) and isinstance(args[-1], float) else (args,)
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert ours.padding == theirs.padding
    x = np.random.default_rng(4).standard_normal(shape)
    _both(ours, theirs, x, dtype)


def test_layer_repr_and_bad_padding() -> None:
    assert repr(nn.ReflectionPad2d(1)) == "ReflectionPad2d(padding=(1, 1, 1, 1))"
    assert repr(nn.ConstantPad1d(2, 3.0)) == "ConstantPad1d(padding=(2, 2), value=3.0)"
    with pytest.raises(ValueError, match=r"ReflectionPad2d: padding must be an int or a 4-tuple"):
        nn.ReflectionPad2d((1, 2))


@pytest.mark.parametrize(
    ("name", "args", "shape"),
    [("ReflectionPad2d", (1, 2, 2, 0), (2, 3, 4, 5)), ("CircularPad1d", (3, 1), (2, 3, 4))],
)
def test_layers_match_cpu_on_the_device(device: str, name: str, args: Any, shape: Any) -> None:
    x = np.random.default_rng(6).standard_normal(shape)
    run_pair(device, lambda: getattr(nn, name)(args), [x])


@pytest.mark.parametrize("mode", MODES)
def test_pad_gradient_of_gradient_matches_cpu_on_the_device(device: str, mode: str) -> None:
    x = np.random.default_rng(7).standard_normal((2, 3, 4))
    results = []
    for where in ("cpu", device):
        xt = cr.Tensor(x, device=where, requires_grad=True)
        y = (F.pad(xt, (3, 2, 1, 2), mode) ** 3).sum()
        (gx,) = cr.autograd.grad(y, [xt], create_graph=True)
        gx.sum().backward()
        assert gx.device.type == cr.device(where).type
        results.append(xt.grad.cpu().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12, atol=1e-12)


def test_errors_name_the_rule_and_the_shapes() -> None:
    x = cr.randn(2, 3, 4)
    with pytest.raises(cr.ShapeError, match=r"pad: reflect padding \(4, 1\) of dim 2 must be "):
        F.pad(x, (4, 1), "reflect")
    with pytest.raises(cr.ShapeError, match=r"smaller than the size 4.*\(2, 3, 4\)"):
        F.pad(x, (4, 1), "reflect")
    with pytest.raises(cr.ShapeError, match=r"circular padding \(0, 4\) of dim 1 must be at most"):
        F.pad(x, (0, 0, 0, 4), "circular")
    with pytest.raises(cr.ShapeError, match=r"expects a 3-D or 4-D input, got shape \(5, 6\)"):
        F.pad(cr.randn(5, 6), (1, 1, 1, 1), "replicate")
    with pytest.raises(
        cr.ShapeError, match=r"expects a 2-D or 3-D input, got shape \(1, 2, 3, 4\)"
    ):
        nn.ReflectionPad1d(1)(cr.randn(1, 2, 3, 4))
    with pytest.raises(cr.ShapeError, match=r"even length of at most 2·ndim = 2.*\(5,\)"):
        F.pad(cr.randn(5), (1, 1, 1, 1))
    with pytest.raises(cr.ShapeError, match=r"even length"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(cr.ShapeError, match=r"cropping at most the size 4"):
        F.pad(x, (-3, -2))
    with pytest.raises(ValueError, match=r"mode 'reflect' takes no value"):
        F.pad(x, (1, 1), "reflect", value=1.0)
    with pytest.raises(ValueError, match=r"mode 'replicate' needs non-negative padding"):
        F.pad(x, (1, -1), "replicate")
    with pytest.raises(ValueError, match=r"mode must be one of"):
        F.pad(x, (1, 1), "symmetric")


def test_zero_padding_gives_an_equal_copy() -> None:
    x = cr.randn(2, 3, requires_grad=True)
    for mode in MODES:
        y = F.pad(x, (0, 0), mode)
        assert y is not x and y.data is not x.data
        np.testing.assert_array_equal(y.detach().numpy(), x.detach().numpy())
