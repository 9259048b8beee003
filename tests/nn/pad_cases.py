"""Gradient-check cases (float64) for padding's Functions, joined to the tables of
``nn_cases.py`` (first order) and ``test_nn_second_order.py`` (second order), so that
their coverage tests see ``PadFunction`` and ``PadGradFunction``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.nn.pad_functions import PadGradFunction

Case = tuple[str, Callable[..., Any], list[Any]]
MODES = ("constant", "reflect", "replicate", "circular")


def _leaf(array: Any) -> cr.Tensor:
    return cr.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def pad_cases(rng: np.random.Generator) -> list[Case]:
    def randn(*shape: int) -> cr.Tensor:
        return _leaf(rng.standard_normal(shape))

    cases: list[Case] = []
    for mode in MODES:
        # Unequal sides on two dims, widths up to the largest each mode allows.
        pads = (4, 1, 3, 2) if mode == "circular" else (3, 1, 2, 0)
        widths = ((0, 0), (0, 0), (pads[2], pads[3]), (pads[0], pads[1]))
        x, g = randn(2, 3, 4), randn(1, 2, 3 + sum(widths[2]), 4 + sum(widths[3]))
        cases += [
            ("PadFunction", lambda x, m=mode, p=pads: F.pad(x, p, m), [x]),
            ("PadGradFunction", lambda g, m=mode, w=widths: PadGradFunction.apply(g, w, m), [g]),
        ]
    cases.append(("PadFunction", lambda x: F.pad(x, (1, -2, 0, 2), value=0.5), [randn(2, 3, 5)]))
    return cases


def pad_second_order_specs() -> list[tuple[str, Callable[..., Any]]]:
    """(name, builder) pairs: each builder takes (rng, n, c, d) and returns (function,
    inputs), as in ``conv_cases.second_order_specs``."""

    def builder(mode: str, transposed: bool) -> Callable[..., Any]:
        def build(r: np.random.Generator, n: int, c: int, d: int) -> tuple[Any, list[Any]]:
            # Widths below the padded dims' sizes (reflect's rule), none of them all zero.
            pads, shape = (d + 1, 1, 1, d), (n, c, d + 2, d + 3)
            if not transposed:
                return (lambda x: F.pad(x, pads, mode)), [_leaf(r.standard_normal(shape))]
            widths = ((0, 0), (0, 0), (1, d), (d + 1, 1))
            padded = (n, c, 2 * d + 3, 2 * d + 5)
            g = _leaf(r.standard_normal(padded))
            return (lambda g: PadGradFunction.apply(g, widths, mode)), [g]

        build.__name__ = f"{'pad_grad' if transposed else 'pad'}_{mode}"
        return build

    return [
        (name, builder(mode, transposed))
        for mode in MODES
        for name, transposed in (("PadFunction", False), ("PadGradFunction", True))
    ]
