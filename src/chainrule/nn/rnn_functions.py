"""The recurrent layers' fused Functions. The LSTM's: one step as one node
(``LSTMCellFunction``, for the cells) and a whole sequence as one node
(``LSTMLayerFunction``, for ``nn.LSTM``: the steps run in a loop inside it, and its backward
is backpropagation through time written out, with no graph of T nodes to walk). Both use
the step formulas below, where the step written with primitives is a dozen nodes. The GRU
and the plain RNN have a whole-sequence node each too (``GRULayerFunction``,
``RNNLayerFunction``; their formulas are at their sections below).

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
from chainrule.nn.functional import linear
from chainrule.ops import kernels
from chainrule.tensor import Tensor


class LSTMCellFunction(Function):
    """(h', c') = one LSTM step from x_proj = W_ih x + b_ih, the state (h, c) and the
    recurrent weights (module docstring for the forward and the VJP)."""

    @staticmethod
    def forward(ctx: Any, x_proj: Any, h: Any, c: Any, w_hh: Any, b_hh: Any) -> Any:
        h_next, c_next, saved = _step_forward(ctx.xp, x_proj, h, c, w_hh, b_hh)
        ctx.save_for_backward(*saved, w_hh)
        return h_next, c_next

    @staticmethod
    def backward(ctx: Any, dh: Any, dc: Any) -> tuple[Any, Any, Any, Any, Any]:
        *saved, w_hh = ctx.saved_tensors
        d_pre = ctx.xp.empty_like(saved[0])
        dh_prev, dc_prev = _step_backward(ctx.xp, tuple(saved), dh, dc, w_hh, d_pre)
        need = ctx.needs_input_grad
        h = saved[-1]
        return (
            d_pre,
            dh_prev if need[1] else None,
            dc_prev if need[2] else None,
            d_pre.T @ h if need[3] else None,
            d_pre.sum(axis=0) if need[4] else None,
        )

    @staticmethod
    def backward_graph(ctx: Any, dh: Any, dc: Any) -> tuple[Any, Any, Any, Any, Any]:
        x_proj, h, c, w_hh, b_hh = ctx.inputs
        return _step_vjp_graph(x_proj, h, c, w_hh, b_hh, dh, dc, ctx.needs_input_grad)


def _step_vjp_graph(
    x_proj: Any, h: Any, c: Any, w_hh: Any, b_hh: Any, dh: Any, dc: Any, need: Any
) -> tuple[Any, Any, Any, Any, Any]:
    """One step's VJP (module docstring) on Tensors, the gates recomputed from the inputs
    by differentiable ops, so that the gradient can be differentiated again."""
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
    return (
        d_pre,
        d_pre @ w_hh if need[1] else None,
        dc_total * f if need[2] else None,
        d_pre.T @ h if need[3] else None,
        d_pre.sum(0) if need[4] else None,
    )


def _step_forward(xp: Any, x_proj: Any, h: Any, c: Any, w_hh: Any, b_hh: Any) -> tuple[Any, ...]:
    """One step on arrays: (h', c', and what its backward needs)."""
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
    return o * tanh_c, c_next, (sig, e, pre_g, g, c, c_next, tanh_c, h)


def _step_backward(
    xp: Any, saved: tuple[Any, ...], dh: Any, dc: Any, w_hh: Any, d_pre: Any
) -> tuple[Any, Any]:
    """One step's VJP on arrays, P̄ written into ``d_pre``; returns (h̄_prev, c̄_prev)."""
    sig, e, pre_g, g, c, c_next, tanh_c, _ = saved
    size = g.shape[-1]
    i, f, o = sig[:, :size], sig[:, size : 2 * size], sig[:, 3 * size :]
    slope = kernels.sigmoid_slope(sig, e)  # σ' on all four blocks (g's is unused)
    cosh_c, cosh_g = kernels.safe_cosh(c_next), kernels.safe_cosh(pre_g)
    dc_total = dc + dh * o / cosh_c / cosh_c
    d_pre[:, :size] = dc_total * g * slope[:, :size]
    d_pre[:, size : 2 * size] = dc_total * c * slope[:, size : 2 * size]
    d_pre[:, 2 * size : 3 * size] = dc_total * i / cosh_g / cosh_g
    d_pre[:, 3 * size :] = dh * tanh_c * slope[:, 3 * size :]
    return d_pre @ w_hh, dc_total * f


