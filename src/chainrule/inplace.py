"""The in-place methods of ``Tensor`` (``+=``, ``add_``, ``copy_``, ``x[i] = v``…).

In-place changes and autograd need care: a backward pass may still need the old values.
Two rules keep gradients right. Changing in place a tensor that takes part in a recorded
graph is refused (``_check_inplace``); changing one whose values a node saved is allowed
but stamped with the in-place clock (``increment_version``), so the backward that would
read the changed values raises instead of computing a wrong gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chainrule.autograd.grad_mode import clock
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.backend import xp
from chainrule.errors import GraphError
from chainrule.random import resolve

Scalar = int | float | bool
TensorLike = Any  # a Tensor, an array, a Python number or a nested list of numbers


class InPlaceMethods:
    """Mixed into ``Tensor``: every method changes ``self.data`` and returns ``self``."""

    __slots__ = ()
    data: Any
    requires_grad: bool
    _node: Any
    _version: list[int]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    def _check_inplace(self, op: str, other: Any = None) -> None:
        if _grad_state.enabled and (
            self.requires_grad or (isinstance(other, InPlaceMethods) and other.requires_grad)
        ):
            what = (
                "a leaf tensor that requires grad"
                if self._node is None and self.requires_grad
                else "a tensor that takes part in the graph"
            )
            hint = (
                " To sum losses over iterations for logging, add numbers: total += loss.item()."
                if op == "+=" and self.data.size == 1
                else ""
            )
            raise GraphError(
                f"in-place {op} on {what} (shape {self.shape}) would make gradients wrong; "
                f"use the out-of-place form (x = x + y), or wrap parameter updates in "
                f"`with cr.no_grad():`.{hint}"
            )

    def _writable(self, op: str) -> Any:
        """The array to write into, or a clear error for a read-only view (``expand``)."""
        if not self.data.flags.writeable:
            raise GraphError(
                f"in-place {op} on a tensor of shape {self.shape} that cannot be written: "
                f"it is a broadcast view (made by expand() or expand_as()), in which several "
                f"elements share one memory location, so one write would change them all; "
                f"call .clone() first and change the copy"
            )
        return self.data

    def increment_version(self) -> None:
        """Record that ``.data`` was changed in place (PyTorch's ``increment_version``).

        The ops of this class do it themselves. Code that writes into ``tensor.data``
        directly (an optimiser step, an initialiser) calls it afterwards, so a backward
        that saved the old values raises instead of computing a wrong gradient.
        """
        self._version[0] = clock.stamp_inplace()

    def _inplace(self, op: str, fn: Callable[..., Any], other: Any) -> Any:
        self._check_inplace(op, other)
        value = other.data if isinstance(other, InPlaceMethods) else other
        target = self._writable(op)
        fn(target, value, out=target)
        self.increment_version()
        return self

    def __iadd__(self, other: TensorLike) -> Any:
        return self._inplace("+=", xp.add, other)

    def __isub__(self, other: TensorLike) -> Any:
        return self._inplace("-=", xp.subtract, other)

    def __imul__(self, other: TensorLike) -> Any:
        return self._inplace("*=", xp.multiply, other)

    def __itruediv__(self, other: TensorLike) -> Any:
        return self._inplace("/=", xp.true_divide, other)

    def add_(self, other: TensorLike, alpha: Scalar = 1) -> Any:
        return self._inplace("add_", xp.add, other if alpha == 1 else array_of(other) * alpha)

    def sub_(self, other: TensorLike, alpha: Scalar = 1) -> Any:
        return self._inplace("sub_", xp.subtract, other if alpha == 1 else array_of(other) * alpha)

    def mul_(self, other: TensorLike) -> Any:
        return self._inplace("mul_", xp.multiply, other)

    def div_(self, other: TensorLike) -> Any:
        return self._inplace("div_", xp.true_divide, other)

    def copy_(self, src: TensorLike) -> Any:
        """Overwrite the values with ``src`` (broadcast to this shape); returns self."""
        self._check_inplace("copy_", src)
        self._writable("copy_")[...] = array_of(src)
        self.increment_version()
        return self

    def fill_(self, value: Scalar) -> Any:
        self._check_inplace("fill_")
        self._writable("fill_").fill(value)
        self.increment_version()
        return self

    def zero_(self) -> Any:
        return self.fill_(0)

    def clamp_(self, min: Scalar | None = None, max: Scalar | None = None) -> Any:
        self._check_inplace("clamp_")
        target = self._writable("clamp_")
        xp.clip(target, min, max, out=target)
        self.increment_version()
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Any:
        """Fill with draws from N(mean, std²) taken from the seeded generator."""
        draw = resolve(generator).standard_normal(self.shape, self.data.dtype)
        return self.copy_(draw * std + mean)

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Any:
        """Fill with draws from U(a, b) taken from the seeded generator."""
        draw = resolve(generator).random(self.shape, self.data.dtype)
        return self.copy_(draw * (b - a) + a)

    def __setitem__(self, index: Any, value: TensorLike) -> None:
        self._check_inplace("item assignment", value)
        self._writable("item assignment")[index_arrays(index)] = array_of(value)
        self.increment_version()


def array_of(x: Any) -> Any:
    """The array inside a Tensor; anything else as it is."""
    return x.data if isinstance(x, InPlaceMethods) else x


def index_arrays(index: Any) -> Any:
    """Turn Tensors inside an index expression into arrays."""
    if isinstance(index, InPlaceMethods):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, InPlaceMethods) else i for i in index)
    return index
