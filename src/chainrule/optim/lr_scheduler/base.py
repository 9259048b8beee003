"""``LRScheduler``: the base of the learning-rate schedules, with PyTorch's semantics.

A scheduler changes ``group["lr"]`` of an optimizer's param groups once per call to
``step()`` (usually once per epoch, after ``optimizer.step()``). ``last_epoch`` counts the
calls; making the scheduler is call 0 and already sets the first learning rate.

Most schedules are written in PyTorch's *recursive* (chainable) form: the new rate is
the current ``group["lr"]`` times a factor, so two schedulers on one optimizer multiply
their effects. Each also has a *closed form* in terms of ``base_lrs`` (the rates when
the first scheduler was made, saved as ``group["initial_lr"]``), which ``SequentialLR``
uses to restart a schedule at a milestone.
"""

from __future__ import annotations

from typing import Any

from chainrule.optim.optimizer import Optimizer


class LRScheduler:
    """Base class of the learning-rate schedulers.

    Subclasses define ``get_lr`` (the recursive form) and ``_get_closed_form_lr``.

    Args:
        optimizer: the optimizer whose learning rates to set.
        last_epoch: the index of the last epoch; -1 (the default) starts a schedule.
            Resuming from a checkpoint is done with ``load_state_dict`` instead.

    Attributes:
        base_lrs: the starting learning rate of each group.
        last_epoch: how many times ``step()`` has run (0 right after construction).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__} needs a chainrule Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, "
                        f"but param_groups[{i}] has no 'initial_lr'; load the optimizer's "
                        f"state first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Set the rates for epoch 0 (runs inside the constructor)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the current rates (recursive form)."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr")

    def _get_closed_form_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from ``base_lrs`` (closed form)."""
        return self.get_lr()

    def step(self) -> None:
        """Advance one epoch and set the learning rates of the optimizer's groups.

        Call it after ``optimizer.step()``.
        """
        self._step_count += 1
        self._update_lr(None)

    def _update_lr(self, epoch: int | None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._get_closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each group as last set by this scheduler."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, as plain numbers and lists (JSON-able)."""
        return {
            key: list(value) if isinstance(value, list) else value
            for key, value in self.__dict__.items()
            if key != "optimizer"
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned: the schedule continues where it was."""
        self.__dict__.update(
            {k: list(v) if isinstance(v, list) else v for k, v in state_dict.items()}
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"
