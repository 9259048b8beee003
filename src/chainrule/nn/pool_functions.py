"""Pooling's fused Functions: max, average and adaptive average over 2-D windows (NCHW).

A window of kh × kw pixels at stride s (and dilation d for max pooling) is read through
the strided view of ``conv_functions.windows``; each kernel offset (a, b) gives one
strided slice of the input of the output's shape, so every forward and backward here is
kh·kw elementwise operations on output-sized arrays, with no patch matrix.

    max:      y[i, j] = max_{a,b} xp[s·i + d·a, s·j + d·b]        (xp padded with −∞)
              dx = g routed to the first maximum of each window (as PyTorch)
    average:  y[i, j] = Σ_{a,b} xp[s·i + a, s·j + b] / D          (xp padded with 0)
              dx[s·i + a, s·j + b] += g[i, j] / D
    adaptive: y = A_h x A_wᵀ, A_h (Ho, H) averaging rows ⌊iH/Ho⌋ … ⌈(i+1)H/Ho⌉ − 1
              dx = A_hᵀ g A_w
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.nn import host_threads
from chainrule.nn.conv_functions import ConvGeometry, ConvTranspose2dFunction, windows
from chainrule.tensor import Tensor


def _offset_slices(
    kh: int, kw: int, geo: ConvGeometry, ho: int, wo: int
) -> list[tuple[slice, slice]]:
    """For each kernel offset (a, b), the strided slice of the padded input it reads."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    return [
        (
            slice(a * dh, a * dh + sh * (ho - 1) + 1, sh),
            slice(b * dw, b * dw + sw * (wo - 1) + 1, sw),
        )
        for a in range(kh)
        for b in range(kw)
    ]


def _padded_zeros(xp: Any, x_shape: tuple[int, ...], geo: ConvGeometry, dtype: Any) -> Any:
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = geo.padding
    return xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=dtype)


def _crop(xpad: Any, x_shape: tuple[int, ...], geo: ConvGeometry) -> Any:
    (pt, _), (pl, _) = geo.padding
    return xpad[:, :, pt : pt + x_shape[2], pl : pl + x_shape[3]]


