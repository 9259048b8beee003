"""Elementwise primitives. Each docstring gives the forward and its VJP, where ``g`` is the
gradient flowing into the output. Inputs broadcast as in NumPy; the engine sums each
gradient back to its input's shape. Dtypes promote as in PyTorch (``promotion.promote``).
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend, cuda_kernels
from chainrule.autograd.function import Function
from chainrule.ops import kernels
from chainrule.ops.promotion import floating, is_integral, promote
from chainrule.tensor import Tensor

_host_xp = backend.xp  # NumPy: the CPU's library, for `ctx.xp is not _host_xp` (on a GPU)


class Add(Function):
    """y = a + b.   VJP: da = g, db = g."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        return a + b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        return g, g

    backward_graph = backward  # passing g on is the same for an array and a Tensor


class Sub(Function):
    """y = a − b.   VJP: da = g, db = −g."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        return a - b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        return g, (-g if ctx.needs_input_grad[1] else None)

    backward_graph = backward  # operators only: the same code for arrays and Tensors


class Mul(Function):
    """y = a · b.   VJP: da = g · b, db = g · a."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        da, db = ctx.needs_input_grad
        return (g * b if da else None), (g * a if db else None)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.inputs
        da, db = ctx.needs_input_grad
        return (g * b if da else None), (g * a if db else None)


class Div(Function):
    """y = a / b.   VJP: da = g / b, db = −g · a / b²  (= −g · y / b)."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        if is_integral(a) and is_integral(b):
            # True division of integers gives the default float dtype, as in PyTorch.
            a = ctx.xp.asarray(a, dtype=backend.default_float)
            b = ctx.xp.asarray(b, dtype=backend.default_float)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.saved_tensors
        ga = g / b
        return (ga if ctx.needs_input_grad[0] else None), (
            -ga * a / b if ctx.needs_input_grad[1] else None
        )

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.inputs
        ga = g / b
        return (ga if ctx.needs_input_grad[0] else None), (
            -ga * a / b if ctx.needs_input_grad[1] else None
        )


class Neg(Function):
    """y = −x.   VJP: dx = −g."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return -x

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return -g

    backward_graph = backward


class Pow(Function):
    """y = aᵇ.   VJP: da = g · b · aᵇ⁻¹ (0 where b = 0), db = g · aᵇ · log a (0 where a = 0).

    Where b = 0, y = 1 whatever a, so da = 0, also at a = 0 where b · aᵇ⁻¹ = 0 · ∞ would
    give NaN (``relu(v) ** 0``, as PyTorch). Where a = 0, d/db aᵇ = 0 for b > 0 (the limit),
    not NaN from log 0.
    """

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b, y = ctx.saved_tensors
        da = db = None
        if ctx.needs_input_grad[0]:
            with backend.errstate(g, divide="ignore", invalid="ignore"):
                if isinstance(b, (int, float)):  # a number: no mask (CuPy takes no bool)
                    da = g * 0.0 if b == 0 else g * (b * a ** (b - 1))
                else:
                    da = g * ctx.xp.where(b == 0, 0, b * a ** (b - 1))
        if ctx.needs_input_grad[1]:
            db = g * y * _log_base(None, a)
        return da, db

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.inputs
        a_values, b_values, y = ctx.saved_tensors
        da = db = None
        if ctx.needs_input_grad[0]:
            if isinstance(b_values, (int, float)):  # a constant exponent: no mask needed
                # At b = 0: zero, yet still a function of a (a ** 0 = 1 everywhere).
                zero = b_values == 0
                da = g * (a**0.0 * 0.0) if zero else g * b_values * a ** (b_values - 1)
            else:
                # The b = 0 entries are masked out; giving them exponent 1 there keeps
                # a**(b−1) finite, so no NaN flows into the second derivative either.
                b_safe = Where.apply(b_values == 0, 1, b)
                da = Where.apply(b_values == 0, 0, g * b_safe * a ** (b_safe - 1))
        if ctx.needs_input_grad[1]:
            db = g * ctx.output(y) * _log_base(a, a_values)
        return da, db


