"""Elementwise primitives. Each docstring gives the forward and its VJP, where ``g`` is the
gradient flowing into the output. Inputs broadcast as in NumPy; the engine sums each
gradient back to its input's shape. Dtypes promote as in PyTorch (``_promote``).
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.autograd.function import Function
from chainrule.backend import xp
from chainrule.ops import kernels

_INTEGRAL = "biu"


def _promote(a: Any, b: Any) -> tuple[Any, Any]:
    """Give integer or bool operands the float dtype of the other operand, as PyTorch does.

    NumPy widens ``float32 + int64`` and ``int64 + 1.5`` to float64; PyTorch keeps the
    float32 tensor's dtype and gives integer data meeting a Python float the default float
    dtype. Following NumPy would silently turn a float32 model into float64 the first time
    an integer tensor (labels, indices, counts) or a NumPy scalar takes part.

    A 0-d float tensor meeting a float tensor with dimensions takes the other's dtype, as
    PyTorch's promotion treats it like a number.

    A Python float meeting a float array becomes a 0-d array of the array's dtype (the
    value NumPy would compute with anyway): NumPy multiplies by a 0-d array about twice
    as fast as by a Python float, which it must convert on every call.
    """
    a_array, b_array = type(a) is xp.ndarray, type(b) is xp.ndarray
    if a_array and b_array:
        ka, kb = a.dtype.kind, b.dtype.kind
        if ka == kb:
            if ka == "f" and a.dtype is not b.dtype and a.ndim != b.ndim:
                # PyTorch lets a 0-d tensor count like a Python number next to a tensor
                # with dimensions: float32 * 0-d float64 stays float32.
                if a.ndim == 0:
                    return a.astype(b.dtype), b
                if b.ndim == 0:
                    return a, b.astype(a.dtype)
            return a, b
        # bool with float already keeps the float dtype in NumPy: no copy needed.
        if ka == "f" and kb in "iu":
            return a, b.astype(a.dtype)
        if kb == "f" and ka in "iu":
            return a.astype(b.dtype), b
        return a, b
    if a_array:
        if type(b) is float and a.dtype.kind == "f":
            return a, _scalar(b, a.dtype)
        b = _python_scalar(b)
        if type(b) is float and a.dtype.kind in _INTEGRAL:
            a = a.astype(backend.default_float)
    elif b_array:
        if type(a) is float and b.dtype.kind == "f":
            return _scalar(a, b.dtype), b
        a = _python_scalar(a)
        if type(a) is float and b.dtype.kind in _INTEGRAL:
            b = b.astype(backend.default_float)
    return a, b


_SCALARS: dict[tuple[float, Any], Any] = {}


def _scalar(value: float, dtype: Any) -> Any:
    """``value`` as a read-only 0-d array of ``dtype``, cached (constants repeat a lot)."""
    if value == 0.0:  # 0.0 and -0.0 are equal keys but not the same constant
        return xp.asarray(value, dtype=dtype)
    key = (value, dtype)
    arr = _SCALARS.get(key)
    if arr is None:
        if len(_SCALARS) >= 4096:  # changing values (a decaying rate…) must not pile up
            _SCALARS.clear()
        arr = xp.asarray(value, dtype=dtype)
        arr.flags.writeable = False
        _SCALARS[key] = arr
    return arr


def _python_scalar(x: Any) -> Any:
    # A NumPy scalar (np.sqrt(2.0), arr.sum()) counts as a Python number, as in PyTorch,
    # instead of NumPy's strongly typed float64 that would widen a float32 tensor.
    return x.item() if isinstance(x, xp.generic) else x


def _floating(x: Any) -> Any:
    """Integer or bool data as the default float dtype, as PyTorch gives exp(int) float32
    (NumPy would give float64)."""
    return x.astype(backend.default_float) if x.dtype.kind in _INTEGRAL else x


def _is_integral(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype.kind in _INTEGRAL if dtype is not None else type(x) in (int, bool)


class Add(Function):
    """y = a + b.   VJP: da = g, db = g."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = _promote(a, b)
        return a + b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        return g, g

    backward_graph = backward  # passing g on is the same for an array and a Tensor


