"""Reductions, the normalising ops built on them (softmax, log-softmax, logsumexp), and
the running sum (cumsum).

``axes`` is a tuple of non-negative axes, or None for all of them. Each backward puts the
reduced axes back (``_unreduce``) and lets broadcasting spread the gradient over them.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.ops import kernels
from chainrule.ops.elementwise import Where
from chainrule.ops.movement import ScatterAdd, Slice, along_axis, inverse_permutation


def _unreduce(xp: Any, g: Any, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
    """Give ``g`` back the reduced axes as size-1 axes, so it broadcasts against the input
    (``xp``: the array library of ``g``)."""
    if keepdim:
        return g
    if axes is None:
        return g  # a scalar broadcasts against anything
    return xp.expand_dims(g, axes)


class Sum(Function):
    """y = Σ x over ``axes``.   VJP: dx = g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return ctx.xp.asarray(x.sum(axis=axes, keepdims=keepdim))

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        xp = ctx.xp
        return xp.broadcast_to(_unreduce(xp, g, ctx.axes, ctx.keepdim), ctx.shape), None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None]:
        return _spread(g, ctx), None, None


class Mean(Function):
    """y = (1/n) Σ x over ``axes`` (n elements each).   VJP: dx = g / n, broadcast back."""

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        y = ctx.xp.asarray(x.mean(axis=axes, keepdims=keepdim))
        ctx.n = x.size // max(y.size, 1) if x.size else 1
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        xp = ctx.xp
        g = _unreduce(xp, g / ctx.n, ctx.axes, ctx.keepdim)
        return xp.broadcast_to(g, ctx.shape), None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None]:
        return _spread(g / ctx.n, ctx), None, None


def _spread(g: Any, ctx: Any) -> Any:
    """``backward_graph`` of the sums: the Tensor g with the reduced axes put back as
    size-1 axes, broadcast over them (``Reshape`` then ``Expand``, both differentiable)."""
    return g.reshape(_kept_shape(ctx.shape, ctx.axes)).expand(ctx.shape)


class Prod(Function):
    """y = Π x over ``axes`` (integers and booleans multiply as int64, as in PyTorch).

    VJP: dx_i = g · Π_{j≠i} x_j, the product of the other elements of x_i's slice. It is
    taken as the product of those before i times the product of those after i (exclusive
    running products from both ends), never as y / x_i: that is 0/0 where x_i = 0. So a
    slice with one zero sends its whole gradient to the zero (the product of the others),
    and a slice with two or more zeros sends none, as in PyTorch.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
        integral = x.dtype.kind in "biu"
        y = ctx.xp.asarray(
            x.prod(axis=axes, keepdims=keepdim, dtype=backend.int64 if integral else None)
        )
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        x, _ = ctx.saved_tensors
        others = _product_of_others(ctx.xp, x, ctx.axes)
        return _unreduce(ctx.xp, g, ctx.axes, ctx.keepdim) * others, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None]:
        x_values, y = ctx.saved_tensors
        x = ctx.inputs[0]
        g = g.reshape(_kept_shape(x.shape, ctx.axes))
        # One host read, on this slow path only. Without zeros, y / x_i is the product of
        # the others (as functions near x, so to every order); with zeros, the product is
        # taken again for each i, which is exact to every order but costs O(n²) memory.
        if not bool((x_values == 0).any()):
            return g * ctx.output(y).reshape(g.shape) / x, None, None
        return g * _product_of_others_graph(x, ctx.axes), None, None


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes as size 1: the shape a keepdim reduction gives."""
    return tuple(1 if axes is None or i in axes else s for i, s in enumerate(shape))


