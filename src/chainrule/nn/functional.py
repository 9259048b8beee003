"""``chainrule.nn.functional``: the stateless forms of the modules and losses.

Each function checks its arguments and calls one fused Function (``nn.fused``,
``nn.fused_loss``) or a core primitive; the modules call these. PyTorch's names and
arguments::

    import chainrule.nn.functional as F
    loss = F.cross_entropy(F.linear(x, w, b), labels)
"""

from __future__ import annotations

from typing import Any

from chainrule import backend, ops
from chainrule.errors import DTypeError, ShapeError
from chainrule.nn.functional_attention import (
    scaled_dot_product_attention as scaled_dot_product_attention,
)

# The image layers' forms live in functional_conv; they are part of this namespace too.
from chainrule.nn.functional_conv import (
    adaptive_avg_pool2d as adaptive_avg_pool2d,
)
from chainrule.nn.functional_conv import (
    avg_pool2d as avg_pool2d,
)
from chainrule.nn.functional_conv import (
    batch_norm as batch_norm,
)
from chainrule.nn.functional_conv import (
    conv1d as conv1d,
)
from chainrule.nn.functional_conv import (
    conv2d as conv2d,
)
from chainrule.nn.functional_conv import (
    conv_transpose1d as conv_transpose1d,
)
from chainrule.nn.functional_conv import (
    conv_transpose2d as conv_transpose2d,
)
from chainrule.nn.functional_conv import (
    dropout2d as dropout2d,
)
from chainrule.nn.functional_conv import (
    group_norm as group_norm,
)
from chainrule.nn.functional_conv import (
    layer_norm as layer_norm,
)
from chainrule.nn.functional_conv import (
    max_pool2d as max_pool2d,
)
from chainrule.nn.functional_interpolate import interpolate as interpolate
from chainrule.nn.functional_pad import pad as pad
from chainrule.nn.functional_pool import adaptive_avg_pool1d as adaptive_avg_pool1d
from chainrule.nn.functional_pool import adaptive_max_pool1d as adaptive_max_pool1d
from chainrule.nn.functional_pool import adaptive_max_pool2d as adaptive_max_pool2d
from chainrule.nn.functional_pool import avg_pool1d as avg_pool1d
from chainrule.nn.functional_pool import max_pool1d as max_pool1d
from chainrule.nn.fused import (
    DropoutFunction,
    ELUFunction,
    GELUFunction,
    LeakyReLUFunction,
    LinearFunction,
    SiLUFunction,
)
from chainrule.nn.fused_loss import (
    BCEFunction,
    BCEWithLogitsFunction,
    CrossEntropyFunction,
    HuberFunction,
    L1Function,
    MSEFunction,
    NLLFunction,
    SoftCrossEntropyFunction,
)
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# -- layers ---------------------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b (fused: backward dX = G W, dW = Gᵀ X, db = Σ G).

    Shape:
        input (…, in), weight (out, in), bias (out,) → (…, out).
    """
    if input.shape[-1:] != weight.shape[1:]:
        raise ShapeError(
            f"linear: input of shape {input.shape} does not fit weight of shape "
            f"{weight.shape}: the input's last dim must be {weight.shape[1]}"
        )
    return LinearFunction.apply(input, weight, bias)


def dropout(
    input: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    1/(1 − p); the identity when not ``training`` or ``p == 0``. The mask is drawn from
    ``generator`` (the seeded default when None).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    return DropoutFunction.apply(input, float(p), resolve(generator))


def duplicate(input: Tensor, n: int = 2) -> tuple[Tensor, ...]:
    """``n`` copies of ``input`` whose gradients add up (the lecture's Duplicate).

    The copies are ``input`` itself, n times: the engine already sums the gradients of a
    tensor used in several places, which is exactly Duplicate's backward (an output nobody
    uses adds nothing).
    """
    if n < 1:
        raise ValueError(f"duplicate needs n >= 1, got {n}")
    return (input,) * int(n)


def add(*inputs: Tensor) -> Tensor:
    """x₁ + … + xₙ (the lecture's Add), inputs broadcast together: a chain of the core's
    ``add``, so each input receives g (summed back to its shape where it was broadcast)."""
    if not inputs:
        raise ValueError("add needs at least one input")
    total = inputs[0]
    for x in inputs[1:]:
        total = ops.add(total, x)
    return total


def maximum(*inputs: Tensor) -> Tensor:
    """Elementwise max(x₁, …, xₙ) (the lecture's Max), inputs broadcast together.

    Gradient: to the largest input; inputs tied for the maximum share it equally. Two
    inputs use the core's ``maximum`` (ties split ½, ½). More are stacked and reduced with
    the core's ``amax``, whose tie rule is the same for any number of ties; a chain of
    ``maximum`` would not be (three tied inputs would get ¼, ¼, ½).
    """
    if not inputs:
        raise ValueError("maximum needs at least one input")
    if len(inputs) == 1:
        return inputs[0]
    if len(inputs) == 2:
        return ops.maximum(inputs[0], inputs[1])
    shape = backend.xp.broadcast_shapes(*(x.shape for x in inputs))  # on shapes: host
    same = [x if x.shape == shape else ops.expand(x, shape) for x in inputs]
    return ops.amax(ops.stack(same, 0), 0)


def embedding(input: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by the integer indices ``input``: (…) → (…, dim).
    Repeated indices accumulate their gradients.
    """
    indices = _array(input, weight)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got dtype {indices.dtype}")
    return weight[indices]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """As ``F.one_hot``: class indices (int64) to one-hot rows, out[…, c] = 1 where
    ``tensor`` is c, 0 elsewhere; int64, not differentiable. ``num_classes=-1`` takes one
    more than the largest index. The indices are checked on the host (a read that waits
    for a GPU), as PyTorch checks them.

    Shape:
        tensor: (*); result: (*, num_classes).

    Example:
        >>> F.one_hot(cr.tensor([0, 2]), 3)
        tensor([[1, 0, 0],
                [0, 0, 1]])
    """
    idx = tensor.data
    if idx.dtype != backend.int64:
        raise DTypeError(
            f"one_hot: needs an int64 tensor of class indices, got {idx.dtype}; convert it "
            f"with .long()"
        )
    if num_classes == -1:
        if idx.size == 0:
            raise ValueError(
                "one_hot: cannot infer the number of classes from an empty tensor; pass num_classes"
            )
        num_classes = int(idx.max()) + 1
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(
            f"one_hot: class values must be in [0, {num_classes}), got values from "
            f"{int(idx.min())} to {int(idx.max())}"
        )
    xp = backend.get_array_module(idx)
    return Tensor((idx[..., None] == xp.arange(num_classes)).astype(backend.int64))


# -- activations ----------------------------------------------------------------------------
def relu(input: Tensor) -> Tensor:
    return ops.relu(input)


def sigmoid(input: Tensor) -> Tensor:
    return ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ops.tanh(input)


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    return ops.softmax(input, dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    return ops.log_softmax(input, dim)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLUFunction.apply(input, float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    return ELUFunction.apply(input, float(alpha))


def silu(input: Tensor) -> Tensor:
    return SiLUFunction.apply(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x · Φ(x); ``approximate="tanh"`` uses the tanh form (both as PyTorch)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELUFunction.apply(input, approximate)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β, computed stably for any x. PyTorch switches to the identity
    where βx > ``threshold``; the stable form differs from it there by less than e^−threshold.
    """
    if beta == 1.0:
        return ops.softplus(input)
    return ops.softplus(input * beta) / beta


# -- losses ---------------------------------------------------------------------------------
def _check_reduction(reduction: str, loss: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{loss}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _array(value: Any, like: Tensor) -> Any:
    """The array of a Tensor argument; other data (lists, NumPy arrays, numbers) as an
    array on ``like``'s device, so a host list of class weights works on a GPU too."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.data
    if backend.is_device_array(value):
        return value
    return backend.to_device(backend.to_host(value), like.device)


def _class_weight(weight: Any, input: Tensor, n_classes: int, loss: str) -> Any:
    w = _array(weight, input)
    if w is None:
        return None
    if w.shape != (n_classes,):
        raise ShapeError(
            f"{loss}: weight must have one entry per class, shape "
            f"({n_classes},), got {tuple(w.shape)}"
        )
    return w.astype(input.dtype, copy=False)


def _check_class_target(input: Tensor, target: Any, loss: str) -> None:
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if tuple(target.shape) != expected:
        raise ShapeError(
            f"{loss}: input of shape {input.shape} (classes along dim "
            f"{1 if input.ndim > 1 else 0}) needs a target of shape {expected}, "
            f"got {tuple(target.shape)}"
        )


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``input`` against class indices or class probabilities,
    as one fused op (log-softmax and NLL inside; gradient (softmax − one-hot)/N).

    Args:
        input: logits, (C,), (N, C) or (N, C, d₁, …).
        target: class indices of shape (), (N,) or (N, d₁, …), or probabilities of the
            input's shape.
        weight: per-class weights, shape (C,).
        ignore_index: rows whose target equals it add nothing (index targets only).
        reduction: "mean" (divided by the summed weights of the counted rows), "sum" or
            "none".
        label_smoothing: ε in [0, 1]: the target becomes (1 − ε)·one-hot + ε/C.

    Class indices on the CPU are range-checked (``IndexError``); on a GPU they are not,
    as that would read them back and wait for the device at every step. Targets and
    weights given as lists or NumPy arrays are copied to the input's device.
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    w = _class_weight(weight, input, n_classes, "cross_entropy")
    t = target if isinstance(target, Tensor) else _array(target, input)
    if t.dtype.kind == "f":
        return SoftCrossEntropyFunction.apply(input, t, w, reduction, float(label_smoothing))
    t = _array(t, input)
    _check_class_target(input, t, "cross_entropy")
    return CrossEntropyFunction.apply(
        input, t, w, int(ignore_index), reduction, float(label_smoothing)
    )


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (from ``log_softmax``) at
    the target classes. Same shapes and arguments as ``cross_entropy``.
    """
    _check_reduction(reduction, "nll_loss")
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    w = _class_weight(weight, input, n_classes, "nll_loss")
    t = _array(target, input)
    _check_class_target(input, t, "nll_loss")
    return NLLFunction.apply(input, t, w, int(ignore_index), reduction)


def _check_same_shape(input: Tensor, target: Any, loss: str) -> None:
    target_shape = getattr(target, "shape", None)
    if target_shape is None:  # a list or a number
        target_shape = backend.to_host(target).shape
    if tuple(target_shape) != input.shape:
        raise ShapeError(
            f"{loss}: input has shape {input.shape} but target has "
            f"{tuple(target_shape)}; they must match"
        )


def _float_target(target: Any, input: Tensor) -> Any:
    if isinstance(target, Tensor):
        return target
    return _array(target, input).astype(input.dtype, copy=False)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(x − y)², reduced."""
    _check_reduction(reduction, "mse_loss")
    _check_same_shape(input, target, "mse_loss")
    return MSEFunction.apply(input, _float_target(target, input), reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|x − y|, reduced."""
    _check_reduction(reduction, "l1_loss")
    _check_same_shape(input, target, "l1_loss")
    return L1Function.apply(input, _float_target(target, input), reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| ≤ δ, else δ(|d| − ½δ), d = x − y."""
    _check_reduction(reduction, "huber_loss")
    _check_same_shape(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return HuberFunction.apply(input, _float_target(target, input), float(delta), reduction)


def smooth_l1_loss(
    input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """½d²/β where |d| < β, else |d| − ½β: Huber's loss with δ = β, divided by β."""
    if beta <= 0:
        raise ValueError(f"smooth_l1_loss: beta must be positive, got {beta}")
    loss = huber_loss(input, target, reduction, beta)
    return loss if beta == 1.0 else loss / beta


def binary_cross_entropy_with_logits(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None
) -> Tensor:
    """Binary cross-entropy on logits, stable for any logit (no sigmoid overflow).

    Args:
        weight: broadcast over the elements' losses.
        pos_weight: weight of the positive term, broadcast along the last dim (one per
            class for multi-label problems).
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    return BCEWithLogitsFunction.apply(
        input,
        _float_target(target, input),
        _array(weight, input),
        _array(pos_weight, input),
        reduction,
    )


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy on probabilities in [0, 1] (logs clamped at −100). Prefer
    ``binary_cross_entropy_with_logits`` on logits: it is stable where this is not.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    _check_same_shape(input, target, "binary_cross_entropy")
    return BCEFunction.apply(input, _float_target(target, input), _array(weight, input), reduction)
