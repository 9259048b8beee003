"""``chainrule.nn.init``: fill parameters in place, from the seeded generator.

Every function writes into ``tensor`` without recording a graph, bumps its version
counter and returns it (the Kaiming and Xavier ones warn and leave a zero-element tensor
as it is, as PyTorch does); randomness comes from ``generator`` or, when None, from the
default generator that ``cr.manual_seed`` seeds, so a seed reproduces an initialisation.

Fans: for a weight of shape (out, in, k₁, k₂, …), fan_in = in·k₁·k₂·… and
fan_out = out·k₁·k₂·… (a Linear weight (out, in) has fan_in = in).

Why the scales: a layer y = W x with independent zero-mean weights of variance σ² gives
Var(yᵢ) = fan_in · σ² · E[x²]. After a ReLU, E[x²] is half the pre-activation variance,
so σ² = 2/fan_in keeps the variance from layer to layer (Kaiming He et al., 2015);
without the ReLU, σ² = 1/fan_in (gain 1). Xavier (Glorot and Bengio, 2010) averages the
forward and backward conditions: σ² = 2/(fan_in + fan_out).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from chainrule import backend
from chainrule.nn.device_arrays import random_on, standard_normal_on
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor

_GAINS = {
    "linear": 1.0,
    "identity": 1.0,
    "conv1d": 1.0,
    "conv2d": 1.0,
    "conv3d": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale a weight's standard deviation for a nonlinearity.

    linear/identity/sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu with slope a
    (``param``, default 0.01): √(2 / (1 + a²)); selu: 3/4.
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; known: "
            f"{sorted([*_GAINS, 'leaky_relu'])}"
        )
    return _GAINS[nonlinearity]


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dims, got shape {tensor.shape}"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _write(tensor: Tensor, values: Any) -> Tensor:
    # Initialisation is not part of any graph: write the array and bump the version so a
    # graph that saved the old values notices.
    tensor.data[...] = values
    tensor.increment_version()
    return tensor


def _is_empty(tensor: Tensor) -> bool:
    """True (with PyTorch's warning) for a zero-element tensor, which the scaled
    initialisers leave as it is: its fans can be 0, and there is nothing to fill."""
    if tensor.data.size == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", UserWarning, stacklevel=3)
        return True
    return False


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with draws from U(a, b) (drawn on the tensor's device)."""
    draw = random_on(resolve(generator), tensor.shape, tensor.dtype, tensor.device)
    return _write(tensor, draw * (b - a) + a)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """Fill with draws from N(mean, std²) (drawn on the tensor's device)."""
    draw = standard_normal_on(resolve(generator), tensor.shape, tensor.dtype, tensor.device)
    return _write(tensor, draw * std + mean)


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _write(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    return _write(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _write(tensor, 1)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Generator | None = None
) -> Tensor:
    """U(−a, a) with a = gain · √(6 / (fan_in + fan_out)): variance gain² · 2/(fan_in + fan_out)."""
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """N(0, σ²) with σ = gain · √(2 / (fan_in + fan_out))."""
    if _is_empty(tensor):
        return tensor
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """U(−b, b) with b = gain · √(3 / fan): variance gain² / fan (He et al., 2015).

    Args:
        a: the negative slope of the leaky ReLU that follows (0 for ReLU).
        mode: "fan_in" keeps the forward activations' variance, "fan_out" the
            backward gradients'.
        nonlinearity: "relu" or "leaky_relu" (the default, which with a = 0 is ReLU).
    """
    if _is_empty(tensor):
        return tensor
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> Tensor:
    """N(0, σ²) with σ = gain / √fan; for ReLU, σ² = 2 / fan_in (He et al., 2015).

    Args: as ``kaiming_uniform_``.
    """
    if _is_empty(tensor):
        return tensor
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(_fan(tensor, mode)), generator)


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (a 2-D tensor), which passes inputs through a Linear unchanged."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tensor.shape}")
    xp = backend.get_array_module(tensor.data)
    return _write(tensor, xp.eye(*tensor.shape, dtype=tensor.dtype))