def _line_layout(
    shape: tuple[int, ...], axes: tuple[int, ...] | None
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """How to see x as lines, one per reduced slice: the axis order that moves the reduced
    axes last, the shape that merges them into one axis, and the order that undoes it."""
    reduced = tuple(range(len(shape))) if axes is None else axes
    order = tuple(a for a in range(len(shape)) if a not in reduced) + reduced
    kept = tuple(shape[a] for a in order[: len(shape) - len(reduced)])
    line_shape = (*kept, math.prod(shape[a] for a in reduced))
    return order, line_shape, inverse_permutation(order)


def _product_of_others(xp: Any, x: Any, axes: tuple[int, ...] | None) -> Any:
    """Π_{j≠i} x_j over the reduced slice of each x_i: (Π_{j<i} x_j) · (Π_{j>i} x_j), the
    running products of each line shifted by one, from the left and from the right."""
    order, line_shape, inverse = _line_layout(x.shape, axes)
    if line_shape[-1] == 0:  # empty slices: nothing to differentiate
        return xp.zeros(x.shape, dtype=x.dtype)
    lines = x.transpose(order).reshape(line_shape)
    ones = xp.ones((*line_shape[:-1], 1), dtype=x.dtype)
    before = xp.cumprod(xp.concatenate([ones, lines[..., :-1]], axis=-1), axis=-1)
    backwards = lines[..., ::-1]
    after = xp.cumprod(xp.concatenate([ones, backwards[..., :-1]], axis=-1), axis=-1)
    others = before * after[..., ::-1]
    return others.reshape(tuple(x.shape[a] for a in order)).transpose(inverse)


def _product_of_others_graph(x: Any, axes: tuple[int, ...] | None) -> Any:
    """``_product_of_others`` as a differentiable Tensor: each line of n elements becomes
    an n × n matrix whose row i is the line with x_i replaced by 1, and ``Prod`` multiplies
    each row (so that its own backward handles the zeros at the next order)."""
    order, line_shape, inverse = _line_layout(x.shape, axes)
    n = line_shape[-1]
    rows = x.permute(order).reshape(line_shape).unsqueeze(-2).expand(*line_shape[:-1], n, n)
    diagonal = backend.get_array_module(x.data).eye(n, dtype=bool)
    others = Prod.apply(Where.apply(diagonal, 1.0, rows), (rows.ndim - 1,), False)
    return others.reshape(tuple(x.shape[a] for a in order)).permute(inverse)


class Amax(Function):
    """y = max x over ``axes`` (min with ``largest=False``).

    VJP: g goes to the elements equal to the maximum; where several tie, it is shared
    equally among them (as PyTorch's amax and max() do): dx = g · [x = y] / #{x = y}.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Any, axes: tuple[int, ...] | None, keepdim: bool, largest: bool
    ) -> Any:
        xp = ctx.xp
        y = xp.asarray((x.max if largest else x.min)(axis=axes, keepdims=True))
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else xp.asarray(y.reshape(_drop(x.shape, axes)))

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        g = _unreduce(ctx.xp, g, ctx.axes, ctx.keepdim)
        return g * _tie_share(ctx, g.dtype), None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        kept = ctx.saved_tensors[1].shape
        return g.reshape(kept) * _tie_share(ctx, g.dtype), None, None, None


def _tie_share(ctx: Any, dtype: Any) -> Any:
    """[x = y] / #{x = y} over the reduced axes, in the gradient's dtype (a constant)."""
    x, y = ctx.saved_tensors
    mask = ctx.xp.asarray(x == y, dtype=dtype)
    return mask / mask.sum(axis=ctx.axes, keepdims=True)


class MaxDim(Function):
    """(values, indices) = max of x along one axis, as ``torch.max(x, dim)``.

    VJP: dx = g at the index returned (the first maximum), 0 elsewhere.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axis: int, keepdim: bool, largest: bool) -> Any:
        xp = ctx.xp
        idx = xp.expand_dims((x.argmax if largest else x.argmin)(axis=axis), axis)
        values = xp.take_along_axis(x, idx, axis=axis)
        ctx.save_for_backward(idx)
        ctx.shape, ctx.axis, ctx.keepdim = x.shape, axis, keepdim
        if not keepdim:
            values, idx = values.squeeze(axis), idx.squeeze(axis)
        return values, idx

    @staticmethod
    def backward(ctx: Any, g: Any, g_indices: Any) -> tuple[Any, None, None, None]:
        # The saved indices kept the reduced axis (size 1), whatever keepdim was.
        (idx,) = ctx.saved_tensors
        xp = ctx.xp
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.axis)
        dx = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.put_along_axis(dx, idx, g, axis=ctx.axis)
        return dx, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any, g_indices: Any) -> tuple[Any, None, None, None]:
        (idx,) = ctx.saved_tensors
        if not ctx.keepdim:
            g = g.unsqueeze(ctx.axis)
        return ScatterAdd.apply(g, ctx.shape, along_axis(idx, ctx.axis)), None, None, None


def _drop(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    if axes is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in axes)


class LogSumExp(Function):
    """y = log Σ eˣ over ``axes``, computed as m + log Σ eˣ⁻ᵐ with m = max x, so it is finite
    where the naive form overflows.

    VJP: dx = g · eˣ⁻ʸ = g · softmax(x), taken as eˣ⁻ᵐ / Σ eˣ⁻ᵐ from the forward pass
    (exact, where eˣ⁻ʸ would inherit the rounding of y).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axes: tuple[int, ...] | None, keepdim: bool) -> Any:
        xp = ctx.xp
        _, e, total, m = kernels.shifted_exp(x, axes)
        # An all -inf slice: log 0 = -inf is the answer.
        with backend.errstate(total, divide="ignore"):
            y = xp.log(total) + m
        ctx.save_for_backward(e, total)
        ctx.axes, ctx.keepdim = axes, keepdim
        return y if keepdim else xp.asarray(y.reshape(_drop(x.shape, axes)))

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        e, total = ctx.saved_tensors
        return _unreduce(ctx.xp, g, ctx.axes, ctx.keepdim) * (e / total), None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None]:
        # softmax(x) = exp(x − logsumexp(x)), recomputed as a differentiable Tensor.
        (x,) = ctx.inputs[:1]
        lse = LogSumExp.apply(x, ctx.axes, True)
        kept = lse.shape
        return g.reshape(kept) * (x - lse).exp(), None, None


