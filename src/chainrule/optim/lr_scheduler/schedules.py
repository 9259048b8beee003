"""The basic schedules: step decays, exponential decay, cosine annealing, linear warm-up.

Each is written in PyTorch's recursive form (``get_lr``, from the current rates) and its
closed form (``_get_closed_form_lr``, from ``base_lrs``); see ``base.py``. With η₀ the
base rate and e = ``last_epoch``, the closed forms are written in each docstring.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

from chainrule.optim.lr_scheduler.base import LRScheduler
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.options import check_number

# A factor ≤ 0 makes the learning rate zero or negative (a negative one climbs the loss).
_GAMMA_HINT = "; the rate is multiplied by gamma, so 0 < gamma (< 1 to decay, e.g. 0.1)"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    η_e = η₀ · γ^⌊e / step_size⌋

    Args:
        optimizer: the optimizer whose learning rates to set.
        step_size: the number of epochs between decays.
        gamma: γ, the factor of each decay.
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> for _ in range(4):
        ...     opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        check_number("StepLR", "gamma", gamma, low_open=True, hint=_GAMMA_HINT)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch.

    η_e = η₀ · γ^(number of milestones ≤ e)   (a milestone listed twice counts twice)

    Args:
        optimizer: the optimizer whose learning rates to set.
        milestones: the epochs at which to decay.
        gamma: γ, the factor of each decay.
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.1)
        >>> for _ in range(3):
        ...     opt.step(); sched.step()
        >>> round(sched.get_last_lr()[0], 12)
        0.01
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        check_number("MultiStepLR", "gamma", gamma, low_open=True, hint=_GAMMA_HINT)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        times = self.milestones.count(self.last_epoch)
        if times == 0:
            return self._current_lrs()
        return [lr * self.gamma**times for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        passed = bisect_right(self.milestones, self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch.

    η_e = η₀ · γ^e

    Args:
        optimizer: the optimizer whose learning rates to set.
        gamma: γ, the factor of each decay.
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
        >>> opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        check_number("ExponentialLR", "gamma", gamma, low_open=True, hint=_GAMMA_HINT)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # On a resume (last_epoch given) the initial step must not decay a second time.
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the learning rate from η₀ to ``eta_min`` along half a cosine.

    η_e = η_min + ½(η₀ − η_min)(1 + cos(π·e / T_max))

    After T_max epochs the rate climbs back (the cosine continues), as in PyTorch. The
    rates are computed recursively from the current ones, which lets other schedulers
    change them too:

        η_e = η_min + (η_{e−1} − η_min)·(1 + cos(π·e/T_max)) / (1 + cos(π·(e−1)/T_max))

    Args:
        optimizer: the optimizer whose learning rates to set.
        T_max: the number of epochs from η₀ down to η_min.
        eta_min: η_min, the lowest rate.
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
        >>> opt.step(); sched.step()
        >>> round(sched.get_last_lr()[0], 12)
        0.5
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,  # noqa: N803  (PyTorch's name)
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        check_number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and e > 0:
            # The first step of a resumed schedule: no previous rate to recurse from.
            return [
                eta_min + (base - eta_min) * (1 + math.cos(e * math.pi / t_max)) / 2
                for base in self.base_lrs
            ]
        if (e - 1 - t_max) % (2 * t_max) == 0:
            # Leaving the minimum, where the recursive ratio would divide by 1 + cos(π) = 0.
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                for lr, base in zip(self._current_lrs(), self.base_lrs)
            ]
        return [
            (1 + math.cos(math.pi * e / t_max))
            / (1 + math.cos(math.pi * (e - 1) / t_max))
            * (lr - eta_min)
            + eta_min
            for lr in self._current_lrs()
        ]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            self.eta_min
            + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base in self.base_lrs
        ]


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` (warm-up).

    η_e = η₀ · (f_s + (f_e − f_s) · min(e, total_iters) / total_iters)

    Typically used for a warm-up: ``LinearLR(opt, start_factor=0.1, total_iters=5)``
    grows the rate from η₀/10 to η₀ over five epochs, then keeps it (or hands over to
    another schedule through ``SequentialLR``).

    Args:
        optimizer: the optimizer whose learning rates to set.
        start_factor: f_s in (0, 1], the factor at epoch 0.
        end_factor: f_e in [0, 1], the factor from epoch ``total_iters`` on.
        total_iters: the number of epochs of the ramp.
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
        >>> sched.get_last_lr()
        [0.5]
        >>> opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.75]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be >= 1, got {total_iters}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, f_s, f_e = self.last_epoch, self.start_factor, self.end_factor
        if e == 0:
            return [lr * f_s for lr in self._current_lrs()]
        if self._is_initial or e > self.total_iters:
            return self._current_lrs()
        # The ratio of consecutive factors (f_s + (f_e − f_s)·e/T) / (f_s + (f_e − f_s)(e−1)/T).
        ratio = 1.0 + (f_e - f_s) / (self.total_iters * f_s + (e - 1) * (f_e - f_s))
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        progress = min(self.total_iters, self.last_epoch)
        factor = (
            self.start_factor + (self.end_factor - self.start_factor) * progress / self.total_iters
        )
        return [base * factor for base in self.base_lrs]