class MaxPool2dFunction(Function):
    """y = the maximum of each window (with ``with_indices``, also the flat index of the
    maximum in each H·W input plane, as PyTorch's ``return_indices``).

    VJP: dx = g at the first maximum of each window, 0 elsewhere (overlapping windows add).
    """

    @staticmethod
    def forward(
        ctx: Any, x: Any, kernel: tuple[int, int], geo: ConvGeometry, with_indices: bool
    ) -> Any:
        kh, kw = kernel
        ho, wo = geo.output_size(x.shape[2], x.shape[3], kh, kw)
        best = ctx.xp.empty((*x.shape[:2], ho, wo), dtype=x.dtype)

        def maximum(part: slice) -> None:  # the examples in ``part``, on a thread
            view = windows(x[part], kh, kw, geo, pad_value=-math.inf)
            ctx.xp.copyto(best[part], view[..., 0, 0])
            for k in range(1, kh * kw):
                ctx.xp.maximum(best[part], view[..., k // kw, k % kw], out=best[part])

        host_threads.map_chunks(x.shape[0], x[:1].nbytes, x, maximum)
        # Which offset won is found again in backward from x and y (a few comparisons of
        # output-sized arrays), not stored as an argmax here: building the argmax costs
        # 4x the maximum itself (measured at pool1's shapes, 45 ms against 11 ms).
        ctx.save_for_backward(best, x)  # x saved so that changing it in place is caught
        ctx.x_shape = x.shape
        if with_indices:
            view = windows(x, kh, kw, geo, pad_value=-math.inf)
            offsets = [view[..., k // kw, k % kw] for k in range(kh * kw)]
            return best, _flat_indices(_first_max(offsets, best), kernel, geo, x.shape)
        return best

    @staticmethod
    def backward(ctx: Any, g: Any, *_: Any) -> tuple[Any, None, None, None]:
        best, x = ctx.saved_tensors
        kernel, geo = ctx.inputs[1], ctx.inputs[2]
        kh, kw = kernel
        ho, wo = g.shape[2:]
        xp = ctx.xp
        dxpad = _padded_zeros(xp, ctx.x_shape, geo, g.dtype)
        (sh, sw), (dh, dw) = geo.stride, geo.dilation
        disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
        slices = _offset_slices(kh, kw, geo, ho, wo)

        def route(part: slice) -> None:  # the examples in ``part``, on a thread
            view = windows(x[part], kh, kw, geo, pad_value=-math.inf)
            top, grad, into = best[part], g[part], dxpad[part]
            taken = xp.zeros(top.shape, dtype=bool)  # windows whose maximum was routed
            for k, (rows, cols) in enumerate(slices):
                # The first offset equal to the maximum wins (PyTorch's rule for ties).
                winner = view[..., k // kw, k % kw] == top
                winner &= ~taken
                taken |= winner
                if disjoint:  # each pixel is in one window: write in place, no temporary
                    xp.multiply(grad, winner, out=into[:, :, rows, cols])
                else:
                    into[:, :, rows, cols] += xp.where(winner, grad, 0)

        host_threads.map_chunks(g.shape[0], 2 * x[:1].nbytes, x, route)
        return _crop(dxpad, ctx.x_shape, geo), None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any, *_: Any) -> tuple[Any, None, None, None]:
        best, x = ctx.saved_tensors
        kernel, geo = ctx.inputs[1], ctx.inputs[2]
        kh, kw = kernel
        view = windows(x, kh, kw, geo, pad_value=-math.inf)
        arg = _first_max([view[..., k // kw, k % kw] for k in range(kh * kw)], best)
        n, c, h, w = ctx.x_shape
        planes = ctx.xp.arange(n * c).reshape(n, c, 1, 1) * (h * w)
        flat = planes + _flat_indices(arg, kernel, geo, ctx.x_shape)
        return MaxUnpoolFunction.apply(g, flat, ctx.x_shape), None, None, None


class MaxUnpoolFunction(Function):
    """dx = the scatter-add of g into an input-shaped zero array at flat positions ``index``
    (max pooling's input gradient, as an op). Linear in g.

    VJP (h the gradient into dx): d g = h.flat[index], the gather, max pooling again.
    """

    @staticmethod
    def forward(ctx: Any, g: Any, index: Any, x_shape: tuple[int, ...]) -> Any:
        size = math.prod(x_shape)
        dx = ctx.xp.bincount(index.ravel(), weights=g.ravel(), minlength=size)
        return dx.astype(g.dtype, copy=False).reshape(x_shape)

    @staticmethod
    def backward(ctx: Any, h: Any) -> tuple[Any, None, None]:
        index = ctx.inputs[1]
        return h.reshape(-1)[index], None, None

    @staticmethod
    def backward_graph(ctx: Any, h: Any) -> tuple[Any, None, None]:
        index = ctx.inputs[1]
        return h.reshape(-1)[index], None, None


def _first_max(offsets: list[Any], best: Any) -> Any:
    """The offset k of each window's first maximum: written from the last offset to the
    first, so that ties end with the first in row-major order, PyTorch's rule.
    """
    xp = backend.get_array_module(best)
    arg = xp.zeros(best.shape, dtype=backend.uint8 if len(offsets) < 256 else backend.int32)
    for k in range(len(offsets) - 1, -1, -1):
        xp.copyto(arg, k, where=offsets[k] == best)
    return arg


def _flat_indices(
    arg: Any, kernel: tuple[int, int], geo: ConvGeometry, x_shape: tuple[int, ...]
) -> Any:
    """PyTorch's pooling indices: row·W + column of each window's maximum in the unpadded
    input plane, as int64.
    """
    _kh, kw = kernel
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    (pt, _), (pl, _) = geo.padding
    ho, wo = arg.shape[2:]
    xp = backend.get_array_module(arg)
    a, b = xp.divmod(arg.astype(backend.int64), kw)
    rows = xp.arange(ho).reshape(ho, 1) * sh + a * dh - pt
    cols = xp.arange(wo).reshape(1, wo) * sw + b * dw - pl
    result: Any = rows * x_shape[3] + cols
    return result


class AvgPool2dFunction(Function):
    """y = the sum of each zero-padded window divided by D (kh·kw, or the number of
    in-bounds pixels with ``count_include_pad=False``, or ``divisor_override``).

    VJP: dx[s·i + a, s·j + b] += g[i, j] / D for every offset (a, b) (overlaps add).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, kernel: tuple[int, int], geo: ConvGeometry, divisor: Any) -> Any:
        kh, kw = kernel
        view = windows(x, kh, kw, geo)
        total = view[..., 0, 0].copy()
        for k in range(1, kh * kw):
            total += view[..., k // kw, k % kw]
        ctx.x_shape = x.shape
        total /= divisor
        return total

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        _, kernel, geo, divisor = ctx.inputs
        kh, kw = kernel
        share = g / divisor
        dxpad = _padded_zeros(ctx.xp, ctx.x_shape, geo, g.dtype)
        for rows, cols in _offset_slices(kh, kw, geo, *g.shape[2:]):
            dxpad[:, :, rows, cols] += share
        return _crop(dxpad, ctx.x_shape, geo), None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        # Average pooling is a depthwise convolution with a constant kernel of ones (after
        # dividing by D), so its input gradient is that convolution's transpose.
        _, kernel, geo, divisor = ctx.inputs
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2:]
        ones = ctx.xp.ones((1, 1, *kernel), dtype=g.data.dtype)
        plane = (g / divisor).reshape(n * c, 1, ho, wo)
        dx = ConvTranspose2dFunction.apply(plane, ones, geo, (n * c, 1, h, w))
        return dx.reshape(n, c, h, w), None, None, None


def adaptive_matrix(xp: Any, size_in: int, size_out: int, dtype: Any) -> Any:
    """A (size_out, size_in) matrix whose row i averages inputs ⌊i·in/out⌋ … ⌈(i+1)·in/out⌉−1
    (PyTorch's adaptive windows), made with ``xp`` (on its device) in a few whole-array
    ops rather than a write per row (a kernel launch each on a GPU).
    """
    rows = xp.arange(size_out).reshape(-1, 1)
    start = (rows * size_in) // size_out
    end = -((-(rows + 1) * size_in) // size_out)
    cols = xp.arange(size_in).reshape(1, -1)
    inside = (cols >= start) & (cols < end)
    return (inside / (end - start)).astype(dtype)


class AdaptiveAvgPool2dFunction(Function):
    """y = A_h x A_wᵀ per plane (see ``adaptive_matrix``).   VJP: dx = A_hᵀ g A_w."""

    @staticmethod
    def forward(ctx: Any, x: Any, output_size: tuple[int, int]) -> Any:
        a_h = adaptive_matrix(ctx.xp, x.shape[2], output_size[0], x.dtype)
        a_w = adaptive_matrix(ctx.xp, x.shape[3], output_size[1], x.dtype)
        ctx.save_for_backward(a_h, a_w)
        return a_h @ x @ a_w.T

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        a_h, a_w = ctx.saved_tensors
        return a_h.T @ g @ a_w, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        a_h, a_w = ctx.saved_tensors
        return Tensor(a_h.T.copy()) @ g @ Tensor(a_w), None
