"""The losses' Functions, each one fused op with its closed-form gradient.

Notation: N rows (batch elements, spatial positions flattened in), C classes, p = softmax
of the logits, t the target class of a row, w the class weights (1 when not given),
m = [t ≠ ignore_index], g the upstream gradient. ``reduction`` is ``"mean"``, ``"sum"``
or ``"none"``; for the class losses "mean" divides by D = Σᵢ w_tᵢ mᵢ (PyTorch's rule),
for the others by the number of elements.

Each Function has its array ``backward`` (first order, fast) and a ``backward_graph``: the
same VJP in chainrule ops, run under ``create_graph=True`` so that gradients such as a
gradient penalty can be differentiated again. Log-softmax, softplus and σ are the core's
``kernels`` (one implementation of each), on arrays and through the primitives on Tensors.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend, cuda_kernels, ops
from chainrule.autograd.function import Function
from chainrule.errors import ShapeError
from chainrule.ops import kernels
from chainrule.tensor import Tensor


def _rows(x: Any) -> Any:
    """(C,) → (1, C); (N, C) as is; (N, C, d₁, …) → (N·d₁·…, C): classes last, one row each."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return x.transpose(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _unrows(rows: Any, shape: tuple[int, ...]) -> Any:
    """Inverse of ``_rows`` for an array of the input's shape."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape((shape[0], *shape[2:], shape[1]))
    return moved.transpose(0, len(shape) - 1, *range(1, len(shape) - 1))


def _rows_graph(x: Any) -> Any:
    """``_rows`` with chainrule ops, for a Tensor (arrays go through ``_rows``)."""
    if not isinstance(x, Tensor):
        return _rows(x)
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    classes_last = (0, *range(2, x.ndim), 1)
    return ops.permute(x, classes_last).reshape(-1, x.shape[1])


def _unrows_graph(rows: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``_unrows`` with chainrule ops."""
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = rows.reshape((shape[0], *shape[2:], shape[1]))
    return ops.permute(moved, (0, len(shape) - 1, *range(1, len(shape) - 1)))


def _one_hot(safe: Any, n_classes: int, dtype: Any) -> Any:
    """(N, C) array with a 1 at each row's target class: a constant of backward_graph."""
    xp = backend.get_array_module(safe)
    hot = xp.zeros((len(safe), n_classes), dtype=dtype)
    hot[xp.arange(len(safe)), safe] = 1
    return hot


def _targets(
    t: Any, n_classes: int, ignore_index: int, dtype: Any, weight: Any
) -> tuple[Any, Any, Any]:
    """(t with ignored rows pointed at class 0, m, w_t · m) for flat targets ``t``.

    Targets on the CPU are checked (a class outside [0, C) is a clear ``IndexError``).
    Targets on a GPU are not: reading their minimum and maximum back would make the host
    wait for the device at every step; an out-of-range class there gives an undefined loss
    (CuPy's indexing wraps it around), as PyTorch's CUDA kernels only assert later.
    """
    t = t.reshape(-1)
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"class targets must be integers, got dtype {t.dtype}; pass class "
            f"indices (e.g. labels.long()) or float probabilities of the "
            f"input's shape"
        )
    mask = t != ignore_index
    safe = backend.get_array_module(t).where(mask, t, 0)
    if (
        safe.size
        and not backend.is_device_array(safe)
        and (int(safe.min()) < 0 or int(safe.max()) >= n_classes)
    ):
        bad = safe[(safe < 0) | (safe >= n_classes)][0]
        raise IndexError(
            f"target class {int(bad)} is out of range for {n_classes} classes "
            f"(targets must lie in [0, {n_classes - 1}] or equal ignore_index="
            f"{ignore_index})"
        )
    wt = mask.astype(dtype) if weight is None else weight[safe] * mask
    return safe, mask, wt


def _reduce(per_row: Any, reduction: str, denominator: Any, out_shape: tuple[int, ...]) -> Any:
    if reduction == "none":
        return per_row.reshape(out_shape)
    total = per_row.sum()
    # NumPy's sums are scalars, CuPy's 0-d arrays: asarray makes both 0-d arrays.
    return backend.get_array_module(per_row).asarray(
        total / denominator if reduction == "mean" else total
    )


