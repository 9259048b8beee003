"""``norm``: vector p-norms ‖x‖ₚ = (Σ |x|ᵖ)^(1/p), composed from primitives.

The compositions are plain (sum of squares then sqrt, amax of |x|…) except at zero, where
the p-th root has an infinite slope and |x|ᵖ⁻¹ is infinite for p < 1: there a constant
mask (``Where``) takes the root's (or the power's) place, so the gradient is 0 where
PyTorch defines it as 0, instead of the NaN of 0 · ∞.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.errors import DTypeError
from chainrule.ops.arguments import Dim, axes_of
from chainrule.ops.elementwise import Abs, Pow, Sqrt, Where
from chainrule.ops.reduce import Amax, Sum
from chainrule.tensor import Tensor


def norm(x: Tensor, p: float | str = 2, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """As ``torch.norm`` (and ``torch.linalg.vector_norm``): the p-norm of x over ``dim``
    (every element by default), ‖x‖ₚ = (Σ |xᵢ|ᵖ)^(1/p).

    ``p``: 2 (the default; "fro" is the same here) is the Euclidean length, 1 the sum of
    |xᵢ|, ``inf`` the largest |xᵢ|, ``-inf`` the smallest, 0 the number of non-zero
    elements (not differentiable), any other float the formula above.

    Gradient: ∂‖x‖ₚ/∂xᵢ = sign(xᵢ) |xᵢ|ᵖ⁻¹ / ‖x‖ₚᵖ⁻¹ (xᵢ / ‖x‖ for p = 2); where ‖x‖ₚ = 0,
    and at xᵢ = 0 for p < 1, it is 0, as in PyTorch. For ±inf, tied extremes share the
    gradient equally.

    Args:
        x: a floating-point tensor.
        p: the order of the norm.
        dim: a dim or a tuple of dims to take the norm over; None: all of them.
        keepdim: keep the reduced dims, with size 1.

    Example:
        >>> cr.norm(cr.tensor([3.0, -4.0]))
        tensor(5.)
        >>> cr.tensor([[3.0, -4.0], [1.0, 1.0]]).norm(p=1, dim=1)
        tensor([7., 2.])
    """
    if x.dtype.kind != "f":
        raise DTypeError(
            f"norm: needs a floating-point tensor, got {x.dtype}; convert it first with "
            f".float() or .double()"
        )
    if p == "fro":
        p = 2
    if isinstance(p, str):
        raise ValueError(f"norm: p={p!r} is not supported; use a number, inf or 'fro'")
    axes = axes_of(x, dim, "norm")
    if p == math.inf or p == -math.inf:
        return Amax.apply(Abs.apply(x), axes, keepdim, p > 0)
    if p == 0:  # a count: not differentiable, as in PyTorch
        nonzero = Tensor(x.data != 0).to(x.dtype)
        return Sum.apply(nonzero, axes, keepdim)
    if p == 1:
        return Sum.apply(Abs.apply(x), axes, keepdim)
    if p == 2:
        return _root(Sum.apply(x * x, axes, keepdim), 2)
    zero = x.data == 0
    # |x|ᵖ, with its value at 0 (0, or ∞ for p < 0) taken as a constant there, so that no
    # infinite slope (p < 1) meets the zero slope of |x| at 0.
    at_zero = 0.0 if p > 0 else math.inf
    powers = Where.apply(zero, at_zero, Pow.apply(_nonzero(x, zero), p))
    return _root(Sum.apply(powers, axes, keepdim), p)


def _nonzero(x: Tensor, zero: Any) -> Tensor:
    """|x| with 1 in place of its zeros (a constant there): safe to raise to any power."""
    return Where.apply(zero, 1.0, Abs.apply(x))


def _root(total: Tensor, p: float) -> Tensor:
    """total^(1/p), with value 0 and gradient 0 where total = 0 (its slope is infinite
    there; PyTorch defines the norm's gradient at 0 as 0)."""
    zero = total.data == 0
    safe = Where.apply(zero, 1.0, total)
    root = Sqrt.apply(safe) if p == 2 else Pow.apply(safe, 1.0 / p)
    return Where.apply(zero, 0.0, root)
