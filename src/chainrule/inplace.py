"""The in-place methods of ``Tensor`` (``+=``, ``add_``, ``copy_``, ``x[i] = v``…).

In-place changes and autograd need care: a backward pass may still need the old values.
Two rules keep gradients right. Changing in place a tensor that takes part in a recorded
graph is refused (``_check_inplace``); changing one whose values a node saved is allowed
but stamped with the in-place clock (``increment_version``), so the backward that would
read the changed values raises instead of computing a wrong gradient.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from chainrule import backend
from chainrule.autograd.grad_mode import clock
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.errors import DeviceError, GraphError
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
        if not backend.is_writeable(self.data):
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

    def _inplace(self, op: str, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        """``target op= value`` through the array's own in-place operator (``fn``:
        ``operator.iadd``…), which writes into the array on either device, as NumPy's
        ``add(target, value, out=target)`` does (same-kind casting)."""
        self._check_inplace(op, other)
        value = other.data if isinstance(other, InPlaceMethods) else other
        target = self._writable(op)
        if backend.state.gpu_loaded:
            value = _operand_for(op, target, value)
        fn(target, value)
        self.increment_version()
        return self

    def __iadd__(self, other: TensorLike) -> Any:
        return self._inplace("+=", operator.iadd, other)

    def __isub__(self, other: TensorLike) -> Any:
        return self._inplace("-=", operator.isub, other)

    def __imul__(self, other: TensorLike) -> Any:
        return self._inplace("*=", operator.imul, other)

    def __itruediv__(self, other: TensorLike) -> Any:
        return self._inplace("/=", operator.itruediv, other)

    def add_(self, other: TensorLike, alpha: Scalar = 1) -> Any:
        value = other if alpha == 1 else array_of(other) * alpha
        return self._inplace("add_", operator.iadd, value)

    def sub_(self, other: TensorLike, alpha: Scalar = 1) -> Any:
        value = other if alpha == 1 else array_of(other) * alpha
        return self._inplace("sub_", operator.isub, value)

    def mul_(self, other: TensorLike) -> Any:
        return self._inplace("mul_", operator.imul, other)

    def div_(self, other: TensorLike) -> Any:
        return self._inplace("div_", operator.itruediv, other)

    def copy_(self, src: TensorLike) -> Any:
        """Overwrite the values with ``src`` (broadcast to this shape); returns self.

        As in PyTorch, ``src`` may be on another device: its values are copied across.
        """
        self._check_inplace("copy_", src)
        target = self._writable("copy_")
        target[...] = _onto(target, array_of(src))
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
        backend.get_array_module(target).clip(target, min, max, out=target)
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
        target = self._writable("item assignment")
        target[index_arrays(index, target)] = _onto(target, array_of(value))
        self.increment_version()


def array_of(x: Any) -> Any:
    """The array inside a Tensor; anything else as it is."""
    return x.data if isinstance(x, InPlaceMethods) else x


def index_arrays(index: Any, data: Any = None) -> Any:
    """Turn Tensors inside an index expression into arrays; with ``data`` (the array
    indexed), once a GPU library is loaded, put them on its device (``index_on_device``)."""
    if isinstance(index, InPlaceMethods):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, InPlaceMethods) else i for i in index)
    if data is not None and backend.state.gpu_loaded:
        return index_on_device(index, data)
    return index


def index_on_device(index: Any, data: Any) -> Any:
    """``index`` (arrays, ints, slices… or a tuple of them) ready to index ``data``.

    For GPU data, host index arrays (NumPy arrays, lists, masks) are copied to its device,
    as PyTorch accepts CPU indices for a CUDA tensor; a GPU index into CPU data is an
    error, as in PyTorch (reading it would wait for the GPU).
    """
    items = index if isinstance(index, tuple) else (index,)
    on_gpu = backend.is_device_array(data)
    moved = []
    for item in items:
        if on_gpu and isinstance(item, (backend.ndarray, list)):
            if not backend.is_device_array(item):
                # Host data: NumPy reads it, then one copy to the data's device.
                item = backend.to_device(backend.xp.asarray(item), backend.device_of(data))
        elif not on_gpu and backend.is_device_array(item):
            raise DeviceError(
                f"indexing a tensor on cpu with an index on {backend.device_of(item)}: "
                f"move the index to the CPU first (index.cpu()), or the tensor to the GPU"
            )
        moved.append(item)
    return tuple(moved) if isinstance(index, tuple) else moved[0]


def _onto(target: Any, value: Any) -> Any:
    """``value`` on ``target``'s device, for the copies between devices that PyTorch makes
    in ``copy_`` and item assignment (numbers and same-device arrays pass as they are)."""
    if not backend.state.gpu_loaded:
        return value
    if not (isinstance(value, backend.ndarray) or backend.is_device_array(value)):
        return value
    device = backend.device_of(target)
    return value if backend.device_of(value) == device else backend.to_device(value, device)


def _operand_for(op: str, target: Any, value: Any) -> Any:
    """The operand of in-place arithmetic, checked to be on the target's device (as in
    PyTorch); a host 0-d array counts as a number."""
    if not (isinstance(value, backend.ndarray) or backend.is_device_array(value)):
        return value  # a number or nested lists
    there, here = backend.device_of(target), backend.device_of(value)
    if there == here:
        return value
    if value.ndim == 0 and here.type == "cpu":
        return value.item()  # a host value: reading it waits for nothing
    raise DeviceError(
        f"in-place {op}: the tensor is on {there} but the other operand is on {here}; "
        f"move it first (other.to('{there}'))"
    )
