"""``Dropout``: inverted dropout (the wiring modules moved to ``nn.wiring``)."""

from __future__ import annotations

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.random import Generator
from chainrule.tensor import Tensor


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale
    the others by 1/(1 − p) so the expected output equals the input; in eval mode, the
    identity. Gradient: g times the same scaled mask.

    Args:
        p: the probability of zeroing an element.
        generator: where masks are drawn from (the seeded default if None).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> drop = nn.Dropout(0.5).eval()
        >>> x = cr.ones(3)
        >>> drop(x) is x
        True
    """

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
