"""One random graph: a few leaves, then ops drawn over the kinds (weighted so that every
public primitive shows up often) until the graph has the nodes it was asked for."""

from __future__ import annotations

import numpy as np

from .draw import DRAWERS
from .draw_movement import MOVEMENT_DRAWERS
from .draw_nn import NN_DRAWERS
from .draw_rearrange import REARRANGE_DRAWERS
from .graphs import Builder, Graph, Leaf

ALL_DRAWERS = {**DRAWERS, **MOVEMENT_DRAWERS, **REARRANGE_DRAWERS, **NN_DRAWERS}
# reduce, max, join… each cover several public functions: drawn more often.
WEIGHTS = {
    "reduce": 4.0,
    "max": 2.0,
    "maximum": 2.0,
    "softmax": 1.5,
    "join": 1.5,
    "triangle": 1.5,
    "repeat": 1.5,
    "pool1d": 2.0,
    "pad": 1.5,
    "interpolate": 1.5,
}
DTYPE_MODES: list[tuple[str, ...]] = [
    ("float64",),
    ("float64",),
    ("float32",),
    ("float32", "float64"),
]


def generate(seed: int, n_ops: int, avoid_known: bool = True) -> Graph:
    """The graph of ``seed``: about ``n_ops`` nodes over float64, float32 or mixed leaves.

    Most all-float64 graphs also check second-order gradients; they draw no casts, so that
    they stay in float64 (where the 1e-10 tolerance applies) throughout.
    """
    rng = np.random.default_rng(seed)
    dtypes = DTYPE_MODES[int(rng.integers(len(DTYPE_MODES)))]
    second = dtypes == ("float64",) and bool(rng.random() < 0.7)
    kinds = sorted(k for k in ALL_DRAWERS if not (second and k == "cast"))
    p = np.array([WEIGHTS.get(k, 1.0) for k in kinds])
    b = Builder(rng, dtypes, avoid_known=avoid_known)
    for _ in range(int(rng.integers(1, 3))):
        domain = ["real", "real", "positive", "ties"][int(rng.integers(4))]
        b.leaf(b.random_shape(), domain=domain)
    for _ in range(n_ops * 4):
        if sum(not isinstance(s, Leaf) for s in b.steps) >= n_ops:
            break
        ALL_DRAWERS[kinds[int(rng.choice(len(kinds), p=p / p.sum()))]](b)
    # The loss sees every value nothing else consumed, and a few others.
    sinks = {i for i, v in enumerate(b.values) if v.needs_grad and i not in b.used}
    extra = {i for i, v in enumerate(b.values) if v.needs_grad and rng.random() < 0.2}
    return Graph(b.steps, sorted(sinks | extra), seed, second_order=second)
