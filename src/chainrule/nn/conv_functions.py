"""The convolution's fused Functions: the forward by im2col and one BLAS product, the
input gradient by the transposed convolution, the weight gradient by one product.

Notation (NCHW, as PyTorch): x (N, C, H, W), weight w (O, C/G, kh, kw) with G groups,
y (N, O, Ho, Wo), with stride s, dilation d and zero padding p on each side:
Ho = ⌊(H + p_top + p_bottom − d(kh − 1) − 1)/s⌋ + 1 (likewise Wo).

    y[n, o, i, j] = b[o] + Σ_{c ∈ group(o), a, b} w[o, c, a, b] · xp[n, c, s·i + d·a, s·j + d·b]

where xp is x padded with zeros. im2col gathers, for every output pixel, the patch it
reads: cols (G, (C/G)·kh·kw, N·Ho·Wo), a strided view made contiguous in one copy. Then
y = W cols is one matrix product per group, and the VJP is

    dW = g colsᵀ         (the weight gradient: one product over all examples and pixels)
    dx = col2im(Wᵀ g)    (the transposed convolution: scatter-add every patch back)
    db = Σ_{n,i,j} g.

On the host each of the three runs over the batch a chunk of examples at a time, the
chunks shared among the cores (``host_threads.map_chunks``): each chunk's cols is built,
multiplied and dropped while it is in cache, and dW sums the chunks' products in order.
The forward keeps x, not cols, for the backward, which rebuilds cols chunk by chunk. On a
GPU the chunk is the whole batch: one launch per step of the formula.

The three are bilinear, and each one's VJP is made of the others, which is how a
convolution is differentiable to any order::

    y  = conv(x, w)            dx = conv_transpose(g, w)       dw = conv_weight(x, g)
    conv_transpose(g, w):      d g = conv(h, w)                d w = conv_weight(h, g)
    conv_weight(x, g):         d x = conv_transpose(g, h)      d g = conv(x, h)

(h being the gradient flowing into the respective output).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.nn import host_threads
from chainrule.tensor import Tensor


def _arr(value: Any) -> Any:
    """The array of a Tensor argument (a constant array is passed as is)."""
    return value.data if isinstance(value, Tensor) else value


class ConvGeometry(NamedTuple):
    """The hyper-parameters of a 2-D convolution, with the padding resolved per side."""

    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    dilation: tuple[int, int]
    groups: int

    def output_size(self, h: int, w: int, kh: int, kw: int) -> tuple[int, int]:
        (pt, pb), (pl, pr) = self.padding
        ho = (h + pt + pb - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + pl + pr - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return ho, wo


def _pad(x: Any, geo: ConvGeometry, value: float = 0.0) -> Any:
    (pt, pb), (pl, pr) = geo.padding
    if not (pt or pb or pl or pr):
        return x
    xp = backend.get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def windows(x: Any, kh: int, kw: int, geo: ConvGeometry, pad_value: float = 0.0) -> Any:
    """A strided view (N, C, Ho, Wo, kh, kw) of the padded input: the patch of each output
    pixel, without copying. Read-only by contract: its windows overlap in memory.

    Built with ``as_strided``, which NumPy and CuPy both have (CuPy's
    ``sliding_window_view`` is recent): element [n, c, i, j, a, b] is
    xpad[n, c, s_h·i + d_h·a, s_w·j + d_w·b].
    """
    xpad = _pad(x, geo, pad_value)
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    n, c, hp, wp = xpad.shape
    ho = (hp - dh * (kh - 1) - 1) // sh + 1
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    s_n, s_c, s_h, s_w = xpad.strides
    strides = (s_n, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw)
    as_strided = backend.get_array_module(xpad).lib.stride_tricks.as_strided
    return as_strided(xpad, shape=(n, c, ho, wo, kh, kw), strides=strides)


def im2col(x: Any, kh: int, kw: int, geo: ConvGeometry) -> Any:
    """cols (G, (C/G)·kh·kw, N·Ho·Wo): each output pixel's patch as a column, in one copy.

    The examples go into the columns, so that each group's product is one BLAS call over
    every pixel of the examples in ``x``; the callers pass a chunk of the batch at a time
    (``host_threads.map_chunks``), so that this matrix stays in cache between the copy
    that writes it and the product that reads it.
    """
    n, c = x.shape[:2]
    view = windows(x, kh, kw, geo)
    ho, wo = view.shape[2:4]
    # (C, kh, kw, N, Ho, Wo) in memory: rows ordered like the weight's (C/G, kh, kw).
    xp = backend.get_array_module(x)
    patches = view.transpose(1, 4, 5, 0, 2, 3)
    cols = xp.empty(patches.shape, dtype=x.dtype)
    xp.copyto(cols, patches)
    return cols.reshape(geo.groups, (c // geo.groups) * kh * kw, n * ho * wo)


def col2im(
    dcols: Any,
    out: Any,
    kh: int,
    kw: int,
    geo: ConvGeometry,
    ho: int,
    wo: int,
) -> None:
    """The adjoint of ``im2col``, into ``out`` (N, C, H, W): add every column back onto
    the pixels it was read from (kh·kw strided additions), then drop the padding.
    """
    n, c, h, w = out.shape
    (pt, pb), (pl, pr) = geo.padding
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    patches = dcols.reshape(c, kh, kw, n, ho, wo)
    xp = backend.get_array_module(dcols)
    dxpad = xp.zeros((c, n, h + pt + pb, w + pl + pr), dtype=dcols.dtype)
    for a in range(kh):
        rows = slice(a * dh, a * dh + sh * (ho - 1) + 1, sh)
        for b in range(kw):
            cols = slice(b * dw, b * dw + sw * (wo - 1) + 1, sw)
            dxpad[:, :, rows, cols] += patches[:, a, b]
    xp.copyto(out, dxpad[:, :, pt : pt + h, pl : pl + w].transpose(1, 0, 2, 3))


def _from_nchw(g: Any, groups: int) -> Any:
    """(N, O, Ho, Wo) → (G, O/G, N·Ho·Wo), the layout of the products."""
    o = g.shape[1]
    return (
        backend.get_array_module(g)
        .ascontiguousarray(g.transpose(1, 0, 2, 3))
        .reshape(groups, o // groups, -1)
    )


def _example_bytes(x: Any, kh: int, kw: int, ho: int, wo: int, out_channels: int) -> int:
    """The scratch one example takes in a chunk, what sizes the chunks: its im2col
    columns and its share of the product."""
    return (int(x.shape[1]) * kh * kw + out_channels) * ho * wo * x.dtype.itemsize


def conv2d_array(x: Any, weight: Any, geo: ConvGeometry) -> Any:
    """y = conv2d(x, W) without bias, (N, O, Ho, Wo): W cols per group, a chunk of the
    batch at a time, each chunk's product written straight into its rows of y."""
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    ho, wo = geo.output_size(h, w, kh, kw)
    xp = backend.get_array_module(x)
    y = xp.empty((n, o, ho, wo), dtype=xp.result_type(x.dtype, weight.dtype))
    w_mat = weight.reshape(geo.groups, o // geo.groups, cg * kh * kw)

    def work(part: slice) -> None:
        product = w_mat @ im2col(x[part], kh, kw, geo)  # (G, O/G, b·Ho·Wo)
        b = part.stop - part.start
        xp.copyto(y[part], product.reshape(o, b, ho, wo).transpose(1, 0, 2, 3))

    host_threads.map_chunks(n, _example_bytes(x, kh, kw, ho, wo, o), x, work)
    return y


def conv2d_input_grad_array(
    g: Any, weight: Any, x_shape: tuple[int, ...], geo: ConvGeometry
) -> Any:
    """dx = conv_transpose2d(g, W), (N, C, H, W).

    Two ways to the same sum. With stride 1, when the padding is at most d·(k − 1) on
    every side and the convolution does not widen (O ≤ C), dx is a plain convolution of
    g, padded by d·(k − 1) − p, with the weight flipped in space and transposed per
    group: dx[n, c, i, j] = Σ_{o, a, b} w[o, c, k−1−a, k−1−b] · g_pad[n, o, i + d·a,
    j + d·b]. Its im2col matrix (O·k² rows) is then no larger than Wᵀ g's (C·k² rows),
    and the kh·kw strided additions of col2im over that matrix are gone: measured at the
    CNN's Conv2d(32, 32, 3) on 28×28, batch 128, one thread, 37 ms against 60 ms. Otherwise
    dx = col2im(Wᵀ g), which handles every stride, a chunk of the batch at a time.
    """
    direct = _direct_input_grad_geometry(g.shape, weight.shape, x_shape, geo)
    if direct is not None:
        return conv2d_array(g, _flipped_transpose(weight, geo.groups), direct)
    n, _, ho, wo = g.shape
    o, cg, kh, kw = weight.shape
    groups = geo.groups
    w_t = weight.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
    xp = backend.get_array_module(g)
    dx = xp.empty(x_shape, dtype=xp.result_type(g.dtype, weight.dtype))

    def work(part: slice) -> None:
        dcols = w_t @ _from_nchw(g[part], groups)  # (G, K, b·Ho·Wo)
        col2im(dcols, dx[part], kh, kw, geo, ho, wo)

    # Per example: g in the products' layout (O·Ho·Wo) and dcols (C·kh·kw·Ho·Wo).
    example_bytes = _example_bytes(g, 1, 1, ho, wo, cg * groups * kh * kw)
    host_threads.map_chunks(n, example_bytes, g, work)
    return dx


def _direct_input_grad_geometry(
    g_shape: tuple[int, ...], w_shape: tuple[int, ...], x_shape: tuple[int, ...], geo: ConvGeometry
) -> ConvGeometry | None:
    """The geometry of dx as a convolution of g (see ``conv2d_input_grad_array``), or
    None where col2im is the way."""
    o, c = g_shape[1], x_shape[1]
    if geo.stride != (1, 1) or o > c:
        return None
    pads = []
    for (before, after), d, k in zip(geo.padding, geo.dilation, w_shape[2:], strict=True):
        reach = d * (k - 1)
        if before > reach or after > reach:
            return None
        pads.append((reach - before, reach - after))
    return ConvGeometry((1, 1), (pads[0], pads[1]), geo.dilation, geo.groups)


def _flipped_transpose(weight: Any, groups: int) -> Any:
    """w (O, C/G, kh, kw) → w' (C, O/G, kh, kw), w'[c, o] = w[o, c] flipped in space,
    within each group."""
    o, cg, kh, kw = weight.shape
    per_group = weight.reshape(groups, o // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return per_group[:, :, :, ::-1, ::-1].reshape(groups * cg, o // groups, kh, kw)


def conv2d_weight_grad_array(x: Any, g: Any, w_shape: tuple[int, ...], geo: ConvGeometry) -> Any:
    """dW = g colsᵀ per group, summed over the chunks of the batch in order (the same
    chunks on any number of threads, so the same bits)."""
    kh, kw = w_shape[2:]
    ho, wo = g.shape[2:]

    def work(part: slice) -> Any:
        # Computed as (cols gᵀ)ᵀ: the same numbers, but OpenBLAS runs this orientation of
        # a product with a long inner dimension much faster (measured at conv2's shapes
        # for the whole batch, (288 × 25088)·(25088 × 64): 35 ms against 430 ms for
        # (64 × 25088)·(25088 × 288)).
        cols = im2col(x[part], kh, kw, geo)  # (G, K, b·Ho·Wo)
        return cols @ _from_nchw(g[part], geo.groups).transpose(0, 2, 1)  # (G, K, O/G)

    example_bytes = _example_bytes(x, kh, kw, ho, wo, 0) + g[:1].nbytes  # cols, g's layout
    partials = host_threads.map_chunks(x.shape[0], example_bytes, x, work)
    dw_t = partials[0]
    for partial in partials[1:]:
        dw_t += partial
    xp = backend.get_array_module(dw_t)
    return xp.ascontiguousarray(dw_t.transpose(0, 2, 1)).reshape(w_shape)


class Conv2dFunction(Function):
    """y = conv2d(x, W) + b (see the module docstring for the sum).

    VJP: dx = conv_transpose2d(g, W), dW = g colsᵀ, db = Σ_{n,i,j} g.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, geo: ConvGeometry) -> Any:
        y = conv2d_array(x, weight, geo)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        # x, not its im2col matrix: the backward rebuilds the matrix a chunk at a time,
        # in cache, rather than keep 9x the input alive between the passes.
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any, None]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        geo = ctx.inputs[3]
        dx = conv2d_input_grad_array(g, weight, x.shape, geo) if need_x else None
        dw = conv2d_weight_grad_array(x, g, weight.shape, geo) if need_w else None
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any, Any, None]:
        x, weight, _bias, geo = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = ConvTranspose2dFunction.apply(g, weight, geo, tuple(x.shape)) if need_x else None
        dw = Conv2dWeightGradFunction.apply(x, g, geo, tuple(weight.shape)) if need_w else None
        db = g.sum(dim=(0, 2, 3)) if need_b else None
        return dx, dw, db, None


class ConvTranspose2dFunction(Function):
    """dx = conv_transpose2d(g, W): the input gradient of ``Conv2dFunction`` as an op,
    so that it can be differentiated again. Linear in g and in W.

    VJP (h the gradient into dx): d g = conv2d(h, W), d W = conv_weight(h, g).
    """

    @staticmethod
    def forward(ctx: Any, g: Any, weight: Any, geo: ConvGeometry, x_shape: tuple[int, ...]) -> Any:
        return conv2d_input_grad_array(g, weight, x_shape, geo)

    @staticmethod
    def backward(ctx: Any, h: Any) -> tuple[Any, Any, None, None]:
        g, weight, geo, _ = ctx.inputs
        need_g, need_w = ctx.needs_input_grad[:2]
        dg = conv2d_array(h, _arr(weight), geo) if need_g else None
        dw = conv2d_weight_grad_array(h, _arr(g), weight.shape, geo) if need_w else None
        return dg, dw, None, None

    @staticmethod
    def backward_graph(ctx: Any, h: Any) -> tuple[Any, Any, None, None]:
        g, weight, geo, _ = ctx.inputs
        need_g, need_w = ctx.needs_input_grad[:2]
        dg = Conv2dFunction.apply(h, weight, None, geo) if need_g else None
        dw = Conv2dWeightGradFunction.apply(h, g, geo, tuple(weight.shape)) if need_w else None
        return dg, dw, None, None


class Conv2dWeightGradFunction(Function):
    """dW = conv_weight(x, g) = g cols(x)ᵀ: the weight gradient of
    ``Conv2dFunction`` as an op. Linear in x and in g.

    VJP (h the gradient into dW): d x = conv_transpose2d(g, h), d g = conv2d(x, h).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, g: Any, geo: ConvGeometry, w_shape: tuple[int, ...]) -> Any:
        return conv2d_weight_grad_array(x, g, w_shape, geo)

    @staticmethod
    def backward(ctx: Any, h: Any) -> tuple[Any, Any, None, None]:
        x, g, geo, _ = ctx.inputs
        need_x, need_g = ctx.needs_input_grad[:2]
        dx = conv2d_input_grad_array(_arr(g), h, tuple(x.shape), geo) if need_x else None
        dg = conv2d_array(_arr(x), h, geo) if need_g else None
        return dx, dg, None, None

    @staticmethod
    def backward_graph(ctx: Any, h: Any) -> tuple[Any, Any, None, None]:
        x, g, geo, _ = ctx.inputs
        need_x, need_g = ctx.needs_input_grad[:2]
        dx = ConvTranspose2dFunction.apply(g, h, geo, tuple(x.shape)) if need_x else None
        dg = Conv2dFunction.apply(x, h, None, geo) if need_g else None
        return dx, dg, None, None
