"""Learning-rate schedules with PyTorch's names and semantics.

Call ``scheduler.step()`` once per epoch after ``optimizer.step()``
(``ReduceLROnPlateau.step(metric)`` takes the monitored value). Every scheduler has
``get_last_lr()``, ``last_epoch`` and a JSON-able ``state_dict()``.
"""

from chainrule.optim.lr_scheduler.base import LRScheduler
from chainrule.optim.lr_scheduler.one_cycle import OneCycleLR
from chainrule.optim.lr_scheduler.plateau import ReduceLROnPlateau
from chainrule.optim.lr_scheduler.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    StepLR,
)
from chainrule.optim.lr_scheduler.sequential import SequentialLR

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
