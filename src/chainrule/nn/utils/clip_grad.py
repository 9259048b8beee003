"""Gradient clipping: rescale the gradients by their total norm, or clamp each value.

``clip_grad_norm_`` treats all gradients as one long vector g = (g₁, …, g_k) and scales
it when its norm is too large:

.. code-block:: text

    ‖g‖_p = ‖(‖g₁‖_p, …, ‖g_k‖_p)‖_p            (‖·‖_∞ = max |gᵢ|)
    c     = min(max_norm / (‖g‖_p + 10⁻⁶), 1)
    gᵢ   ← c · gᵢ                               for every gradient

so the direction of the step is kept and only its length is capped. The 10⁻⁶ keeps c
finite for a zero gradient; c is applied even when it is 1 (multiplying by 1 changes no
bit), exactly as PyTorch does, so the two give the same gradients.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from chainrule import backend
from chainrule.tensor import Tensor

TensorOrTensors = Tensor | Iterable[Tensor]


def get_total_norm(
    tensors: TensorOrTensors,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The p-norm of all ``tensors`` taken together, as if concatenated into one vector.

    Args:
        tensors: a tensor or an iterable of tensors (usually gradients).
        norm_type: p, a positive number, ``inf`` (largest magnitude) or ``"inf"``.
        error_if_nonfinite: raise if the total norm is NaN or infinite.
        foreach: accepted for PyTorch compatibility; NumPy has no multi-tensor kernels.

    Returns:
        A 0-d Tensor of the tensors' (promoted) dtype; 0.0 (float32) for no tensors.

    Raises:
        RuntimeError: ``error_if_nonfinite`` is set and the norm is NaN or infinite.
    """
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    p = _norm_order("get_total_norm", norm_type)
    if not items:
        return Tensor(backend.xp.zeros((), dtype=backend.float32))  # no device to be on
    norms = [_vector_norm(t.data.reshape(-1), p) for t in items]
    # The norms stay 0-d arrays on the gradients' device: no value is read back here.
    total = _vector_norm(backend.get_array_module(norms[0]).stack(norms), p)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(_nonfinite_message("get_total_norm", p, total, items, norms))
    return Tensor(total)


