"""The one seam between chainrule and its array library.

Every op, module and optimiser reaches the array library through ``xp`` from this module,
never through ``import numpy`` of its own. Today ``xp`` is NumPy; a GPU build swaps in
CuPy (which mirrors NumPy's API) here, and ``array_module`` picks the library that owns a
given array, so the rest of the code never names either one.
"""

from __future__ import annotations

from typing import Any

import numpy

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
