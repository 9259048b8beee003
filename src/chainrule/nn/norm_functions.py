"""The normalisation layers' fused Functions: batch norm (training mode: statistics of
the batch, per channel) and layer norm (statistics of each example, over its last dims).

**Batch norm.** For x of shape (N, C) or (N, C, *spatial), per channel c, over the
M = N·∏spatial values of that channel:

    μ = mean(x),  σ² = mean((x − μ)²)  (biased),  x̂ = (x − μ)/√(σ² + ε),  y = γ x̂ + β

VJP, with g the gradient into y and sums over the channel's M values (the three-term
formula: the direct path, the path through μ and the path through σ²):

    dx = γ/(M √(σ² + ε)) · (M g − Σg − x̂ Σ(g x̂)),   dγ = Σ(g x̂),   dβ = Σg

In evaluation mode the statistics are constants and y is an affine map of x, composed
from primitives in ``nn.functional_conv.batch_norm``.

**Layer norm.** The same normalisation with the roles turned: each row (one example's
last dims, D values) has its own μ, σ², and γ, β are per element of those dims. With
ĝ = γ g (the gradient into x̂), the same three terms over the row's D values:

    dx = 1/√(σ² + ε) · (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)),   dγ = Σ_rows g x̂,   dβ = Σ_rows g
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.nn import host_threads


def channel_axes(ndim: int) -> tuple[int, ...]:
    """The axes a channel's statistics are taken over: all but axis 1."""
    return (0, *range(2, ndim))


def channel_shape(ndim: int, c: int) -> tuple[int, ...]:
    """(1, C, 1, …): a per-channel vector shaped to broadcast against the input."""
    return (1, c) + (1,) * (ndim - 2)


