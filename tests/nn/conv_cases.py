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
    ]