class Softmax(Function):
    """yᵢ = eˣⁱ / Σⱼ eˣʲ along ``axis`` (shifted by the max, so it never overflows).

    VJP: dx = y · (g − Σ g·y), the Jacobian diag(y) − y yᵀ applied without forming it.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axis: int) -> Any:
        e = ctx.xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(e)
        ctx.axis = axis
        return e

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (y,) = ctx.saved_tensors
        gy = g * y
        return gy - y * gy.sum(axis=ctx.axis, keepdims=True), None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        (y,) = ctx.saved_tensors
        y = ctx.output(y)
        gy = g * y
        return gy - y * gy.sum(axis=ctx.axis, keepdims=True), None


class LogSoftmax(Function):
    """yᵢ = xᵢ − log Σⱼ eˣʲ along ``axis``: the lecture's numerically stable LogSoftMax,
    exact at inputs of ±1000 where exp overflows.

    VJP: dx = g − softmax(x) · Σ g  (softmax(x) = eʸ).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axis: int) -> Any:
        y, _, total, _ = kernels.shifted_exp(x, axis)
        y -= ctx.xp.log(total)  # (x − m) − log Σ eˣ⁻ᵐ: exact at ±1000, even in float32
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (y,) = ctx.saved_tensors
        return g - ctx.xp.exp(y) * g.sum(axis=ctx.axis, keepdims=True), None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        (y,) = ctx.saved_tensors
        return g - ctx.output(y).exp() * g.sum(axis=ctx.axis, keepdims=True), None


class CumSum(Function):
    """y_i = Σ_{j ≤ i} x_j along ``axis``.

    VJP: dx_j = Σ_{i ≥ j} g_i, the cumulative sum of g taken from the far end (flip,
    cumsum, flip): x_j is in every y_i from i = j on.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, axis: int) -> Any:
        ctx.axis = axis
        if x.ndim == 0:  # the running sum of one number (in cumsum's dtype: int64 for ints)
            return ctx.xp.cumsum(x.reshape(1), axis=0).reshape(())
        return ctx.xp.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        if g.ndim == 0:
            return g, None
        xp, axis = ctx.xp, ctx.axis
        return xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis), None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        # CumSum is linear: its VJP is CumSum again, between two reversals (Slice with
        # step −1), all differentiable.
        if g.ndim == 0:
            return g, None
        reverse = (slice(None),) * ctx.axis + (slice(None, None, -1),)
        return Slice.apply(CumSum.apply(Slice.apply(g, reverse), ctx.axis), reverse), None
