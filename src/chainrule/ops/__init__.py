"""The functional form of every primitive: ``cr.exp(x)``, ``cr.matmul(a, b)``…

These functions check and normalise arguments (axes, shapes, indices) and call the
primitive's ``Function.apply``. The primitives themselves live in ``elementwise``,
``reduce``, ``movement`` and ``linalg``; ``chainrule.autograd.function.PRIMITIVES`` lists
them all. The functions composed of several primitives live beside them, by concept:
``selection`` (gather, index_select, narrow, sort, topk, split…), ``rearrange`` (flip,
roll, repeat, tile, repeat_interleave, tril, triu) and ``norm``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.device import Device, as_device
from chainrule.errors import ShapeError
from chainrule.inplace import index_arrays
from chainrule.ops.arguments import Dim, as_array, axes_of, axis_of, check_dim
from chainrule.ops.elementwise import (
    Abs,
    Add,
    Cast,
    Clamp,
    Clone,
    Cos,
    Div,
    Exp,
    Log,
    Maximum,
    Mul,
    Neg,
    Pow,
    ReLU,
    Sigmoid,
    Sin,
    Softplus,
    Sqrt,
    Sub,
    Tanh,
    ToDevice,
    Where,
)
from chainrule.ops.linalg import Einsum, MatMul, parse_einsum
from chainrule.ops.movement import (
    Cat,
    Expand,
    Gather,
    Permute,
    Reshape,
    Slice,
    Stack,
    is_basic_index,
)
from chainrule.ops.norm import norm as norm
from chainrule.ops.rearrange import flip as flip
from chainrule.ops.rearrange import repeat as repeat
from chainrule.ops.rearrange import repeat_interleave as repeat_interleave
from chainrule.ops.rearrange import roll as roll
from chainrule.ops.rearrange import tile as tile
from chainrule.ops.rearrange import tril as tril
from chainrule.ops.rearrange import triu as triu
from chainrule.ops.reduce import (
    Amax,
    CumSum,
    LogSoftmax,
    LogSumExp,
    MaxDim,
    Mean,
    Prod,
    Softmax,
    Sum,
)
from chainrule.ops.results import MaxResult
from chainrule.ops.selection import chunk as chunk
from chainrule.ops.selection import gather as gather
from chainrule.ops.selection import index_select as index_select
from chainrule.ops.selection import narrow as narrow
from chainrule.ops.selection import sort as sort
from chainrule.ops.selection import split as split
from chainrule.ops.selection import topk as topk
from chainrule.ops.selection import unbind as unbind
from chainrule.tensor import Tensor, bind_ops


# -- arithmetic ---------------------------------------------------------------------------
def add(a: Any, b: Any) -> Tensor:
    return Add.apply(a, b)


def sub(a: Any, b: Any) -> Tensor:
    return Sub.apply(a, b)


def mul(a: Any, b: Any) -> Tensor:
    return Mul.apply(a, b)


def div(a: Any, b: Any) -> Tensor:
    return Div.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def pow(a: Any, b: Any) -> Tensor:
    return Pow.apply(a, b)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sin(x: Tensor) -> Tensor:
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    return Cos.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Tensor) -> Tensor:
    return Abs.apply(x)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max (the lecture's Max module); ties split the gradient equally."""
    return Maximum.apply(a, b, True)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min; ties split the gradient equally."""
    return Maximum.apply(a, b, False)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (all three broadcast).

    The condition is a mask, not data: like an index, a host mask (a CPU tensor, a NumPy
    array, nested lists) is moved to the device of ``a`` and ``b``.
    """
    # Nested lists or a number become a NumPy array: the host's library.
    cond = condition.data if isinstance(condition, Tensor) else as_array(condition)
    if backend.state.gpu_loaded:
        data = a.data if isinstance(a, Tensor) else b.data if isinstance(b, Tensor) else None
        if data is not None and backend.is_device_array(data):
            cond = backend.to_device(cond, backend.device_of(data))
    return Where.apply(cond.astype(bool, copy=False), a, b)


def _shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a Tensor, an array of either library, or nested lists."""
    if hasattr(value, "shape"):
        return tuple(value.shape)
    return tuple(backend.xp.shape(value))  # lists and numbers live on the host


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Limit values to [min, max]; the gradient passes where min ≤ x ≤ max."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    return Clamp.apply(x, min, max)


clip = clamp


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules (1-D, 2-D and broadcast batches)."""
    a_shape, b_shape = _shape_of(a), _shape_of(b)
    if len(a_shape) and len(b_shape):
        k_a = a_shape[-1]
        k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
        if k_a != k_b:
            raise ShapeError(
                f"matmul: inner dimensions differ: {tuple(a_shape)} @ {tuple(b_shape)} "
                f"({k_a} != {k_b})"
            )
    return MatMul.apply(a, b)


