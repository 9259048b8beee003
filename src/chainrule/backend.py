"""The one seam between chainrule and its array libraries: NumPy on the CPU, CuPy on GPUs.

Every op, module and optimiser asks this module for the array library of the arrays in
hand (``get_array_module(x)``, as Chainer and CuPy spell it) and calls it; nothing else
in the core names NumPy or CuPy, so one implementation of each formula runs on either.
The few things the two libraries do differently (scatter-add, ``erfc``, floating-point
error states, read-only arrays, moving between devices) are functions here.

CuPy is imported the first time a CUDA device is asked for, never at ``import chainrule``;
``accelerator()`` returns the loaded adapter (``chainrule.cuda.CupyAccelerator``) or says
what to install. Tests can install another adapter (``install_accelerator``): the suite
runs every op on a NumPy-backed stand-in that behaves as CuPy does, to find the NumPy-only
calls on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import numpy

from chainrule.device import CPU, Device, as_device
from chainrule.errors import DeviceError, DTypeError

xp = numpy
"""NumPy: the array library of the CPU, and of data that has no device yet (user lists)."""

ndarray = numpy.ndarray
"""The host array type."""

DType = numpy.dtype
"""The dtype type: ``cr.float32`` and friends are instances of it (CuPy uses NumPy's)."""

float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int8 = numpy.dtype("int8")
int16 = numpy.dtype("int16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")

default_float = float32
"""The dtype given to float data that does not bring its own (Python floats, lists)."""


class Accelerator(Protocol):
    """What chainrule needs from a GPU array library (``chainrule.cuda`` wraps CuPy)."""

    name: str
    xp: Any  # the NumPy-compatible namespace (cupy)
    ndarray: type  # its array type

    def from_host(self, array: Any, index: int) -> Any: ...
    def to_host(self, array: Any) -> numpy.ndarray: ...
    def copy_to(self, array: Any, index: int) -> Any: ...
    def device_index(self, array: Any) -> int: ...
    def current_index(self) -> int: ...
    def device_count(self) -> int: ...
    def synchronize(self, index: int | None) -> None: ...
    def scatter_add(self, target: Any, index: Any, values: Any) -> None: ...
    def erfc(self, x: Any) -> Any: ...
    def random_stream(self, seed: int, index: int) -> Any: ...
    def using(self, index: int) -> contextlib.AbstractContextManager[Any]:
        """A context in which new arrays are made on GPU ``index``."""
        ...


_accelerator: Accelerator | None = None


class _State:
    """Read on every op: whether any GPU library is loaded (False: every array is NumPy,
    so the ops skip looking for their library)."""

    gpu_loaded = False


state = _State()


def accelerator() -> Accelerator:
    """The GPU array library, loaded on first use.

    Raises:
        DeviceError: CuPy is not installed, or finds no GPU; the message says what to
            install.
    """
    global _accelerator
    if _accelerator is None:
        from chainrule.cuda import load_cupy  # imports CuPy: only when a GPU is asked for

        _accelerator = load_cupy()
        state.gpu_loaded = True
    return _accelerator


def loaded_accelerator() -> Accelerator | None:
    """The GPU array library if one is loaded already, else None (loads nothing)."""
    return _accelerator


def install_accelerator(acc: Accelerator | None) -> Accelerator | None:
    """Make ``acc`` the library behind ``"cuda"`` (None: unload); returns the previous one.

    For tests: the suite installs a NumPy-backed stand-in for CuPy to run every op "on
    the GPU" on a machine without one.
    """
    global _accelerator
    previous, _accelerator = _accelerator, acc
    state.gpu_loaded = acc is not None
    return previous


def get_array_module(array: Any) -> Any:
    """The array library that owns ``array``: ``numpy`` or ``cupy``. Anything that is not
    a GPU array (NumPy arrays and scalars, Python numbers) answers NumPy."""
    if type(array) is numpy.ndarray:  # the CPU's fast path: one type check
        return numpy
    acc = _accelerator
    if acc is not None and isinstance(array, acc.ndarray):
        return acc.xp
    return numpy


def array_module(*arrays: Any) -> Any:
    """The array library of the first GPU array among ``arrays``, else NumPy."""
    acc = _accelerator
    if acc is not None:
        for a in arrays:
            if isinstance(a, acc.ndarray):
                return acc.xp
    return numpy


def is_device_array(array: Any) -> bool:
    """True for an array in GPU memory."""
    acc = _accelerator
    return acc is not None and isinstance(array, acc.ndarray)


def device_of(array: Any) -> Device:
    """The device that holds ``array``."""
    acc = _accelerator
    if acc is not None and isinstance(array, acc.ndarray):
        return Device("cuda", acc.device_index(array))
    return CPU


def resolve_device(device: Any) -> Device:
    """``device`` made concrete: ``"cuda"`` becomes the current GPU (``cuda:0`` unless
    another is selected); loads CuPy for a GPU and checks that the GPU exists.

    Raises:
        DeviceError: no CuPy or no GPU (the message says what to install), or an index
            past the last GPU.
    """
    target = as_device(device)
    if target.type == "cpu":
        return CPU
    acc = accelerator()
    index = acc.current_index() if target.index is None else target.index
    if index >= acc.device_count():
        raise DeviceError(
            f"device cuda:{index} does not exist: {acc.name} sees {acc.device_count()} GPU(s) "
            f"(cuda:0 to cuda:{acc.device_count() - 1})"
        )
    return target if target.index == index else Device("cuda", index)


class on_device:  # a lowercase name: used as a context, like numpy.errstate
    """``with backend.on_device(device) as xp:`` the array library that makes arrays on
    ``device`` (NumPy for the CPU and for None), with that GPU selected, so that
    ``xp.zeros(...)`` inside the block allocates there directly, not on the host first.

    Example:
        >>> with on_device("cpu") as xp:
        ...     xp.zeros(2).tolist()
        [0.0, 0.0]
    """

    __slots__ = ("_device", "_scope")

    def __init__(self, device: Any) -> None:
        self._device = device
        self._scope: Any = None

    def __enter__(self) -> Any:
        device = self._device
        if device is None or device is CPU or device == "cpu":  # the CPU's: no parsing
            return numpy
        target = resolve_device(device)
        if target.type == "cpu":
            return numpy
        acc = accelerator()
        assert target.index is not None
        self._scope = acc.using(target.index)
        self._scope.__enter__()
        return acc.xp

    def __exit__(self, *exc: Any) -> None:
        if self._scope is not None:
            self._scope.__exit__(*exc)
            self._scope = None


def to_device(array: Any, device: Any) -> Any:
    """``array`` on ``device`` (a ``Device`` or a string): the array itself when it is
    there already, else a copy."""
    on_gpu = is_device_array(array)
    if as_device(device).type == "cpu":
        return _host_array(array) if on_gpu else array
    acc = accelerator()
    index = resolve_device(device).index
    assert index is not None
    if on_gpu:
        return array if acc.device_index(array) == index else acc.copy_to(array, index)
    return acc.from_host(numpy.asarray(array), index)


def _host_array(array: Any) -> numpy.ndarray:
    acc = _accelerator
    assert acc is not None
    return acc.to_host(array)


def to_host(array: Any) -> numpy.ndarray:
    """A NumPy array with the same values, for printing, files and plots: the array itself
    on the CPU, a copy (which waits for the GPU) for a GPU array."""
    if is_device_array(array):
        return _host_array(array)
    return numpy.asarray(array)


def host_array(array: Any) -> numpy.ndarray:
    """``array`` itself if it is in host memory (what ``numpy.asarray(tensor)`` gives).

    Raises:
        TypeError: ``array`` is on a GPU, as PyTorch raises for ``numpy.asarray`` of a CUDA
            tensor: a copy from the GPU waits for it, so it must be asked for
            (``tensor.cpu()``, ``tensor.numpy()``, ``to_host``), never happen silently.
    """
    if is_device_array(array):
        raise TypeError(
            f"can't convert {device_of(array)} device type tensor to numpy: NumPy cannot "
            f"read GPU memory. Use tensor.cpu() (or tensor.numpy(), which copies) to copy "
            f"the tensor to host memory first."
        )
    return numpy.asarray(array)


def synchronize(device: Any = None) -> None:
    """Wait until the GPU has finished its queued work (nothing to do on the CPU)."""
    target = as_device(device if device is not None else "cuda")
    if target.type == "cuda" and _accelerator is not None:
        _accelerator.synchronize(target.index)


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` with repeated indices adding up (NumPy's ``add.at``)."""
    acc = _accelerator
    if acc is not None and isinstance(target, acc.ndarray):
        acc.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def erfc(x: Any) -> Any:
    """The complementary error function 1 − erf(x), elementwise, on the array's device."""
    acc = _accelerator
    if acc is not None and isinstance(x, acc.ndarray):
        return acc.erfc(x)
    from scipy.special import erfc as scipy_erfc  # optional: only the exact GELU needs it

    return scipy_erfc(x)


def errstate(array: Any, **settings: Any) -> contextlib.AbstractContextManager[Any]:
    """NumPy's ``errstate`` for a CPU array; nothing for a GPU array (CuPy never warns).
    NumPy's own context manager is returned, not wrapped: a generator-based wrapper cost
    2 µs per call, more than the small ops that use it."""
    return contextlib.nullcontext() if is_device_array(array) else numpy.errstate(**settings)


def is_writeable(array: Any) -> bool:
    """False for a read-only NumPy array (GPU arrays are always writeable)."""
    return is_device_array(array) or bool(array.flags.writeable)


def set_readonly(array: Any) -> Any:
    """Mark a NumPy array read-only (GPU arrays have no such flag); returns it."""
    if not is_device_array(array):
        array.flags.writeable = False
    return array


def is_floating(dtype: Any) -> bool:
    """True for the floating-point dtypes, the only ones that can carry gradients."""
    return numpy.issubdtype(dtype, numpy.floating)


def _is_cupy_array(data: Any) -> bool:
    """A CuPy array handed in before chainrule loaded CuPy (checked by name: importing
    CuPy to ask would cost a second at every ``cr.tensor`` call)."""
    kind = type(data)
    return kind.__name__ == "ndarray" and kind.__module__.startswith("cupy")


def as_array(data: Any, dtype: Any = None, device: Any = None) -> Any:
    """User data (a number, nested lists, a NumPy or CuPy array) as an array, with
    chainrule's dtype rules, on ``device`` (default: where the data is; lists and numbers
    on the CPU); anything that is not numbers is a clear ``DTypeError``."""
    if isinstance(data, numpy.ndarray) or is_device_array(data):
        arr = data
    elif _is_cupy_array(data):
        accelerator()
        arr = data
    else:
        try:
            arr = numpy.asarray(data)
        except OverflowError:
            raise DTypeError(
                f"cannot make a tensor from {data!r}: the integer does not fit in int64 "
                f"(the largest integer dtype); pass it as a float (float({data!r})) if an "
                f"approximate value will do"
            ) from None
        except ValueError as exc:  # ragged nested lists
            raise DTypeError(
                f"cannot make a tensor from this {type(data).__name__}: {exc}; nested lists "
                f"must have the same length at each level"
            ) from None
        # Python floats (and lists of them) get the default float dtype, not float64.
        if arr.dtype == float64 and dtype is None and not isinstance(data, numpy.generic):
            arr = arr.astype(default_float)
    if arr.dtype.kind == "O":
        big = next(
            (v for v in arr.ravel().tolist() if isinstance(v, int) and not -(2**63) <= v < 2**63),
            None,
        )
        if big is not None:
            raise DTypeError(
                f"cannot make a tensor from the integer {big}: it does not fit in int64 (the "
                f"largest integer dtype); give it as a float (float(x)) if an approximate "
                f"value will do"
            )
    if arr.dtype.kind not in "biuf":
        what = {
            "U": "strings (str)",
            "S": "bytes",
            "O": "Python objects of mixed types",
            "c": "complex numbers",
            "M": "dates",
            "m": "time spans",
        }
        kind = what.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise DTypeError(
            f"cannot make a tensor from {type(data).__name__} data holding {kind}: tensors "
            f"hold bool, integer or floating-point numbers; convert the data first "
            f"(e.g. float(s) for a numeric string)"
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if device is not None:
        arr = to_device(arr, device)
    return arr
