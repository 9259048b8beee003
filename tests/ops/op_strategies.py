"""Hypothesis building blocks for the primitive spec table (``op_specs.py``).

Values come from a NumPy generator seeded by Hypothesis: Hypothesis picks shapes, dims
and indices (and shrinks them), NumPy fills the arrays quickly within each op's domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_DIMS = 3
MAX_SIDE = 4


@dataclass(frozen=True)
class Case:
    """One way to call a primitive, drawn by a spec's strategy.

    Attributes:
        label: what the case exercises, shown when it fails.
        inputs: float64 values of the differentiable inputs (in ``cr_fn``'s order).
        cr_fn: takes chainrule tensors, returns a chainrule tensor (through the public API).
        torch_fn: the same computation on torch tensors.
        eps: the finite-difference step for gradcheck.
    """

    label: str
    inputs: tuple[np.ndarray, ...]
    cr_fn: Callable[..., Any] = field(repr=False)
    torch_fn: Callable[..., Any] = field(repr=False)
    eps: float = 1e-6


def rng_from(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def values(rng: np.random.Generator, shape: tuple[int, ...], domain: str) -> np.ndarray:
    """Float64 values of ``shape`` in ``domain``.

    Domains: ``real`` (standard normal), ``positive`` (in [0.5, 2], for log, sqrt, pow
    bases and divisors), ``nonzero`` (|x| in [0.2, 2], away from the kink of abs and relu),
    ``distinct`` (any two values at least 0.3 apart, so max/min have no ties and finite
    differences never cross one).
    """
    if domain == "real":
        return rng.standard_normal(shape)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    if domain == "distinct":
        n = int(np.prod(shape))
        spread = rng.permutation(n) * 0.4 + rng.uniform(0.0, 0.1, n)
        return (spread - spread.mean()).reshape(shape)
    raise ValueError(f"unknown domain {domain!r}")


def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1) -> Any:
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=MAX_SIDE
    )


def broadcast_shapes(n: int) -> Any:
    """``n`` shapes that broadcast together: (3, 1) with (4,), (2, 3, 4) with (3, 1)…"""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=0, max_dims=MAX_DIMS, min_side=1, max_side=MAX_SIDE
    )


@st.composite
def dims(draw: Any, ndim: int) -> Any:
    """A reduction ``dim``: None, an int (negative allowed) or a tuple of distinct ints."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in chosen)


def torch_dims(dim: Any, ndim: int) -> Any:
    """torch's spelling of ``dim``: None means every dim, given explicitly."""
    return tuple(range(ndim)) if dim is None else dim


@st.composite
def basic_index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A basic index for ``shape``: ints, slices (negative steps too), None and Ellipsis,
    never selecting an empty result."""
    items: list[Any] = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "full":
            items.append(slice(None))
        else:
            step = draw(st.sampled_from([-2, -1, 1, 2, None]))
            start = draw(st.one_of(st.none(), st.integers(-n, n - 1)))
            stop = draw(st.one_of(st.none(), st.integers(-n - 1, n)))
            s = slice(start, stop, step)
            assume(len(range(*s.indices(n))) > 0)
            items.append(s)
    if items and draw(st.booleans()):
        # Drop trailing items, or replace leading ones with an Ellipsis.
        cut = draw(st.integers(0, len(items) - 1))
        items = [Ellipsis, *items[cut + 1 :]] if draw(st.booleans()) else items[:cut]
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    return tuple(items)


def torch_basic_index(t: Any, index: tuple[Any, ...]) -> Any:
    """``t[index]`` for torch, which refuses negative slice steps: one dim at a time, with
    ``index_select`` for the slices (whose backward scatters, as a slice's should)."""
    import torch

    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (t.ndim - n_real))
        else:
            expanded.append(item)
    if not any(item is Ellipsis for item in index):
        expanded.extend([slice(None)] * (t.ndim - n_real))
    out, axis = t, 0
    for item in expanded:
        if item is None:
            out = out.unsqueeze(axis)
            axis += 1
        elif isinstance(item, int):
            out = out.select(axis, item)
        else:
            picked = np.arange(out.shape[axis])[item]
            out = out.index_select(axis, torch.tensor(picked.copy()))
            axis += 1
    return out
