"""``Parameter``: a tensor that a ``Module`` learns.

Assigning a ``Parameter`` to a module attribute registers it, so ``parameters()``,
``state_dict()`` and the optimisers find it. Everything else about it is a ``Tensor``.
"""

from __future__ import annotations

from typing import Any

from chainrule.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and is registered by modules.

    Args:
        data: the initial values (a Tensor, whose memory is shared, or array-like data).
        requires_grad: whether the optimiser should see a gradient for it.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> w = nn.Parameter(cr.zeros(2, 3))
        >>> w.requires_grad, w.shape
        (True, (2, 3))
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = Tensor([])
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        copied = Parameter(self.data.copy(), self.requires_grad)
        if self.grad is not None:
            copied.grad = Tensor(self.grad.data.copy())
        memo[id(self)] = copied
        return copied
