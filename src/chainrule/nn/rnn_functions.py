"""The recurrent cells' fused Function: one LSTM step as one node, its backward in closed
form (the formulas below), where the step written with primitives is a dozen nodes.

With P = x_proj + h W_hhᵀ + b_hh split into four blocks (PyTorch's order i, f, g, o):

    i = σ(P_i),  f = σ(P_f),  g = tanh(P_g),  o = σ(P_o)
    c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')

VJP, with h̄ and c̄ the gradients into h' and c' (σ' = σ(1 − σ), tanh' = sech²):

    c̄_t = c̄ + h̄ ⊙ o ⊙ sech²(c')                 (c' reaches the loss directly and via h')
    P̄_i = c̄_t ⊙ g ⊙ σ'(P_i),   P̄_f = c̄_t ⊙ c ⊙ σ'(P_f)
    P̄_g = c̄_t ⊙ i ⊙ sech²(P_g),   P̄_o = h̄ ⊙ tanh(c') ⊙ σ'(P_o)
    x̄_proj = P̄,   h̄_prev = P̄ W_hh,   c̄_prev = c̄_t ⊙ f,   W̄_hh = P̄ᵀ h,   b̄_hh = Σ_rows P̄

The sigmoids' slopes come from e⁻ˣ and tanh's from cosh (``chainrule.ops.kernels``), as the
primitives compute them, so the tails keep their precision.
"""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.autograd.function import Function
from chainrule.ops import kernels


class LSTMCellFunction(Function):
    """(h', c') = one LSTM step from x_proj = W_ih x + b_ih, the state (h, c) and the
    recurrent weights (module docstring for the forward and the VJP)."""

    @staticmethod
    def forward(ctx: Any, x_proj: Any, h: Any, c: Any, w_hh: Any, b_hh: Any) -> Any:
        xp = ctx.xp
        pre = x_proj + h @ w_hh.T
        if b_hh is not None:
            pre += b_hh
        size = pre.shape[-1] // 4
        sig, e = kernels.sigmoid_and_exp(pre)  # i, f and o from one pass (g's block unused)
        i, f, o = sig[:, :size], sig[:, size : 2 * size], sig[:, 3 * size :]
        pre_g = pre[:, 2 * size : 3 * size]
        g = xp.tanh(pre_g)
        c_next = f * c + i * g
        tanh_c = xp.tanh(c_next)
        ctx.save_for_backward(sig, e, pre_g, g, c, c_next, tanh_c, h, w_hh)
        return o * tanh_c, c_next

    @staticmethod
    def backward(ctx: Any, dh: Any, dc: Any) -> tuple[Any, Any, Any, Any, Any]:
        sig, e, pre_g, g, c, c_next, tanh_c, h, w_hh = ctx.saved_tensors
        xp = ctx.xp
        size = g.shape[-1]
        i, f, o = sig[:, :size], sig[:, size : 2 * size], sig[:, 3 * size :]
        slope = kernels.sigmoid_slope(sig, e)  # σ' on all four blocks (g's is unused)
        cosh_c, cosh_g = kernels.safe_cosh(c_next), kernels.safe_cosh(pre_g)
        dc_total = dc + dh * o / cosh_c / cosh_c
        d_pre = xp.empty_like(sig)
        d_pre[:, :size] = dc_total * g * slope[:, :size]
        d_pre[:, size : 2 * size] = dc_total * c * slope[:, size : 2 * size]
        d_pre[:, 2 * size : 3 * size] = dc_total * i / cosh_g / cosh_g
        d_pre[:, 3 * size :] = dh * tanh_c * slope[:, 3 * size :]
        need = ctx.needs_input_grad
        dh_prev = d_pre @ w_hh if need[1] else None
        dc_prev = dc_total * f if need[2] else None
        dw = d_pre.T @ h if need[3] else None
        db = d_pre.sum(axis=0) if need[4] else None
        return d_pre, dh_prev, dc_prev, dw, db

    @staticmethod
    def backward_graph(ctx: Any, dh: Any, dc: Any) -> tuple[Any, Any, Any, Any, Any]:
        # The same formulas on Tensors, the gates recomputed from the inputs by
        # differentiable ops, so that the gradient can be differentiated again.
        x_proj, h, c, w_hh, b_hh = ctx.inputs
        pre = x_proj + h @ w_hh.T
        if b_hh is not None:
            pre = pre + b_hh
        p_i, p_f, p_g, p_o = pre.chunk(4, -1)
        i, f, o = p_i.sigmoid(), p_f.sigmoid(), p_o.sigmoid()
        g = p_g.tanh()
        tanh_c = (f * c + i * g).tanh()
        dc_total = dc + dh * o * (1 - tanh_c * tanh_c)
        d_pre = ops.cat(
            [
                dc_total * g * i * (1 - i),
                dc_total * c * f * (1 - f),
                dc_total * i * (1 - g * g),
                dh * tanh_c * o * (1 - o),
            ],
            -1,
        )
        need = ctx.needs_input_grad
        return (
            d_pre,
            d_pre @ w_hh if need[1] else None,
            dc_total * f if need[2] else None,
            d_pre.T @ h if need[3] else None,
            d_pre.sum(0) if need[4] else None,
        )