class LSTMLayerFunction(Function):
    """(out, h_T, c_T) = one LSTM layer over a sequence, in one node: x_proj (T, N, 4H)
    holds every step's W_ih x + b_ih, (h0, c0) the initial state (N, H); ``reverse`` runs
    from the last step (the backward direction of a bidirectional LSTM). out (T, N, H)
    holds each step's h, in the input's order.

    VJP: backpropagation through time, the step VJP (module docstring) from the last step
    to the first, with h̄_t = ōut_t + the gradient from step t + 1; W̄_hh and b̄_hh summed
    over the steps.
    """

    @staticmethod
    def forward(
        ctx: Any, x_proj: Any, h0: Any, c0: Any, w_hh: Any, b_hh: Any, reverse: bool
    ) -> Any:
        xp = ctx.xp
        steps = x_proj.shape[0]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        out = xp.empty((steps, *h0.shape), dtype=x_proj.dtype)
        # b_hh added to every step's input projection at once, not once per step.
        x_b = x_proj if b_hh is None else x_proj + b_hh
        saved = []
        h, c = h0, c0
        for t in order:
            h, c, step = _step_forward(xp, x_b[t], h, c, w_hh, None)
            out[t] = h
            saved.append(step)
        ctx.steps, ctx.order = saved, list(order)
        ctx.save_for_backward(w_hh)
        return out, h, c

    @staticmethod
    def backward(ctx: Any, d_out: Any, dh_last: Any, dc_last: Any) -> tuple[Any, ...]:
        (w_hh,) = ctx.saved_tensors
        xp = ctx.xp
        d_x = xp.empty((*d_out.shape[:2], 4 * d_out.shape[2]), dtype=d_out.dtype)
        dw = xp.zeros_like(w_hh)
        dh, dc = dh_last, dc_last
        for step, t in zip(reversed(ctx.steps), reversed(ctx.order), strict=True):
            dh = dh + d_out[t]
            dh, dc = _step_backward(xp, step, dh, dc, w_hh, d_x[t])
            dw += d_x[t].T @ step[-1]  # P̄ᵀ h_prev
        need = ctx.needs_input_grad
        db = d_x.sum(axis=(0, 1)) if need[4] else None
        return d_x, dh, dc, dw if need[3] else None, db, None

    @staticmethod
    def backward_graph(ctx: Any, d_out: Any, dh_last: Any, dc_last: Any) -> tuple[Any, ...]:
        # BPTT on Tensors: the states rebuilt by the step Function (differentiable in the
        # inputs), then each step's graph VJP from the last to the first.
        x_proj, h0, c0, w_hh, b_hh, reverse = ctx.inputs
        steps = x_proj.shape[0]
        order = list(range(steps - 1, -1, -1) if reverse else range(steps))
        pieces = x_proj.unbind(0)
        states = []
        h, c = h0, c0
        for t in order:
            states.append((h, c))
            h, c = LSTMCellFunction.apply(pieces[t], h, c, w_hh, b_hh)
        need = (True, True, True, ctx.needs_input_grad[3], b_hh is not None)
        d_x: list[Any] = [None] * steps
        dw = db = None
        dh, dc = dh_last, dc_last
        for (h_prev, c_prev), t in zip(reversed(states), reversed(order), strict=True):
            dh = dh + d_out[t]
            d_pre, dh, dc, dw_t, db_t = _step_vjp_graph(
                pieces[t], h_prev, c_prev, w_hh, b_hh, dh, dc, need
            )
            d_x[t] = d_pre
            dw = dw_t if dw is None else dw + dw_t
            db = db_t if db is None else db + db_t
        need_x = ctx.needs_input_grad
        return (
            ops.stack(d_x, 0),
            dh,
            dc,
            dw if need_x[3] else None,
            db if need_x[4] else None,
            None,
        )


