"""Spec cases for ``Roll`` and ``Prod``, and for the functions composed of other
primitives (flip, narrow, index_select, repeat, tile, repeat_interleave, tril, triu,
norm): ``op_specs.SPECS`` draws these beside each primitive's own cases, so that the
compositions get the registry's gradcheck, second order, torch parity and device checks.

Each case ends in the primitive whose spec draws it (flip in ``Clone``, tril in
``Where``, repeat in ``Reshape``…): the registry tests check that the output's node is
that primitive (the device tests look at it after a backward has freed the graph, so the
primitive must be the last op).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from op_strategies import Case, dims, rng_from, shapes, values

import chainrule as cr


def _torch_tensor(a: np.ndarray) -> Any:
    """A torch tensor of ``a``: imported when a torch side runs (only the parity tests)."""
    import torch

    return torch.from_numpy(a)


# ------------------------------------------------------------------------ primitives
@st.composite
def roll(draw: Any) -> Case:
    """Shifts of any sign and size (beyond the dim's length too), one dim or several (a
    dim may repeat: its shifts add up), or no dims (x rolled as if flat)."""
    shape = draw(shapes(min_dims=1))
    x = values(rng_from(draw), shape, "real")
    shift = st.integers(-7, 7)
    if draw(st.booleans()):
        s = draw(shift)
        return Case(f"roll{shape} {s}", (x,), lambda t: t.roll(s), lambda t: t.roll(s))
    k = draw(st.integers(1, 3))
    shifts = tuple(draw(shift) for _ in range(k))
    axes = tuple(draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(k))
    return Case(
        f"roll{shape} shifts={shifts} dims={axes}",
        (x,),
        lambda t: cr.roll(t, shifts, axes),
        lambda t: t.roll(shifts, axes),
    )


@st.composite
def prod(draw: Any) -> Case:
    """Products over None, one dim or several, with no zero, one zero or two zeros in x
    (the gradient with zeros is the product of the others, not y / x)."""
    rng = rng_from(draw)
    x = values(rng, draw(shapes()), "real")
    zeros = min(draw(st.sampled_from([0, 0, 1, 2])), x.size)
    x.reshape(-1)[rng.choice(x.size, zeros, replace=False)] = 0.0
    dim, keepdim = draw(dims(x.ndim)), draw(st.booleans())

    def torch_prod(t: Any) -> Any:
        # torch's prod takes one dim at a time: the product over several is a sequence.
        if dim is None:
            out = t.prod()
            return out.reshape((1,) * t.ndim) if keepdim else out
        axes = sorted({d % t.ndim for d in ((dim,) if isinstance(dim, int) else dim)})
        for d in reversed(axes):  # the last first: the others keep their positions
            t = t.prod(d, keepdim=keepdim)
        return t

    return Case(
        f"prod{x.shape} dim={dim} keepdim={keepdim} zeros={zeros}",
        (x,),
        lambda t: t.prod(dim, keepdim=keepdim),
        torch_prod,
    )


# ------------------------------------------------------------ compositions, by primitive
@st.composite
def flip(draw: Any) -> Case:
    """Clone: flip, a slice with step −1 along each flipped dim, then a copy."""
    shape = draw(shapes(min_dims=1))
    x = values(rng_from(draw), shape, "real")
    axes = tuple(draw(st.permutations(range(len(shape))))[: draw(st.integers(1, len(shape)))])
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
    return Case(f"flip{shape} {axes}", (x,), lambda t: t.flip(axes), lambda t: t.flip(axes))


@st.composite
def narrow(draw: Any) -> Case:
    """Slice: narrow, a view of ``length`` elements from ``start`` (negative too)."""
    shape = draw(shapes(min_dims=1))
    x = values(rng_from(draw), shape, "real")
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    start = draw(st.integers(-n, n - 1))
    length = draw(st.integers(1, n - start % n))
    return Case(
        f"narrow{shape} dim={dim} start={start} length={length}",
        (x,),
        lambda t: cr.narrow(t, dim, start, length),
        lambda t: t.narrow(dim, start, length),
    )


@st.composite
def index_select(draw: Any) -> Case:
    """Gather: index_select with repeated indices, and repeat_interleave with one count
    per element (zeros too), both an index along one dim."""
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    x = values(rng, shape, "real")
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    if draw(st.booleans()):
        index = rng.integers(0, n, draw(st.integers(1, 5)))
        index[-1] = index[0]  # a repeat: its gradients add up
        return Case(
            f"index_select{shape} dim={dim} index={index.tolist()}",
            (x,),
            lambda t: t.index_select(dim, cr.tensor(index)),
            lambda t: t.index_select(dim, _torch_tensor(index)),
        )
    assume(n >= 2)  # a single count repeats like an int (expand, not an index)
    counts = rng.integers(0, 3, n)
    assume(counts.sum() > 0)
    return Case(
        f"repeat_interleave{shape} counts={counts.tolist()} dim={dim}",
        (x,),
        lambda t: cr.repeat_interleave(t, cr.tensor(counts), dim),
        lambda t: t.repeat_interleave(_torch_tensor(counts), dim),
    )


@st.composite
def repeat_and_tile(draw: Any) -> Case:
    """Reshape (after expand and one copy): repeat (sizes for every dim, extra leading
    ones), tile (fewer sizes than dims) and repeat_interleave with an int (and without a
    dim: x flattened)."""
    shape = draw(shapes())
    x = values(rng_from(draw), shape, "real")
    kind = draw(st.sampled_from(["repeat", "tile", "repeat_interleave"]))
    size = st.integers(1, 3)
    if kind == "repeat":
        sizes = tuple(draw(size) for _ in range(len(shape) + draw(st.integers(0, 2))))
        assume(sizes)
        return Case(
            f"repeat{shape} {sizes}", (x,), lambda t: t.repeat(*sizes), lambda t: t.repeat(*sizes)
        )
    if kind == "tile":
        reps = tuple(draw(size) for _ in range(draw(st.integers(1, len(shape) + 1))))
        return Case(f"tile{shape} {reps}", (x,), lambda t: cr.tile(t, reps), lambda t: t.tile(reps))
    r = draw(size)
    dim = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    return Case(
        f"repeat_interleave{shape} {r} dim={dim}",
        (x,),
        lambda t: t.repeat_interleave(r, dim),
        lambda t: t.repeat_interleave(r, dim),
    )


@st.composite
def triangle_and_norm(draw: Any) -> Case:
    """Where: tril and triu of (batches of) matrices with diagonals beyond both corners,
    and the p-norms whose roots are masked at 0 (p = 2, and p = 3, 0.5, −1, 1.5)."""
    rng = rng_from(draw)
    if draw(st.booleans()):
        shape = draw(shapes(min_dims=2))
        x = values(rng, shape, "real")
        method = draw(st.sampled_from(["tril", "triu"]))
        k = draw(st.integers(-4, 4))
        return Case(
            f"{method}{shape} diagonal={k}",
            (x,),
            lambda t: getattr(t, method)(k),
            lambda t: getattr(t, method)(k),
        )
    return _norm(draw, rng, draw(st.sampled_from([2, 3.0, 0.5, -1.0, 1.5])))


def norm(p: float) -> Any:
    """The norms made of one reduction: p = 1 (Sum) or ±inf (Amax)."""

    @st.composite
    def cases(draw: Any) -> Case:
        return _norm(draw, rng_from(draw), p)

    return cases()


def _norm(draw: Any, rng: np.random.Generator, p: float) -> Case:
    shape = draw(shapes())
    # |x| in [0.2, 2] (away from the kink of |x| at 0); for ±inf, distinct magnitudes at
    # least 0.3 apart, so that the largest and the smallest are unique.
    x = values(rng, shape, "nonzero")
    if math.isinf(p):
        magnitudes = 0.2 + rng.permutation(x.size) * 0.3 + rng.uniform(0.0, 0.1, x.size)
        x = np.sign(x) * magnitudes.reshape(shape)
    dim, keepdim = draw(dims(x.ndim)), draw(st.booleans())
    return Case(
        f"norm{x.shape} p={p} dim={dim} keepdim={keepdim}",
        (x,),
        lambda t: t.norm(p, dim, keepdim),
        lambda t: t.norm(p, dim, keepdim),
    )
