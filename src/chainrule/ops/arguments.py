"""Checking and normalising the arguments of ``chainrule.ops``' functions: ``dim``
(PyTorch's rules: negative dims count from the end; a 0-d tensor accepts dim 0 and -1),
and array-likes given where a Tensor's data goes (masks, indices)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.errors import ShapeError
from chainrule.tensor import Tensor

Dim = int | Sequence[int] | None


def check_dim(dim: int, n: int, op: str, shape: tuple[int, ...]) -> int:
    """``dim`` checked against ``n`` positions (-n ≤ dim < n) and made non-negative.

    ``n`` is usually the tensor's ndim; ops that insert an axis (unsqueeze, stack) have
    one more position. A 0-d tensor still accepts dim 0 and -1, as in PyTorch.
    """
    n = builtins.max(n, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor of shape {tuple(shape)} "
            f"(expected a dim in [{-n}, {n - 1}])"
        )
    return dim % n


def axes_of(x: Tensor, dim: Dim, op: str) -> tuple[int, ...] | None:
    """Normalise ``dim`` (None, an int or a sequence) to sorted non-negative axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = [check_dim(d, x.ndim, op, x.shape) for d in dims]
    if x.ndim == 0:
        return ()  # a 0-d tensor's dim 0 (or -1) is the tensor itself: nothing to reduce
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: dim {dims} names the same dim more than once")
    return tuple(sorted(out))


def axis_of(x: Tensor, dim: int, op: str) -> int:
    if x.ndim == 0:
        raise ShapeError(
            f"{op}: needs a tensor with at least one dim, got a 0-d tensor; use x.reshape(1) first"
        )
    return check_dim(dim, x.ndim, op, x.shape)


def as_sizes(sizes: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """Sizes given PyTorch's two ways, ``f(2, 3)`` or ``f((2, 3))``, as a tuple of ints
    (each at least 0)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    out = tuple(int(s) for s in sizes)
    if any(s < 0 for s in out):
        raise ShapeError(f"{op}: sizes must be non-negative, got {out}")
    return out


def as_array(value: Any) -> Any:
    """``value`` as an array: a GPU array as it is, anything else through NumPy."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return value
    return backend.xp.asarray(value)  # numbers and lists: host data, read by NumPy