def einsum(equation: str, *operands: Any) -> Tensor:
    """As ``torch.einsum``: sums of products over subscripts, e.g. ``"ij,jk->ik"`` (a
    matrix product), ``"bij,bjk->bik"`` (batched), ``"...d,...d->..."`` (dot products over
    broadcast dims), ``"ii->i"`` (a diagonal), ``"ij->"`` (a sum). The operands may also
    be given as one list. Differentiable in every operand, to any order.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"einsum: operand {i} is a {type(t).__name__}, expected a Tensor "
                f"(cr.tensor(...) converts arrays and lists)"
            )
    if not operands:
        raise ValueError("einsum needs at least one operand")
    spec = parse_einsum(equation, [t.shape for t in operands])
    return Einsum.apply(spec, *operands)


# -- reductions ---------------------------------------------------------------------------
def cumsum(x: Tensor, dim: int) -> Tensor:
    """As ``torch.cumsum``: y_i = Σ_{j ≤ i} x_j along ``dim`` (integers and booleans sum as
    int64)."""
    return CumSum.apply(x, check_dim(dim, x.ndim, "cumsum", x.shape))


def sum(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return Sum.apply(x, axes_of(x, dim, "sum"), keepdim)


def mean(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return Mean.apply(x, axes_of(x, dim, "mean"), keepdim)


def prod(x: Tensor, dim: Dim = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """As ``torch.prod``: Π x over ``dim`` (every element by default); integers and
    booleans multiply as int64. ``dtype`` casts x first. ``dim`` may also be a tuple of
    dims, which torch's prod does not take.

    The gradient is the product of the other elements of each slice, exact with zeros:
    where a slice has one zero, only the zero gets a gradient; with two, none does.

    Example:
        >>> cr.prod(cr.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1)
        tensor([ 2., 12.])
    """
    if dtype is not None:
        x = cast(x, dtype)
    return Prod.apply(x, axes_of(x, dim, "prod"), keepdim)


def var(x: Tensor, dim: Dim = None, unbiased: bool = True, keepdim: bool = False) -> Tensor:
    """Variance (Bessel-corrected unless ``unbiased=False``), composed from primitives."""
    axes = axes_of(x, dim, "var")
    n = x.data.size if axes is None else math.prod(x.shape[a] for a in axes)
    centred = x - mean(x, dim, keepdim=True)
    return sum(centred * centred, dim, keepdim) / (n - 1 if unbiased else n)


def std(x: Tensor, dim: Dim = None, unbiased: bool = True, keepdim: bool = False) -> Tensor:
    return sqrt(var(x, dim, unbiased, keepdim))


def amax(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """Maximum over ``dim`` (one or several); tied maxima share the gradient equally."""
    return Amax.apply(x, axes_of(x, dim, "amax"), keepdim, True)


def amin(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, axes_of(x, dim, "amin"), keepdim, False)


def max(x: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """As ``torch.max``: the maximum of all elements; with an int ``dim``, the pair
    ``(values, indices)`` along it; with a tensor, the elementwise maximum.
    """
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    if dim is None:
        return amax(x, None, keepdim)
    return MaxResult(*MaxDim.apply(x, axis_of(x, dim, "max"), keepdim, True))


def min(x: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """As ``torch.min``: see ``max``."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    if dim is None:
        return amin(x, None, keepdim)
    return MaxResult(*MaxDim.apply(x, axis_of(x, dim, "min"), keepdim, False))


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    xp = backend.get_array_module(x.data)
    if dim is None:
        return Tensor(xp.asarray(x.data.argmax()))
    return Tensor(xp.asarray(x.data.argmax(axis=dim, keepdims=keepdim)))


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    xp = backend.get_array_module(x.data)
    if dim is None:
        return Tensor(xp.asarray(x.data.argmin()))
    return Tensor(xp.asarray(x.data.argmin(axis=dim, keepdims=keepdim)))