def _log_base(a: Any, a_values: Any) -> Any:
    """log a, with 0 where a = 0, for d/db aᵇ: recorded for a Tensor base ``a``; else from
    the values, on their own device (a Python number for a number)."""
    if isinstance(a, Tensor):
        return Log.apply(Where.apply(a_values == 0, 1, a))
    if isinstance(a_values, (int, float)):
        return math.log(a_values) if a_values > 0 else (0.0 if a_values == 0 else math.nan)
    xp = backend.get_array_module(a_values)
    return xp.log(xp.where(a_values == 0, 1, a_values))


class Exp(Function):
    """y = eˣ.   VJP: dx = g · y."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        y = ctx.xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g * y

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g * ctx.output(y)


class Sin(Function):
    """y = sin x.   VJP: dx = g · cos x."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        ctx.save_for_backward(x)
        return ctx.xp.sin(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * ctx.xp.cos(x)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        return g * Cos.apply(ctx.inputs[0])


class Cos(Function):
    """y = cos x.   VJP: dx = −g · sin x."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        ctx.save_for_backward(x)
        return ctx.xp.cos(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return -(g * ctx.xp.sin(x))

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        return -(g * Sin.apply(ctx.inputs[0]))


class Log(Function):
    """y = log x.   VJP: dx = g / x."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        ctx.save_for_backward(x)
        return ctx.xp.log(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g / x

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        return g / ctx.inputs[0]


class Sqrt(Function):
    """y = √x.   VJP: dx = g / (2y)."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        y = ctx.xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g / (2 * y)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g / (2 * ctx.output(y))


class Abs(Function):
    """y = |x|.   VJP: dx = g · sign(x)  (0 at x = 0, as in PyTorch)."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return ctx.xp.abs(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * ctx.xp.sign(x)

    backward_graph = backward  # sign(x) is a constant (its derivative is 0 almost everywhere)


class Maximum(Function):
    """y = max(a, b) elementwise: the lecture's Max module (min(a, b) with ``largest=False``).

    VJP: the gradient goes to the larger input: da = g · [a > b], db = g · [b > a].
    Tie rule: where a = b the gradient is split equally, g/2 to each (as PyTorch does);
    this is the average of the two one-sided derivatives, and keeps Max symmetric.
    """

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any, largest: bool) -> Any:
        a, b = promote(a, b)
        ctx.save_for_backward(a, b)
        ctx.largest = largest
        return ctx.xp.maximum(a, b) if largest else ctx.xp.minimum(a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None]:
        share = _winner_share(ctx, g.dtype)
        da = g * share if ctx.needs_input_grad[0] else None
        db = g * (1 - share) if ctx.needs_input_grad[1] else None
        return da, db, None

    backward_graph = backward  # the share is a constant mask: the same code for Tensors


def _winner_share(ctx: Any, dtype: Any) -> Any:
    """[a wins] + ½[a = b], in the gradient's dtype (a float64 mask would widen it)."""
    a, b = ctx.saved_tensors
    xp = ctx.xp
    wins = (a > b) if ctx.largest else (a < b)
    # where, not share[a == b] = 0.5: assigning through a mask waits for the GPU (CuPy
    # counts the mask first); the half is a scalar of the gradient's dtype.
    return xp.where(xp.asarray(a == b), dtype.type(0.5), xp.asarray(wins, dtype=dtype))


class Where(Function):
    """y = a where cond else b.   VJP: da = g · cond, db = g · (1 − cond)."""

    @staticmethod
    def forward(ctx: Any, cond: Any, a: Any, b: Any) -> Any:
        a, b = promote(a, b)
        ctx.save_for_backward(cond)
        return ctx.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        (cond,) = ctx.saved_tensors
        xp = ctx.xp
        zero = xp.zeros((), dtype=g.dtype)
        da = xp.where(cond, g, zero) if ctx.needs_input_grad[1] else None
        db = xp.where(cond, zero, g) if ctx.needs_input_grad[2] else None
        return None, da, db

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        (cond,) = ctx.saved_tensors
        da = Where.apply(cond, g, 0.0) if ctx.needs_input_grad[1] else None
        db = Where.apply(cond, 0.0, g) if ctx.needs_input_grad[2] else None
        return None, da, db


class Clamp(Function):
    """y = min(max(x, lo), hi).   VJP: dx = g where lo ≤ x ≤ hi, else 0 (as PyTorch)."""

    @staticmethod
    def forward(ctx: Any, x: Any, lo: Any, hi: Any) -> Any:
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return ctx.xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        (x,) = ctx.saved_tensors
        inside = ctx.xp.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= x >= ctx.lo
        if ctx.hi is not None:
            inside &= x <= ctx.hi
        return g * inside, None, None

    backward_graph = backward  # the mask is a constant


class ReLU(Function):
    """y = max(x, 0).   VJP: dx = g · [x > 0]."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        y = ctx.xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        if ctx.xp is not _host_xp and cuda_kernels.fusable(g, y):
            return cuda_kernels.relu_backward(g, y)  # on a GPU: one launch, not two
        return g * (y > 0)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g * (y > 0)  # the mask is a constant


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ).   VJP: dx = g · y · (1 − y).

    Computed as ``kernels.sigmoid_and_exp`` does, which keeps full relative precision in
    both tails; the backward takes 1 − y as e⁻ˣ · y (``kernels.sigmoid_slope``), exact
    where y rounds to 1.
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        y, e = kernels.sigmoid_and_exp(x)
        ctx.save_for_backward(y, e)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        y, e = ctx.saved_tensors
        return g * y * (e * y)  # y · (1 − y), with 1 − y = e⁻ˣ y (kernels.sigmoid_slope)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        y = ctx.output(ctx.saved_tensors[0])
        return g * y * (1 - y)


class Tanh(Function):
    """y = tanh x.   VJP: dx = g · (1 − y²) = g · sech² x.

    The backward computes sech² x = 1 / cosh² x from x (``kernels.safe_cosh``): 1 − y² from
    the rounded output cancels to 0 for |x| ≳ 9 in float32.
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        ctx.save_for_backward(x)
        return ctx.xp.tanh(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        c = kernels.safe_cosh(x)
        return g / c / c

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        y = Tanh.apply(ctx.inputs[0])
        return g * (1 - y * y)


class Softplus(Function):
    """y = log(1 + eˣ), computed as max(x, 0) + log1p(e^−|x|) so it stays finite and exact
    for any x (at x = 1e4 it returns 1e4; the naive form overflows past x ≈ 88 in float32).

    VJP: dx = g · sigmoid(x).
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = floating(x)
        ctx.save_for_backward(x)
        return kernels.softplus(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * kernels.sigmoid(x)

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> Any:
        return g * Sigmoid.apply(ctx.inputs[0])


class Cast(Function):
    """y = x converted to another float dtype.   VJP: dx = g converted back."""

    @staticmethod
    def forward(ctx: Any, x: Any, dtype: Any) -> Any:
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.astype(ctx.in_dtype), None

    backward_graph = backward  # Tensor.astype is the differentiable cast


class ToDevice(Function):
    """y = x copied to another device (host ↔ GPU, GPU ↔ GPU).   VJP: dx = g copied back."""

    @staticmethod
    def forward(ctx: Any, x: Any, device: Any) -> Any:
        ctx.source = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None]:
        return backend.to_device(g, ctx.source), None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None]:
        return g.to(ctx.source), None


class Clone(Function):
    """y = a copy of x (own memory).   VJP: dx = g."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x.copy()

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g

    backward_graph = backward
