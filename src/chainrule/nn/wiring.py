"""The lecture's wiring modules: ``Duplicate``, ``Add`` and ``Max``, the pieces that
fan a value out and merge branches back in an ``nn.Graph``.

None has a Function of its own: Duplicate is the engine's fan-out sum, Add a chain of the
core's ``add``, Max the core's ``maximum`` (two inputs) or ``amax`` over the stacked inputs.
"""

from __future__ import annotations

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class Duplicate(Module):
    """Fan one input out to ``n`` outputs; their gradients add up in backward.

    The outputs are the input itself, ``n`` times: the autograd engine sums the gradients
    of a tensor used in several places, which is this module's backward.

    Shape:
        input (…) → a tuple of ``n`` tensors (…).
    """

    def __init__(self, n: int = 2) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"Duplicate: n must be at least 1, got {n}")
        self.n = int(n)

    def forward(self, input: Tensor) -> tuple[Tensor, ...]:
        return F.duplicate(input, self.n)

    def extra_repr(self) -> str:
        return f"n={self.n}"


class Add(Module):
    """The sum of two or more inputs (broadcast together): a chain of the core's ``add``.
    Gradient: each input receives g.
    """

    def forward(self, *inputs: Tensor) -> Tensor:
        return F.add(*inputs)


class Max(Module):
    """The elementwise maximum of two or more inputs (broadcast together), on the core's
    ``maximum`` and ``amax``. Gradient: to the largest input; inputs tied for the maximum
    share it equally.
    """

    def forward(self, *inputs: Tensor) -> Tensor:
        return F.maximum(*inputs)
