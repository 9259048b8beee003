"""A NumPy-backed stand-in for CuPy: the suite's "cuda" cases on a machine without a GPU.

Installed as ``chainrule.backend``'s accelerator (the ``fake_cuda`` fixture), it makes
``device="cuda"`` give arrays of ``FakeDeviceArray``, a NumPy subclass that behaves as
CuPy's arrays do where the difference finds bugs:

- NumPy's functions refuse them (``numpy.concatenate(gpu_arrays)`` raises), as NumPy
  cannot read GPU memory: code must go through the array's module;
- mixing a host array into an op on device arrays raises (CuPy: "Unsupported type");
- reductions and indexing down to one element give 0-d device arrays, never host
  scalars;
- NumPy-only names (``errstate``, ``add.at``, ``flags.writeable``, ``array2string``…)
  are missing from the namespace;
- every read back to the host (``item``, ``float``, ``bool``, ``tolist``, ``get``) is
  counted in ``SYNCS``, so a test can assert that a training step makes none.

Where CuPy itself is installed (CI installs it to compile the kernels; no GPU needed), the
namespace is also held to CuPy's: a name CuPy lacks at the same path (``cupy.insert``,
``cupy.linalg.vector_norm``…) raises as on a GPU, and so do the NumPy-only array methods
and the arguments CuPy's Python-level functions would refuse (``clip(x, min=...)``).

What it cannot catch: ``numpy.asarray(device_array)`` silently views the data (a subclass
is an ndarray); the static test in ``tests/test_device_static.py`` keeps ``numpy`` out of
the core for that.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy

SYNCS = [0]
"""Host reads of device values since the last reset (``SYNCS[0] = 0``)."""

_inside = threading.local()  # set while the fake namespace runs a NumPy function

NUMPY_ONLY = frozenset(
    {
        "errstate",
        "seterr",
        "geterr",
        "array2string",
        "array_repr",
        "array_str",
        "set_printoptions",
        "printoptions",
        "frompyfunc",
        "save",
        "savez",
        "load",
        "fromfile",
        "memmap",
        "asfortranarray",
    }
)


def _real_cupy() -> Any:
    """CuPy itself when it imports here (it does without a GPU), else None."""
    try:
        import cupy
    except Exception:
        return None
    return cupy


REAL_CUPY = _real_cupy()

# ndarray methods CuPy's arrays lack (CuPy 14; computed when CuPy is here).
NUMPY_ONLY_ARRAY = (
    frozenset(
        n for n in dir(numpy.ndarray) if not n.startswith("_") and not hasattr(REAL_CUPY.ndarray, n)
    )
    if REAL_CUPY is not None
    else frozenset({"ctypes", "getfield", "resize", "setfield", "setflags", "to_device"})
)


def _missing_in_cupy(path: str, name: str) -> bool:
    """True when real CuPy is here and has no ``path.name`` (path: "cupy", "cupy.linalg")."""
    if REAL_CUPY is None or name.startswith("_"):
        return False
    module = REAL_CUPY
    for part in path.split(".")[1:]:
        module = getattr(module, part, None)
        if module is None:
            return True
    return not hasattr(module, name)


class _Flags:
    """CuPy's ``flags``: contiguity and ownership, no ``writeable``."""

    def __init__(self, base: Any) -> None:
        self.c_contiguous = base.c_contiguous
        self.f_contiguous = base.f_contiguous
        self.owndata = base.owndata


class _FakeDevice:
    id = 0

    def synchronize(self) -> None:
        pass


def _host(x: Any) -> Any:
    return x.view(numpy.ndarray) if isinstance(x, FakeDeviceArray) else x


def _unwrap(x: Any, allow_host: bool) -> Any:
    if isinstance(x, FakeDeviceArray):
        return x.view(numpy.ndarray)
    if isinstance(x, numpy.ndarray) and not allow_host:
        raise TypeError(
            "Unsupported type <class 'numpy.ndarray'>: a host (NumPy) array was mixed with "
            "device arrays; move it with backend.to_device first"
        )
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, allow_host) for v in x)
    return x


