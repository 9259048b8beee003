"""Ops that move, select or combine elements without arithmetic. Their VJPs move the
gradient back to where each element came from.
"""

from __future__ import annotations

import itertools
from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.inplace import index_on_device

_host_xp = backend.xp  # NumPy: an index for CPU data needs no moving


class Reshape(Function):
    """y = x with a new shape (a view when possible).   VJP: dx = g reshaped back."""

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.reshape(ctx.shape), None

    backward_graph = backward  # Tensor.reshape is the differentiable reshape


class Permute(Function):
    """y = x with its axes reordered (a view).   VJP: dx = g with the inverse order."""

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...]) -> Any:
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.transpose(inverse_permutation(ctx.axes)), None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        return Permute.apply(g, inverse_permutation(ctx.axes)), None


def inverse_permutation(axes: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``axes``."""
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a] = i
    return tuple(inverse)


class Expand(Function):
    """y = x broadcast to ``shape`` (a read-only view).

    VJP: dx = g summed over the broadcast axes, which the engine's un-broadcast does.
    """

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, shape: tuple[int, ...]) -> Any:
        return ctx.xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g, None

    backward_graph = backward


class Slice(Function):
    """y = x[index] for basic indexing (ints, slices, None, Ellipsis): a view.

    VJP: dx = zeros with g written at ``index``.
    """

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, index: Any) -> Any:
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        dx = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        dx[ctx.index] = g
        return dx, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        return ScatterAdd.apply(g, ctx.shape, ctx.index), None


class Gather(Function):
    """y = x[index] with integer arrays or boolean masks in the index (a copy).

    VJP: dx = zeros with g added at ``index``; an index repeated k times receives the sum
    of its k gradients (a scatter-add, not assignment, which would keep only one).
    Host index arrays are moved to the device of GPU data (``index_on_device``).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, index: Any) -> Any:
        if ctx.xp is not _host_xp:
            index = index_on_device(index, x)
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        dx = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        backend.scatter_add(dx, ctx.index, g)
        return dx, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        return ScatterAdd.apply(g, ctx.shape, ctx.index), None


class ScatterAdd(Function):
    """y = zeros(shape) with g added at ``index`` (repeated positions accumulate): the VJP
    of indexing, as a primitive so that it can be differentiated in turn.

    VJP: dg = G[index] (indexing again: scatter and gather are each other's transpose).
    """

    @staticmethod
    def forward(ctx: Any, g: Any, shape: tuple[int, ...], index: Any) -> Any:
        if ctx.xp is not _host_xp:
            index = index_on_device(index, g)
        ctx.index = index
        y = ctx.xp.zeros(shape, dtype=g.dtype)
        if is_basic_index(index):
            y[index] = g  # a basic index never repeats a position
        else:
            backend.scatter_add(y, index, g)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple[Any, None, None]:
        return grad[ctx.index], None, None

    @staticmethod
    def backward_graph(ctx: Any, grad: Any) -> tuple[Any, None, None]:
        return _select(grad, ctx.index), None, None


def is_basic_index(index: Any) -> bool:
    """True for NumPy's basic indexing (ints, slices, None, Ellipsis): a view, no repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or (isinstance(i, (int, slice)) and not isinstance(i, bool))
        for i in items
    )


def _select(x: Any, index: Any) -> Any:
    """x[index] on a Tensor, through the primitive that fits the index."""
    return (Slice if is_basic_index(index) else Gather).apply(x, index)


def along_axis(idx: Any, axis: int) -> tuple[Any, ...]:
    """The full index that picks ``idx`` (indices along ``axis``, size 1 there) from each
    line along ``axis``: NumPy's take_along_axis as plain advanced indexing (on ``idx``'s
    device)."""
    xp = backend.get_array_module(idx)
    index = []
    for d, size in enumerate(idx.shape):
        if d == axis:
            index.append(idx)
        else:
            shape = [1] * idx.ndim
            shape[d] = size
            index.append(xp.arange(size).reshape(shape))
    return tuple(index)


Shifts = int | tuple[int, ...]  # one shift per axis, or one for a flat roll


class Roll(Function):
    """y = x shifted cyclically by ``shifts[k]`` along ``axes[k]``: y[(i + s) mod n] = x[i]
    (a copy; an element pushed past the end comes back at the start). With ``axes`` None,
    x is rolled as if flat by the one shift, then given its shape back.

    VJP: dx = g rolled by −shifts. A roll permutes the elements, and the transpose of a
    permutation is its inverse.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, shifts: Shifts, axes: tuple[int, ...] | None) -> Any:
        ctx.shifts, ctx.axes = shifts, axes
        return ctx.xp.roll(x, shifts, axis=axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        return ctx.xp.roll(g, _negated(ctx.shifts), axis=ctx.axes), None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None]:
        return Roll.apply(g, _negated(ctx.shifts), ctx.axes), None, None


def _negated(shifts: Shifts) -> Shifts:
    return -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)


class Cat(Function):
    """y = the inputs joined along ``axis``.   VJP: each input gets its slice of g."""

    @staticmethod
    def forward(ctx: Any, axis: int, *xs: Any) -> Any:
        ctx.axis = axis
        ctx.bounds = list(itertools.accumulate(x.shape[axis] for x in xs))[:-1]
        return ctx.xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        return (None, *ctx.xp.split(g, ctx.bounds, axis=ctx.axis))

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, ...]:
        starts = [0, *(int(b) for b in ctx.bounds)]
        stops = [*(int(b) for b in ctx.bounds), g.shape[ctx.axis]]
        lead = (slice(None),) * ctx.axis
        return (None, *(Slice.apply(g, (*lead, slice(a, b))) for a, b in zip(starts, stops)))


class Split(Function):
    """ys = x cut along ``axis`` at ``bounds`` into pieces (copies: like every op with
    several outputs, its outputs are fresh arrays, so changing one in place cannot
    silently change x under a node that saved it).

    VJP: dx = the pieces' gradients joined along ``axis`` (a piece no one used gets
    zeros): Split and Cat are each other's transpose. One node however many pieces, so
    walking a sequence step by step costs one gradient of x, not one per step.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axis: int, bounds: tuple[int, ...]) -> Any:
        ctx.axis = axis
        return tuple(piece.copy() for piece in ctx.xp.split(x, list(bounds), axis=axis))

    @staticmethod
    def backward(ctx: Any, *gs: Any) -> tuple[Any, None, None]:
        return ctx.xp.concatenate(gs, axis=ctx.axis), None, None

    @staticmethod
    def backward_graph(ctx: Any, *gs: Any) -> tuple[Any, None, None]:
        return Cat.apply(ctx.axis, *gs), None, None


class Stack(Function):
    """y = the inputs stacked along a new ``axis``.   VJP: each input gets its slice of g."""

    @staticmethod
    def forward(ctx: Any, axis: int, *xs: Any) -> Any:
        ctx.axis = axis
        return ctx.xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        n = g.shape[ctx.axis]
        xp = ctx.xp
        return (None, *(xp.take(g, i, axis=ctx.axis) for i in range(n)))

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, ...]:
        lead = (slice(None),) * ctx.axis
        return (None, *(Slice.apply(g, (*lead, i)) for i in range(g.shape[ctx.axis])))
