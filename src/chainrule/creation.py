"""Functions that make tensors: ``tensor``, ``zeros``, ``randn``… (PyTorch's names).

Random ones draw from the seeded generator in ``chainrule.random``.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.backend import xp
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor, TensorLike


def _shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _float_dtype(dtype: Any) -> Any:
    return backend.default_float if dtype is None else xp.dtype(dtype)


def _make(data: Any, requires_grad: bool) -> Tensor:
    return Tensor(data, requires_grad=requires_grad)


def tensor(data: TensorLike, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor holding a copy of ``data``.

    Python floats become float32; NumPy arrays keep their dtype (float64 stays float64);
    ints and bools stay ints and bools.
    """
    if isinstance(data, Tensor):
        data = data.data
    return Tensor(
        xp.array(data, copy=True) if isinstance(data, xp.ndarray) else data,
        requires_grad=requires_grad,
        dtype=dtype,
    )


def from_numpy(array: Any) -> Tensor:
    """A tensor sharing memory with a NumPy array (its dtype kept)."""
    return Tensor(xp.asarray(array))


def as_tensor(data: TensorLike, dtype: Any = None) -> Tensor:
    """``data`` as a tensor, without a copy when it is already an array of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return Tensor(data, dtype=dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.zeros(_shape(size), _float_dtype(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.ones(_shape(size), _float_dtype(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.empty(_shape(size), _float_dtype(dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (its dtype follows the value, as in
    PyTorch: a float gives float32, an int int64, a bool bool)."""
    if dtype is None:
        dtype = Tensor(fill_value).dtype
    return _make(xp.full(_shape((size,)), fill_value, dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to (not including) ``end``. Integer arguments give int64."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.default_float
    return _make(xp.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(
    start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    return _make(xp.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def randn(
    *size: Any, dtype: Any = None, generator: Generator | None = None, requires_grad: bool = False
) -> Tensor:
    """Draws from the standard normal distribution N(0, 1)."""
    data = resolve(generator).standard_normal(_shape(size), _float_dtype(dtype))
    return _make(data, requires_grad)


def rand(
    *size: Any, dtype: Any = None, generator: Generator | None = None, requires_grad: bool = False
) -> Tensor:
    """Draws from the uniform distribution on [0, 1)."""
    data = resolve(generator).random(_shape(size), _float_dtype(dtype))
    return _make(data, requires_grad)


def randint(low: int, high: int, size: Any, generator: Generator | None = None) -> Tensor:
    """Integers drawn uniformly from [low, high), as int64."""
    shape = _shape(size if isinstance(size, tuple) else (size,))
    return Tensor(resolve(generator).integers(low, high, shape).astype(backend.int64))


def randperm(n: int, generator: Generator | None = None) -> Tensor:
    """A random permutation of 0..n-1, as int64."""
    return Tensor(xp.asarray(resolve(generator).permutation(n)).astype(backend.int64))


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.zeros(t.shape, dtype or t.dtype), requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.ones(t.shape, dtype or t.dtype), requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(xp.full(t.shape, fill_value, dtype or t.dtype), requires_grad)


def randn_like(
    t: Tensor, dtype: Any = None, generator: Generator | None = None, requires_grad: bool = False
) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, generator=generator, requires_grad=requires_grad)


def rand_like(
    t: Tensor, dtype: Any = None, generator: Generator | None = None, requires_grad: bool = False
) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, generator=generator, requires_grad=requires_grad)
