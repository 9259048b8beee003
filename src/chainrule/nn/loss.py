"""Loss modules: thin wrappers that keep a loss's settings and call ``nn.functional``.

``reduction`` is "mean" (the default), "sum" or "none" (one loss per element or row).
Class weights are registered buffers, so ``model.to(dtype)`` converts them.
"""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


def _weight_buffer(weight: Any) -> Tensor | None:
    if weight is None or isinstance(weight, Tensor):
        return weight
    return Tensor(weight)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits: log-softmax and NLL in one fused op, stable for any logit.

    Forward (class targets t, label smoothing ε, C classes):
    ℓᵢ = −(1 − ε) w_tᵢ log softmax(xᵢ)_tᵢ − (ε/C) Σ_c w_c log softmax(xᵢ)_c;
    gradient (softmax − one-hot)/N without weights and smoothing.

    Args:
        weight: per-class weights, shape (C,).
        ignore_index: targets equal to it add nothing to the loss or its gradient.
        reduction: "mean" (divided by the summed weights of the counted targets), "sum"
            or "none".
        label_smoothing: ε in [0, 1].

    Shape:
        input (N, C) logits (or (C,), or (N, C, d₁, …)); target (N,) class indices (or
        (N, d₁, …)), or probabilities of the input's shape; output () or, with
        reduction "none", (N,) (or (N, d₁, …)).

    Targets on the CPU are checked: a class outside [0, C) is an ``IndexError``. On a GPU
    they are not, because reading them back would make every step wait for the device
    (the check PyTorch's CUDA kernels do asynchronously): there, an out-of-range class
    gives an undefined loss; check the labels once on the CPU (e.g. the dataset's).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> loss = nn.CrossEntropyLoss()(cr.zeros(2, 4), cr.tensor([0, 3]))
        >>> round(loss.item(), 4)  # log 4
        1.3863
    """

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities: ℓᵢ = −w_tᵢ xᵢ,tᵢ.

    Feed it ``LogSoftmax`` outputs (or use ``CrossEntropyLoss`` on logits). Arguments,
    shapes and target checks (on the CPU only) as ``CrossEntropyLoss`` (class-index
    targets only).
    """

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """Mean squared error: ℓ = (x − y)².   Gradient: 2(x − y)/n for "mean"."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error: ℓ = |x − y|.   Gradient: sign(x − y)/n for "mean"."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """ℓ = ½d² where |d| ≤ δ, else δ(|d| − ½δ), with d = x − y."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """ℓ = ½d²/β where |d| < β, else |d| − ½β, with d = x − y."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, stable for any logit:
    ℓ = w [(1 − y) x + (1 + (pos_weight − 1) y) · log(1 + e⁻ˣ)].

    Args:
        weight: broadcast over the elements' losses.
        reduction: "mean", "sum" or "none".
        pos_weight: weight of the positive examples, one per class (last dim).
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))
        self.register_buffer("pos_weight", _weight_buffer(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities: ℓ = −w [y log x + (1 − y) log(1 − x)].
    Prefer ``BCEWithLogitsLoss`` on logits.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _weight_buffer(weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)