# ---------------------------------------------------------------------------------- GRU
# With X = x_proj (W_ih x + b_ih) and Hp = h W_hhᵀ + b_hh, each in blocks r, z, n:
#     r = σ(X_r + Hp_r),  z = σ(X_z + Hp_z),  n = tanh(X_n + r ⊙ Hp_n),  h' = n + z ⊙ (h − n)
# VJP, with h̄ the gradient into h':
#     n̄ = h̄ ⊙ (1 − z),  P̄_n = n̄ ⊙ sech²(·),  P̄_z = h̄ ⊙ (h − n) ⊙ σ'(·),
#     P̄_r = P̄_n ⊙ Hp_n ⊙ σ'(·),  X̄ = [P̄_r, P̄_z, P̄_n],  H̄p = [P̄_r, P̄_z, P̄_n ⊙ r],
#     h̄_prev = h̄ ⊙ z + H̄p W_hh,  W̄_hh = H̄pᵀ h,  b̄_hh = Σ_rows H̄p


def _gru_forward(xp: Any, x_proj: Any, h: Any, w_hh: Any, b_hh: Any) -> tuple[Any, ...]:
    h_proj = h @ w_hh.T
    if b_hh is not None:
        h_proj += b_hh
    size = h.shape[-1]
    sig, e = kernels.sigmoid_and_exp(x_proj[:, : 2 * size] + h_proj[:, : 2 * size])
    r, z = sig[:, :size], sig[:, size:]
    pre_n = x_proj[:, 2 * size :] + r * h_proj[:, 2 * size :]
    n = xp.tanh(pre_n)
    return n + z * (h - n), (sig, e, pre_n, n, h_proj, h)


def _gru_backward(xp: Any, saved: tuple[Any, ...], dh: Any, w_hh: Any, d_x: Any, d_hp: Any) -> Any:
    """One GRU step's VJP on arrays, X̄ and H̄p written into ``d_x`` and ``d_hp``;
    returns h̄_prev."""
    sig, e, pre_n, n, h_proj, h = saved
    size = h.shape[-1]
    r, z = sig[:, :size], sig[:, size:]
    slope = kernels.sigmoid_slope(sig, e)
    cosh_n = kernels.safe_cosh(pre_n)
    d_pre_n = dh * (1 - z) / cosh_n / cosh_n
    d_x[:, 2 * size :] = d_pre_n
    d_x[:, size : 2 * size] = dh * (h - n) * slope[:, size:]
    d_x[:, :size] = d_pre_n * h_proj[:, 2 * size :] * slope[:, :size]
    d_hp[:, : 2 * size] = d_x[:, : 2 * size]
    d_hp[:, 2 * size :] = d_pre_n * r
    return dh * z + d_hp @ w_hh


def _gru_gates(x_proj: Any, h: Any, w_hh: Any, b_hh: Any) -> tuple[Any, Any, Any, Any]:
    """(r, z, n, Hp_n) of one GRU step on Tensors, by differentiable ops."""
    h_proj = h @ w_hh.T
    if b_hh is not None:
        h_proj = h_proj + b_hh
    x_r, x_z, x_n = x_proj.chunk(3, -1)
    h_r, h_z, h_n = h_proj.chunk(3, -1)
    r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    return r, z, (x_n + r * h_n).tanh(), h_n