def _wrap(x: Any) -> Any:
    if isinstance(x, numpy.ndarray):
        return x.view(FakeDeviceArray)
    if isinstance(x, numpy.generic):  # CuPy's reductions give 0-d arrays
        return numpy.asarray(x).view(FakeDeviceArray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _sync(x: Any) -> Any:
    SYNCS[0] += 1
    return x


class FakeDeviceArray(numpy.ndarray):
    """An array "in GPU memory" (host memory in fact), with CuPy's manners."""

    __array_priority__ = 1000.0

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [_unwrap(x, allow_host=False) for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o, allow_host=False) for o in kwargs["out"])
        if method == "at":
            raise TypeError(
                f"{ufunc.__name__}.at on a device array: use backend.scatter_add "
                f"(cupyx.scatter_add on the GPU)"
            )
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if not getattr(_inside, "on", False):
            raise TypeError(
                f"numpy.{func.__name__} was called on a device array: NumPy cannot read GPU "
                f"memory; call it through the array's module (backend.get_array_module(x))"
            )
        return super().__array_function__(func, types, args, kwargs)

    def __getitem__(self, index: Any) -> Any:
        # CuPy: indexing down to one element gives a 0-d device array, not a host scalar.
        return _wrap(super().__getitem__(_unwrap(index, allow_host=True)))

    @property
    def flags(self) -> Any:  # type: ignore[override]
        return _Flags(self.view(numpy.ndarray).flags)

    @property
    def device(self) -> _FakeDevice:  # type: ignore[override]
        return _FakeDevice()

    def __setitem__(self, index: Any, value: Any) -> None:
        # CuPy writes a 0-d device value in place on the GPU (NumPy would call float() on
        # it, a host read CuPy does not make).
        super().__setitem__(_unwrap(index, allow_host=True), _unwrap(value, allow_host=True))

    def get(self) -> numpy.ndarray:
        return _sync(self.view(numpy.ndarray).copy())

    def item(self, *args: Any) -> Any:
        return _sync(self.view(numpy.ndarray).item(*args))

    def tolist(self) -> Any:
        return _sync(self.view(numpy.ndarray).tolist())

    def __float__(self) -> float:
        return _sync(float(self.view(numpy.ndarray)))

    def __int__(self) -> int:
        return _sync(int(self.view(numpy.ndarray)))

    def __index__(self) -> int:
        return _sync(self.view(numpy.ndarray).__index__())

    def __bool__(self) -> bool:
        return _sync(bool(self.view(numpy.ndarray)))

    def __repr__(self) -> str:
        return f"fake_cupy.array({self.view(numpy.ndarray)!r})"

    __str__ = __repr__


def _numpy_only_method(name: str) -> property:
    def refuse(self: Any) -> Any:
        raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}' (NumPy-only)")

    return property(refuse)


for _name in NUMPY_ONLY_ARRAY:
    setattr(FakeDeviceArray, _name, _numpy_only_method(_name))


def _call(func: Callable[..., Any], creation: bool) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_unwrap(a, allow_host=creation) for a in args)
        kwargs = {k: _unwrap(v, allow_host=creation) for k, v in kwargs.items()}
        _inside.on = True
        try:
            result = func(*args, **kwargs)
        finally:
            _inside.on = False
        return _wrap(result)

    call.__name__ = getattr(func, "__name__", "call")
    return call


_CREATION = frozenset({"asarray", "array", "asanyarray", "ascontiguousarray"})


