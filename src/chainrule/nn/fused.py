"""The layers' own Functions: each backward is the closed-form formula, not a chain of
elementary ops (the lecture's reason to have modules at all).

Each docstring gives the forward and its VJP, with ``g`` the gradient flowing into the
output. The activations that the core already fuses (ReLU, Sigmoid, Tanh, Softmax,
LogSoftmax, Softplus) are not repeated here: the modules call the core primitives.
Names end in ``Function`` so they stay apart from the core primitives (``ReLU``) and from
the modules (``nn.Linear``) in ``chainrule.autograd.function.PRIMITIVES``.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.autograd.function import Function
from chainrule.backend import xp

# Up to this many rows, LinearFunction computes (W Xᵀ)ᵀ instead of X Wᵀ (see forward).
# Measured with OpenBLAS on a 2-core Xeon: ~1.6x faster at 32 rows, ~1.15x at 96, ~10%
# slower at 128.
_SMALL_BATCH = 96


class LinearFunction(Function):
    """Y = X Wᵀ + b for X of shape (…, in), W of shape (out, in), b of shape (out,).

    VJP (the lecture's formulas in batch form, leading dims flattened into rows):
    dX = G W,   dW = Gᵀ X,   db = Σ_rows G.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, bias: Any) -> Any:
        # For a few rows, (W Xᵀ)ᵀ (the same numbers as X Wᵀ) runs faster in BLAS with W as
        # stored than with W transposed (see _SMALL_BATCH); the copy keeps Y C-ordered, so
        # the elementwise ops after it stay on contiguous memory.
        small = x.ndim == 2 and x.shape[0] <= _SMALL_BATCH
        y = (weight @ x.T).T.copy() if small else x @ weight.T
        if bias is not None:
            y += bias
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = g @ weight if need_x else None
        if g.ndim != 2:
            g = g.reshape(-1, weight.shape[0])
            x = x.reshape(-1, weight.shape[1])
        # g.T @ x is a fresh C-ordered array, so the engine can hand it to .grad as is.
        dw = g.T @ x if need_w else None
        db = g.sum(axis=0) if need_b else None
        return dx, dw, db


class DuplicateFunction(Function):
    """(y₁, …, yₙ) = (x, …, x): the lecture's Duplicate module, one input fanned out.

    VJP: dx = g₁ + … + gₙ (an output nobody used contributes zeros).
    The outputs share the input's memory, as views would.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, n: int) -> Any:
        return tuple(x for _ in range(n))

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple[Any, None]:
        total = grads[0] + grads[1] if len(grads) > 1 else grads[0].copy()
        for g in grads[2:]:
            total += g  # total is our own array: adding in place is safe
        return total, None


class AddNFunction(Function):
    """y = x₁ + … + xₙ (inputs broadcast together): the lecture's Add module.

    VJP: dxₖ = g for every k.
    """

    @staticmethod
    def forward(ctx: Any, *xs: Any) -> Any:
        total = xs[0] + xs[1]
        for x in xs[2:]:
            total = total + x  # out of place: broadcasting may still grow the shape
        return total

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        return tuple(g if need else None for need in ctx.needs_input_grad)


class MaxNFunction(Function):
    """y = max(x₁, …, xₙ) elementwise (inputs broadcast together): the lecture's Max.

    VJP: dxₖ = g · [xₖ = y] / #{j : xⱼ = y}: the gradient goes to the largest input, and
    inputs tied for the maximum share it equally (with two inputs this is the core
    ``maximum``'s rule).
    """

    @staticmethod
    def forward(ctx: Any, *xs: Any) -> Any:
        y = xp.maximum(xs[0], xs[1])
        for x in xs[2:]:
            y = xp.maximum(y, x)
        ctx.save_for_backward(y, *xs)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        y, *xs = ctx.saved_tensors
        winners = [x == y for x in xs]
        count = winners[0].astype(g.dtype)
        for w in winners[1:]:
            count = count + w
        share = g / count
        return tuple(
            share * w if need else None
            for w, need in zip(winners, ctx.needs_input_grad, strict=True)
        )


class DropoutFunction(Function):
    """y = x · m / (1 − p), with m ~ Bernoulli(1 − p) drawn per element (inverted
    dropout: the expectation of y is x, so evaluation needs no rescaling).

    VJP: dx = g · m / (1 − p), the same scaled mask.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, p: float, generator: Any) -> Any:
        keep = generator.random(x.shape, x.dtype) >= p
        mask = keep.astype(x.dtype)
        mask *= (1.0 / (1.0 - p)) if p < 1 else 0.0
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        (mask,) = ctx.saved_tensors
        return g * mask, None, None


class LeakyReLUFunction(Function):
    """y = x for x > 0, a·x otherwise.   VJP: dx = g · (1 if x > 0 else a)."""

    @staticmethod
    def forward(ctx: Any, x: Any, slope: float) -> Any:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return xp.where(positive, x, x * slope)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (positive,) = ctx.saved_tensors
        return xp.where(positive, g, g * ctx.slope), None


class ELUFunction(Function):
    """y = x for x > 0, α(eˣ − 1) otherwise.   VJP: dx = g for x > 0, g · (y + α) otherwise."""

    @staticmethod
    def forward(ctx: Any, x: Any, alpha: float) -> Any:
        positive = x > 0
        y = xp.where(positive, x, alpha * xp.expm1(xp.minimum(x, 0)))
        ctx.save_for_backward(positive, y)
        ctx.alpha = alpha
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        positive, y = ctx.saved_tensors
        return xp.where(positive, g, g * (y + ctx.alpha)), None


class SiLUFunction(Function):
    """y = x · σ(x) (also called swish).   VJP: dx = g · σ(x) · (1 + x (1 − σ(x)))."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        s = 0.5 * (1 + xp.tanh(0.5 * x))  # σ(x) without overflow
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x, s = ctx.saved_tensors
        return g * s * (1 + x * (1 - s))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELUFunction(Function):
    """y = x · Φ(x), Φ the standard normal CDF, Φ(x) = ½(1 + erf(x/√2)).

    VJP: dx = g · (Φ(x) + x · φ(x)), φ(x) = e^(−x²/2)/√(2π).
    With ``approximate="tanh"``: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), and
    dx = g · (½(1 + tanh u) + ½x(1 − tanh² u) · √(2/π)(1 + 3·0.044715x²)).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, approximate: str) -> Any:
        ctx.approximate = approximate
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + _erf(x * _INV_SQRT_2))
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        x, saved = ctx.saved_tensors
        if ctx.approximate == "tanh":
            t = saved
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), None
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return g * (saved + x * pdf), None


def _erf(x: Any) -> Any:
    """erf, elementwise. NumPy has none: SciPy's (exact to float64 rounding) when it is
    installed, else the Numerical Recipes Chebyshev fit (relative error below 1.2e-7,
    enough for float32 training).
    """
    try:
        from scipy.special import erf
    except ImportError:
        z = xp.abs(x)
        t = 1.0 / (1.0 + 0.5 * z)
        poly = (
            -z * z
            - 1.26551223
            + t
            * (
                1.00002368
                + t
                * (
                    0.37409196
                    + t
                    * (
                        0.09678418
                        + t
                        * (
                            -0.18628806
                            + t
                            * (
                                0.27886807
                                + t
                                * (
                                    -1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))
                                )
                            )
                        )
                    )
                )
            )
        )
        return xp.sign(x) * (1.0 - t * xp.exp(poly))
    return erf(x).astype(x.dtype, copy=False)
