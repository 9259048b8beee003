"""Gradient-check cases for every Function defined in ``chainrule.nn``.

Each case maps a Function's name to builders of (function, inputs) in float64; the
coverage test in ``test_nn_gradcheck.py`` fails when a Function has no case here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from conv_cases import conv_cases
from pad_cases import pad_cases

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.nn.fused import NormalCDFFunction
from chainrule.nn.rnn_functions import (
    GRULayerFunction,
    LSTMCellFunction,
    LSTMLayerFunction,
    RNNLayerFunction,
)
from chainrule.random import Generator

Case = tuple[str, Callable[..., Any], list[Any]]


def leaf(array: Any) -> cr.Tensor:
    return cr.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def randn(rng: np.random.Generator, *shape: int) -> cr.Tensor:
    return leaf(rng.standard_normal(shape))


def away_from(
    rng: np.random.Generator, shape: tuple[int, ...], kink: float = 0.0, gap: float = 0.1
) -> cr.Tensor:
    """Values at least ``gap`` away from ``kink``, where the function is smooth."""
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x - kink) < gap, kink + np.sign(x - kink + 1e-12) * (gap + 0.2), x)
    return leaf(x)


def distinct(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> list[cr.Tensor]:
    """``n`` tensors with no two equal elements (no ties for max), spaced by ≥ 0.1."""
    size = int(np.prod(shape))
    values = rng.permutation(n * size).reshape(n, *shape) * 0.1
    return [leaf(v) for v in values]


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    labels = cr.tensor(np.array([0, 2, 1, 3, 2]))
    with_ignored = cr.tensor(np.array([0, -100, 1, 3, 2]))
    class_w = np.array([0.5, 1.0, 2.0, 1.5])
    out: list[Case] = [
        ("LinearFunction", F.linear, [randn(rng, 3, 4), randn(rng, 5, 4), randn(rng, 5)]),
        ("LinearFunction", F.linear, [randn(rng, 2, 3, 4), randn(rng, 2, 4), None]),
        ("LinearFunction", F.linear, [randn(rng, 4), randn(rng, 3, 4), randn(rng, 3)]),
        ("DropoutFunction", lambda x: F.dropout(x, 0.4, True, Generator(3)), [randn(rng, 4, 5)]),
        ("LeakyReLUFunction", lambda x: F.leaky_relu(x, 0.1), [away_from(rng, (3, 4))]),
        ("ELUFunction", lambda x: F.elu(x, 1.3), [away_from(rng, (3, 4))]),
        ("SiLUFunction", F.silu, [randn(rng, 3, 4)]),
        ("GELUFunction", F.gelu, [randn(rng, 3, 4)]),
        ("NormalCDFFunction", NormalCDFFunction.apply, [randn(rng, 3, 4)]),
        ("GELUFunction", lambda x: F.gelu(x, "tanh"), [randn(rng, 3, 4)]),
        ("CrossEntropyFunction", lambda x: F.cross_entropy(x, labels), [randn(rng, 5, 4)]),
        (
            "CrossEntropyFunction",
            lambda x: F.cross_entropy(x, with_ignored, weight=class_w, label_smoothing=0.2),
            [randn(rng, 5, 4)],
        ),
        (
            "CrossEntropyFunction",
            lambda x: F.cross_entropy(x, with_ignored, reduction="none", label_smoothing=0.1),
            [randn(rng, 5, 4)],
        ),
        (
            "CrossEntropyFunction",
            lambda x: F.cross_entropy(x, labels, weight=class_w, reduction="sum"),
            [randn(rng, 5, 4)],
        ),
        (
            "CrossEntropyFunction",
            lambda x: F.cross_entropy(x, cr.tensor(np.array([[0, 2], [1, 1]]))),
            [randn(rng, 2, 3, 2)],
        ),
        (
            "CrossEntropyFunction",
            lambda x: F.cross_entropy(x, cr.tensor(np.array(2))),
            [randn(rng, 3)],
        ),
        (
            "SoftCrossEntropyFunction",
            lambda x, q: F.cross_entropy(x, q, weight=class_w, label_smoothing=0.1),
            [randn(rng, 3, 4), leaf(rng.dirichlet(np.ones(4), size=3))],
        ),
        (
            "SoftCrossEntropyFunction",
            lambda x, q: F.cross_entropy(x, q, reduction="none"),
            [randn(rng, 3, 4), leaf(rng.dirichlet(np.ones(4), size=3))],
        ),
        ("NLLFunction", lambda x: F.nll_loss(x, with_ignored, weight=class_w), [randn(rng, 5, 4)]),
        ("NLLFunction", lambda x: F.nll_loss(x, labels, reduction="none"), [randn(rng, 5, 4)]),
        ("MSEFunction", F.mse_loss, [randn(rng, 3, 4), randn(rng, 3, 4)]),
        (
            "MSEFunction",
            lambda x, y: F.mse_loss(x, y, "none"),
            [randn(rng, 3, 4), randn(rng, 3, 4)],
        ),
        (
            "L1Function",
            lambda x: F.l1_loss(x, cr.zeros(3, 4, dtype=cr.float64), "sum"),
            [away_from(rng, (3, 4))],
        ),
        (
            "HuberFunction",
            lambda x: F.huber_loss(x, cr.zeros(6, dtype=cr.float64), delta=0.7),
            [leaf([-2.0, -0.5, -0.1, 0.3, 0.6, 1.5])],
        ),
        (
            "BCEWithLogitsFunction",
            lambda x, y: F.binary_cross_entropy_with_logits(
                x, y, weight=np.array([1.0, 2.0, 0.5]), pos_weight=np.array([2.0, 0.5, 1.0])
            ),
            [randn(rng, 4, 3), leaf(rng.random((4, 3)))],
        ),
        (
            "BCEWithLogitsFunction",
            lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
            [randn(rng, 4, 3), leaf(rng.random((4, 3)))],
        ),
        (
            "BCEFunction",
            lambda x, y: F.binary_cross_entropy(x, y, weight=np.array([1.0, 3.0])),
            [leaf(rng.uniform(0.1, 0.9, (3, 2))), leaf(rng.random((3, 2)))],
        ),
        (  # one LSTM step, both outputs (h', c'); gates on either side of 0
            "LSTMCellFunction",
            LSTMCellFunction.apply,
            [randn(rng, 3, 8), randn(rng, 3, 2), randn(rng, 3, 2), randn(rng, 8, 2), randn(rng, 8)],
        ),
        (
            "LSTMCellFunction",
            lambda x, h, c, w: LSTMCellFunction.apply(x, h, c, w, None),
            [randn(rng, 1, 4), randn(rng, 1, 1), randn(rng, 1, 1), randn(rng, 4, 1)],
        ),
        (  # a whole sequence in one node: out, h_T, c_T
            "LSTMLayerFunction",
            lambda x, h, c, w, b: LSTMLayerFunction.apply(x, h, c, w, b, False),
            [
                randn(rng, 3, 2, 8),
                randn(rng, 2, 2),
                randn(rng, 2, 2),
                randn(rng, 8, 2),
                randn(rng, 8),
            ],
        ),
        (
            "LSTMLayerFunction",
            lambda x, h, c, w: LSTMLayerFunction.apply(x, h, c, w, None, True),
            [randn(rng, 4, 1, 4), randn(rng, 1, 1), randn(rng, 1, 1), randn(rng, 4, 1)],
        ),
        (
            "GRULayerFunction",
            lambda x, h, w, b: GRULayerFunction.apply(x, h, w, b, False),
            [randn(rng, 3, 2, 6), randn(rng, 2, 2), randn(rng, 6, 2), randn(rng, 6)],
        ),
        (
            "GRULayerFunction",
            lambda x, h, w: GRULayerFunction.apply(x, h, w, None, True),
            [randn(rng, 4, 1, 3), randn(rng, 1, 1), randn(rng, 3, 1)],
        ),
        (
            "RNNLayerFunction",
            lambda x, h, w, b: RNNLayerFunction.apply(x, h, w, b, "tanh", False),
            [randn(rng, 3, 2, 2), randn(rng, 2, 2), randn(rng, 2, 2), randn(rng, 2)],
        ),
        (
            "RNNLayerFunction",
            lambda x, h, w: RNNLayerFunction.apply(x, h, w, None, "relu", True),
            [randn(rng, 4, 2, 3), randn(rng, 2, 3), randn(rng, 3, 3)],
        ),
    ]
    out += conv_cases(rng)  # the image layers (tests/nn/conv_cases.py)
    out += pad_cases(rng)  # padding (tests/nn/pad_cases.py)
    return out
