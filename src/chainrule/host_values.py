"""How a tensor's values leave it as host data: ``numpy()``, ``item()``, ``tolist()``,
``float(t)``, ``int(t)``, ``bool(t)`` and ``numpy.asarray(t)`` (the ``HostValueMethods``
of ``Tensor``). Each reads the values; none records anything in the graph.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.errors import GraphError


class HostValueMethods:
    """Mixed into ``Tensor``: its values as NumPy arrays and Python numbers and lists."""

    __slots__ = ()
    data: Any
    requires_grad: bool

    def numpy(self) -> Any:
        """The values as a NumPy array: shares memory with a CPU tensor; a copy (which
        waits for the GPU) of a GPU tensor."""
        if self.requires_grad:
            raise GraphError(
                "numpy() on a tensor that requires grad would let the array escape the "
                "graph; call tensor.detach().numpy() instead"
            )
        return backend.to_host(self.data)

    def item(self) -> Any:
        """The single value of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, got shape {tuple(self.data.shape)}; "
                f"reduce it first (e.g. .sum() or .mean())"
            )
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                f"use .any() or .all()"
            )
        return bool(self.data.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        arr = backend.host_array(self.data)  # a GPU tensor raises TypeError, as in PyTorch
        return arr if dtype is None else arr.astype(dtype)