def _row_scale(g: Any, reduction: str, denominator: Any) -> Any:
    """The factor each row's gradient gets from the reduction: gᵢ, g or g / D."""
    if reduction == "none":
        return g.reshape(-1)
    return g / denominator if reduction == "mean" else g


class CrossEntropyFunction(Function):
    """Cross-entropy on logits x with class targets, one fused op.

    Forward: ℓᵢ = (1 − ε) w_tᵢ mᵢ (−log pᵢₜᵢ) + (ε/C) mᵢ Σ_c w_c (−log pᵢc), log p computed
    as x − max − log Σ exp(x − max) (``kernels.log_softmax``, the lecture's stable
    log-softmax), ε the label smoothing.

    VJP: dxᵢⱼ = sᵢ [(1 − ε) w_tᵢ mᵢ (pᵢⱼ − [j = tᵢ]) + (ε/C) mᵢ (pᵢⱼ Σ_c w_c − wⱼ)], sᵢ
    the reduction's scale (g, gᵢ or g/D); without weights and smoothing it is the
    familiar (softmax − one-hot) · g / N.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Any,
        target: Any,
        weight: Any,
        ignore_index: int,
        reduction: str,
        smoothing: float,
    ) -> Any:
        ctx.weight, ctx.reduction, ctx.smoothing = weight, reduction, smoothing
        ctx.fused = None
        if (
            x.ndim == 2
            and target.dtype.kind in "iu"
            and cuda_kernels.fusable(x, *(() if weight is None else (weight,)))
        ):  # on a GPU: the whole loss in one launch (chainrule.cuda_kernels), no sync
            loss, ctx.fused = cuda_kernels.cross_entropy_forward(
                x, target, weight, ignore_index, reduction, smoothing
            )
            ctx.save_for_backward(x)
            ctx.target, ctx.ignore_index, ctx.in_shape = target, ignore_index, x.shape
            return loss
        rows = _rows(x)
        n, c = rows.shape
        logp, p = kernels.log_softmax(rows, 1)
        safe, mask, wt = _targets(target, c, ignore_index, x.dtype, weight)
        arange = ctx.xp.arange(n)
        per_row = -logp[arange, safe] * wt
        if smoothing:
            per_row *= 1.0 - smoothing
            weighted = logp if weight is None else logp * weight
            per_row -= (smoothing / c) * weighted.sum(axis=1) * mask
        denominator = wt.sum()
        ctx.save_for_backward(p, safe, mask, wt)
        ctx.denominator, ctx.in_shape = denominator, x.shape
        out_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
        return _reduce(per_row, reduction, denominator, out_shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        if ctx.fused is not None:  # on a GPU: one launch
            (x,) = ctx.saved_tensors
            dx = cuda_kernels.cross_entropy_backward(g, x, ctx.fused)
            return dx, None, None, None, None, None
        p, safe, mask, wt = ctx.saved_tensors
        scale = _row_scale(g, ctx.reduction, ctx.denominator)
        eps, weight = ctx.smoothing, ctx.weight
        n, c = p.shape
        hard = (1.0 - eps) * scale * wt  # per row: the coefficient of (p − one-hot)
        if eps:
            soft = (eps / c) * scale * mask
            total_w = c if weight is None else weight.sum()
            grad = p * (hard + soft * total_w).reshape(-1, 1)
            grad -= soft.reshape(-1, 1) * (1.0 if weight is None else weight)
        else:
            grad = p * hard.reshape(-1, 1)
        grad[ctx.xp.arange(n), safe] -= hard
        return _unrows(grad, ctx.in_shape), None, None, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        if ctx.fused is not None:  # the GPU forward saved only x: the rest is recomputed
            rows = ctx.saved_tensors[0]
            _, p_saved = kernels.log_softmax(rows, 1)
            safe, mask, wt = _targets(
                ctx.target, rows.shape[1], ctx.ignore_index, rows.dtype, ctx.weight
            )
            ctx.denominator = wt.sum()
        else:
            p_saved, safe, mask, wt = ctx.saved_tensors
        c = p_saved.shape[1]
        dtype, eps, weight = p_saved.dtype, ctx.smoothing, ctx.weight
        p = _rows_graph(ctx.inputs[0]).softmax(1)
        scale = _row_scale(g, ctx.reduction, ctx.denominator)
        hard = scale * ((1.0 - eps) * wt)
        grad = p * hard.reshape(-1, 1) - hard.reshape(-1, 1) * _one_hot(safe, c, dtype)
        if eps:
            soft = scale * ((eps / c) * mask.astype(dtype))
            total_w = c if weight is None else weight.sum()
            w = ctx.xp.ones(c, dtype) if weight is None else weight
            grad = grad + (p * total_w - w) * soft.reshape(-1, 1)
        return _unrows_graph(grad, ctx.in_shape), None, None, None, None, None


class SoftCrossEntropyFunction(Function):
    """Cross-entropy on logits x against class probabilities q (same shape as x).

    Forward: ℓᵢ = −Σ_c w_c q̃ᵢc log pᵢc, with q̃ = (1 − ε) q + ε/C (label smoothing).
    "mean" divides by the number of rows.

    VJP: dxᵢⱼ = sᵢ (pᵢⱼ Σ_c w_c q̃ᵢc − wⱼ q̃ᵢⱼ),   dqᵢⱼ = −sᵢ (1 − ε) wⱼ log pᵢⱼ.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, q: Any, weight: Any, reduction: str, smoothing: float) -> Any:
        if q.shape != x.shape:
            raise ShapeError(
                f"cross_entropy with probability targets: target shape "
                f"{tuple(q.shape)} must equal the input shape {tuple(x.shape)}"
            )
        rows, q_rows = _rows(x), _rows(q)
        n, c = rows.shape
        logp, p = kernels.log_softmax(rows, 1)
        q_smooth = q_rows * (1.0 - smoothing) + smoothing / c if smoothing else q_rows
        wq = q_smooth if weight is None else q_smooth * weight
        per_row = -(wq * logp).sum(axis=1)
        ctx.save_for_backward(p, logp, wq)
        ctx.weight, ctx.reduction, ctx.smoothing = weight, reduction, smoothing
        ctx.in_shape, ctx.n = x.shape, n
        out_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
        return _reduce(per_row, reduction, n, out_shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        p, logp, wq = ctx.saved_tensors
        scale = ctx.xp.reshape(_row_scale(g, ctx.reduction, ctx.n), (-1, 1))
        dx = dq = None
        if ctx.needs_input_grad[0]:
            dx = _unrows(scale * (p * wq.sum(axis=1, keepdims=True) - wq), ctx.in_shape)
        if ctx.needs_input_grad[1]:
            w = 1.0 if ctx.weight is None else ctx.weight
            dq = _unrows(-(1.0 - ctx.smoothing) * scale * w * logp, ctx.in_shape)
        return dx, dq, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        x, q = ctx.inputs[0], ctx.inputs[1]
        q = q if isinstance(q, Tensor) else Tensor(ctx.xp.asarray(q))
        eps, weight = ctx.smoothing, ctx.weight
        x_rows, q_rows = _rows_graph(x), _rows_graph(q)
        c = x_rows.shape[1]
        scale = _row_scale(g, ctx.reduction, ctx.n).reshape(-1, 1)
        w = 1.0 if weight is None else weight
        dx = dq = None
        if ctx.needs_input_grad[0]:
            q_smooth = q_rows * (1.0 - eps) + eps / c if eps else q_rows
            wq = q_smooth * w
            p = x_rows.softmax(1)
            dx = _unrows_graph(scale * (p * wq.sum(1, keepdim=True) - wq), ctx.in_shape)
        if ctx.needs_input_grad[1]:
            logp = x_rows.log_softmax(1)
            dq = _unrows_graph(scale * logp * w * -(1.0 - eps), ctx.in_shape)
        return dx, dq, None, None, None


class NLLFunction(Function):
    """Negative log-likelihood on log-probabilities y: ℓᵢ = −w_tᵢ mᵢ yᵢₜᵢ.

    VJP: dyᵢⱼ = −sᵢ w_tᵢ mᵢ [j = tᵢ] (zero off the target class).
    """

    @staticmethod
    def forward(
        ctx: Any, y: Any, target: Any, weight: Any, ignore_index: int, reduction: str
    ) -> Any:
        rows = _rows(y)
        n, c = rows.shape
        safe, _, wt = _targets(target, c, ignore_index, y.dtype, weight)
        per_row = -rows[ctx.xp.arange(n), safe] * wt
        denominator = wt.sum()
        ctx.save_for_backward(safe, wt)
        ctx.reduction, ctx.denominator, ctx.in_shape, ctx.rows_shape = (
            reduction,
            denominator,
            y.shape,
            rows.shape,
        )
        out_shape = y.shape[:1] + y.shape[2:] if y.ndim > 1 else ()
        return _reduce(per_row, reduction, denominator, out_shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, ...]:
        safe, wt = ctx.saved_tensors
        xp = ctx.xp
        grad = xp.zeros(ctx.rows_shape, dtype=g.dtype)
        grad[xp.arange(len(safe)), safe] = -_row_scale(g, ctx.reduction, ctx.denominator) * wt
        return _unrows(grad, ctx.in_shape), None, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        safe, wt = ctx.saved_tensors
        c = ctx.rows_shape[1]
        coef = (_row_scale(g, ctx.reduction, ctx.denominator) * -wt).reshape(-1, 1)
        grad = coef * _one_hot(safe, c, wt.dtype)
        return _unrows_graph(grad, ctx.in_shape), None, None, None, None


class MSEFunction(Function):
    """ℓ = (x − y)² elementwise.   VJP: dx = 2 s (x − y), dy = −dx."""

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, reduction: str) -> Any:
        diff = x - y
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(diff * diff, reduction, diff.size, diff.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None]:
        (diff,) = ctx.saved_tensors
        dx = diff * (2 * _elementwise_scale(g, ctx.reduction, diff.size))
        return dx, (-dx if ctx.needs_input_grad[1] else None), None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, None]:
        x, y = ctx.inputs[0], ctx.inputs[1]
        size = ctx.saved_tensors[0].size
        dx = (x - y) * (_elementwise_scale(g, ctx.reduction, size) * 2)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None


