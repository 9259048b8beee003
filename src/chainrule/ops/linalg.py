"""Matrix products."""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.tensor import Tensor


class MatMul(Function):
    """Y = A @ B, with NumPy's rules: 1-D operands become a row (A) or a column (B) and
    leading axes broadcast as a batch.

    VJP: dA = G Bᵀ, dB = Aᵀ G (on the last two axes; the engine sums broadcast batch axes).
    For the lecture's Linear layer y = W x this is dC/dx = Wᵀ dC/dy, dC/dW = dC/dy xᵀ.
    """

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
        ctx.save_for_backward(a, b)
        return ctx.xp.matmul(a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            return (g * b if need_a else None), (g * a if need_b else None)
        # Give 1-D operands their implied row/column axis so one formula covers all cases.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        da = db = None
        if need_a:
            da = xp.matmul(g, xp.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                da = da[..., 0, :]
        if need_b:
            db = xp.matmul(xp.swapaxes(a2, -1, -2), g)
            if b.ndim == 1:
                db = db[..., 0]
        return da, db

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = (x if isinstance(x, Tensor) else _constant(x) for x in ctx.inputs)
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if need_a else None), (g * a if need_b else None)
        # The same formula on Tensors: 1-D operands get their implied row/column axis.
        a2 = a.unsqueeze(0) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        if a.ndim == 1:
            g = g.unsqueeze(-2)
        if b.ndim == 1:
            g = g.unsqueeze(-1)
        da = db = None
        if need_a:
            da = MatMul.apply(g, b2.transpose(-1, -2))
            if a.ndim == 1:
                da = da.squeeze(-2)
        if need_b:
            db = MatMul.apply(a2.transpose(-1, -2), g)
            if b.ndim == 1:
                db = db.squeeze(-1)
        return da, db


def _constant(x: Any) -> Tensor:
    """A non-Tensor operand of matmul (an array or nested lists) as a constant Tensor, on
    its own device."""
    return Tensor(backend.get_array_module(x).asarray(x))
