"""The one seam between chainrule and its array library.

Every op, module and optimiser reaches the array library through ``xp`` from this module,
never through ``import numpy`` of its own. Today ``xp`` is NumPy; a GPU build swaps in
CuPy (which mirrors NumPy's API) here, and ``array_module`` picks the library that owns a
given array, so the rest of the code never names either one.
"""

from __future__ import annotations

from typing import Any

import numpy

from chainrule.errors import DTypeError

xp = numpy
"""The array namespace (NumPy's API) used by the whole library."""

ndarray = numpy.ndarray
"""The array type that ``Tensor.data`` holds."""

DType = numpy.dtype
"""The dtype type: ``cr.float32`` and friends are instances of it."""

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


def array_module(*arrays: Any) -> Any:
    """The array library that owns ``arrays`` (NumPy today; CuPy arrays will answer CuPy)."""
    return numpy


def is_floating(dtype: Any) -> bool:
    """True for the floating-point dtypes, the only ones that can carry gradients."""
    return numpy.issubdtype(dtype, numpy.floating)


def to_host(array: Any) -> numpy.ndarray:
    """A NumPy array with the same values, for printing, files and plots."""
    return numpy.asarray(array)


def as_array(data: Any, dtype: Any = None) -> Any:
    """User data (a number, nested lists, an array) as an array of the backend, with
    chainrule's dtype rules; anything that is not numbers is a clear ``DTypeError``."""
    if isinstance(data, xp.ndarray):
        arr = data
    else:
        try:
            arr = xp.asarray(data)
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
        if arr.dtype == float64 and dtype is None and not isinstance(data, xp.generic):
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
    return arr
