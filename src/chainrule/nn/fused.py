"""The layers' own Functions: each backward is the closed-form formula, not a chain of
elementary ops (the lecture's reason to have modules at all).

Each docstring gives the forward and its VJP, with ``g`` the gradient flowing into the
output. The activations that the core already fuses (ReLU, Sigmoid, Tanh, Softmax,
LogSoftmax, Softplus) are not repeated here: the modules call the core primitives.
Names end in ``Function`` so they stay apart from the core primitives (``ReLU``) and from
the modules (``nn.Linear``) in ``chainrule.autograd.function.PRIMITIVES``.

Each Function has two backwards with one formula: ``backward`` on arrays (the fast first
order) and ``backward_graph``, the same VJP written with chainrule ops on Tensors, which the
engine calls under ``create_graph=True`` so the gradient can be differentiated again. The
numerically delicate pieces (σ, softplus) come from ``chainrule.ops.kernels`` in ``backward``
and from the primitives built on those kernels (``Tensor.sigmoid``) in ``backward_graph``.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend, ops
from chainrule.autograd.function import Function
from chainrule.nn import host_threads
from chainrule.nn.device_arrays import random_on
from chainrule.ops import kernels
from chainrule.tensor import Tensor

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
        # Leading dims become rows of one product: NumPy's matmul of a (N, S, in) stack
        # would run N small products (2.7x slower at (32, 64, 128) · (128, 512)).
        rows = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        # For a few rows, (W Xᵀ)ᵀ (the same numbers as X Wᵀ) runs faster in BLAS with W as
        # stored than with W transposed (see _SMALL_BATCH); the copy keeps Y C-ordered, so
        # the elementwise ops after it stay on contiguous memory.
        if rows.shape[0] <= _SMALL_BATCH:
            y = host_threads.matmul(weight, rows.T).T.copy()
        else:
            y = host_threads.matmul(rows, weight.T)
        if bias is not None:
            y += bias
        ctx.save_for_backward(rows, weight)
        return y if x.ndim == 2 else y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        rows, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        lead = g.shape[:-1]  # X's leading dims are Y's, so dX's shape is (*lead, in)
        if g.ndim != 2:
            g = g.reshape(-1, weight.shape[0])
        dx = None
        if need_x:
            dx = host_threads.matmul(g, weight)
            if len(lead) != 1:
                dx = dx.reshape(*lead, weight.shape[1])
        # g.T @ x is a fresh C-ordered array, so the engine can hand it to .grad as is.
        dw = host_threads.matmul(g.T, rows) if need_w else None
        db = g.sum(axis=0) if need_b else None
        return dx, dw, db

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, Any]:
        x, weight, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = g @ weight if need_x else None
        n_out, n_in = weight.shape
        rows_g, rows_x = g.reshape(-1, n_out), x.reshape(-1, n_in)
        dw = rows_g.T @ rows_x if need_w else None
        db = rows_g.sum(0) if need_b else None
        return dx, dw, db


class DropoutFunction(Function):
    """y = x · m / (1 − p), with m ~ Bernoulli(1 − p) drawn per element (inverted
    dropout: the expectation of y is x, so evaluation needs no rescaling).

    VJP: dx = g · m / (1 − p), the same scaled mask.

    The mask is drawn on x's device from ``generator`` (``nn.device_arrays.random_on``).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, p: float, generator: Any) -> Any:
        keep = random_on(generator, x.shape, x.dtype, backend.device_of(x)) >= p
        mask = keep.astype(x.dtype)
        mask *= (1.0 / (1.0 - p)) if p < 1 else 0.0
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        (mask,) = ctx.saved_tensors
        return g * mask, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        (mask,) = ctx.saved_tensors  # a constant: the same mask at every order
        return g * mask, None, None


class LeakyReLUFunction(Function):
    """y = x for x > 0, a·x otherwise.   VJP: dx = g · (1 if x > 0 else a)."""

    @staticmethod
    def forward(ctx: Any, x: Any, slope: float) -> Any:
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return ctx.xp.where(positive, x, x * slope)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        (positive,) = ctx.saved_tensors
        return ctx.xp.where(positive, g, g * ctx.slope), None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        (positive,) = ctx.saved_tensors
        return ops.where(positive, g, g * ctx.slope), None