def gru_step_graph(x_proj: Any, h: Any, w_hh: Any, b_hh: Any) -> Any:
    """h' of one GRU step on Tensors, h' = n + z ⊙ (h − n) = (1 − z) ⊙ n + z ⊙ h (the
    ``GRUCell``, and the states ``GRULayerFunction.backward_graph`` rebuilds)."""
    _, z, n, _ = _gru_gates(x_proj, h, w_hh, b_hh)
    return n + z * (h - n)


def _gru_vjp_graph(x_proj: Any, h: Any, w_hh: Any, b_hh: Any, dh: Any) -> tuple[Any, Any, Any, Any]:
    """One GRU step's VJP on Tensors (X̄, h̄_prev, W̄_hh, b̄_hh), the gates recomputed from
    the inputs by differentiable ops."""
    r, z, n, h_n = _gru_gates(x_proj, h, w_hh, b_hh)
    d_pre_n = dh * (1 - z) * (1 - n * n)
    d_pre_z = dh * (h - n) * z * (1 - z)
    d_pre_r = d_pre_n * h_n * r * (1 - r)
    d_x = ops.cat([d_pre_r, d_pre_z, d_pre_n], -1)
    d_hp = ops.cat([d_pre_r, d_pre_z, d_pre_n * r], -1)
    return d_x, dh * z + d_hp @ w_hh, d_hp.T @ h, d_hp.sum(0)


class GRULayerFunction(Function):
    """(out, h_T) = one GRU layer over a sequence, in one node: x_proj (T, N, 3H) holds
    every step's W_ih x + b_ih, h0 (N, H) the initial state; ``reverse`` runs from the last
    step. out (T, N, H) holds each step's h, in the input's order.

    VJP: backpropagation through time with the step VJP above, from the last step to the
    first; W̄_hh and b̄_hh summed over the steps.
    """

    @staticmethod
    def forward(ctx: Any, x_proj: Any, h0: Any, w_hh: Any, b_hh: Any, reverse: bool) -> Any:
        xp = ctx.xp
        steps = x_proj.shape[0]
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        out = xp.empty((steps, *h0.shape), dtype=x_proj.dtype)
        saved = []
        h = h0
        for t in order:
            h, step = _gru_forward(xp, x_proj[t], h, w_hh, b_hh)
            out[t] = h
            saved.append(step)
        ctx.steps, ctx.order = saved, list(order)
        ctx.save_for_backward(w_hh)
        return out, h

    @staticmethod
    def backward(ctx: Any, d_out: Any, dh_last: Any) -> tuple[Any, ...]:
        (w_hh,) = ctx.saved_tensors
        xp = ctx.xp
        d_x = xp.empty((*d_out.shape[:2], 3 * d_out.shape[2]), dtype=d_out.dtype)
        d_hp = xp.empty_like(d_x)
        dw = xp.zeros_like(w_hh)
        dh = dh_last
        for step, t in zip(reversed(ctx.steps), reversed(ctx.order), strict=True):
            dh = _gru_backward(xp, step, dh + d_out[t], w_hh, d_x[t], d_hp[t])
            dw += d_hp[t].T @ step[-1]  # H̄pᵀ h_prev
        need = ctx.needs_input_grad
        db = d_hp.sum(axis=(0, 1)) if need[3] else None
        return d_x, dh, dw if need[2] else None, db, None

    @staticmethod
    def backward_graph(ctx: Any, d_out: Any, dh_last: Any) -> tuple[Any, ...]:
        # BPTT on Tensors: the states rebuilt with differentiable ops, then each step's
        # graph VJP from the last step to the first.
        x_proj, h0, w_hh, b_hh, reverse = ctx.inputs
        steps = x_proj.shape[0]
        order = list(range(steps - 1, -1, -1) if reverse else range(steps))
        pieces = x_proj.unbind(0)
        states = []
        h = h0
        for t in order:
            states.append(h)
            h = gru_step_graph(pieces[t], h, w_hh, b_hh)
        d_x: list[Any] = [None] * steps
        dw = db = None
        dh = dh_last
        for h_prev, t in zip(reversed(states), reversed(order), strict=True):
            d_x[t], dh, dw_t, db_t = _gru_vjp_graph(pieces[t], h_prev, w_hh, b_hh, dh + d_out[t])
            dw = dw_t if dw is None else dw + dw_t
            db = db_t if db is None else db + db_t
        need = ctx.needs_input_grad
        return ops.stack(d_x, 0), dh, dw if need[2] else None, db if need[3] else None, None


