"""The array kernels behind the numerically delicate primitives, one of each.

Every op or fused layer that needs a sigmoid, a softplus or a log-softmax calls these, so
each formula exists once and its precision is fixed in one place (a second copy of the
sigmoid written as ½(1 + tanh(x/2)) once made SiLU's gradient exactly 0 at x = −20 in
float32). They take and return arrays of the backend and record nothing; the primitives
in ``elementwise`` and ``reduce`` wrap them with their gradients.

Each kernel runs on the device of its argument: it asks the backend for that array's
library (``get_array_module``: one type check on the CPU), so the ops and the fused layers
that call it need not pass one.
"""

from __future__ import annotations

from typing import Any

from chainrule.backend import get_array_module

# Largest argument of exp that stays finite in the float dtype of that many bytes (also
# the |x| beyond which cosh overflows): clipping there replaces np.errstate, which costs
# more than the whole op on a small tensor, and changes only results that underflow.
_EXP_LIMIT = {2: 11.0, 4: 88.0, 8: 709.0}


def sigmoid(x: Any) -> Any:
    """σ(x) = 1 / (1 + e⁻ˣ), with full relative precision in both tails.

    Not ½(1 + tanh(x/2)): its 1 + tanh cancels catastrophically for x < 0, so sigmoid(−20)
    came out as 0 in float32 instead of 2.06e-9.
    """
    return sigmoid_and_exp(x)[0]


def sigmoid_and_exp(x: Any) -> tuple[Any, Any]:
    """(σ(x), e⁻ˣ): the sigmoid and the exponential it was computed from.

    e⁻ˣ is clipped where it would overflow (x below −88 in float32), where σ underflows
    anyway. The primitive keeps e⁻ˣ for its gradient (``sigmoid_slope``).
    """
    xp = get_array_module(x)
    e = xp.exp(xp.minimum(-x, _EXP_LIMIT.get(x.dtype.itemsize, 88.0)))
    return xp.reciprocal(e + 1), e


def sigmoid_slope(y: Any, e: Any) -> Any:
    """σ′ = σ (1 − σ) from σ and e⁻ˣ, exact in both tails: 1 − σ is taken as e⁻ˣ σ, where
    computed from σ alone it cancels to 0 once σ rounds to 1 (σ′(20) would be 0 instead
    of 2.1e-9 in float32)."""
    return y * (e * y)


def safe_cosh(x: Any) -> Any:
    """cosh x with x clipped where cosh would overflow the dtype (there 1/cosh² x
    underflows anyway). For tanh′ x = sech² x = 1 / cosh² x, computed from x: 1 − tanh² x
    cancels to 0 once tanh rounds to ±1 (|x| ≳ 9 in float32), where sech² x is still a
    normal number up to |x| ≈ 44."""
    # cosh is even: cosh(min(|x|, limit)) is the clipped cosh, in two fast ufuncs (dtype.name
    # and xp.clip cost more than the whole backward of a small tensor).
    xp = get_array_module(x)
    return xp.cosh(xp.minimum(xp.abs(x), _EXP_LIMIT.get(x.dtype.itemsize, 88.0)))


def softplus(x: Any) -> Any:
    """log(1 + eˣ) as max(x, 0) + log1p(e^−|x|): finite and exact for any x (at x = 1e4 it
    gives 1e4, where the naive form overflows past x ≈ 88 in float32)."""
    xp = get_array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def shifted_exp(x: Any, axis: int | tuple[int, ...] | None) -> tuple[Any, Any, Any, Any]:
    """z = x − m, eᶻ and s = Σ eᶻ (reduced axes kept, size 1), with m = max x.

    Taking the maximum out first keeps eᶻ ≤ 1, so nothing overflows. Callers build their
    results from z and s rather than from m + log s: at x ≈ 1000 in float32, m + log s is
    rounded to a spacing of 6e-5, and subtracting it from x again would lose that much.
    """
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    # An all -inf (or inf) slice would give inf - inf = nan; leave such slices unshifted.
    m = xp.where(xp.isfinite(m), m, 0)
    z = x - m
    e = xp.exp(z)
    return z, e, e.sum(axis=axis, keepdims=True), m


def log_softmax(x: Any, axis: int) -> tuple[Any, Any]:
    """(log p, p) with p = softmax(x) along ``axis``: the lecture's stable LogSoftMax,
    x − m − log Σ eˣ⁻ᵐ, exact at ±1000 even in float32."""
    z, e, total, _ = shifted_exp(x, axis)
    z -= get_array_module(total).log(total)
    e /= total
    return z, e
