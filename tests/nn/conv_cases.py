"""Gradient-check cases (float64) for the image layers' Functions, joined to the table of
``nn_cases.py`` so that the coverage test there sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.nn.conv_functions import (
    Conv2dWeightGradFunction,
    ConvGeometry,
    ConvTranspose2dFunction,
)
from chainrule.nn.pool_functions import MaxUnpoolFunction

Case = tuple[str, Callable[..., Any], list[Any]]

# A strided, padded, dilated, grouped geometry: the case that exercises every index.
GEO = ConvGeometry((2, 1), ((1, 1), (1, 1)), (1, 2), 2)
X_SHAPE, W_SHAPE, Y_SHAPE = (2, 4, 5, 6), (4, 2, 3, 2), (2, 4, 3, 6)
UNPOOL_INDEX = np.random.default_rng(7).integers(0, 2 * 3 * 6 * 6, size=(2, 3, 3, 3))


def _leaf(array: Any) -> cr.Tensor:
    return cr.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def conv_cases(rng: np.random.Generator) -> list[Case]:
    def randn(*shape: int) -> cr.Tensor:
        return _leaf(rng.standard_normal(shape))

    distinct = _leaf(rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) * 0.1)
    return [
        (
            "Conv2dFunction",
            lambda x, w, b: F.conv2d(x, w, b, (2, 1), 1, (1, 2), 2),
            [randn(*X_SHAPE), randn(*W_SHAPE), randn(4)],
        ),
        (
            "ConvTranspose2dFunction",
            lambda g, w: ConvTranspose2dFunction.apply(g, w, GEO, X_SHAPE),
            [randn(*Y_SHAPE), randn(*W_SHAPE)],
        ),
        (  # the public layer: strided, padded, output padding, groups, dilation
            "ConvTranspose2dFunction",
            lambda x, w: F.conv_transpose2d(x, w, None, (2, 1), (1, 0), (1, 0), 2, (1, 2)),
            [randn(2, 4, 3, 4), randn(4, 1, 3, 2)],
        ),
        (
            "Conv2dWeightGradFunction",
            lambda x, g: Conv2dWeightGradFunction.apply(x, g, GEO, W_SHAPE),
            [randn(*X_SHAPE), randn(*Y_SHAPE)],
        ),
        ("MaxPool2dFunction", lambda x: F.max_pool2d(x, 3, 2, 1), [distinct]),
        ("MaxPool2dFunction", lambda x: F.max_pool2d(x, 2, 1, dilation=2), [distinct]),
        (
            "MaxUnpoolFunction",
            # Max pooling's input gradient as an op: scatter into (2, 3, 6, 6), with repeats.
            lambda g: MaxUnpoolFunction.apply(g, UNPOOL_INDEX, (2, 3, 6, 6)),
            [randn(2, 3, 3, 3)],
        ),
        (
            "AvgPool2dFunction",
            lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
            [randn(2, 3, 6, 5)],
        ),
        ("AvgPool2dFunction", lambda x: F.avg_pool2d(x, 2), [randn(1, 2, 4, 4)]),
        (
            "AdaptiveAvgPool2dFunction",
            lambda x: F.adaptive_avg_pool2d(x, (4, 3)),
            [randn(2, 2, 7, 5)],
        ),
        (
            "BatchNormFunction",
            lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
            [randn(3, 3, 2, 2), _leaf(rng.uniform(0.5, 1.5, 3)), randn(3)],
        ),
        (
            "BatchNormFunction",
            lambda x: F.batch_norm(x, None, None, training=True),
            [randn(5, 3)],
        ),
        (
            "LayerNormFunction",
            lambda x, w, b: F.layer_norm(x, (3, 2), w, b),
            [randn(2, 4, 3, 2), _leaf(rng.uniform(0.5, 1.5, (3, 2))), randn(3, 2)],
        ),
        ("LayerNormFunction", lambda x: F.layer_norm(x, 5), [randn(3, 5)]),
        ("LayerNormFunction", lambda x, w: F.layer_norm(x, 4, w), [randn(4), randn(4)]),
    ]


def second_order_specs() -> list[tuple[str, Callable[..., Any]]]:
    """(name, builder) pairs for ``test_nn_second_order.py``'s table: each builder takes
    (rng, n, c, d) (rows, channels, a spatial size) and returns (function, inputs).
    """

    def conv_plain(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c, d + 2, d + 2)))
        w = _leaf(r.standard_normal((3, c, 3, 3)))
        return (lambda x, w, b: F.conv2d(x, w, b, padding=1)), [x, w, _leaf(r.standard_normal(3))]

    def transpose(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        shape = (n, c, d + 2, d + 2)
        geo = ConvGeometry((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
        g, w = (
            _leaf(r.standard_normal((n, 2, d + 2, d + 2))),
            _leaf(r.standard_normal((2, c, 3, 3))),
        )
        return (lambda g, w: ConvTranspose2dFunction.apply(g, w, geo, shape)), [g, w]

    def transpose_layer(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c, d + 1, d)))
        w = _leaf(r.standard_normal((c, 2, 3, 3)))
        return (lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1)), [x, w]

    def weight_grad(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        geo = ConvGeometry((2, 2), ((0, 0), (0, 0)), (1, 1), 1)
        x = _leaf(r.standard_normal((n, c, 2 * d + 1, 2 * d + 1)))
        g = _leaf(r.standard_normal((n, 2, d, d)))
        return (lambda x, g: Conv2dWeightGradFunction.apply(x, g, geo, (2, c, 3, 3))), [x, g]

    def max_pool(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        size = n * c * (2 * d + 1) ** 2
        x = _leaf(r.permutation(size).reshape(n, c, 2 * d + 1, 2 * d + 1) * 0.1)
        return (lambda x: F.max_pool2d(x, 3, 2, 1)), [x]

    def unpool(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        shape = (n, c, d + 1, d + 1)
        index = r.integers(0, int(np.prod(shape)), size=(n, c, d, d))
        return (lambda g: MaxUnpoolFunction.apply(g, index, shape)), [
            _leaf(r.standard_normal((n, c, d, d)))
        ]

    def avg_pool(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c, d + 2, d + 3)))
        return (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)), [x]

    def adaptive(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c, d + 4, d + 2)))
        return (lambda x: F.adaptive_avg_pool2d(x, (3, 2))), [x]

    def batch_norm(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n + 1, c, d, d + 1)))
        w, b = _leaf(r.uniform(0.5, 1.5, c)), _leaf(r.standard_normal(c))
        return (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)), [x, w, b]

    def batch_norm_1d(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n + 2, c)))
        return (lambda x: F.batch_norm(x, None, None, training=True)), [x]

    def layer_norm(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c, d + 1)))
        w, b = _leaf(r.uniform(0.5, 1.5, (c, d + 1))), _leaf(r.standard_normal((c, d + 1)))
        return (lambda x, w, b: F.layer_norm(x, (c, d + 1), w, b)), [x, w, b]

    def layer_norm_plain(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
        x = _leaf(r.standard_normal((n, c + 1)))
        return (lambda x: F.layer_norm(x, c + 1)), [x]

    return [
        ("Conv2dFunction", conv_plain),
        ("ConvTranspose2dFunction", transpose),
        ("ConvTranspose2dFunction", transpose_layer),
        ("Conv2dWeightGradFunction", weight_grad),
        ("MaxPool2dFunction", max_pool),
        ("MaxUnpoolFunction", unpool),
        ("AvgPool2dFunction", avg_pool),
        ("AdaptiveAvgPool2dFunction", adaptive),
        ("BatchNormFunction", batch_norm),
        ("BatchNormFunction", batch_norm_1d),
        ("LayerNormFunction", layer_norm),
        ("LayerNormFunction", layer_norm_plain),
    ]
