"""``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells against PyTorch: the same
state_dict gives the same outputs, final states and gradients (inputs, initial states,
every parameter) in float32 and float64, over layers, directions, layouts, biases,
dropout in evaluation and one-sequence inputs; plus second order and the errors. And the
plain RNN's whole-sequence node, ``RNNLayerFunction``: one node per layer and direction,
gradcheck and gradgradcheck for tanh and relu, inputs that need no gradient, and tanh's
slope in float32's tails."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck
from chainrule.nn.rnn_functions import RNNLayerFunction

torch = pytest.importorskip("torch")

TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}
TDTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _close(a: Any, b: Any, dtype: Any, what: str) -> None:
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), err_msg=what, **TOL[dtype])


def _twin(ours: nn.Module, theirs: Any, dtype: Any) -> Any:
    theirs.to(TDTYPE[dtype])
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return theirs


def _flat(state: Any) -> list[Any]:
    return list(state) if isinstance(state, tuple) else [state]


LAYERS = {
    "rnn": (nn.RNN, torch.nn.RNN, {}),
    "rnn-relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}
SETTINGS = {
    "one-layer": ({}, (6, 3, 4)),
    "two-layers-bidirectional": ({"num_layers": 2, "bidirectional": True}, (5, 2, 4)),
    "batch-first-no-bias": ({"batch_first": True, "bias": False}, (3, 6, 4)),
    "one-sequence": ({"num_layers": 2}, (7, 4)),
    "dropout-in-eval": ({"num_layers": 2, "dropout": 0.5}, (4, 2, 4)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_matches_torch(kind: str, setting: str, dtype: Any) -> None:
    ours_cls, theirs_cls, base = LAYERS[kind]
    options, shape = SETTINGS[setting]
    cr.manual_seed(0)
    ours = ours_cls(4, 5, **base, **options, dtype=dtype)
    theirs = _twin(ours, theirs_cls(4, 5, **base, **options), dtype)
    if "dropout" in options:
        ours.eval()
        theirs.eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    directions = 2 if options.get("bidirectional") else 1
    batch = () if len(shape) == 2 else (shape[0] if options.get("batch_first") else shape[1],)
    state_shape = (options.get("num_layers", 1) * directions, *batch, 5)
    states = [
        rng.standard_normal(state_shape).astype(dtype) for _ in range(2 if kind == "lstm" else 1)
    ]
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hc = [cr.tensor(s, requires_grad=True) for s in states]
    ht = [torch.tensor(s, requires_grad=True) for s in states]
    out, state = ours(xc, tuple(hc) if kind == "lstm" else hc[0])
    t_out, t_state = theirs(xt, tuple(ht) if kind == "lstm" else ht[0])
    _close(out, t_out, dtype, "output")
    for a, b in zip(_flat(state), _flat(t_state), strict=True):
        _close(a, b, dtype, "final state")
    g = rng.standard_normal(out.shape).astype(dtype)
    loss = (out * cr.tensor(g)).sum() + sum((s * s).sum() for s in _flat(state))
    t_loss = (t_out * torch.tensor(g)).sum() + sum((s * s).sum() for s in _flat(t_state))
    loss.backward()
    t_loss.backward()
    _close(xc.grad, xt.grad, dtype, "d input")
    for a, b in zip(hc, ht, strict=True):
        _close(a.grad, b.grad, dtype, "d initial state")
    theirs_params = dict(theirs.named_parameters())
    assert sorted(theirs_params) == sorted(name for name, _ in ours.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, theirs_params[name].grad, dtype, f"d{name}")


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cells_match_torch_batched_and_one_example(kind: str) -> None:
    ours_cls = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    theirs_cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    ours = ours_cls(3, 4, dtype=np.float64)
    theirs = _twin(ours, theirs_cls(3, 4), np.float64)
    rng = np.random.default_rng(2)
    for shape in ((5, 3), (3,)):
        x = rng.standard_normal(shape)
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        # two steps from zeros: the second reads the first's state
        sc, st = ours(xc), theirs(xt)
        sc, st = ours(xc, sc), theirs(xt, st)
        for a, b in zip(_flat(sc), _flat(st), strict=True):
            _close(a, b, np.float64, "cell state")
        sum((s * s).sum() for s in _flat(sc)).backward()
        sum((s * s).sum() for s in _flat(st)).backward()
        _close(xc.grad, xt.grad, np.float64, "d input")


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_second_order_through_time_matches_torch(kind: str) -> None:
    # Both directions: the reverse one rebuilds its states from the end.
    ours_cls, theirs_cls, base = LAYERS[kind]
    ours = ours_cls(2, 3, **base, bidirectional=True, dtype=np.float64)
    theirs = _twin(ours, theirs_cls(2, 3, **base, bidirectional=True), np.float64)
    x = np.random.default_rng(3).standard_normal((4, 2, 2))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gc,) = cr.autograd.grad(ours(xc)[0].sum(), [xc], create_graph=True)
    (gt,) = torch.autograd.grad(theirs(xt)[0].sum(), [xt], create_graph=True)
    (gc * gc).sum().backward()
    (gt * gt).sum().backward()
    # A relu RNN's d out/dx does not depend on x (relu'' = 0): chainrule's graph has no path
    # back to x, so x.grad stays None where PyTorch's holds zeros.
    d2x = xc.grad if xc.grad is not None else cr.zeros(x.shape, dtype=np.float64)
    _close(d2x, xt.grad, np.float64, "second order d input")
    theirs_params = dict(theirs.named_parameters())
    for name in ("weight_hh_l0", "weight_hh_l0_reverse"):
        _close(getattr(ours, name).grad, theirs_params[name].grad, np.float64, f"2nd order d{name}")


def test_dropout_between_layers_in_training() -> None:
    cr.manual_seed(4)
    model = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = cr.randn(5, 2, 3)
    a, _ = model(x)
    b, _ = model(x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())  # masks drawn each call
    model.eval()
    c, _ = model(x)
    d, _ = model(x)
    np.testing.assert_array_equal(c.detach().numpy(), d.detach().numpy())


def test_init_and_errors() -> None:
    m = nn.LSTM(3, 16)
    bound = 1 / np.sqrt(16)
    for p in m.parameters():
        v = p.detach().numpy()
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.8 * bound
    with pytest.raises(cr.ShapeError, match=r"expected input \(T, N, I\) or \(T, I\) with I = 3"):
        m(cr.randn(5, 2, 4))
    with pytest.raises(cr.ShapeError, match=r"expected h0 of shape \(1, 2, 16\)"):
        m(cr.randn(5, 2, 3), (cr.randn(1, 3, 16), cr.randn(1, 3, 16)))
    with pytest.raises(TypeError, match=r"hx must be a pair \(h0, c0\)"):
        m(cr.randn(5, 2, 3), cr.randn(1, 2, 16))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="GRUCell: input_size and hidden_size must be positive"):
        nn.GRUCell(0, 4)
    with pytest.raises(ValueError, match="LSTM: input_size, hidden_size and num_layers"):
        nn.LSTM(3, 4, num_layers=0)


def _function_counts(*outputs: cr.Tensor) -> Counter[str]:
    """How many nodes of each Function the graph behind ``outputs`` holds."""
    counts: Counter[str] = Counter()
    seen: set[int] = set()
    stack = [o.grad_fn for o in outputs]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        counts[type(node).__name__] += 1
        stack += [n for n, index in node.next_functions if n is not None and index != -1]
    return counts


LAYER_FUNCTION = {
    "rnn": "RNNLayerFunction",
    "rnn-relu": "RNNLayerFunction",
    "lstm": "LSTMLayerFunction",
    "gru": "GRULayerFunction",
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_is_one_node_per_layer_and_direction(kind: str) -> None:
    ours_cls, _, base = LAYERS[kind]
    model = ours_cls(4, 5, **base, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(6)
    counts = []
    for steps in (3, 9):
        x = cr.tensor(rng.standard_normal((steps, 2, 4)), requires_grad=True)
        out, state = model(x)
        counts.append(_function_counts(out, *_flat(state)))
    # 2 layers x 2 directions, and a graph whose size does not grow with the sequence: the
    # steps (and their tanh, relu or sigmoid) are inside the four nodes.
    assert counts[0][LAYER_FUNCTION[kind]] == 4
    assert counts[0] == counts[1]
    assert not counts[0].keys() & {"Tanh", "ReLU", "Sigmoid", "LSTMCellFunction"}


def _leaf(rng: np.random.Generator, *shape: int) -> cr.Tensor:
    return cr.tensor(rng.standard_normal(shape), requires_grad=True)


def _rnn_layer_case(nonlinearity: str, reverse: bool, bias: bool) -> tuple[Any, list[Any]]:
    """RNNLayerFunction over T=4 steps, N=2, H=3, float64, both outputs (out, h_T)."""
    rng = np.random.default_rng(7)
    inputs = [_leaf(rng, 4, 2, 3), _leaf(rng, 2, 3), _leaf(rng, 3, 3)]
    if bias:
        inputs.append(_leaf(rng, 3))

    def fn(x: cr.Tensor, h: cr.Tensor, w: cr.Tensor, b: cr.Tensor | None = None) -> Any:
        return RNNLayerFunction.apply(x, h, w, b, nonlinearity, reverse)

    return fn, inputs


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_layer_function_gradcheck_first_and_second_order(
    nonlinearity: str, reverse: bool, bias: bool
) -> None:
    fn, inputs = _rnn_layer_case(nonlinearity, reverse, bias)
    assert all(type(o.grad_fn).__name__ == "RNNLayerFunction" for o in fn(*inputs))
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    # Also checks backward_graph against backward to first order.
    assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "backward_graph"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_layer_function_inputs_that_need_no_grad(nonlinearity: str, create_graph: bool) -> None:
    # Each input alone requiring a gradient gets the same one as with all four requiring.
    fn, inputs = _rnn_layer_case(nonlinearity, reverse=True, bias=True)
    v = [cr.tensor(np.random.default_rng(8).standard_normal(o.shape)) for o in fn(*inputs)]

    def loss(args: list[cr.Tensor]) -> cr.Tensor:
        out, h_last = fn(*args)
        return (out * v[0]).sum() + (h_last * v[1]).sum()

    full = cr.autograd.grad(loss(inputs), inputs, create_graph=create_graph)
    for i, expected in enumerate(full):
        args = [t if j == i else t.detach() for j, t in enumerate(inputs)]
        (alone,) = cr.autograd.grad(loss(args), [args[i]], create_graph=create_graph)
        np.testing.assert_allclose(alone.detach().numpy(), expected.detach().numpy(), rtol=1e-14)


def test_rnn_tanh_slope_keeps_float32_tails() -> None:
    # P = 12: tanh rounds to 1 in float32, so 1 − h² would give a gradient of exactly 0;
    # sech² 12 = 1.5e-10 comes out to float32 precision.
    x = cr.tensor(np.full((2, 1, 1), 12.0, np.float32), requires_grad=True)
    h0 = cr.tensor(np.zeros((1, 1), np.float32))
    w = cr.tensor(np.zeros((1, 1), np.float32))
    out, _ = RNNLayerFunction.apply(x, h0, w, None, "tanh", False)
    out.sum().backward()
    np.testing.assert_allclose(
        x.grad.numpy(), np.full((2, 1, 1), 1 / np.cosh(12.0) ** 2), rtol=1e-5
    )
