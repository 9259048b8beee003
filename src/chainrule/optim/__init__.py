"""Optimizers and learning-rate schedules, with PyTorch's names and semantics.

Each update rule is written as math in its class docstring. Regularisation:
``weight_decay`` (L2, added to the gradient), ``AdamW``'s decoupled decay, and ``l1``
(a proximal soft-threshold that drives useless weights to exactly zero); see
``chainrule.optim.optimizer``.

Example:
    >>> import chainrule as cr
    >>> w = cr.tensor([3.0], requires_grad=True)
    >>> opt = cr.optim.SGD([w], lr=0.25)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> w
    tensor([0.75], requires_grad=True)
"""

from chainrule.optim import lr_scheduler
from chainrule.optim.adagrad import Adagrad
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD
from chainrule.optim.state import optimizer_state_from_flat, optimizer_state_to_flat

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "lr_scheduler",
    "optimizer_state_from_flat",
    "optimizer_state_to_flat",
]