# ---------------------------------------------------------------------------------- RNN
# The Elman RNN; its step and VJP are in RNNLayerFunction's docstring.

NONLINEARITIES = ("tanh", "relu")


def rnn_step_graph(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Any, nonlinearity: str) -> Tensor:
    """h' = φ(x_proj + h W_hhᵀ + b_hh) of one RNN step on Tensors, φ = tanh or relu (the
    ``RNNCell``, and the states ``RNNLayerFunction.backward_graph`` rebuilds)."""
    pre = x_proj + linear(h, w_hh, b_hh)
    return pre.relu() if nonlinearity == "relu" else pre.tanh()


def _rnn_vjp_graph(
    h_next: Tensor, w_hh: Tensor, dh: Tensor, nonlinearity: str
) -> tuple[Tensor, Tensor]:
    """One RNN step's VJP on Tensors (``RNNLayerFunction``'s docstring) from the step's
    output h' = φ(P): (P̄, h̄_prev). The slope is read off h' (1 − h'² for tanh), which
    ``rnn_step_graph`` made differentiable; relu's mask [h' > 0] is a constant, its second
    derivative being 0 wherever it exists."""
    slope = (h_next.detach() > 0) if nonlinearity == "relu" else 1 - h_next * h_next
    d_pre = dh * slope
    return d_pre, d_pre @ w_hh