@functools.cache
def _cupy_signature(path: str, name: str) -> inspect.Signature | None:
    """The real CuPy function's signature, where CuPy is here and the function has one
    (its Python-level functions do; ufuncs and Cython ones do not)."""
    if REAL_CUPY is None:
        return None
    module = REAL_CUPY
    for part in [*path.split(".")[1:], name]:
        module = getattr(module, part, None)
    try:
        return inspect.signature(module)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _checked(call: Callable[..., Any], signature: inspect.Signature, where: str) -> Any:
    """``call``, refusing the arguments the real CuPy function would refuse (NumPy's
    ``clip(x, min=...)``, ``sum(where=...)``, ``max(initial=...)``… are NumPy-only)."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{where}{signature} on CuPy {REAL_CUPY.__version__}: {exc} (NumPy takes "
                f"these arguments; CuPy does not)"
            ) from None
        return call(*args, **kwargs)

    checked.__name__ = call.__name__
    return checked


class _Ufunc:
    def __init__(self, ufunc: Any) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self.reduce = _call(ufunc.reduce, False)
        self.accumulate = _call(ufunc.accumulate, False)
        self.outer = _call(ufunc.outer, False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self._ufunc, False)(*args, **kwargs)


class FakeCupy:
    """The namespace: NumPy's functions on device arrays, less the NumPy-only ones."""

    ndarray = FakeDeviceArray

    def __init__(self, module: Any = numpy, path: str = "cupy") -> None:
        self._module = module
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name in NUMPY_ONLY:
            raise AttributeError(
                f"module '{self._path}' has no attribute '{name}' (it is NumPy-only: use "
                f"the function chainrule.backend provides)"
            )
        if _missing_in_cupy(self._path, name):
            raise AttributeError(
                f"module '{self._path}' has no attribute '{name}' (CuPy "
                f"{REAL_CUPY.__version__} lacks it; NumPy has it)"
            )
        obj = getattr(self._module, name)
        if isinstance(obj, numpy.ufunc):
            return _Ufunc(obj)
        if isinstance(obj, type) or not callable(obj):
            if hasattr(obj, "__file__") or type(obj).__name__ == "module":
                return FakeCupy(obj, f"{self._path}.{name}")
            return obj
        call = _call(obj, name in _CREATION)
        signature = _cupy_signature(self._path, name)
        if signature is None:
            return call
        return _checked(call, signature, f"{self._path}.{name}")


class FakeStream:
    def __init__(self, seed: int) -> None:
        self._rng = numpy.random.Generator(numpy.random.PCG64(seed))

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return _wrap(self._rng.standard_normal(shape, dtype=dtype))

    def random(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return _wrap(self._rng.random(shape, dtype=dtype))

    def integers(self, low: int, high: int, shape: tuple[int, ...] | int) -> Any:
        return _wrap(self._rng.integers(low, high, shape))

    def permutation(self, n: int) -> Any:
        return _wrap(self._rng.permutation(n))


class FakeAccelerator:
    """``chainrule.backend.Accelerator`` over ``FakeCupy``: one fake GPU, cuda:0."""

    name = "fake CuPy (NumPy)"

    def __init__(self) -> None:
        self.xp = FakeCupy()
        self.ndarray = FakeDeviceArray

    def from_host(self, array: Any, index: int) -> Any:
        return numpy.array(array, copy=True).view(FakeDeviceArray)

    def to_host(self, array: Any) -> numpy.ndarray:
        return _sync(array.view(numpy.ndarray).copy())

    def copy_to(self, array: Any, index: int) -> Any:
        return array.view(numpy.ndarray).copy().view(FakeDeviceArray)

    def device_index(self, array: Any) -> int:
        return 0

    def current_index(self) -> int:
        return 0

    def device_count(self) -> int:
        return 1

    def synchronize(self, index: int | None) -> None:
        pass

    def scatter_add(self, target: Any, index: Any, values: Any) -> None:
        numpy.add.at(_host(target), _unwrap(index, True), _unwrap(values, True))

    def erfc(self, x: Any) -> Any:
        from scipy.special import erfc

        return _wrap(erfc(_host(x)))

    def random_stream(self, seed: int, index: int) -> FakeStream:
        return FakeStream(seed)

    def using(self, index: int) -> Any:
        if index != 0:
            raise RuntimeError(f"fake CuPy has one GPU, cuda:0; asked for cuda:{index}")
        return contextlib.nullcontext()
