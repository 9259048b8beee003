"""Dtype promotion for the binary ops: PyTorch's rules on NumPy and CuPy arrays.

NumPy widens ``float32 + int64`` and ``int64 + 1.5`` to float64; PyTorch keeps the float
tensor's dtype. The elementwise primitives call ``promote`` on their operands first, so a
float32 model stays float32 whatever integer data or NumPy scalars take part.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend

_INTEGRAL = "biu"
_host_array = backend.ndarray  # NumPy's array type: the CPU's fast path is `type(a) is ...`
_host_scalar = backend.xp.generic  # NumPy's scalars (np.float64(2.0)): host values
_host_asarray = backend.xp.asarray  # for host values only (numbers, NumPy scalars)
_backend_state = backend.state


def promote(a: Any, b: Any) -> tuple[Any, Any]:
    """Give integer or bool operands the float dtype of the other operand, as PyTorch does.

    NumPy widens ``float32 + int64`` and ``int64 + 1.5`` to float64; PyTorch keeps the
    float32 tensor's dtype and gives integer data meeting a Python float the default float
    dtype. Following NumPy would silently turn a float32 model into float64 the first time
    an integer tensor (labels, indices, counts) or a NumPy scalar takes part.

    A 0-d float tensor meeting a float tensor with dimensions takes the other's dtype, as
    PyTorch's promotion treats it like a number.

    A Python float meeting a float NumPy array becomes a 0-d array of the array's dtype
    (the value NumPy would compute with anyway): NumPy multiplies by a 0-d array about
    twice as fast as by a Python float, which it must convert on every call. A GPU array
    keeps the Python float: CuPy takes it as a weakly typed scalar (the array's dtype),
    where a host 0-d array would be refused.
    """
    # The CPU's cases first, so that they pay nothing for devices; a NumPy array meeting a
    # GPU array passes through unchanged and the op refuses the pair (DeviceError).
    a_array, b_array = type(a) is _host_array, type(b) is _host_array
    if a_array and b_array:
        return _promote_arrays(a, b)
    if a_array:
        if type(b) is float and a.dtype.kind == "f":
            return a, _scalar(b, a.dtype)
        b = _python_scalar(b)
        if type(b) is float and a.dtype.kind in _INTEGRAL:
            a = a.astype(backend.default_float)
    elif b_array:
        if type(a) is float and b.dtype.kind == "f":
            return _scalar(a, b.dtype), b
        a = _python_scalar(a)
        if type(a) is float and b.dtype.kind in _INTEGRAL:
            b = b.astype(backend.default_float)
    elif _backend_state.gpu_loaded:
        return _promote_device(a, b)
    return a, b


def _promote_arrays(a: Any, b: Any) -> tuple[Any, Any]:
    """``promote`` for two arrays (of one library)."""
    ka, kb = a.dtype.kind, b.dtype.kind
    if ka == kb:
        if ka == "f" and a.dtype is not b.dtype and a.ndim != b.ndim:
            # PyTorch lets a 0-d tensor count like a Python number next to a tensor
            # with dimensions: float32 * 0-d float64 stays float32.
            if a.ndim == 0:
                return a.astype(b.dtype), b
            if b.ndim == 0:
                return a, b.astype(a.dtype)
        return a, b
    # bool with float already keeps the float dtype in NumPy: no copy needed.
    if ka == "f" and kb in "iu":
        return a, b.astype(a.dtype)
    if kb == "f" and ka in "iu":
        return a.astype(b.dtype), b
    return a, b


def _promote_device(a: Any, b: Any) -> tuple[Any, Any]:
    """``promote`` where no NumPy array takes part (GPU arrays, numbers): the same rules,
    Python numbers kept (CuPy takes them as weakly typed scalars)."""
    a_array, b_array = backend.is_device_array(a), backend.is_device_array(b)
    if a_array and b_array:
        return _promote_arrays(a, b)
    if a_array:
        b = _python_scalar(b)
        if type(b) is float and a.dtype.kind in _INTEGRAL:
            a = a.astype(backend.default_float)
    elif b_array:
        a = _python_scalar(a)
        if type(a) is float and b.dtype.kind in _INTEGRAL:
            b = b.astype(backend.default_float)
    return a, b


_SCALARS: dict[tuple[float, Any], Any] = {}


def _scalar(value: float, dtype: Any) -> Any:
    """``value`` as a read-only 0-d NumPy array of ``dtype``, cached (constants repeat a
    lot). For CPU operands only (``promote``)."""
    if value == 0.0:  # 0.0 and -0.0 are equal keys but not the same constant
        return _host_asarray(value, dtype=dtype)
    key = (value, dtype)
    arr = _SCALARS.get(key)
    if arr is None:
        if len(_SCALARS) >= 4096:  # changing values (a decaying rate…) must not pile up
            _SCALARS.clear()
        arr = backend.set_readonly(_host_asarray(value, dtype=dtype))
        _SCALARS[key] = arr
    return arr


def _python_scalar(x: Any) -> Any:
    # A NumPy scalar (np.sqrt(2.0), arr.sum()) counts as a Python number, as in PyTorch,
    # instead of NumPy's strongly typed float64 that would widen a float32 tensor. It is a
    # host value, so reading it is no device sync.
    return x.item() if isinstance(x, _host_scalar) else x


def floating(x: Any) -> Any:
    """Integer or bool data as the default float dtype, as PyTorch gives exp(int) float32
    (NumPy would give float64)."""
    return x.astype(backend.default_float) if x.dtype.kind in _INTEGRAL else x


def is_integral(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype.kind in _INTEGRAL if dtype is not None else type(x) in (int, bool)
