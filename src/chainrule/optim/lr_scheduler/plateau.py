"""``ReduceLROnPlateau``: lower the learning rate when a metric stops improving."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, SupportsFloat

from chainrule.optim.lr_scheduler.base import LRScheduler
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.options import check_number


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without progress.

    Each ``step(metric)`` compares the metric with the best seen so far. It counts as
    better when (``threshold_mode="rel"``) it beats ``best·(1 − threshold)`` in ``"min"``
    mode, or ``best·(1 + threshold)`` in ``"max"`` mode; with ``"abs"``, when it beats
    ``best ∓ threshold``. After more than ``patience`` epochs in a row that are not better,
    each group's rate becomes max(η·factor, min_lr) (skipped if that changes it by no more
    than ``eps``), and the next ``cooldown`` epochs are not counted as bad.

    Args:
        optimizer: the optimizer whose learning rates to set.
        mode: ``"min"`` for a loss, ``"max"`` for an accuracy.
        factor: the factor of each reduction (< 1).
        patience: how many bad epochs to tolerate before reducing.
        threshold: how much better a metric must be to count as progress.
        threshold_mode: ``"rel"`` (relative to best) or ``"abs"``.
        cooldown: epochs to wait after a reduction before counting bad epochs again.
        min_lr: the lowest rate, one number or one per param group.
        eps: reductions smaller than this are skipped.

    Example:
        >>> import chainrule as cr
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> sched = cr.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
        >>> for loss in [1.0, 1.0, 1.0]:
        ...     sched.step(loss)
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau needs a chainrule Optimizer, got {type(optimizer).__name__}"
            )
        # factor ≤ 0 would set the rate to min_lr at once (or, below it, make it negative).
        check_number(
            "ReduceLROnPlateau",
            "factor",
            factor,
            low_open=True,
            high=1.0,
            high_open=True,
            hint="; each reduction multiplies the rate by factor, e.g. 0.1",
        )
        check_number("ReduceLROnPlateau", "patience", patience)
        check_number("ReduceLROnPlateau", "cooldown", cooldown)
        check_number("ReduceLROnPlateau", "eps", eps)
        self.optimizer = optimizer
        self.factor = factor
        n_groups = len(optimizer.param_groups)
        if isinstance(min_lr, Sequence):
            if len(min_lr) != n_groups:
                raise ValueError(
                    f"ReduceLROnPlateau: min_lr has {len(min_lr)} values but the optimizer "
                    f"has {n_groups} param groups; give one per group or a single number"
                )
            self.default_min_lr: float | None = None
            self.min_lrs = list(min_lr)
            for i, value in enumerate(self.min_lrs):
                check_number("ReduceLROnPlateau", f"min_lr[{i}]", value)
        else:
            check_number("ReduceLROnPlateau", "min_lr", min_lr)
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * n_groups
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._set_mode(mode, threshold, threshold_mode)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _set_mode(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        check_number("ReduceLROnPlateau", "threshold", threshold)
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        """Whether ``current`` counts as progress over ``best`` (see the class docstring)."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return current < best * (1.0 - self.threshold)
            return current < best - self.threshold
        if self.threshold_mode == "rel":
            return current > best * (self.threshold + 1.0)
        return current > best + self.threshold

    def step(self, metrics: SupportsFloat) -> None:  # type: ignore[override]
        """Record this epoch's metric and reduce the rates if it has plateaued.

        Args:
            metrics: the monitored value (a number or a one-element tensor).
        """
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(
                    f"ReduceLROnPlateau: the optimizer now has {len(groups)} param groups "
                    f"but min_lr gave {len(self.min_lrs)}; set scheduler.min_lrs to one "
                    f"value per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def get_lr(self) -> list[float]:
        return self._current_lrs()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._set_mode(self.mode, self.threshold, self.threshold_mode)
