"""Layers with weights: ``Linear`` and ``Embedding``; and the shape-only ``Identity`` and
``Flatten``.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from chainrule import backend, ops
from chainrule.backend import default_float
from chainrule.nn import device_arrays, init
from chainrule.nn.functional import embedding
from chainrule.nn.fused import LinearFunction
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import module_shape_error
from chainrule.random import Generator
from chainrule.tensor import Tensor


def _size(layer: str, name: str, value: Any) -> int:
    """A layer size as an int: ints (Python or NumPy) only, as in PyTorch, so that
    ``Linear(2.5, 3)`` is an error instead of a layer with 2 input features."""
    if isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be an int, got the bool {value!r}")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{layer}: {name} must be an int, got {value!r} ({type(value).__name__}); "
            f"give a whole number of features, e.g. {layer}(784, 256)"
        ) from None
    if size < 0:
        raise ValueError(f"{layer}: {name} must be >= 0, got {size}")
    return size


class Linear(Module):
    """y = x Wᵀ + b, one fused op: backward dX = G W, dW = Gᵀ X, db = Σ G (rows).

    Args:
        in_features: size of each input's last dimension.
        out_features: size of each output's last dimension.
        bias: learn an additive bias b.
        dtype: the parameters' dtype (float32 unless given).
        generator: where the initial values are drawn from (the seeded default if None).
        device: where the parameters are made and drawn (default the CPU).

    Shape:
        input (…, in_features) → output (…, out_features).

    Attributes:
        weight: (out_features, in_features), as in PyTorch.
        bias: (out_features,).

    Default initialisation (PyTorch's, so models and hyper-parameters carry over): W and b
    both ~ U(−1/√in, 1/√in), which is ``kaiming_uniform_(W, a=√5)``. Its variance
    1/(3·in) keeps Var(y) ≈ Var(x)/3 at the start: a conservative scale that trains
    shallow networks well. Through deep ReLU stacks it shrinks the activations by about
    1/6 per layer; call ``nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")``
    there, which keeps their variance.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> layer = nn.Linear(3, 2)
        >>> layer(cr.randn(5, 3)).shape
        (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = _size("Linear", "in_features", in_features)
        self.out_features = _size("Linear", "out_features", out_features)
        dtype = default_float if dtype is None else backend.DType(dtype)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(device_arrays.empty(shape, dtype, device))
        if bias:
            self.bias = Parameter(device_arrays.empty((self.out_features,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw the default initialisation again (see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5.0), generator=generator)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, input: Tensor) -> Tensor:
        shape = input.data.shape
        if not shape or shape[-1] != self.in_features:
            raise module_shape_error(
                self, f"expected input (..., {self.in_features}), got {tuple(shape)}"
            )
        return LinearFunction.apply(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Embedding(Module):
    """A lookup table: integer indices → rows of ``weight`` (initialised N(0, 1)).

    Shape:
        input (…) of integers in [0, num_embeddings) → output (…, embedding_dim).
        Indices on the CPU are range-checked; on a GPU they are not (the check would
        wait for the device at every step).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _size("Embedding", "embedding_dim", embedding_dim)
        dtype = default_float if dtype is None else backend.DType(dtype)
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(device_arrays.empty(shape, dtype, device))
        init.normal_(self.weight, generator=generator)

    def forward(self, input: Any) -> Tensor:
        indices = input.data if isinstance(input, Tensor) else backend.to_host(input)
        # Checked on the CPU only: on a GPU, reading the range back would wait for it.
        on_host = not backend.is_device_array(indices)
        if (
            on_host
            and indices.size
            and (int(indices.min()) < 0 or int(indices.max()) >= self.num_embeddings)
        ):
            raise module_shape_error(
                self,
                f"expected indices in [0, {self.num_embeddings}), got values from "
                f"{int(indices.min())} to {int(indices.max())}",
            )
        return embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Flatten(Module):
    """Merge dims ``start_dim`` … ``end_dim`` into one (by default all but the batch dim).

    Shape:
        (N, d₁, d₂, …) → (N, d₁·d₂·…) with the defaults.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim and not -input.ndim <= self.start_dim < max(input.ndim, 1):
            raise module_shape_error(
                self, f"expected at least {self.start_dim + 1} dims, got shape {input.shape}"
            )
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
