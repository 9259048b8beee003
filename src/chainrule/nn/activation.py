"""Activation modules. ReLU, Sigmoid, Tanh, Softmax, LogSoftmax and Softplus call the
core primitives, which already have closed-form backwards; the others have their fused
Function in ``nn.fused``.
"""

from __future__ import annotations

from chainrule import ops
from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class ReLU(Module):
    """y = max(x, 0).   Gradient: g · [x > 0]."""

    def forward(self, input: Tensor) -> Tensor:
        return ops.relu(input)


class Sigmoid(Module):
    """y = 1 / (1 + e⁻ˣ).   Gradient: g · y (1 − y)."""

    def forward(self, input: Tensor) -> Tensor:
        return ops.sigmoid(input)


class Tanh(Module):
    """y = tanh x.   Gradient: g · (1 − y²)."""

    def forward(self, input: Tensor) -> Tensor:
        return ops.tanh(input)


class Softmax(Module):
    """yᵢ = eˣⁱ / Σⱼ eˣʲ along ``dim``.   Gradient: y · (g − Σ g·y)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """yᵢ = xᵢ − log Σⱼ eˣʲ along ``dim``, stable for any x.   Gradient: g − softmax · Σ g."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return ops.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softplus(Module):
    """y = log(1 + e^(βx)) / β, stable for any x.   Gradient: g · σ(βx)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LeakyReLU(Module):
    """y = x for x > 0, a·x otherwise (a = ``negative_slope``).   Gradient: g or a·g."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """y = x for x > 0, α(eˣ − 1) otherwise.   Gradient: g, or g · (y + α)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """y = x · Φ(x) (Φ the normal CDF); ``approximate="tanh"`` for the tanh form."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """y = x · σ(x).   Gradient: g · σ(x)(1 + x(1 − σ(x)))."""

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)
