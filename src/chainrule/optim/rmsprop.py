"""RMSprop: gradient steps scaled by a running root-mean-square of the gradient."""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.optim.kernels import effective_grad, soft_threshold_
from chainrule.optim.optimizer import Optimizer, ParamsLike
from chainrule.optim.options import check_nonnegative, check_number
from chainrule.tensor import Tensor


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012), PyTorch's rule, with optional momentum, centering and L1.

    For each parameter w, learning rate η:

    .. code-block:: text

        d   = ∂C/∂w + λ·w                       (−∂C/∂w with maximize)
        s_t = α·s_{t−1} + (1 − α)·d²            (s₀ = 0)
        ḡ_t = α·ḡ_{t−1} + (1 − α)·d             (only when centered)
        r   = √(s_t − ḡ_t²) + ε  if centered  else  √s_t + ε
        b_t = μ·b_{t−1} + d / r,   w ← w − η·b_t      (momentum μ > 0)
        w   ← w − η·d / r                             (otherwise)
        w   ← sign(w)·max(|w| − (η/r)·λ₁, 0)          (l1 = λ₁ > 0)

    ``weight_decay`` is the L2 penalty (λ/2)‖w‖² added to the gradient (see ``SGD``);
    the L1 threshold uses each weight's step size η/r, as in ``Adam``.

    Args:
        params: tensors to optimize, or param-group dicts (see ``Optimizer``).
        lr: the learning rate η.
        alpha: α, the decay rate of the running averages.
        eps: ε, added to the denominator for numerical stability.
        weight_decay: λ of the L2 penalty.
        momentum: μ; 0 for none.
        centered: divide by an estimate of the gradient's standard deviation instead
            of its root mean square.
        maximize: ascend the objective instead of descending.
        l1: λ₁ of the L1 penalty, applied by soft-thresholding.

    State per parameter:
        ``step`` (int), ``square_avg`` (s), ``grad_avg`` (ḡ, when centered),
        ``momentum_buffer`` (b, with momentum).

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = cr.optim.RMSprop([w], lr=0.01)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 6) for v in w.tolist()]
        [0.9, -1.9]
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
        l1: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
            "l1": l1,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("RMSprop", group, "lr", "eps", "weight_decay", "momentum", "l1")
        # α > 1 makes s_t = α·s + (1 − α)·d² negative: √s is NaN after a few steps.
        check_number(
            "RMSprop", "alpha", group["alpha"], high=1.0, hint="; the usual choice is 0.99"
        )

    def _init_state(self, state: dict[str, Any], w: Any, group: dict[str, Any]) -> None:
        xp = backend.get_array_module(w)
        state["step"] = 0
        state["square_avg"] = Tensor(xp.zeros_like(w))

    def _update(self, w: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(w)
        lr = group["lr"]
        alpha = group["alpha"]
        momentum = group["momentum"]
        l1 = group["l1"]
        ws = self._workspace
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = Tensor(xp.zeros_like(w))
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = Tensor(xp.zeros_like(w))
        state["step"] += 1

        d = effective_grad(w, g, group["weight_decay"], group["maximize"], ws.get(w, 0))
        square_avg = state["square_avg"].data
        r = ws.get(w, 1)
        square_avg *= alpha
        xp.multiply(d, d, out=r)
        r *= 1 - alpha
        square_avg += r
        if group["centered"]:
            grad_avg = state["grad_avg"].data
            # ḡ ← ḡ + (1 − α)(d − ḡ), the same rounding as PyTorch's lerp.
            xp.subtract(d, grad_avg, out=r)
            r *= 1 - alpha
            grad_avg += r
            xp.multiply(grad_avg, grad_avg, out=r)
            xp.subtract(square_avg, r, out=r)
            xp.sqrt(r, out=r)
        else:
            xp.sqrt(square_avg, out=r)
        r += group["eps"]

        threshold = None
        if l1 != 0:
            threshold = xp.divide(lr * l1, r, out=ws.get(w, 2))
        step = r
        xp.divide(d, r, out=step)
        if momentum > 0:
            buf = state["momentum_buffer"].data
            buf *= momentum
            buf += step
            xp.multiply(buf, lr, out=step)
        else:
            step *= lr
        xp.subtract(w, step, out=w)
        if threshold is not None:
            soft_threshold_(w, threshold, step)