def clip_grads_with_norm_(
    parameters: TensorOrTensors,
    max_norm: float,
    total_norm: Tensor | float,
    foreach: bool | None = None,
) -> None:
    """Scale the gradients of ``parameters`` by min(max_norm / (total_norm + 1e-6), 1).

    The second half of ``clip_grad_norm_``, for a total norm computed elsewhere (e.g.
    by ``get_total_norm`` over several models). Parameters without a gradient are
    skipped; the gradients are changed in place.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    limit = _max_norm("clip_grads_with_norm_", max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    xp = backend.get_array_module(grads[0].data)
    total = total_norm.data if isinstance(total_norm, Tensor) else xp.asarray(total_norm)
    total = backend.to_device(total, grads[0].device)
    # PyTorch's own arithmetic in the norm's dtype: c = (1 / (‖g‖ + 1e-6)) · max_norm.
    one = xp.ones((), dtype=total.dtype)
    coef = xp.minimum(one / (total + total.dtype.type(1e-6)) * limit, one)
    for grad in grads:
        # In the gradient's dtype, as PyTorch multiplies by a 0-d coefficient.
        backend.get_array_module(grad.data).multiply(
            grad.data, coef.astype(grad.data.dtype, copy=False), out=grad.data
        )
        grad.increment_version()


def clip_grad_norm_(
    parameters: TensorOrTensors,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale the gradients of ``parameters`` so their total norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector (see the module
    docstring for the formula); when it exceeds ``max_norm`` every gradient is multiplied
    by max_norm / (norm + 1e-6). Call it after ``backward()`` and before ``step()``.

    Args:
        parameters: a tensor or an iterable of tensors (``model.parameters()``); those
            without a gradient are skipped.
        max_norm: the largest total norm allowed (>= 0).
        norm_type: p of the p-norm; ``inf`` (or ``"inf"``) for the largest magnitude.
        error_if_nonfinite: raise instead of scaling by a NaN or infinite norm (which
            would turn every gradient into NaN or zeros).
        foreach: accepted for PyTorch compatibility; NumPy has no multi-tensor kernels.

    On a GPU the norm and the scaling stay on the device: nothing is read back to the host
    (no sync) unless ``error_if_nonfinite=True``, which must look at the norm's value.

    Returns:
        The total norm of the gradients *before* clipping, a 0-d Tensor (PyTorch's
        convention; log it to watch for exploding gradients).

    Raises:
        RuntimeError: ``error_if_nonfinite`` is set and the total norm is NaN or infinite.
        ValueError: ``max_norm`` is negative or NaN, or ``norm_type`` is not a positive
            number or inf.

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, 1.0], requires_grad=True)
        >>> (w * cr.tensor([3.0, 4.0])).sum().backward()
        >>> cr.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
        5.0
        >>> [round(g, 4) for g in w.grad.tolist()]
        [0.6, 0.8]
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    _max_norm("clip_grad_norm_", max_norm)
    p = _norm_order("clip_grad_norm_", norm_type)
    with_grad = [(i, q.grad) for i, q in enumerate(params) if q.grad is not None]
    grads = [g for _, g in with_grad]
    total = get_total_norm(grads, p)
    if error_if_nonfinite and not math.isfinite(total.item()):
        norms = [_vector_norm(g.data.reshape(-1), p) for g in grads]
        raise RuntimeError(
            _nonfinite_message(
                "clip_grad_norm_", p, total.data, grads, norms, [i for i, _ in with_grad]
            )
        )
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(
    parameters: TensorOrTensors, clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient value of ``parameters`` into [−clip_value, clip_value], in place.

    Unlike ``clip_grad_norm_`` this changes the direction of the step: each component
    is capped on its own.

    Args:
        parameters: a tensor or an iterable of tensors; those without a gradient are
            skipped.
        clip_value: the largest magnitude a gradient value may keep (>= 0).
        foreach: accepted for PyTorch compatibility.

    Raises:
        ValueError: ``clip_value`` is negative or NaN.

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, 1.0], requires_grad=True)
        >>> (w * cr.tensor([-3.0, 0.5])).sum().backward()
        >>> cr.nn.utils.clip_grad_value_([w], clip_value=1.0)
        >>> w.grad.tolist()
        [-1.0, 0.5]
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    value = float(clip_value)
    if not value >= 0:  # also NaN
        raise ValueError(
            f"clip_grad_value_: clip_value must be >= 0, got clip_value={clip_value!r}; "
            f"gradients are clamped into [-clip_value, clip_value]"
        )
    for q in params:
        grad = q.grad
        if grad is not None:
            backend.get_array_module(grad.data).clip(grad.data, -value, value, out=grad.data)
            grad.increment_version()


# ------------------------------------------------------------------------------- helpers
def _vector_norm(v: Any, p: float) -> Any:
    """‖v‖_p of a flat array, as a 0-d array of v's dtype (PyTorch's vector_norm)."""
    xp = backend.get_array_module(v)
    if v.size == 0:
        return xp.zeros((), dtype=v.dtype)
    if p == 2.0:
        # One BLAS pass, no temporary. Squares beyond the dtype's range give inf, which
        # error_if_nonfinite reports; NumPy's overflow warning would only repeat it.
        with backend.errstate(v, over="ignore"):
            return xp.sqrt(xp.dot(v, v))
    if p == math.inf:
        return xp.max(xp.abs(v))
    if p == -math.inf:
        return xp.min(xp.abs(v))
    if p == 0.0:
        return xp.asarray(xp.count_nonzero(v), dtype=v.dtype)
    if p == 1.0:
        return xp.sum(xp.abs(v))
    return xp.sum(xp.abs(v) ** p) ** (1.0 / p)


def _norm_order(caller: str, norm_type: float | str) -> float:
    p = float(norm_type)
    if math.isnan(p) or (p < 0 and p != -math.inf):
        raise ValueError(
            f"{caller}: norm_type must be a number >= 0 or ±inf, got norm_type={norm_type!r}; "
            f"use 2.0 for the Euclidean norm or inf for the largest magnitude"
        )
    return p


def _max_norm(caller: str, max_norm: float) -> float:
    limit = float(max_norm)
    if not limit >= 0:  # also NaN
        raise ValueError(
            f"{caller}: max_norm must be >= 0, got max_norm={max_norm!r}; a negative bound "
            f"would flip the sign of every gradient"
        )
    return limit


def _nonfinite_message(
    caller: str,
    p: float,
    total: Any,
    grads: list[Tensor],
    norms: list[Any],
    indices: list[int] | None = None,
) -> str:
    indices = list(range(len(grads))) if indices is None else indices
    # Only reached when the user asked for the check: reading values back is expected.
    bad = [
        i
        for i, g in zip(indices, grads)
        if not bool(backend.get_array_module(g.data).isfinite(g.data).all())
    ]
    if bad:
        cause = (
            f"the gradients of parameters {bad} (indices into the parameters given) hold "
            f"NaN or inf: find the op that made them with cr.autograd.detect_anomaly(), or "
            f"lower the learning rate"
        )
    else:
        big = [i for i, n in zip(indices, norms) if not math.isfinite(float(n))]
        cause = (
            f"every gradient is finite but the norm overflowed {total.dtype}"
            + (f" (parameters {big})" if big else "")
            + ": use float64 parameters or a smaller loss scale"
        )
    return (
        f"{caller}: the total norm of order {p} of the gradients is {float(total)}, so "
        f"they cannot be clipped; {cause}. To scale the gradients by the non-finite norm "
        f"anyway, pass error_if_nonfinite=False"
    )