class RNNLayerFunction(Function):
    """(out, h_T) = one Elman RNN layer over a sequence, in one node: x_proj (T, N, H) holds
    every step's W_ih x + b_ih, h0 (N, H) the initial state, ``nonlinearity`` is "tanh" or
    "relu"; ``reverse`` runs from the last step (the backward direction of a bidirectional
    RNN). out (T, N, H) holds each step's h, in the input's order. One step, φ = tanh or relu:

        P = x_proj + h W_hhᵀ + b_hh,   h' = φ(P)

    VJP of a step, with h̄ the gradient into h' (φ' = sech² P for tanh, [h' > 0] for relu):

        P̄ = h̄ ⊙ φ'(P),   x̄_proj = P̄,   h̄_prev = P̄ W_hh,   W̄_hh = P̄ᵀ h,   b̄_hh = Σ_rows P̄

    Through time (BPTT) it runs from the last step to the first, h̄_t = ōut_t + h̄_prev of
    step t + 1, and W̄_hh = Σ_t P̄_tᵀ h_{t−1}, b̄_hh = Σ_t Σ_rows P̄_t. tanh's slope is sech² P
    from P (``kernels.safe_cosh``), as the Tanh primitive takes it: 1 − h² cancels to 0
    where h rounds to ±1. relu's is the mask [h > 0] of the saved outputs.

    The states live in one (T + 1, N, H) array in the inputs' time order, h0 at the end
    where the sequence starts (index 0 forward, T reversed). Then each step's output and
    the state it read are two contiguous slices of it, so W̄_hh is one product.
    """

    @staticmethod
    def forward(
        ctx: Any, x_proj: Any, h0: Any, w_hh: Any, b_hh: Any, nonlinearity: str, reverse: bool
    ) -> Any:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        xp = ctx.xp
        steps = x_proj.shape[0]
        # P of every step: x_proj + b_hh in one addition (a fresh array even without b_hh,
        # since each step adds its h W_hhᵀ in place).
        pre = x_proj + b_hh if b_hh is not None else x_proj.copy()
        states = xp.empty((steps + 1, *h0.shape), dtype=pre.dtype)
        states[steps if reverse else 0] = h0
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            read, write = (t + 1, t) if reverse else (t, t + 1)
            pre[t] += states[read] @ w_hh.T
            if nonlinearity == "relu":
                xp.maximum(pre[t], 0, out=states[write])
            else:
                xp.tanh(pre[t], out=states[write])
        ctx.nonlinearity, ctx.reverse = nonlinearity, reverse
        if nonlinearity == "relu":
            ctx.save_for_backward(w_hh, states)  # the mask comes from the outputs
        else:
            ctx.save_for_backward(w_hh, states, pre)
        out = states[:-1] if reverse else states[1:]
        h_last = states[0] if reverse else states[steps]
        # Copies: the outputs are the caller's to change in place, the states are backward's.
        return out.copy(), h_last.copy()

    @staticmethod
    def backward(ctx: Any, d_out: Any, dh_last: Any) -> tuple[Any, ...]:
        saved = ctx.saved_tensors
        w_hh, states = saved[0], saved[1]
        xp, reverse, relu = ctx.xp, ctx.reverse, ctx.nonlinearity == "relu"
        steps, hidden = d_out.shape[0], d_out.shape[2]
        outs, reads = (states[:-1], states[1:]) if reverse else (states[1:], states[:-1])
        d_pre = xp.empty_like(d_out)  # P̄ in time order, which is also x̄_proj
        dh = dh_last
        # The slope is taken step by step, on rows still in cache: one pass over the whole
        # (T, N, H) before the loop measured slower at row-MNIST's shape.
        for t in range(steps) if reverse else range(steps - 1, -1, -1):
            grad = dh + d_out[t]  # h̄_t: from the output and from step t + 1
            if relu:
                xp.multiply(grad, outs[t] > 0, out=d_pre[t])
            else:  # h̄ sech² P as h̄ / cosh P / cosh P, as the Tanh primitive takes it
                cosh = kernels.safe_cosh(saved[2][t])
                grad /= cosh
                xp.divide(grad, cosh, out=d_pre[t])
            dh = d_pre[t] @ w_hh  # h̄ of the state this step read (at the first step, h0)
        need = ctx.needs_input_grad
        flat = d_pre.reshape(-1, hidden)
        dw = flat.T @ reads.reshape(-1, hidden) if need[2] else None  # Σ_t P̄_tᵀ h_{t−1}
        db = flat.sum(axis=0) if need[3] else None
        return d_pre if need[0] else None, dh if need[1] else None, dw, db, None, None

    @staticmethod
    def backward_graph(ctx: Any, d_out: Any, dh_last: Any) -> tuple[Any, ...]:
        # BPTT on Tensors: the states rebuilt by the cell's step formula (differentiable in
        # the inputs), then each step's graph VJP from the last step to the first.
        x_proj, h0, w_hh, b_hh, nonlinearity, reverse = ctx.inputs
        steps, hidden = x_proj.shape[0], h0.shape[-1]
        order = list(range(steps - 1, -1, -1) if reverse else range(steps))
        pieces = x_proj.unbind(0)
        reads: list[Any] = [None] * steps  # the state step t read, by time
        outs: list[Any] = [None] * steps
        h = h0
        for t in order:
            reads[t] = h
            h = outs[t] = rnn_step_graph(pieces[t], h, w_hh, b_hh, nonlinearity)
        d_x: list[Any] = [None] * steps
        dh = dh_last
        for t in reversed(order):
            d_x[t], dh = _rnn_vjp_graph(outs[t], w_hh, dh + d_out[t], nonlinearity)
        d_pre = ops.stack(d_x, 0)
        flat = d_pre.reshape(-1, hidden)
        need = ctx.needs_input_grad
        dw = flat.T @ ops.stack(reads, 0).reshape(-1, hidden) if need[2] else None
        db = flat.sum(0) if need[3] else None
        return d_pre if need[0] else None, dh if need[1] else None, dw, db, None, None
