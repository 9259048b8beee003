"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from typing import Any

from chainrule.backend import xp
from chainrule.optim.optimizer import (
    Optimizer,
    ParamsLike,
    _check_nonnegative,
    effective_grad,
    soft_threshold_,
)
from chainrule.tensor import Tensor


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's rule, with optional AMSGrad and L1.

    For each parameter w, learning rate η, step t = 1, 2, …:

    .. code-block:: text

        d   = ∂C/∂w + λ·w                       (−∂C/∂w with maximize)
        m_t = β₁·m_{t−1} + (1 − β₁)·d           (first moment, m₀ = 0)
        v_t = β₂·v_{t−1} + (1 − β₂)·d²          (second moment, v₀ = 0)
        v̂   = max(v̂_{t−1}, v_t) with amsgrad, else v_t
        w   ← w − η/(1 − β₁ᵗ) · m_t / (√v̂ / √(1 − β₂ᵗ) + ε)
        w   ← sign(w)·max(|w| − η_i·λ₁, 0),  η_i = η / (√v̂ / √(1 − β₂ᵗ) + ε)   (l1 > 0)

    **L2 (weight_decay = λ)** adds λ·w to the gradient, the gradient of (λ/2)‖w‖²
    (the lecture's α‖w‖² with λ = 2α). In Adam this penalty gradient is then divided
    by √v̂ like the data gradient, so weights with large gradients are barely decayed.
    Use it when you want exactly the penalised objective C + (λ/2)‖w‖²; for the usual
    "shrink every weight a little each step" regularisation of a network trained
    with Adam, use ``AdamW``.

    **L1 (l1 = λ₁)** is a proximal soft-threshold after the step. Its threshold uses
    each weight's own step size η_i = η / (√v̂ᵢ/√(1 − β₂ᵗ) + ε), the one Adam applies to
    it, rather than the bare η: a weight then stays exactly zero when its averaged
    gradient |m̂| is at most λ₁, which is the optimality condition of C + λ₁‖w‖₁,
    whatever the scale of its gradients. With the bare η, weights with small v̂ would
    escape the threshold every step.

    Args:
        params: tensors to optimize, or param-group dicts (see ``Optimizer``).
        lr: the learning rate η.
        betas: (β₁, β₂), the decay rates of the two moment estimates.
        eps: ε, added to the denominator for numerical stability.
        weight_decay: λ of the L2 penalty (λ/2)‖w‖² (coupled, added to the gradient).
        amsgrad: use the running maximum of v (Reddi et al., 2018).
        maximize: ascend the objective instead of descending.
        l1: λ₁ of the L1 penalty λ₁‖w‖₁, applied by soft-thresholding.

    State per parameter:
        ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq``
        (with amsgrad).

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = cr.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 6) for v in w.tolist()]
        [0.9, -1.9]
    """

    _decoupled = False

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        l1: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "l1": l1,
        }
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        _check_nonnegative(name, group, "lr", "eps", "weight_decay", "l1")
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(
                f"{name}: betas must be two numbers in [0, 1), got betas={betas!r}; "
                f"the usual choice is (0.9, 0.999)"
            )

    def _update_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        amsgrad = group["amsgrad"]
        l1 = group["l1"]
        ws = self._workspace
        for p in group["params"]:
            if p.grad is None:
                continue
            w = p.data
            state = self.state[p]
            if not state:
                _init_state(state, w)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = Tensor._wrap(xp.zeros_like(w), False, None, 0)
            state["step"] += 1
            t = state["step"]

            scratch = ws.get(w, 0)
            if self._decoupled:
                if weight_decay != 0:
                    w *= 1 - lr * weight_decay
                d = effective_grad(w, p.grad.data, 0.0, group["maximize"], scratch)
            else:
                d = effective_grad(w, p.grad.data, weight_decay, group["maximize"], scratch)

            m = state["exp_avg"].data
            v = state["exp_avg_sq"].data
            tmp = ws.get(w, 1)
            # m ← m + (1 − β₁)(d − m), the same rounding as PyTorch's lerp.
            xp.subtract(d, m, out=tmp)
            tmp *= 1 - beta1
            m += tmp
            v *= beta2
            xp.multiply(d, d, out=tmp)
            tmp *= 1 - beta2
            v += tmp
            if amsgrad:
                v_max = state["max_exp_avg_sq"].data
                xp.maximum(v_max, v, out=v_max)
                v = v_max

            step_size = lr / (1 - beta1**t)
            denom = tmp
            xp.sqrt(v, out=denom)
            denom /= (1 - beta2**t) ** 0.5
            denom += group["eps"]
            threshold = None
            if l1 != 0:
                # d is no longer needed: its scratch holds the per-weight thresholds.
                threshold = xp.divide(lr * l1, denom, out=scratch)
            xp.divide(m, denom, out=tmp)
            tmp *= step_size
            xp.subtract(w, tmp, out=w)
            if threshold is not None:
                soft_threshold_(w, threshold, tmp)
            p._bump_version()


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's rule.

    The same update as ``Adam`` but the decay acts on the weights directly, before the
    adaptive step, instead of being added to the gradient:

    .. code-block:: text

        w   ← (1 − η·λ)·w
        m_t, v_t, v̂ as in Adam with d = ∂C/∂w (no λ·w term)
        w   ← w − η/(1 − β₁ᵗ) · m_t / (√v̂ / √(1 − β₂ᵗ) + ε)

    **When to use which.** For plain SGD, adding λ·w to the gradient (L2) and shrinking
    the weights by (1 − ηλ) are the same thing. For Adam they are not: the L2 gradient
    is divided by √v̂, so a weight with large gradients is hardly decayed while one with
    tiny gradients is decayed hard. AdamW shrinks every weight by the same factor, which
    is what "weight decay" is meant to do and generalises better in practice: use AdamW
    to regularise networks trained with Adam; use ``Adam(weight_decay=λ)`` only when you
    need the exact penalised loss C + (λ/2)‖w‖² (e.g. to compare with the lecture's L2).

    Args:
        params: tensors to optimize, or param-group dicts (see ``Optimizer``).
        lr: the learning rate η.
        betas: (β₁, β₂).
        eps: ε.
        weight_decay: λ, the decoupled decay rate (default 1e-2, as in PyTorch).
        amsgrad: use the running maximum of v.
        maximize: ascend the objective instead of descending.
        l1: λ₁ of the L1 penalty, applied by soft-thresholding as in ``Adam``.

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = cr.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.85, -1.8 ], requires_grad=True)
    """

    _decoupled = True

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        l1: float = 0.0,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, l1)


def _init_state(state: dict[str, Any], w: Any) -> None:
    state["step"] = 0
    state["exp_avg"] = Tensor._wrap(xp.zeros_like(w), False, None, 0)
    state["exp_avg_sq"] = Tensor._wrap(xp.zeros_like(w), False, None, 0)
