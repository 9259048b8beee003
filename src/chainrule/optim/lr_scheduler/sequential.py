"""``SequentialLR``: run schedules one after another, switching at milestone epochs."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from chainrule.optim.lr_scheduler.base import LRScheduler
from chainrule.optim.lr_scheduler.plateau import ReduceLROnPlateau
from chainrule.optim.optimizer import Optimizer


class SequentialLR(LRScheduler):
    """Hand the learning rate from one scheduler to the next at each milestone.

    Scheduler i runs from epoch ``milestones[i−1]`` (0 for the first) until
    ``milestones[i]``; at its milestone it restarts from its own epoch 0 (its closed
    form from ``base_lrs``), so a warm-up followed by a decay reads::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, decay], milestones=[5])

    Making the inner schedulers already stepped each of them once; ``SequentialLR``
    undoes that and sets the rates to what the first one gives at epoch 0, as PyTorch
    does.

    Args:
        optimizer: the optimizer shared by all the schedulers.
        schedulers: the schedulers to run in turn.
        milestones: the epochs at which to switch (one fewer than schedulers).
        last_epoch: -1 to start a schedule.

    Example:
        >>> import chainrule as cr
        >>> from chainrule.optim import lr_scheduler as ls
        >>> w = cr.zeros(2, requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=1.0)
        >>> warm = ls.LinearLR(opt, start_factor=0.5, total_iters=2)
        >>> cos = ls.CosineAnnealingLR(opt, T_max=4)
        >>> sched = ls.SequentialLR(opt, [warm, cos], milestones=[2])
        >>> lrs = []
        >>> for _ in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 6))
        >>> lrs
        [0.75, 1.0, 0.853553, 0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        if len(schedulers) < 1:
            raise ValueError("SequentialLR needs at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    f"SequentialLR: scheduler {i} is a ReduceLROnPlateau, whose step needs a "
                    f"metric; step it yourself alongside the sequence instead"
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(
                    f"SequentialLR: scheduler {i} is a {type(scheduler).__name__}, not an "
                    f"LRScheduler"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR: scheduler {i} ({type(scheduler).__name__}) belongs to a "
                    f"different optimizer; all schedulers must share the one given"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} "
                f"milestones, got {len(milestones)}"
            )
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1

        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            _undo_step(scheduler)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        """Advance one epoch with the scheduler whose turn it is."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """This scheduler's counters and each inner scheduler's state (JSON-able)."""
        state = {
            key: list(value) if isinstance(value, list) else value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "_schedulers")
        }
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        inner = state_dict["_schedulers"]
        if len(inner) != len(self._schedulers):
            raise ValueError(
                f"SequentialLR.load_state_dict: the saved state has {len(inner)} schedulers, "
                f"this one has {len(self._schedulers)}"
            )
        own = {k: v for k, v in state_dict.items() if k != "_schedulers"}
        self.__dict__.update({k: list(v) if isinstance(v, list) else v for k, v in own.items()})
        for scheduler, saved in zip(self._schedulers, inner):
            scheduler.load_state_dict(saved)


def _undo_step(scheduler: LRScheduler) -> None:
    # Nested sequences undo every scheduler inside them.
    if isinstance(scheduler, SequentialLR):
        for inner in scheduler._schedulers:
            _undo_step(inner)
    else:
        scheduler.last_epoch -= 1
