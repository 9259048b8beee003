"""``OneCycleLR``: Smith and Topin's one-cycle policy ("Super-Convergence", 2017), with
PyTorch's arguments and numbers."""

from __future__ import annotations

import math
from typing import Any

from chainrule.optim.lr_scheduler.base import LRScheduler
from chainrule.optim.optimizer import Optimizer


class OneCycleLR(LRScheduler):
    r"""One cycle per training run, stepped once per **batch**: the learning rate climbs
    from max_lr/div_factor to ``max_lr`` over the first ``pct_start`` of the steps, then
    anneals to max_lr/(div_factor·final_div_factor); the momentum (SGD's μ, or Adam's β₁)
    moves the opposite way, from ``max_momentum`` down to ``base_momentum`` and back.

    Within a phase from a to b, at the fraction p of it done:

        cos:     a + (b − a)·(1 − cos(πp))/2        linear:  a + (b − a)·p

    ``three_phase`` climbs for pct_start of the steps, comes back down to the starting
    rate over as many, then anneals to the minimum (fast.ai's variant).

    Args:
        optimizer: the optimizer whose rates (and momenta) to set.
        max_lr: the peak rate, one number or one per param group.
        total_steps: the number of steps of the cycle; or give ``epochs`` and
            ``steps_per_epoch`` (their product). Stepping past it is an error.
        pct_start: the share of the steps spent climbing.
        anneal_strategy: "cos" or "linear".
        cycle_momentum: cycle the momentum (needs an optimizer with ``momentum`` or
            ``betas``; SGD then uses momentum even if it was made with 0, as in PyTorch).
        base_momentum, max_momentum: the momentum at the peak rate and at the ends.
        div_factor: the starting rate is max_lr/div_factor.
        final_div_factor: the final rate is the starting rate/final_div_factor.
        three_phase: the three-phase schedule above.
        last_epoch: -1 to start a cycle.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> sched = cr.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
        >>> sched.get_last_lr()[0], opt.param_groups[0]["momentum"]
        (0.04, 0.95)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"OneCycleLR needs a chainrule Optimizer, got {type(optimizer).__name__}"
            )
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.anneal_strategy = anneal_strategy
        climb = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [
                (climb, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * climb, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (climb, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group("max_lr", max_lr, len(groups))
        if last_epoch == -1:
            for group, peak in zip(groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or "
                    f"betas; {type(optimizer).__name__} has neither (pass cycle_momentum=False)"
                )
            highs = _per_group("max_momentum", max_momentum, len(groups))
            lows = _per_group("base_momentum", base_momentum, len(groups))
            if last_epoch == -1:
                for group, high, low in zip(groups, highs, lows, strict=True):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step} times, but the cycle has total_steps="
                f"{self.total_steps}; make the scheduler with the run's number of batches "
                f"(epochs × steps_per_epoch)"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr_a, lr_b, m_a, m_b) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    # A phase of no steps (pct_start·total_steps = 1) is over at once,
                    # where PyTorch would divide by zero.
                    pct = (step - start) / (end - start) if end > start else 1.0
                    lrs.append(self._anneal(group[lr_a], group[lr_b], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m_a], group[m_b], pct))
                    break
                start = end
        return lrs


def _total_steps(total: int | None, epochs: int | None, per_epoch: int | None) -> int:
    if total is not None:
        if not isinstance(total, int) or total <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be a positive int, got {total!r}")
        return total
    if epochs is None or per_epoch is None:
        raise ValueError(
            "OneCycleLR: give total_steps, or both epochs and steps_per_epoch (len(train_loader))"
        )
    for name, value in (("epochs", epochs), ("steps_per_epoch", per_epoch)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"OneCycleLR: {name} must be a positive int, got {value!r}")
    return epochs * per_epoch


def _per_group(name: str, value: float | list[float], n: int) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"OneCycleLR: {name} has {len(value)} values but the optimizer has {n} param groups"
            )
        return [float(v) for v in value]
    return [float(value)] * n
