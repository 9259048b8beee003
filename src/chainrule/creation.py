"""Functions that make tensors: ``tensor``, ``zeros``, ``randn``… (PyTorch's names).

Every one takes ``device=`` ("cpu", "cuda", "cuda:1" or a ``cr.device``; default the
CPU); the ``*_like`` ones default to their input's device, as in PyTorch. Arrays are made
on the device by its own library (``cupy.zeros`` under the GPU selected), never on the
host and copied, except for user data (lists, NumPy arrays), which has to cross once.
Random ones draw from the seeded generator in ``chainrule.random``, from its stream on
the device asked for.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.backend import on_device
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor, TensorLike


def _shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _float_dtype(dtype: Any) -> Any:
    return backend.default_float if dtype is None else backend.DType(dtype)


def _make(data: Any, requires_grad: bool) -> Tensor:
    return Tensor(data, requires_grad=requires_grad)


def tensor(
    data: TensorLike, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A tensor holding a copy of ``data``, on ``device`` (default: where the data is;
    the CPU for numbers and lists).

    Python floats become float32; arrays keep their dtype (float64 stays float64); ints
    and bools stay ints and bools.

    Example:
        >>> import chainrule as cr
        >>> cr.tensor([[1, 2], [3, 4]], dtype=cr.float64).sum().item()
        10.0
    """
    if isinstance(data, Tensor):
        data = data.data
    if device is not None and backend.resolve_device(device) != backend.device_of(data):
        return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)  # copies
    if isinstance(data, backend.ndarray) or backend.is_device_array(data):
        data = backend.get_array_module(data).array(data, copy=True)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array: Any) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array (its dtype kept).

    Raises:
        TypeError: ``array`` is a GPU array (use ``cr.as_tensor``, which keeps it there).
    """
    if backend.is_device_array(array) or type(array).__module__.startswith("cupy"):
        raise TypeError(
            "from_numpy() takes a NumPy array, got a GPU array; use cr.as_tensor(array) "
            "to wrap it where it is, or cr.tensor(array) for a copy"
        )
    return Tensor(backend.xp.asarray(array))  # host-only: NumPy by definition


def as_tensor(data: TensorLike, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor of ``dtype`` on ``device``, without a copy when it already is
    one (an array or a Tensor of that dtype, on that device).

    A Tensor that must change is converted with ``Tensor.to`` (which keeps its graph).
    """
    if isinstance(data, Tensor):
        if dtype is None and device is None:
            return data
        kwargs: dict[str, Any] = {}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if device is not None:
            kwargs["device"] = device
        return data.to(**kwargs)
    return Tensor(data, dtype=dtype, device=device)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of ``size`` (float32 unless ``dtype`` says otherwise)."""
    with on_device(device) as xp:
        return _make(xp.zeros(_shape(size), _float_dtype(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of ``size`` (float32 unless ``dtype`` says otherwise)."""
    with on_device(device) as xp:
        return _make(xp.ones(_shape(size), _float_dtype(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``size``: its values are whatever the memory held."""
    with on_device(device) as xp:
        return _make(xp.empty(_shape(size), _float_dtype(dtype)), requires_grad)


def full(
    size: Any,
    fill_value: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (its dtype follows the value, as in
    PyTorch: a float gives float32, an int int64, a bool bool)."""
    if dtype is None:
        dtype = Tensor(fill_value).dtype
    with on_device(device) as xp:
        return _make(xp.full(_shape((size,)), fill_value, dtype), requires_grad)


def eye(
    n: int,
    m: int | None = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The n×m identity matrix (m defaults to n)."""
    with on_device(device) as xp:
        return _make(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to (not including) ``end``. Integer arguments give int64."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.default_float
    with on_device(device) as xp:
        return _make(xp.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    with on_device(device) as xp:
        return _make(xp.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def randn(
    *size: Any,
    dtype: Any = None,
    generator: Generator | None = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Draws from the standard normal distribution N(0, 1), made on ``device`` from the
    generator's stream there (reproducible by ``cr.manual_seed``).

    Example:
        >>> import chainrule as cr
        >>> _ = cr.manual_seed(0); a = cr.randn(3)
        >>> _ = cr.manual_seed(0); bool((a == cr.randn(3)).all())
        True
    """
    data = resolve(generator).standard_normal(_shape(size), _float_dtype(dtype), device=device)
    return _make(data, requires_grad)


def rand(
    *size: Any,
    dtype: Any = None,
    generator: Generator | None = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Draws from the uniform distribution on [0, 1), made on ``device``."""
    data = resolve(generator).random(_shape(size), _float_dtype(dtype), device=device)
    return _make(data, requires_grad)


def randint(
    low: int,
    high: int,
    size: Any,
    generator: Generator | None = None,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Integers drawn uniformly from [low, high), as int64 (or ``dtype``), on ``device``."""
    shape = _shape(size if isinstance(size, tuple) else (size,))
    data = resolve(generator).integers(low, high, shape, device=device)
    return Tensor(data.astype(backend.int64 if dtype is None else dtype, copy=False))


def randperm(
    n: int, generator: Generator | None = None, dtype: Any = None, device: Any = None
) -> Tensor:
    """A random permutation of 0..n-1, as int64 (or ``dtype``), on ``device``."""
    data = resolve(generator).permutation(n, device=device)
    return Tensor(data.astype(backend.int64 if dtype is None else dtype, copy=False))


def _like_device(t: Tensor, device: Any) -> Any:
    """The device asked for, else ``t``'s (a Tensor's or an array's)."""
    if device is not None:
        return device
    return backend.device_of(t.data if isinstance(t, Tensor) else t)


def zeros_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """Zeros of ``t``'s shape, dtype and device (unless given)."""
    with on_device(_like_device(t, device)) as xp:
        return _make(xp.zeros(t.shape, dtype or t.dtype), requires_grad)


def ones_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """Ones of ``t``'s shape, dtype and device (unless given)."""
    with on_device(_like_device(t, device)) as xp:
        return _make(xp.ones(t.shape, dtype or t.dtype), requires_grad)


def empty_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """An uninitialised tensor of ``t``'s shape, dtype and device (unless given)."""
    with on_device(_like_device(t, device)) as xp:
        return _make(xp.empty(t.shape, dtype or t.dtype), requires_grad)


def full_like(
    t: Tensor,
    fill_value: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``fill_value`` in ``t``'s shape, dtype and device (unless given)."""
    with on_device(_like_device(t, device)) as xp:
        return _make(xp.full(t.shape, fill_value, dtype or t.dtype), requires_grad)


def randn_like(
    t: Tensor,
    dtype: Any = None,
    generator: Generator | None = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """N(0, 1) draws of ``t``'s shape, dtype and device (unless given)."""
    return randn(
        t.shape,
        dtype=dtype or t.dtype,
        generator=generator,
        device=_like_device(t, device),
        requires_grad=requires_grad,
    )


def rand_like(
    t: Tensor,
    dtype: Any = None,
    generator: Generator | None = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform [0, 1) draws of ``t``'s shape, dtype and device (unless given)."""
    return rand(
        t.shape,
        dtype=dtype or t.dtype,
        generator=generator,
        device=_like_device(t, device),
        requires_grad=requires_grad,
    )
