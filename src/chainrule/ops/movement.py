"""Ops that move, select or combine elements without arithmetic. Their VJPs move the
gradient back to where each element came from.
"""

from __future__ import annotations

from typing import Any

from chainrule.autograd.function import Function
from chainrule.backend import xp


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


class Permute(Function):
    """y = x with its axes reordered (a view).   VJP: dx = g with the inverse order."""

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...]) -> Any:
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.transpose(tuple(xp.argsort(ctx.axes))), None


class Expand(Function):
    """y = x broadcast to ``shape`` (a read-only view).

    VJP: dx = g summed over the broadcast axes, which the engine's un-broadcast does.
    """

    _view_of = 0

    @staticmethod
    def forward(ctx: Any, x: Any, shape: tuple[int, ...]) -> Any:
        return xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g, None


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
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        dx[ctx.index] = g
        return dx, None


class Gather(Function):
    """y = x[index] with integer arrays or boolean masks in the index (a copy).

    VJP: dx = zeros with g added at ``index``; an index repeated k times receives the sum
    of its k gradients (``add.at``, not assignment, which would keep only one).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, index: Any) -> Any:
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.add.at(dx, ctx.index, g)
        return dx, None


class Cat(Function):
    """y = the inputs joined along ``axis``.   VJP: each input gets its slice of g."""

    @staticmethod
    def forward(ctx: Any, axis: int, *xs: Any) -> Any:
        ctx.axis = axis
        ctx.bounds = xp.cumsum([x.shape[axis] for x in xs])[:-1]
        return xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        return (None, *xp.split(g, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    """y = the inputs stacked along a new ``axis``.   VJP: each input gets its slice of g."""

    @staticmethod
    def forward(ctx: Any, axis: int, *xs: Any) -> Any:
        ctx.axis = axis
        return xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        n = g.shape[ctx.axis]
        return (None, *(xp.take(g, i, axis=ctx.axis) for i in range(n)))
