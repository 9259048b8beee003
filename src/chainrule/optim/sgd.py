"""Stochastic gradient descent, with momentum, Nesterov momentum, L2 and L1."""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.cuda_flat import fused_sgd_step
from chainrule.optim.kernels import effective_grad, soft_threshold_
from chainrule.optim.optimizer import Optimizer, ParamsLike
from chainrule.optim.options import check_nonnegative, check_number
from chainrule.tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), PyTorch's rule.

    For each parameter w with gradient ∂C/∂w, learning rate η, step t:

    .. code-block:: text

        d  = ∂C/∂w + λ·w                          (−∂C/∂w with maximize)
        b₁ = d,   b_t = μ·b_{t−1} + (1 − τ)·d     (only with momentum μ > 0)
        d  = d + μ·b_t   if nesterov   else   b_t
        w  ← w − η·d
        w  ← sign(w)·max(|w| − η·λ₁, 0)           (only with l1 = λ₁ > 0)

    **L2 (weight_decay = λ)** adds λ·w to the gradient: the gradient of the penalty
    (λ/2)‖w‖². The lecture writes the penalty as α‖w‖², whose gradient is 2α·w, and
    the update of plain SGD as

        w ← w − η(∂C/∂w + 2α·w) = (1 − 2ηα)·w − η·∂C/∂w,

    which is this rule with λ = 2α: each step first shrinks the weights by the factor
    (1 − ηλ), then follows the data gradient. For plain SGD this is the same as
    decoupled weight decay; they differ only with adaptive methods (see ``AdamW``).

    **L1 (l1 = λ₁)** is applied as a proximal step after the gradient step (a
    soft-threshold): any weight that ends within η·λ₁ of zero becomes exactly 0.0, and
    the others move η·λ₁ towards zero. This is the update of minimising C + λ₁‖w‖₁
    by proximal gradient descent. The naive alternative, adding λ₁·sign(w) to the
    gradient, jumps over zero each step and leaves useless weights oscillating around
    it with amplitude ≈ η·λ₁, never exactly 0: the soft-threshold is what gives the
    lecture's "with L1 the useless weights are reduced to 0".

    Args:
        params: tensors to optimize, or param-group dicts (see ``Optimizer``).
        lr: the learning rate η.
        momentum: μ; 0 for plain SGD.
        dampening: τ, the share of the new gradient left out of the momentum buffer.
        weight_decay: λ of the L2 penalty (λ/2)‖w‖².
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend the objective instead of descending.
        l1: λ₁ of the L1 penalty λ₁‖w‖₁, applied by soft-thresholding.

    State per parameter:
        ``momentum_buffer``: b_t (only with momentum).

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        tensor([ 0.8, -1.6], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsLike,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
        l1: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "l1": l1,
        }
        # On a GPU, a group's parameters live in one flat buffer updated by one kernel
        # launch (chainrule.cuda_flat); this holds those buffers between steps.
        self._fused: dict[int, Any] = {}
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any]) -> None:
        params = group["params"]
        if params and params[0].is_cuda and fused_sgd_step(self._fused, group, self.state):
            return  # the whole group in one launch (CuPy arrays only; else the loop below)
        super()._update_group(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("SGD", group, "lr", "momentum", "weight_decay", "l1")
        # τ is a share of the gradient: outside [0, 1] the buffer follows −d or grows.
        check_number("SGD", "dampening", group["dampening"], high=1.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}; set a "
                f"momentum such as 0.9, or nesterov=False"
            )

    def _update(self, w: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(w)
        lr = group["lr"]
        momentum = group["momentum"]
        l1 = group["l1"]
        ws = self._workspace
        d = effective_grad(w, g, group["weight_decay"], group["maximize"], ws.get(w, 0))
        if momentum != 0:
            d = self._momentum(state, d, momentum, group["dampening"], group["nesterov"])
        # The step goes into a scratch array: d may be the gradient or the buffer.
        step = ws.get(w, 1)
        xp.multiply(d, lr, out=step)
        xp.subtract(w, step, out=w)
        if l1 != 0:
            soft_threshold_(w, lr * l1, step)

    def _momentum(
        self, state: dict[str, Any], d: Any, momentum: float, dampening: float, nesterov: bool
    ) -> Any:
        """Update the momentum buffer in ``state`` with d; return the direction to step along."""
        xp = backend.get_array_module(d)
        buf = state.get("momentum_buffer")
        if buf is None:
            b = d.copy()
            state["momentum_buffer"] = Tensor(b)
        else:
            b = buf.data
            b *= momentum
            if dampening == 0:
                b += d
            else:
                tmp = self._workspace.get(b, 1)
                xp.multiply(d, 1 - dampening, out=tmp)
                b += tmp
        if not nesterov:
            return b
        ahead = self._workspace.get(b, 1)
        xp.multiply(b, momentum, out=ahead)
        xp.add(ahead, d, out=ahead)
        return ahead
