"""The array pieces the update rules share: scratch space, the L2/maximize gradient, L1.

Each rule writes into ``param.data`` in place with ``out=`` ufuncs; these helpers keep
that allocation-free and write each shared formula once. They call the array module of
the arrays they are given (NumPy or CuPy), so one formula serves every device.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend


class Workspace:
    """Scratch arrays shared by all parameters, so an update allocates no temporaries.

    ``get(like, slot)`` returns a view of shape ``like.shape`` into a flat buffer kept per
    (device, dtype, slot) and sized to the largest parameter seen: a few slots cover every
    rule, and the memory is that of the largest parameter, not of all of them. Each buffer
    lives on the device of the arrays it serves (made with their array module).
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[Any, Any, int], Any] = {}

    def get(self, like: Any, slot: int) -> Any:
        key = (backend.device_of(like), like.dtype, slot)
        buf = self._buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = backend.get_array_module(like).empty(like.size, like.dtype)
            self._buffers[key] = buf
        return buf[: like.size].reshape(like.shape)


def effective_grad(w: Any, g: Any, weight_decay: float, maximize: bool, scratch: Any) -> Any:
    """The gradient a rule follows: d = ±∂C/∂w + λ·w (sign − for ``maximize``).

    Returns ``g`` itself when there is nothing to add (no copy); otherwise writes into
    ``scratch`` and returns it.
    """
    xp = backend.get_array_module(w)
    if weight_decay != 0:
        xp.multiply(w, weight_decay, out=scratch)
        if maximize:
            xp.subtract(scratch, g, out=scratch)
        else:
            xp.add(scratch, g, out=scratch)
        return scratch
    if maximize:
        return xp.negative(g, out=scratch)
    return g


def soft_threshold_(w: Any, threshold: Any, scratch: Any) -> None:
    """The L1 proximal step, in place: w ← sign(w)·max(|w| − t, 0).

    This is the exact minimiser of ½‖v − w‖² + t‖v‖₁: every weight within t of zero
    becomes exactly 0.0 (its sign may read −0.0), the others move t towards zero. Adding
    λ₁·sign(w) to the gradient instead overshoots zero every step and leaves the weight
    oscillating around it, never exactly 0.

    Args:
        w: the weights (changed in place).
        threshold: t = η·λ₁, a number or an array of w's shape (per-weight step sizes).
        scratch: an array of w's shape to work in.
    """
    xp = backend.get_array_module(w)
    xp.abs(w, out=scratch)
    xp.subtract(scratch, threshold, out=scratch)
    xp.maximum(scratch, 0, out=scratch)
    xp.copysign(scratch, w, out=w)