class BatchNormFunction(Function):
    """y = γ (x − μ)/√(σ² + ε) + β with the batch's per-channel μ, σ² (module docstring).

    When ``running_mean``/``running_var`` arrays are given, forward also updates them in
    place, as PyTorch's kernel does: r ← (1 − f) r + f · stat, with the unbiased variance
    σ² M/(M − 1) for ``running_var`` and f the averaging factor (the momentum).

    VJP: dx = γ/(M √(σ² + ε)) · (M g − Σg − x̂ Σ(g x̂)),  dγ = Σ(g x̂),  dβ = Σg.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Any,
        weight: Any,
        bias: Any,
        running_mean: Any,
        running_var: Any,
        factor: float,
        eps: float,
    ) -> Any:
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)  # (N, C, L): a view of the C-ordered input
        count = flat.shape[0] * flat.shape[2]
        mean, var = _batch_moments(flat)
        invstd = 1.0 / ctx.xp.sqrt(var + eps)
        x_hat = ctx.xp.empty_like(flat)
        y = ctx.xp.empty_like(flat)
        col = (1, c, 1)

        def normalise(part: slice) -> None:  # x̂ = (x − μ)/σ and y = γ x̂ + β, per chunk
            # From x̂, not as x·γ/σ + (β − μγ/σ): that cancels when |μ| ≫ σ.
            ctx.xp.subtract(flat[part], mean.reshape(col), out=x_hat[part])
            x_hat[part] *= invstd.reshape(col)
            if weight is None:
                ctx.xp.copyto(y[part], x_hat[part])
            else:
                ctx.xp.multiply(x_hat[part], weight.reshape(col), out=y[part])
            if bias is not None:
                y[part] += bias.reshape(col)

        host_threads.map_chunks(n, 2 * flat[:1].nbytes, x, normalise)
        if running_mean is not None:
            running_mean *= 1.0 - factor
            running_mean += factor * mean
        if running_var is not None:
            running_var *= 1.0 - factor
            running_var += factor * var * (count / max(count - 1, 1))
        ctx.save_for_backward(x_hat, invstd)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None, None, None]:
        x_hat, invstd = ctx.saved_tensors  # x̂ as (N, C, L)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        weight = ctx.inputs[1]
        n, c = g.shape[:2]
        flat_g = g.reshape(x_hat.shape)
        count = x_hat.shape[0] * x_hat.shape[2]
        xp = ctx.xp

        def sums(part: slice) -> tuple[Any, Any]:  # Σg and Σ g x̂ over a chunk
            return (
                flat_g[part].sum(axis=(0, 2)),
                xp.einsum("ncl,ncl->c", flat_g[part], x_hat[part]),
            )

        partials = host_threads.map_chunks(n, 2 * x_hat[:1].nbytes, g, sums)
        sum_g, sum_g_xhat = partials[0]
        for chunk_g, chunk_g_xhat in partials[1:]:  # in chunk order: the same bits anywhere
            sum_g = sum_g + chunk_g
            sum_g_xhat = sum_g_xhat + chunk_g_xhat
        dx = None
        if need_x:
            scale = invstd if weight is None else weight.data * invstd
            col = (1, c, 1)
            mean_g = (sum_g / count).reshape(col)
            mean_g_xhat = (sum_g_xhat / count).reshape(col)
            out = xp.empty_like(flat_g)

            def three_terms(part: slice) -> None:  # γ/σ (g − mean(g) − x̂ mean(g x̂))
                xp.multiply(x_hat[part], mean_g_xhat, out=out[part])
                xp.subtract(flat_g[part], out[part], out=out[part])
                out[part] -= mean_g
                out[part] *= scale.reshape(col)

            host_threads.map_chunks(n, 2 * x_hat[:1].nbytes, g, three_terms)
            dx = out.reshape(g.shape)
        dw = sum_g_xhat if need_w else None
        db = sum_g if need_b else None
        return dx, dw, db, None, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None, None, None]:
        # The same formula on Tensors, with μ, σ² and x̂ recomputed from x by
        # differentiable ops so that the result can be differentiated again in x too.
        x, weight = ctx.inputs[0], ctx.inputs[1]
        eps = ctx.inputs[6]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        axes = channel_axes(g.ndim)
        mean = x.mean(dim=axes, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=axes, keepdim=True)
        invstd = (var + eps).pow(-0.5)
        x_hat = centred * invstd
        mean_g = g.mean(dim=axes, keepdim=True)
        mean_g_xhat = (g * x_hat).mean(dim=axes, keepdim=True)
        dx = None
        if need_x:
            scale = invstd if weight is None else weight.reshape(channel_shape(g.ndim, -1)) * invstd
            dx = (g - mean_g - x_hat * mean_g_xhat) * scale
        dw = (g * x_hat).sum(dim=axes) if need_w else None
        db = g.sum(dim=axes) if need_b else None
        return dx, dw, db, None, None, None, None


def _batch_moments(flat: Any) -> tuple[Any, Any]:
    """Per channel, the mean and the biased variance of ``flat`` (N, C, L) over N and L.

    Each chunk of examples gives its own mean and Σ(x − mean)² (two passes over data
    still in cache), and the chunks are merged in order by Chan et al.'s pairwise
    formula: with counts a, b, means μ_a, μ_b and δ = μ_b − μ_a,
    μ = μ_a + δ b/(a + b) and M₂ = M₂_a + M₂_b + δ² ab/(a + b). As exact as the two-pass
    formula over the whole batch, and each chunk's work runs on its own core.
    """
    n = flat.shape[0]
    length = flat.shape[2]
    xp = backend.get_array_module(flat)

    def moments(part: slice) -> tuple[int, Any, Any]:
        chunk = flat[part]
        count = chunk.shape[0] * length
        # The sums and the merge in float64 (C numbers each): a float32 mean far from
        # zero would be off by its own rounding at every merge, and x − μ inherits it.
        mean = chunk.sum(axis=(0, 2), dtype=xp.float64) / count
        centred = chunk - mean.astype(chunk.dtype).reshape(1, -1, 1)
        m2 = xp.einsum("ncl,ncl->c", centred, centred)
        return count, mean, m2.astype(xp.float64)

    parts = host_threads.map_chunks(n, 2 * flat[:1].nbytes, flat, moments)
    count, mean, m2 = parts[0]
    for count_b, mean_b, m2_b in parts[1:]:
        total = count + count_b
        delta = mean_b - mean
        mean = mean + delta * (count_b / total)
        m2 = m2 + m2_b + delta * delta * (count * count_b / total)
        count = total
    return mean.astype(flat.dtype), (m2 / count).astype(flat.dtype)


class LayerNormFunction(Function):
    """y = γ (x − μ)/√(σ² + ε) + β with μ, σ² of each row: the last ``dims`` dims of x
    (D values), γ and β of those dims' shape (or None).

    VJP (ĝ = γ g, means over the row's D values):
    dx = (ĝ − mean(ĝ) − x̂ mean(ĝ x̂))/√(σ² + ε),  dγ = Σ_rows g x̂,  dβ = Σ_rows g.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any, dims: int, eps: float) -> Any:
        xp = ctx.xp
        width = math.prod(x.shape[x.ndim - dims :])
        rows = x.reshape(-1, width)
        # Two passes (the mean, then the squares of x − μ): no cancellation when |μ| ≫ σ.
        mean = rows.mean(axis=1, keepdims=True)
        x_hat = rows - mean
        var = xp.einsum("rd,rd->r", x_hat, x_hat).reshape(-1, 1) / width
        invstd = 1.0 / xp.sqrt(var + eps)
        x_hat *= invstd
        y = x_hat.copy() if weight is None else x_hat * weight.reshape(1, width)
        if bias is not None:
            y += bias.reshape(1, width)
        ctx.save_for_backward(x_hat, invstd)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None]:
        x_hat, invstd = ctx.saved_tensors  # x̂ as (rows, D), 1/σ as (rows, 1)
        weight = ctx.inputs[1]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        xp = ctx.xp
        rows_g = g.reshape(x_hat.shape)
        dx = None
        if need_x:
            g_hat = rows_g if weight is None else rows_g * weight.data.reshape(1, -1)
            mean_g = g_hat.mean(axis=1, keepdims=True)
            mean_g_xhat = xp.einsum("rd,rd->r", g_hat, x_hat).reshape(-1, 1)
            mean_g_xhat /= x_hat.shape[1]
            out = x_hat * mean_g_xhat
            xp.subtract(g_hat, out, out=out)
            out -= mean_g
            out *= invstd
            dx = out.reshape(g.shape)
        param_shape = None if weight is None else weight.shape
        dw = xp.einsum("rd,rd->d", rows_g, x_hat).reshape(param_shape) if need_w else None
        db = None
        if need_b:
            bias = ctx.inputs[2]
            db = rows_g.sum(axis=0).reshape(bias.shape)
        return dx, dw, db, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None]:
        # The same formula on Tensors, μ, σ² and x̂ recomputed from x by differentiable
        # ops so that the result can be differentiated again in x too.
        x, weight, _, dims, eps = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        axes = tuple(range(x.ndim - dims, x.ndim))
        lead = tuple(range(x.ndim - dims))
        mean = x.mean(dim=axes, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=axes, keepdim=True)
        invstd = (var + eps).pow(-0.5)
        x_hat = centred * invstd
        dx = None
        if need_x:
            g_hat = g if weight is None else g * weight
            mean_g = g_hat.mean(dim=axes, keepdim=True)
            mean_g_xhat = (g_hat * x_hat).mean(dim=axes, keepdim=True)
            dx = (g_hat - mean_g - x_hat * mean_g_xhat) * invstd

        def over_rows(t: Any) -> Any:  # Σ over the leading dims (none: x is one row)
            return t.sum(dim=lead) if lead else t

        dw = over_rows(g * x_hat) if need_w else None
        db = over_rows(g) if need_b else None
        return dx, dw, db, None, None