class Sub(Function):
    """y = a − b.   VJP: da = g, db = −g."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = _promote(a, b)
        return a - b

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        return g, (-g if ctx.needs_input_grad[1] else None)

    backward_graph = backward  # operators only: the same code for arrays and Tensors


class Mul(Function):
    """y = a · b.   VJP: da = g · b, db = g · a."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        a, b = _promote(a, b)
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
        a, b = _promote(a, b)
        if _is_integral(a) and _is_integral(b):
            # True division of integers gives the default float dtype, as in PyTorch.
            a = xp.asarray(a, dtype=backend.default_float)
            b = xp.asarray(b, dtype=backend.default_float)
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
        a, b = _promote(a, b)
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b, y = ctx.saved_tensors
        da = db = None
        if ctx.needs_input_grad[0]:
            with xp.errstate(divide="ignore", invalid="ignore"):
                da = g * xp.where(b == 0, 0, b * a ** (b - 1))
        if ctx.needs_input_grad[1]:
            db = g * y * xp.log(xp.where(a == 0, 1, a))
        return da, db

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, Any]:
        a, b = ctx.inputs
        a_values, b_values, y = ctx.saved_tensors
        da = db = None
        if ctx.needs_input_grad[0]:
            # The b = 0 entries are masked out; giving them exponent 1 there keeps a**(b−1)
            # finite, so no NaN flows into the second derivative either.
            b_safe = Where.apply(b_values == 0, 1, b)
            da = Where.apply(b_values == 0, 0, g * b_safe * a ** (b_safe - 1))
        if ctx.needs_input_grad[1]:
            db = g * ctx.output(y) * Log.apply(Where.apply(a_values == 0, 1, a))
        return da, db


class Exp(Function):
    """y = eˣ.   VJP: dx = g · y."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = _floating(x)
        y = xp.exp(x)
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


class Log(Function):
    """y = log x.   VJP: dx = g / x."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = _floating(x)
        ctx.save_for_backward(x)
        return xp.log(x)

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
        x = _floating(x)
        y = xp.sqrt(x)
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
        return xp.abs(x)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * xp.sign(x)

    backward_graph = backward  # sign(x) is a constant (its derivative is 0 almost everywhere)


class Maximum(Function):
    """y = max(a, b) elementwise: the lecture's Max module (min(a, b) with ``largest=False``).

    VJP: the gradient goes to the larger input: da = g · [a > b], db = g · [b > a].
    Tie rule: where a = b the gradient is split equally, g/2 to each (as PyTorch does);
    this is the average of the two one-sided derivatives, and keeps Max symmetric.
    """

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any, largest: bool) -> Any:
        a, b = _promote(a, b)
        ctx.save_for_backward(a, b)
        ctx.largest = largest
        return xp.maximum(a, b) if largest else xp.minimum(a, b)

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
    wins = (a > b) if ctx.largest else (a < b)
    share = xp.asarray(wins, dtype=dtype)
    share[xp.asarray(a == b)] = 0.5
    return share


class Where(Function):
    """y = a where cond else b.   VJP: da = g · cond, db = g · (1 − cond)."""

    @staticmethod
    def forward(ctx: Any, cond: Any, a: Any, b: Any) -> Any:
        a, b = _promote(a, b)
        ctx.save_for_backward(cond)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, Any]:
        (cond,) = ctx.saved_tensors
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
        return xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None]:
        (x,) = ctx.saved_tensors
        inside = xp.ones(x.shape, dtype=bool)
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
        y = xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (y,) = ctx.saved_tensors
        return g * (y > 0)

    backward_graph = backward  # the mask is a constant


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ).   VJP: dx = g · y · (1 − y).

    Computed as ``kernels.sigmoid_and_exp`` does, which keeps full relative precision in
    both tails; the backward takes 1 − y as e⁻ˣ · y (``kernels.sigmoid_slope``), exact
    where y rounds to 1.
    """

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        x = _floating(x)
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
        x = _floating(x)
        ctx.save_for_backward(x)
        return xp.tanh(x)

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
        x = _floating(x)
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
