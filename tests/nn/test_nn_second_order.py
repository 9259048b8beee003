"""Second order for every Function of ``chainrule.nn``: ``gradgradcheck`` over
Hypothesis-drawn shapes, ``backward_graph`` agreeing with ``backward`` to first order, a
registry test that none is left out, and PyTorch's double backward on a gradient penalty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conv_cases import second_order_specs
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_cases import away_from, leaf, randn
from pad_cases import pad_second_order_specs

import chainrule as cr
import chainrule.nn  # registers the nn Functions
import chainrule.nn.functional as F
from chainrule.autograd import PRIMITIVES, gradgradcheck
from chainrule.nn.fused import NormalCDFFunction
from chainrule.nn.rnn_functions import (
    GRULayerFunction,
    LSTMCellFunction,
    LSTMLayerFunction,
    RNNLayerFunction,
)
from chainrule.random import Generator

# A spec builds (function, inputs) in float64 from a seeded rng and drawn sizes: n rows,
# c classes (or features) and a spatial size d.
Builder = Callable[[np.random.Generator, int, int, int], tuple[Callable[..., Any], list[Any]]]


def _labels(rng: np.random.Generator, shape: tuple[int, ...], c: int) -> cr.Tensor:
    return cr.tensor(rng.integers(0, c, shape))


def _with_ignored(rng: np.random.Generator, n: int, c: int) -> cr.Tensor:
    labels = rng.integers(0, c, n)
    labels[0] = -100  # at least one row ignored, the others counted
    return cr.tensor(labels)


def _probs(rng: np.random.Generator, n: int, c: int) -> cr.Tensor:
    return leaf(rng.dirichlet(np.ones(c), size=n))


def _probs_along_dim1(rng: np.random.Generator, n: int, c: int, d: int) -> cr.Tensor:
    # C-ordered: gradcheck perturbs the array through a flat view.
    return leaf(np.ascontiguousarray(rng.dirichlet(np.ones(c), size=(n, d)).transpose(0, 2, 1)))


def _class_w(rng: np.random.Generator, c: int) -> np.ndarray:
    return rng.uniform(0.5, 2.0, c)


Rng = np.random.Generator
Case = tuple[Callable[..., Any], list[Any]]


def linear(r: Rng, n: int, c: int, d: int) -> Case:
    return F.linear, [randn(r, n, d), randn(r, c, d), randn(r, c)]


def linear_batched_no_bias(r: Rng, n: int, c: int, d: int) -> Case:
    return F.linear, [randn(r, n, 2, d), randn(r, c, d), None]


def linear_vector(r: Rng, n: int, c: int, d: int) -> Case:
    return F.linear, [randn(r, d), randn(r, c, d), randn(r, c)]


def dropout(r: Rng, n: int, c: int, d: int) -> Case:
    # A fresh generator with the same seed per call: the same mask at every evaluation.
    return (lambda x: F.dropout(x, 0.3, True, Generator(d))), [randn(r, n, c)]


def leaky_relu(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x: F.leaky_relu(x, 0.2)), [away_from(r, (n, c))]


def elu(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x: F.elu(x, 1.3)), [away_from(r, (n, c))]


def silu(r: Rng, n: int, c: int, d: int) -> Case:
    return F.silu, [randn(r, n, c)]


def gelu(r: Rng, n: int, c: int, d: int) -> Case:
    return F.gelu, [randn(r, n, c)]


def gelu_tanh(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x: F.gelu(x, "tanh")), [randn(r, n, c)]


def normal_cdf(r: Rng, n: int, c: int, d: int) -> Case:
    return NormalCDFFunction.apply, [randn(r, n, c)]


def cross_entropy(r: Rng, n: int, c: int, d: int) -> Case:
    t = _labels(r, (n,), c)
    return (lambda x: F.cross_entropy(x, t)), [randn(r, n, c)]


def cross_entropy_weighted_smoothed(r: Rng, n: int, c: int, d: int) -> Case:
    t, w = _with_ignored(r, n + 1, c), _class_w(r, c)
    return (lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=0.2)), [randn(r, n + 1, c)]


def cross_entropy_spatial_none(r: Rng, n: int, c: int, d: int) -> Case:
    t = _labels(r, (n, d), c)
    return (lambda x: F.cross_entropy(x, t, reduction="none", label_smoothing=0.1)), [
        randn(r, n, c, d)
    ]


def cross_entropy_one_row_sum(r: Rng, n: int, c: int, d: int) -> Case:
    t, w = _labels(r, (), c), _class_w(r, c)
    return (lambda x: F.cross_entropy(x, t, weight=w, reduction="sum")), [randn(r, c)]


def soft_cross_entropy(r: Rng, n: int, c: int, d: int) -> Case:
    w = _class_w(r, c)
    return (lambda x, q: F.cross_entropy(x, q, weight=w, label_smoothing=0.1)), [
        randn(r, n, c),
        _probs(r, n, c),
    ]


def soft_cross_entropy_spatial_none(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, q: F.cross_entropy(x, q, reduction="none")), [
        randn(r, n, c, d),
        _probs_along_dim1(r, n, c, d),
    ]


def nll_weighted(r: Rng, n: int, c: int, d: int) -> Case:
    t, w = _with_ignored(r, n + 1, c), _class_w(r, c)
    return (lambda x: F.nll_loss(x, t, weight=w)), [randn(r, n + 1, c)]


def nll_spatial_none(r: Rng, n: int, c: int, d: int) -> Case:
    t = _labels(r, (n, d), c)
    return (lambda x: F.nll_loss(x, t, reduction="none")), [randn(r, n, c, d)]


def mse(r: Rng, n: int, c: int, d: int) -> Case:
    return F.mse_loss, [randn(r, n, c), randn(r, n, c)]


def mse_none(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, y: F.mse_loss(x, y, "none")), [randn(r, n, c), randn(r, n, c)]


def l1_sum(r: Rng, n: int, c: int, d: int) -> Case:
    y = cr.zeros(n, c, dtype=cr.float64)
    return (lambda x: F.l1_loss(x, y, "sum")), [away_from(r, (n, c))]


def huber(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, y: F.huber_loss(x, y, delta=0.7)), [
        away_from(r, (n, c), 0.7),
        cr.zeros(n, c, dtype=cr.float64),
    ]


def huber_none(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, y: F.huber_loss(x, y, "none", delta=0.7)), [
        away_from(r, (n, c), -0.7),
        leaf(np.zeros((n, c))),
    ]


def bce_with_logits_weighted(r: Rng, n: int, c: int, d: int) -> Case:
    w, pw = r.uniform(0.5, 2.0, c), r.uniform(0.5, 2.0, c)
    return (lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw)), [
        randn(r, n, c),
        leaf(r.random((n, c))),
    ]


def bce_with_logits_none(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none")), [
        randn(r, n, c),
        leaf(r.random((n, c))),
    ]


def bce_weighted(r: Rng, n: int, c: int, d: int) -> Case:
    w = np.linspace(0.5, 2.0, c)
    return (lambda x, y: F.binary_cross_entropy(x, y, weight=w)), [
        leaf(r.uniform(0.1, 0.9, (n, c))),
        leaf(r.random((n, c))),
    ]


def bce_sum(r: Rng, n: int, c: int, d: int) -> Case:
    return (lambda x, y: F.binary_cross_entropy(x, y, reduction="sum")), [
        leaf(r.uniform(0.1, 0.9, (n, c))),
        leaf(r.random((n, c))),
    ]


def lstm_step_h(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [
        randn(r, n, 4 * c),
        randn(r, n, c),
        randn(r, n, c),
        randn(r, 4 * c, c),
        randn(r, 4 * c),
    ]
    return (lambda *a: LSTMCellFunction.apply(*a)[0]), inputs


def lstm_step_c(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, n, 4 * c), randn(r, n, c), randn(r, n, c), randn(r, 4 * c, c)]
    return (lambda x, h, cell, w: LSTMCellFunction.apply(x, h, cell, w, None)[1]), inputs


def lstm_layer_out(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, 4 * c), randn(r, n, c), randn(r, n, c), randn(r, 4 * c, c)]
    inputs.append(randn(r, 4 * c))
    return (lambda x, h, cell, w, b: LSTMLayerFunction.apply(x, h, cell, w, b, False)[0]), inputs


def lstm_layer_reverse_last_c(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, 4 * c), randn(r, n, c), randn(r, n, c), randn(r, 4 * c, c)]
    return (lambda x, h, cell, w: LSTMLayerFunction.apply(x, h, cell, w, None, True)[2]), inputs


def gru_layer_out(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, 3 * c), randn(r, n, c), randn(r, 3 * c, c), randn(r, 3 * c)]
    return (lambda x, h, w, b: GRULayerFunction.apply(x, h, w, b, False)[0]), inputs


def gru_layer_reverse_last(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, 3 * c), randn(r, n, c), randn(r, 3 * c, c)]
    return (lambda x, h, w: GRULayerFunction.apply(x, h, w, None, True)[1]), inputs


def rnn_layer_out(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, c), randn(r, n, c), randn(r, c, c), randn(r, c)]
    return (lambda x, h, w, b: RNNLayerFunction.apply(x, h, w, b, "tanh", False)[0]), inputs


def rnn_relu_layer_reverse_last(r: Rng, n: int, c: int, d: int) -> Case:
    inputs = [randn(r, d + 1, n, c), randn(r, n, c), randn(r, c, c)]
    return (lambda x, h, w: RNNLayerFunction.apply(x, h, w, None, "relu", True)[1]), inputs


SPECS: list[tuple[str, Builder]] = [
    ("LinearFunction", linear),
    ("LinearFunction", linear_batched_no_bias),
    ("LinearFunction", linear_vector),
    ("DropoutFunction", dropout),
    ("LeakyReLUFunction", leaky_relu),
    ("ELUFunction", elu),
    ("SiLUFunction", silu),
    ("GELUFunction", gelu),
    ("GELUFunction", gelu_tanh),
    ("NormalCDFFunction", normal_cdf),
    ("CrossEntropyFunction", cross_entropy),
    ("CrossEntropyFunction", cross_entropy_weighted_smoothed),
    ("CrossEntropyFunction", cross_entropy_spatial_none),
    ("CrossEntropyFunction", cross_entropy_one_row_sum),
    ("SoftCrossEntropyFunction", soft_cross_entropy),
    ("SoftCrossEntropyFunction", soft_cross_entropy_spatial_none),
    ("NLLFunction", nll_weighted),
    ("NLLFunction", nll_spatial_none),
    ("MSEFunction", mse),
    ("MSEFunction", mse_none),
    ("L1Function", l1_sum),
    ("HuberFunction", huber),
    ("HuberFunction", huber_none),
    ("BCEWithLogitsFunction", bce_with_logits_weighted),
    ("BCEWithLogitsFunction", bce_with_logits_none),
    ("BCEFunction", bce_weighted),
    ("BCEFunction", bce_sum),
    ("LSTMCellFunction", lstm_step_h),
    ("LSTMCellFunction", lstm_step_c),
    ("LSTMLayerFunction", lstm_layer_out),
    ("LSTMLayerFunction", lstm_layer_reverse_last_c),
    ("GRULayerFunction", gru_layer_out),
    ("GRULayerFunction", gru_layer_reverse_last),
    ("RNNLayerFunction", rnn_layer_out),
    ("RNNLayerFunction", rnn_relu_layer_reverse_last),
]
SPECS += second_order_specs()  # the image layers (tests/nn/conv_cases.py)
SPECS += pad_second_order_specs()  # padding (tests/nn/pad_cases.py)

IDS = [spec.__name__ for _, spec in SPECS]
SIZES = {
    "seed": st.integers(0, 2**16),
    "n": st.integers(1, 3),
    "c": st.integers(2, 4),
    "d": st.integers(1, 3),
}


def nn_functions() -> dict[str, type]:
    return {name: fn for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.nn")}


def test_every_nn_function_has_backward_graph_and_a_second_order_case() -> None:
    functions = nn_functions()
    assert len(functions) >= 15
    no_graph = sorted(name for name, fn in functions.items() if not fn.has_backward_graph())
    assert not no_graph, f"Functions in chainrule.nn without backward_graph: {no_graph}"
    missing = set(functions) - {name for name, _ in SPECS}
    assert not missing, f"Functions in chainrule.nn without a second-order case: {missing}"


def _build(spec: Builder, seed: int, n: int, c: int, d: int) -> tuple[Callable[..., Any], list]:
    return spec(np.random.default_rng(seed), n, c, d)


def _reached(name: str, out: Any) -> bool:
    outs = out if isinstance(out, tuple) else (out,)
    return all(type(o.grad_fn).__name__ == name for o in outs)


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=IDS)
@settings(max_examples=4, deadline=None)
@given(**SIZES)
def test_gradgradcheck(name: str, spec: Builder, seed: int, n: int, c: int, d: int) -> None:
    fn, inputs = _build(spec, seed, n, c, d)
    assert _reached(name, fn(*inputs)), "the case does not reach its Function"
    assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=IDS)
@settings(max_examples=4, deadline=None)
@given(**SIZES)
def test_backward_graph_equals_backward(
    name: str, spec: Builder, seed: int, n: int, c: int, d: int
) -> None:
    fn, inputs = _build(spec, seed, n, c, d)
    wrt = [x for x in inputs if isinstance(x, cr.Tensor) and x.requires_grad]
    out = fn(*inputs)
    assert _reached(name, out)
    v = np.random.default_rng(seed + 1).standard_normal(out.shape)
    fast = cr.autograd.grad(out, wrt, cr.tensor(v), retain_graph=True)
    # v requiring grad: every VJP is linear in v, so each graph gradient must have a graph.
    graph = cr.autograd.grad(out, wrt, cr.tensor(v, requires_grad=True), create_graph=True)
    for a, b in zip(fast, graph, strict=True):
        assert b.requires_grad
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=1e-12)


# -- PyTorch parity: the gradient penalty ‖∇ₓ loss‖² of an MLP, and its weight gradients --
def _mlp_pair(smoothing: float) -> tuple[Any, Any, Any]:
    torch = pytest.importorskip("torch")
    nn = chainrule.nn
    ours = nn.Sequential(
        nn.Linear(4, 6),
        nn.SiLU(),
        nn.Linear(6, 6),
        nn.GELU(),
        nn.Linear(6, 5),
        nn.ELU(0.8),
        nn.Linear(5, 5),
        nn.GELU("tanh"),
        nn.Linear(5, 5),
        nn.LeakyReLU(0.1),
        nn.Linear(5, 3),
    ).double()
    tnn = torch.nn
    theirs = tnn.Sequential(
        tnn.Linear(4, 6),
        tnn.SiLU(),
        tnn.Linear(6, 6),
        tnn.GELU(),
        tnn.Linear(6, 5),
        tnn.ELU(0.8),
        tnn.Linear(5, 5),
        tnn.GELU("tanh"),
        tnn.Linear(5, 5),
        tnn.LeakyReLU(0.1),
        tnn.Linear(5, 3),
    ).double()
    rng = np.random.default_rng(5)
    state = {k: rng.standard_normal(p.shape) for k, p in ours.state_dict().items()}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    return ours, theirs, tnn.CrossEntropyLoss(label_smoothing=smoothing)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_gradient_penalty_matches_torch_double_backward(smoothing: float) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs, torch_loss = _mlp_pair(smoothing)
    rng = np.random.default_rng(6)
    xn, labels = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)

    x = cr.tensor(xn, requires_grad=True)
    loss = chainrule.nn.CrossEntropyLoss(label_smoothing=smoothing)(ours(x), cr.tensor(labels))
    (gx,) = cr.autograd.grad(loss, [x], create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()

    xt = torch.tensor(xn, requires_grad=True)
    tloss = torch_loss(theirs(xt), torch.tensor(labels))
    (tgx,) = torch.autograd.grad(tloss, [xt], create_graph=True)
    tpenalty = (tgx * tgx).sum()
    tpenalty.backward()

    np.testing.assert_allclose(penalty.item(), tpenalty.item(), rtol=1e-10)
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        got = ours_params[name].grad.numpy()
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