class ELUFunction(Function):
    """y = x for x > 0, α(eˣ − 1) otherwise.

    VJP: dx = g for x > 0, g · α eˣ otherwise. (That is g · (y + α), but y + α cancels for
    x ≪ 0: at x = −20 it is exactly 0 in float32, where α eˣ is 2.1e-9.)
    """

    @staticmethod
    def forward(ctx: Any, x: Any, alpha: float) -> Any:
        positive = x > 0
        xp = ctx.xp
        negative_part = xp.minimum(x, 0)  # eˣ only where it cannot overflow
        ctx.save_for_backward(positive, negative_part)
        ctx.alpha = alpha
        return xp.where(positive, x, alpha * xp.expm1(negative_part))

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        positive, negative_part = ctx.saved_tensors
        xp = ctx.xp
        return xp.where(positive, g, g * (ctx.alpha * xp.exp(negative_part))), None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        positive = ctx.saved_tensors[0]
        slope = ctx.inputs[0].clamp(max=0).exp() * ctx.alpha
        return ops.where(positive, g, g * slope), None


class SiLUFunction(Function):
    """y = x · σ(x) (also called swish).   VJP: dx = g · σ(x) · (1 + x (1 − σ(x))).

    σ is ``kernels.sigmoid``, exact in both tails (½(1 + tanh(x/2)) made the float32
    gradient exactly 0 at x = −20, where it is −3.9e-8).
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        s = kernels.sigmoid(x)
        ctx.save_for_backward(x, s)
        return _exact_left_tail(x * s, x, _SILU_TAIL, _silu)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        x, s = ctx.saved_tensors
        slope = _exact_left_tail(_silu_slope(x, s), x, _SILU_TAIL, _silu_slope)
        return g * slope

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> Tensor:
        x = ctx.inputs[0]
        s = x.sigmoid()
        return g * s * (1 + x * (1 - s))


def _silu(x: Any) -> Any:
    return x * kernels.sigmoid(x)


def _silu_slope(x: Any, s: Any = None) -> Any:
    """dy/dx = σ(x)(1 + x(1 − σ(x))), given s = σ(x) or computing it."""
    s = kernels.sigmoid(x) if s is None else s
    return s * (1 + x * (1 - s))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


class GELUFunction(Function):
    """y = x · Φ(x), Φ the standard normal CDF, Φ(x) = ½ erfc(−x/√2).

    VJP: dx = g · (Φ(x) + x · φ(x)), φ(x) = e^(−x²/2)/√(2π).

    With ``approximate="tanh"``: y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³), computed
    as y = x · s with s = ½(1 + tanh u) = σ(2u), and
    dx = g · s · (1 + 2x (1 − s) u′), u′ = √(2/π)(1 + 3·0.044715x²).
    (Φ as ½(1 + erf) and s as ½(1 + tanh u) both cancel to 0 for x ≪ 0 in float32.)
    """

    @staticmethod
    def forward(ctx: Any, x: Any, approximate: str) -> Any:
        ctx.approximate = approximate
        gate = _gelu_gate(x, approximate)
        ctx.save_for_backward(x, gate)
        tail = _GELU_TAIL[approximate]
        return _exact_left_tail(x * gate, x, tail, lambda t: t * _gelu_gate(t, approximate))

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        x, gate = ctx.saved_tensors
        approximate = ctx.approximate
        slope = _exact_left_tail(
            _gelu_slope(x, gate, approximate),
            x,
            _GELU_TAIL[approximate],
            lambda t: _gelu_slope(t, _gelu_gate(t, approximate), approximate),
        )
        return g * slope, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        x = ctx.inputs[0]
        if ctx.approximate == "tanh":
            s = ((x + x * x * x * _GELU_CUBIC) * (2 * _SQRT_2_OVER_PI)).sigmoid()
            du = (x * x * (3 * _GELU_CUBIC) + 1) * _SQRT_2_OVER_PI
            return g * s * (x * (1 - s) * du * 2 + 1), None
        pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
        return g * (NormalCDFFunction.apply(x) + x * pdf), None


def _gelu_gate(x: Any, approximate: str) -> Any:
    """Φ(x), or σ(2u) for the tanh form."""
    if approximate == "tanh":
        return kernels.sigmoid(2 * _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))
    return _normal_cdf(x)


def _gelu_slope(x: Any, gate: Any, approximate: str) -> Any:
    """dy/dx: Φ(x) + x φ(x), or s(1 + 2x(1 − s)u′) for the tanh form."""
    if approximate == "tanh":
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
        return gate * (1 + 2 * x * (1 - gate) * du)
    return gate + x * _normal_pdf(x)


# Left of these inputs the gates σ(x), σ(2u), Φ(x) fall towards float32's smallest normal
# number (1.2e-38), where they lose precision and then vanish, while x · gate (up to 100x
# larger) is still a normal number: there the few elements are recomputed in float64.
_SILU_TAIL = -80.0
_GELU_TAIL = {"none": -5.0, "tanh": -5.0}


def _exact_left_tail(out: Any, x: Any, start: float, formula: Any) -> Any:
    """``out`` (a fresh array of ``formula(x)`` values) with the float32 elements where
    x < ``start`` replaced by ``formula`` evaluated in float64.

    On the CPU only the few tail elements are recomputed, after asking whether there are
    any; on a GPU that question would wait for the device (a sync per layer), so the
    float64 formula runs on every element and a ``where`` picks the tail, without a sync.
    """
    if x.dtype != backend.float32:
        return out
    tail = x < start
    if backend.is_device_array(x):
        xp = backend.get_array_module(x)
        exact = formula(x.astype(backend.float64)).astype(out.dtype)
        return xp.where(tail, exact, out)
    if tail.any():
        out[tail] = formula(x[tail].astype(backend.float64))
    return out


class NormalCDFFunction(Function):
    """y = Φ(x) = ½ erfc(−x/√2), the standard normal CDF (GELU's gate; no primitive has
    erf, so GELU's second derivative needs this node).

    VJP: dx = g · φ(x), φ(x) = e^(−x²/2)/√(2π).
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return _normal_cdf(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * _normal_pdf(x)

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> Tensor:
        x = ctx.inputs[0]
        return g * (x * x * -0.5).exp() * _INV_SQRT_2PI


def _normal_pdf(x: Any) -> Any:
    """φ(x) = e^(−x²/2)/√(2π) on arrays."""
    return _INV_SQRT_2PI * backend.get_array_module(x).exp(-0.5 * x * x)


def _normal_cdf(x: Any) -> Any:
    """Φ(x) = ½ erfc(−x/√2) on arrays: through erfc, not ½(1 + erf(x/√2)), so the left
    tail keeps its relative precision (Φ(−6) = 9.9e-10, where 1 + erf cancels to 0)."""
    return 0.5 * _erfc(-_INV_SQRT_2 * x)


def _erfc(x: Any) -> Any:
    """erfc = 1 − erf, elementwise, on x's device: ``backend.erfc`` (CuPy's on a GPU,
    SciPy's on the CPU, exact to float64 rounding); on a CPU without SciPy, the Numerical
    Recipes Chebyshev fit of erfc (relative error below 1.2e-7 for x ≥ 0, enough for
    float32 training; erfc(−z) = 2 − erfc(z)).
    """
    try:
        values = backend.erfc(x)
    except ImportError:  # SciPy is optional on the CPU
        return _erfc_chebyshev(x)
    return values.astype(x.dtype, copy=False)


# The Numerical Recipes coefficients of erfc(z) ≈ t·exp(−z² + P(t)), t = 1/(1 + z/2), z ≥ 0.
_ERFC_COEFFICIENTS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erfc_chebyshev(x: Any) -> Any:
    xp = backend.get_array_module(x)
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = xp.zeros_like(t)
    for c in reversed(_ERFC_COEFFICIENTS):  # Horner's rule
        poly = poly * t + c
    upper = t * xp.exp(poly - z * z)
    return xp.where(x >= 0, upper, 2.0 - upper)