class L1Function(Function):
    """ℓ = |x − y| elementwise.   VJP: dx = s · sign(x − y) (0 where x = y), dy = −dx."""

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, reduction: str) -> Any:
        diff = x - y
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(ctx.xp.abs(diff), reduction, diff.size, diff.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None]:
        (diff,) = ctx.saved_tensors
        dx = ctx.xp.sign(diff) * _elementwise_scale(g, ctx.reduction, diff.size)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, None]:
        (diff,) = ctx.saved_tensors  # sign(x − y) is piecewise constant: a constant here
        dx = _elementwise_scale(g, ctx.reduction, diff.size) * ctx.xp.sign(diff)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None


class HuberFunction(Function):
    """ℓ = ½ d² for |d| ≤ δ, δ(|d| − ½δ) otherwise, with d = x − y (Huber's loss).

    VJP: dx = s · clip(d, −δ, δ), dy = −dx.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, delta: float, reduction: str) -> Any:
        diff = x - y
        xp = ctx.xp
        a = xp.abs(diff)
        per = xp.where(a <= delta, 0.5 * diff * diff, delta * (a - 0.5 * delta))
        ctx.save_for_backward(diff)
        ctx.delta, ctx.reduction = delta, reduction
        return _reduce(per, reduction, diff.size, diff.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None, None]:
        (diff,) = ctx.saved_tensors
        clipped = ctx.xp.clip(diff, -ctx.delta, ctx.delta)
        dx = clipped * _elementwise_scale(g, ctx.reduction, diff.size)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, None, None]:
        x, y = ctx.inputs[0], ctx.inputs[1]
        size = ctx.saved_tensors[0].size
        clipped = ops.clamp(x - y, -ctx.delta, ctx.delta)
        dx = clipped * _elementwise_scale(g, ctx.reduction, size)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None, None


class BCEWithLogitsFunction(Function):
    """Binary cross-entropy on logits x with targets y, exact for any x.

    Forward: ℓ = w [(1 − y) softplus(x) + P y softplus(−x)], P the pos_weight (1 when not
    given): that is −w [P y log σ(x) + (1 − y) log(1 − σ(x))], as two non-negative terms
    that never cancel (the form (1 − y) x + softplus(−x) gives 0 for y = 0 at x = −20,
    where the loss is 2.1e-9). softplus and σ are the ``kernels``.

    VJP: dx = s w [(1 − y) σ(x) − P y σ(−x)],   dy = s w [P softplus(−x) − softplus(x)].
    """

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, weight: Any, pos_weight: Any, reduction: str) -> Any:
        softplus_pos, softplus_neg = kernels.softplus(x), kernels.softplus(-x)
        positive = y if pos_weight is None else pos_weight * y
        per = (1.0 - y) * softplus_pos + positive * softplus_neg
        if weight is not None:
            per = per * weight
        ctx.save_for_backward(x, y, softplus_pos, softplus_neg)
        ctx.weight, ctx.pos_weight, ctx.reduction = weight, pos_weight, reduction
        ctx.size = _broadcast_size(x, y)
        return _reduce(per, reduction, per.size, per.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None, None, None]:
        x, y, softplus_pos, softplus_neg = ctx.saved_tensors
        scale = _elementwise_scale(g, ctx.reduction, ctx.size)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        pw = 1.0 if ctx.pos_weight is None else ctx.pos_weight
        dx = dy = None
        if ctx.needs_input_grad[0]:
            dx = scale * ((1.0 - y) * kernels.sigmoid(x) - pw * y * kernels.sigmoid(-x))
        if ctx.needs_input_grad[1]:
            dy = scale * (pw * softplus_neg - softplus_pos)
        return dx, dy, None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, None, None, None]:
        x, y = ctx.inputs[0], ctx.inputs[1]
        scale = _elementwise_scale(g, ctx.reduction, ctx.size)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        pw = 1.0 if ctx.pos_weight is None else ctx.pos_weight
        dx = dy = None
        if ctx.needs_input_grad[0]:
            dx = scale * ((1.0 - y) * x.sigmoid() - (-x).sigmoid() * y * pw)
        if ctx.needs_input_grad[1]:
            dy = scale * ((-x).softplus() * pw - x.softplus())
        return dx, dy, None, None, None


class BCEFunction(Function):
    """Binary cross-entropy on probabilities x: ℓ = −w [y log x + (1 − y) log(1 − x)],
    each log clamped at −100 as PyTorch does, so x = 0 or 1 gives a finite loss.

    VJP: dx = s w (x − y) / max(x (1 − x), 1e-12),   dy = s w (log(1 − x) − log x).
    """

    @staticmethod
    def forward(ctx: Any, x: Any, y: Any, weight: Any, reduction: str) -> Any:
        xp = ctx.xp
        log_x = xp.maximum(xp.log(x), -100.0)
        log_1mx = xp.maximum(xp.log1p(-x), -100.0)
        per = -(y * log_x + (1.0 - y) * log_1mx)
        if weight is not None:
            per = per * weight
        ctx.save_for_backward(x, y, log_x, log_1mx)
        ctx.weight, ctx.reduction = weight, reduction
        ctx.size = _broadcast_size(x, y)
        return _reduce(per, reduction, per.size, per.shape)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, Any, None, None]:
        x, y, log_x, log_1mx = ctx.saved_tensors
        scale = _elementwise_scale(g, ctx.reduction, ctx.size)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        dx = None
        if ctx.needs_input_grad[0]:
            dx = scale * (x - y) / ctx.xp.maximum(x * (1.0 - x), 1e-12)
        dy = scale * (log_1mx - log_x) if ctx.needs_input_grad[1] else None
        return dx, dy, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Tensor) -> tuple[Any, Any, None, None]:
        x, y = ctx.inputs[0], ctx.inputs[1]
        scale = _elementwise_scale(g, ctx.reduction, ctx.size)
        if ctx.weight is not None:
            scale = scale * ctx.weight
        dx = dy = None
        if ctx.needs_input_grad[0]:
            dx = scale * (x - y) / (x * (1.0 - x)).clamp(min=1e-12)
        if ctx.needs_input_grad[1]:
            log_x = x.log().clamp(min=-100.0)
            log_1mx = (1.0 - x).log().clamp(min=-100.0)
            dy = scale * (log_1mx - log_x)
        return dx, dy, None, None


def _broadcast_size(x: Any, y: Any) -> int:
    """The number of elements of x and y broadcast together (y may be a Python number)."""
    shapes = [x.shape, getattr(y, "shape", ())]
    ndim = max(len(shape) for shape in shapes)
    padded = [(1,) * (ndim - len(shape)) + tuple(shape) for shape in shapes]
    return math.prod(max(sizes) if min(sizes) else 0 for sizes in zip(*padded))


def _elementwise_scale(g: Any, reduction: str, size: int) -> Any:
    """The factor each element's gradient gets from the reduction: gₑ, g or g / size."""
    return g / size if reduction == "mean" else g
