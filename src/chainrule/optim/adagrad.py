"""Adagrad: per-weight learning rates that shrink with the sum of squared gradients."""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.optim.kernels import effective_grad, soft_threshold_
from chainrule.optim.optimizer import Optimizer, ParamsLike
from chainrule.optim.options import check_nonnegative
from chainrule.tensor import Tensor


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's rule, with optional L1.

    For each parameter w, learning rate η, step t = 1, 2, …:

    .. code-block:: text

        d   = ∂C/∂w + λ·w                       (−∂C/∂w with maximize)
        η_t = η / (1 + (t − 1)·δ)               (δ = lr_decay)
        S_t = S_{t−1} + d²                      (S₀ = initial_accumulator_value)
        w   ← w − η_t · d / (√S_t + ε)
        w   ← sign(w)·max(|w| − η_t/(√S_t + ε)·λ₁, 0)      (l1 = λ₁ > 0)

    ``weight_decay`` is the L2 penalty (λ/2)‖w‖² added to the gradient (see ``SGD``);
    the L1 threshold uses each weight's step size, as in ``Adam``.

    Args:
        params: tensors to optimize, or param-group dicts (see ``Optimizer``).
        lr: the learning rate η.
        lr_decay: δ, the decay of η with the step count.
        weight_decay: λ of the L2 penalty.
        initial_accumulator_value: S₀, the starting sum of squares.
        eps: ε, added to the denominator for numerical stability.
        maximize: ascend the objective instead of descending.
        l1: λ₁ of the L1 penalty, applied by soft-thresholding.

    State per parameter:
        ``step`` (int), ``sum`` (S).

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = cr.optim.Adagrad([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.9, -1.9], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
        l1: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "maximize": maximize,
            "l1": l1,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(
            "Adagrad",
            group,
            "lr",
            "lr_decay",
            "weight_decay",
            "initial_accumulator_value",
            "eps",
            "l1",
        )

    def _init_state(self, state: dict[str, Any], w: Any, group: dict[str, Any]) -> None:
        xp = backend.get_array_module(w)
        state["step"] = 0
        state["sum"] = Tensor(xp.full_like(w, group["initial_accumulator_value"]))

    def _update(self, w: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(w)
        l1 = group["l1"]
        ws = self._workspace
        state["step"] += 1
        lr_t = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])

        d = effective_grad(w, g, group["weight_decay"], group["maximize"], ws.get(w, 0))
        total = state["sum"].data
        std = ws.get(w, 1)
        xp.multiply(d, d, out=std)
        total += std
        xp.sqrt(total, out=std)
        std += group["eps"]
        threshold = None
        if l1 != 0:
            threshold = xp.divide(lr_t * l1, std, out=ws.get(w, 2))
        step = std
        xp.divide(d, std, out=step)
        step *= lr_t
        xp.subtract(w, step, out=w)
        if threshold is not None:
            soft_threshold_(w, threshold, step)
