"""Batch normalisation's fused Function (training mode: statistics of the batch).

For x of shape (N, C) or (N, C, *spatial), per channel c, over the M = N·∏spatial values
of that channel:

    μ = mean(x),  σ² = mean((x − μ)²)  (biased),  x̂ = (x − μ)/√(σ² + ε),  y = γ x̂ + β

VJP, with g the gradient into y and sums over the channel's M values (the three-term
formula: the direct path, the path through μ and the path through σ²):

    dx = γ/(M √(σ² + ε)) · (M g − Σg − x̂ Σ(g x̂)),   dγ = Σ(g x̂),   dβ = Σg

In evaluation mode the statistics are constants and y is an affine map of x, composed
from primitives in ``nn.functional_conv.batch_norm``.
"""

from __future__ import annotations

from typing import Any

from chainrule.autograd.function import Function


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
        axes = channel_axes(x.ndim)
        shape = channel_shape(x.ndim, x.shape[1])
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        # Σ (x − μ)² per channel in one pass, without a squared temporary.
        flat = centred.reshape(x.shape[0], x.shape[1], -1)
        var = ctx.xp.einsum("ncl,ncl->c", flat, flat) / count
        invstd = 1.0 / ctx.xp.sqrt(var + eps)
        centred *= invstd.reshape(shape)  # now x̂; ``centred`` is our own array
        x_hat = centred
        if running_mean is not None:
            running_mean *= 1.0 - factor
            running_mean += factor * mean.reshape(-1)
        if running_var is not None:
            running_var *= 1.0 - factor
            running_var += factor * var * (count / max(count - 1, 1))
        y = x_hat * weight.reshape(shape) if weight is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        ctx.save_for_backward(x_hat, invstd)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any, None, None, None, None]:
        x_hat, invstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        weight = ctx.inputs[1]
        axes = channel_axes(g.ndim)
        shape = channel_shape(g.ndim, g.shape[1])
        count = g.size // g.shape[1]
        sum_g = g.sum(axis=axes)
        sum_g_xhat = (g * x_hat).sum(axis=axes)
        dx = None
        if need_x:
            scale = invstd if weight is None else weight.data * invstd
            dx = g - (sum_g / count).reshape(shape)
            dx -= x_hat * (sum_g_xhat / count).reshape(shape)
            dx *= scale.reshape(shape)
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