def logsumexp(x: Tensor, dim: Dim = None, keepdim: bool = False) -> Tensor:
    """log Σ exp(x) over ``dim``, stable for any magnitude of x."""
    return LogSumExp.apply(x, axes_of(x, dim, "logsumexp"), keepdim)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(x, axis_of(x, dim, "softmax"))


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x − logsumexp(x) along ``dim``: finite and exact even where exp(x) overflows."""
    return LogSoftmax.apply(x, axis_of(x, dim, "log_softmax"))


# -- shapes and indexing -------------------------------------------------------------------
def reshape(x: Tensor, *shape: Any) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return Reshape.apply(x, tuple(int(s) for s in shape))
    except ShapeError:
        raise ShapeError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) "
            f"into {tuple(shape)}"
        ) from None


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, 1)
    start = check_dim(start_dim, x.ndim, "flatten", x.shape)
    end = check_dim(end_dim, x.ndim, "flatten", x.shape)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = math.prod(x.shape[start : end + 1])
    return reshape(x, (*x.shape[:start], merged, *x.shape[end + 1 :]))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = check_dim(dim, x.ndim + 1, "unsqueeze", x.shape)
    return reshape(x, (*x.shape[:d], 1, *x.shape[d:]))


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    d = axis_of(x, dim, "squeeze")
    if x.shape[d] != 1:
        return x
    return reshape(x, x.shape[:d] + x.shape[d + 1 :])


def permute(x: Tensor, *dims: Any) -> Tensor:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    axes = tuple(check_dim(d, x.ndim, "permute", x.shape) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"permute: {dims} is not a permutation of the {x.ndim} dims of {x.shape}")
    return Permute.apply(x, axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    axes = list(range(x.ndim))
    a, b = axis_of(x, dim0, "transpose"), axis_of(x, dim1, "transpose")
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(x, tuple(axes))


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dimension)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ShapeError(f"expand: cannot expand shape {x.shape} to fewer dims {sizes}")
    shape = tuple(x.shape[i - lead] if s == -1 else int(s) for i, s in enumerate(sizes))
    return Expand.apply(x, shape)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays, lists, boolean masks.

    For a tensor on a GPU, host index arrays (NumPy, lists, CPU tensors) are copied to its
    device, as PyTorch accepts CPU indices; a GPU index into a CPU tensor is an error.
    """
    if isinstance(index, list):
        index = backend.xp.asarray(index)  # nested lists of ints or bools: host data
    index = index_arrays(index, x.data)
    if is_basic_index(index):
        return Slice.apply(x, index)
    return Gather.apply(x, index)


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """As ``Tensor.masked_fill``: ``value`` where ``mask`` is true (broadcast to x's
    shape), x elsewhere; the gradient reaches x where the mask is false."""
    cond = mask.data if isinstance(mask, Tensor) else as_array(mask)
    if cond.dtype != bool:
        raise TypeError(f"masked_fill: mask must be a boolean tensor, got {cond.dtype}")
    try:
        # NumPy on shapes only (tuples of ints): no device data involved.
        fits = backend.xp.broadcast_shapes(x.shape, tuple(cond.shape)) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"masked_fill: mask of shape {tuple(cond.shape)} does not broadcast to x's shape "
            f"{x.shape}"
        )
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got {value.shape}")
    return where(cond, value, x)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    first = tensors[0]
    d = axis_of(first, dim, "cat")
    for i, t in enumerate(tensors):
        if (
            t.ndim != first.ndim
            or t.shape[:d] + t.shape[d + 1 :] != first.shape[:d] + first.shape[d + 1 :]
        ):
            raise ShapeError(
                f"cat along dim {dim}: tensor {i} has shape {t.shape}, which does not match "
                f"tensor 0's shape {first.shape} outside dim {dim}"
            )
    return Cat.apply(d, *tensors)


concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: tensor {i} has shape {t.shape} but tensor 0 has {tensors[0].shape}; "
                f"all must match"
            )
    return Stack.apply(check_dim(dim, tensors[0].ndim + 1, "stack", tensors[0].shape), *tensors)


def cast(x: Tensor, dtype: Any) -> Tensor:
    """``x`` converted to ``dtype``; differentiable between float dtypes."""
    dtype = backend.DType(dtype)
    if x.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind == "f":
        return Cast.apply(x, dtype)
    return Tensor(x.data.astype(dtype))


def to_device(x: Tensor, device: Any) -> Tensor:
    """``x`` on ``device`` (self when it is there already); differentiable: the gradient
    is copied back to ``x``'s device."""
    target = as_device(device)
    if target.type == "cuda" and target.index is None:  # "cuda": the current GPU
        target = Device("cuda", backend.accelerator().current_index())
    if x.device == target:
        return x
    if x.requires_grad:
        return ToDevice.apply(x, target)
    return Tensor(backend.to_device(x.data, target))


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


# Tensor's methods (x + y, x.exp(), x.sum()) call into this module: hand it over now that
# every function above exists. Tensor itself imports nothing from here.
bind_ops(sys.modules[__name__])
