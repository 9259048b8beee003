"""Drawing the functions of ``nn.functional`` that take (N, C, *spatial) inputs: ``pad``
(constant, reflect, replicate, circular), ``interpolate`` (nearest, linear, bilinear, with
and without ``align_corners``, by size or by scale) and ``max_pool1d``/``avg_pool1d``.

Their inputs need 2 to 4 dims: a value that has them, a reshape of another value (so the
function sits inside a graph, gradients flowing through it both ways), or a new leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graphs import MAX_NUMEL, Builder


def _choice(b: Builder, options: list[Any]) -> Any:
    return options[int(b.rng.integers(len(options)))]


def _fit(shape: tuple[int, ...], nd: int) -> tuple[int, ...]:
    """``shape`` as ``nd`` dims: leading 1s added, or the leading dims merged."""
    if len(shape) <= nd:
        return (1,) * (nd - len(shape)) + shape
    cut = len(shape) - nd + 1
    return (int(np.prod(shape[:cut])), *shape[cut:])


def _spatial(b: Builder, ndims: tuple[int, ...]) -> int | None:
    """A value with one of ``ndims`` dims: one already there, another reshaped, or a leaf
    (spatial sizes from 1 to 5)."""
    found = b.pick(lambda v: len(v.shape) in ndims) if b.rng.random() < 0.6 else None
    if found is not None:
        return found
    nd = int(_choice(b, list(ndims)))
    if b.rng.random() < 0.5:
        a = b.pick()
        if a is None:
            return None
        return b.add("reshape", (a,), exact=True, how="reshape", arg=_fit(b.values[a].shape, nd))
    lead = [int(b.rng.integers(1, 3)) for _ in range(nd - 1)]
    shape = (*lead, int(b.rng.integers(1, 6)))
    if nd == 4:
        shape = (1, lead[1], int(b.rng.integers(1, 5)), shape[-1])
    return b.leaf(shape)


def draw_pad(b: Builder) -> None:
    """Constant padding (any tensor; a fill value; negative widths crop) or reflect
    (widths < size), replicate, circular (widths ≤ size) of the last 1–3 dims of a
    (C, *spatial) or (N, C, *spatial) input."""
    mode = _choice(b, ["constant", "constant", "reflect", "replicate", "circular"])
    constant = mode == "constant"
    a = b.pick(lambda v: len(v.shape) >= 1) if constant else _spatial(b, (2, 3, 4))
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    if mode == "constant":
        k = int(b.rng.integers(1, min(nd, 3) + 1))
    else:
        k = int(_choice(b, [k for k in (1, 2, 3) if nd - 2 <= k <= nd - 1]))
    widths: list[int] = []
    for i in range(k):
        n = shape[nd - 1 - i]
        limit = {"constant": 2, "reflect": min(n - 1, 2), "replicate": 2, "circular": min(n, 2)}
        for _ in range(2):
            w = int(b.rng.integers(0, limit[mode] + 1))
            if mode == "constant" and n >= 3 and b.rng.random() < 0.15:
                w = -1  # crops
            widths.append(w)
    value = _choice(b, [None, 0.0, 1.5, -0.5]) if mode == "constant" else None
    b.add(
        "pad",
        (a,),
        exact=True,
        pad=tuple(widths),
        mode=mode,
        value=value,
        implicit=bool(b.rng.random() < 0.5),
        as_tuple=bool(b.rng.random() < 0.7),
    )


SCALES = [2.0, 2, 3, 1.5, 0.5, 0.75, 1.7, 1.0]


def draw_interpolate(b: Builder) -> None:
    mode = _choice(b, ["nearest", "nearest", "linear", "bilinear"])
    ndims = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}[mode]
    a = _spatial(b, ndims)
    if a is None:
        return
    shape = b.values[a].shape
    spatial = shape[2:]
    budget = MAX_NUMEL // int(np.prod(shape[:2]))
    size: Any = None
    scale: Any = None
    if b.rng.random() < 0.5:
        size = [int(b.rng.integers(1, 7)) for _ in spatial]
        if len(size) == 1 or b.rng.random() < 0.3:
            size = size[0] if b.rng.random() < 0.5 else [size[0]] * len(spatial)
        out = [size] * len(spatial) if isinstance(size, int) else size
    else:
        factors = [_choice(b, SCALES) for _ in spatial]
        scale = factors[0] if b.rng.random() < 0.5 else tuple(factors)
        each = [scale] * len(spatial) if not isinstance(scale, tuple) else list(scale)
        out = [int(np.floor(n * s)) for n, s in zip(spatial, each)]
    if min(out) < 1 or int(np.prod(out)) > budget:
        return
    align = None if mode == "nearest" else _choice(b, [None, True, False])
    recompute = scale is not None and bool(b.rng.random() < 0.2)
    b.add(
        "interpolate",
        (a,),
        exact=mode == "nearest",
        mode=mode,
        size=size,
        scale_factor=scale,
        align_corners=align,
        recompute=recompute,
    )


def _window_gap(golden: np.ndarray, k: int, s: int, p: int, d: int, n_out: int) -> np.ndarray:
    """The gap between the largest and second largest value of each max_pool1d window
    (the −∞ padding left out)."""
    padded = np.pad(golden, [(0, 0)] * (golden.ndim - 1) + [(p, p)], constant_values=-np.inf)
    starts = np.arange(n_out)[:, None] * s + np.arange(k)[None, :] * d
    windows = np.sort(padded[..., starts], axis=-1)  # (..., n_out, k)
    if k < 2:
        return np.full(1, np.inf)
    with np.errstate(invalid="ignore"):  # −∞ − −∞: a window of padding and one value
        gap = windows[..., -1] - windows[..., -2]
    return np.where(np.isfinite(gap), gap, np.inf)


def draw_pool1d(b: Builder) -> None:
    """max_pool1d (dilation, −∞ padding, overlapping windows; kept away from near-ties in
    a window, exact ties allowed) or avg_pool1d (with and without ``count_include_pad``)
    of an (N, C, L) or (C, L) input."""
    a = _spatial(b, (2, 3))
    if a is None:
        return
    v = b.values[a]
    n = v.shape[-1]
    name = _choice(b, ["max_pool1d", "avg_pool1d"])
    k = int(b.rng.integers(1, 4))
    p = int(b.rng.integers(0, k // 2 + 1))
    stride = _choice(b, [None, 1, 2, 3])
    d = int(_choice(b, [1, 1, 2])) if name == "max_pool1d" else 1
    s = k if stride is None else stride
    n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    if n_out < 1:
        return
    exact = name == "max_pool1d"
    if exact and not b.gap_ok(_window_gap(v.golden, k, s, p, d, n_out), v.exact):
        return
    b.add(
        "pool1d",
        (a,),
        exact=exact,
        name=name,
        kernel=k,
        stride=stride,
        padding=p,
        dilation=d,
        indices=bool(b.rng.random() < 0.2),
        count_include_pad=bool(b.rng.random() < 0.6),
    )


NN_DRAWERS: dict[str, Callable[[Builder], None]] = {
    "pad": draw_pad,
    "interpolate": draw_interpolate,
    "pool1d": draw_pool1d,
}
