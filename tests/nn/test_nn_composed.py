"""Each fused Function of ``chainrule.nn`` against the same computation composed from
core ops: same values, same gradients (float64, random upstream gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.random import Generator

RNG = np.random.default_rng(11)


def t(array: Any) -> cr.Tensor:
    return cr.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def uses_nn_function(y: cr.Tensor) -> bool:
    """Whether the graph behind ``y`` contains a Function defined in chainrule.nn."""
    stack, seen = [y.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or isinstance(node, cr.Tensor):
            continue
        seen.add(id(node))
        if type(node).__module__.startswith("chainrule.nn"):
            return True
        stack.extend(n for n, _ in node.next_functions)
    return False


def compare(fused: Callable[..., Any], composed: Callable[..., Any], *arrays: Any) -> None:
    a = [t(x) for x in arrays]
    b = [t(x) for x in arrays]
    ya, yb = fused(*a), composed(*b)
    assert uses_nn_function(ya) and not uses_nn_function(yb)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = RNG.standard_normal(ya.shape)
    ya.backward(cr.tensor(g))
    yb.backward(cr.tensor(g))
    for xa, xb in zip(a, b, strict=True):
        np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-10, atol=1e-12)


def core_log_softmax_nll(x: cr.Tensor, labels: np.ndarray, w: np.ndarray | None) -> cr.Tensor:
    logp = cr.log_softmax(x, 1)
    picked = logp[np.arange(len(labels)), labels]
    wt = np.ones(len(labels)) if w is None else w[labels]
    return -(picked * cr.tensor(wt)).sum() / float(wt.sum())


LABELS = np.array([1, 0, 3, 2, 1])
W = np.array([0.2, 1.0, 3.0, 0.7])

CASES: list[tuple[str, Callable[..., Any], Callable[..., Any], list[Any]]] = [
    (
        "linear",
        F.linear,
        lambda x, w, b: x @ w.T + b,
        [RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal(2)],
    ),
    (
        "linear-batched",
        F.linear,
        lambda x, w, b: x @ w.T + b,
        [RNG.standard_normal((2, 4, 3)), RNG.standard_normal((2, 3)), RNG.standard_normal(2)],
    ),
    (
        "dropout",
        lambda x: F.dropout(x, 0.5, True, Generator(1)),
        lambda x: x * cr.tensor((Generator(1).random((4, 5), np.float64) >= 0.5) * 2.0),
        [RNG.standard_normal((4, 5))],
    ),
    (
        "leaky_relu",
        lambda x: F.leaky_relu(x, 0.1),
        lambda x: cr.where(x > 0, x, 0.1 * x),
        [RNG.standard_normal((3, 4))],
    ),
    (
        "elu",
        lambda x: F.elu(x, 0.5),
        lambda x: cr.where(x > 0, x, 0.5 * (cr.exp(cr.minimum(x, cr.zeros_like(x))) - 1)),
        [RNG.standard_normal((3, 4))],
    ),
    ("silu", F.silu, lambda x: x * cr.sigmoid(x), [RNG.standard_normal((3, 4))]),
    (
        "gelu-tanh",
        lambda x: F.gelu(x, "tanh"),
        lambda x: 0.5 * x * (1 + cr.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x * x * x))),
        [RNG.standard_normal((3, 4))],
    ),
    (
        "cross_entropy",
        lambda x: F.cross_entropy(x, LABELS),
        lambda x: core_log_softmax_nll(x, LABELS, None),
        [RNG.standard_normal((5, 4))],
    ),
    (
        "cross_entropy-weight",
        lambda x: F.cross_entropy(x, LABELS, weight=W),
        lambda x: core_log_softmax_nll(x, LABELS, W),
        [RNG.standard_normal((5, 4))],
    ),
    (
        "cross_entropy-smoothing",
        lambda x: F.cross_entropy(x, LABELS, label_smoothing=0.2),
        lambda x: (
            0.8 * core_log_softmax_nll(x, LABELS, None) - 0.2 / 4 * cr.log_softmax(x, 1).sum() / 5
        ),
        [RNG.standard_normal((5, 4))],
    ),
    (
        "nll",
        lambda x: F.nll_loss(x, LABELS),
        lambda x: -x[np.arange(5), LABELS].mean(),
        [RNG.standard_normal((5, 4))],
    ),
    (
        "mse",
        F.mse_loss,
        lambda x, y: ((x - y) * (x - y)).mean(),
        [RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))],
    ),
    (
        "l1",
        F.l1_loss,
        lambda x, y: cr.abs(x - y).mean(),
        [RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))],
    ),
    (
        "huber",
        F.huber_loss,
        lambda x, y: cr.where(
            cr.abs(x - y) <= 1.0, 0.5 * (x - y) * (x - y), cr.abs(x - y) - 0.5
        ).mean(),
        [RNG.standard_normal((3, 4)) * 2, RNG.standard_normal((3, 4))],
    ),
    (
        "bce_with_logits",
        F.binary_cross_entropy_with_logits,
        lambda x, y: ((1 - y) * x + cr.softplus(-x)).mean(),
        [RNG.standard_normal((3, 4)) * 4, RNG.random((3, 4))],
    ),
    (
        "bce",
        F.binary_cross_entropy,
        lambda x, y: -(y * cr.log(x) + (1 - y) * cr.log(1 - x)).mean(),
        [RNG.uniform(0.05, 0.95, (3, 4)), RNG.random((3, 4))],
    ),
]


@pytest.mark.parametrize(("name", "fused", "composed", "arrays"), CASES, ids=[c[0] for c in CASES])
def test_fused_matches_composed(name: str, fused, composed, arrays) -> None:
    compare(fused, composed, *arrays)


def test_fused_linear_records_one_node() -> None:
    x = cr.randn(4, 3, requires_grad=True)
    w = cr.randn(2, 3, requires_grad=True)
    y = F.linear(x, w, cr.randn(2, requires_grad=True))
    assert type(y.grad_fn).__name__ == "LinearFunction"
    assert all(edge[1] == -1 for edge in y.grad_fn.next_functions)  # straight to leaves


def test_fused_cross_entropy_gradient_is_softmax_minus_onehot_over_n() -> None:
    x = RNG.standard_normal((5, 4))
    xc = t(x)
    F.cross_entropy(xc, LABELS).backward()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(5), LABELS] -= 1
    np.testing.assert_allclose(xc.grad.numpy(), p / 5, rtol=1e-12)
