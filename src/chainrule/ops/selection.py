"""Picking and cutting along a dim: ``gather``, ``index_select``, ``sort``, ``topk`` (built
on the Gather primitive: the values are differentiable, the gradient goes back to where
each came from), ``narrow`` (a Slice: a view) and ``split``, ``chunk``, ``unbind`` (one
Split node however many pieces)."""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.errors import DTypeError, ShapeError
from chainrule.inplace import index_on_device
from chainrule.ops.arguments import as_array, axis_of, check_dim
from chainrule.ops.movement import Gather, Slice, Split, along_axis
from chainrule.ops.results import SortResult
from chainrule.tensor import Tensor


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """As ``torch.gather``: out[i][j][k] = x[i][index[i][j][k]][k] for dim 1 (likewise for
    any dim). ``index`` is an integer tensor of x's ndim, no larger than x outside ``dim``;
    the gradient adds up where an index repeats.
    """
    d = axis_of(x, dim, "gather")
    idx = index.data if isinstance(index, Tensor) else as_array(index)
    if idx.dtype.kind not in "iu" or idx.ndim != x.ndim:
        raise ShapeError(
            f"gather: index must be an integer tensor with x's {x.ndim} dims, got "
            f"{idx.dtype} of shape {tuple(idx.shape)}"
        )
    if any(n > m for a, (n, m) in enumerate(zip(idx.shape, x.shape, strict=True)) if a != d):
        raise ShapeError(
            f"gather: index of shape {tuple(idx.shape)} is larger than x {x.shape} outside "
            f"dim {dim}"
        )
    _check_in_range(idx, x.shape[d], "gather", dim, x.shape)
    return Gather.apply(x, along_axis(index_on_device(idx, x.data), d))


def index_select(x: Tensor, dim: int, index: Any) -> Tensor:
    """As ``torch.index_select``: the slices of x at ``index`` along ``dim``, in that order
    (an index may repeat: its slice is copied again, and gets the sum of the gradients).

    Args:
        x: any tensor.
        dim: the dim to pick along.
        index: a 1-D integer tensor (or array, or list) of positions in [0, x.size(dim)).

    Shape:
        x: (*, n, *) along ``dim``; index: (k,); result: (*, k, *).

    Example:
        >>> x = cr.tensor([[1, 2, 3], [4, 5, 6]])
        >>> cr.index_select(x, 1, cr.tensor([2, 0, 2]))
        tensor([[3, 1, 3],
                [6, 4, 6]])
    """
    d = check_dim(dim, x.ndim, "index_select", x.shape)
    idx = index.data if isinstance(index, Tensor) else as_array(index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(
            f"index_select: index must be an integer tensor (int64 or int32), got "
            f"{idx.dtype}; convert it with index.long()"
        )
    if idx.ndim > 1:
        raise ShapeError(
            f"index_select: index must be 1-D, got shape {tuple(idx.shape)}; flatten it "
            f"(index.reshape(-1)) and reshape the result, or use gather"
        )
    idx = idx.reshape(-1)  # a 0-d index picks one slice, keeping the dim (as torch)
    if x.ndim == 0:  # a 0-d tensor has one element, at position 0
        if idx.size != 1:
            raise ShapeError(
                f"index_select: a 0-d tensor takes an index with one value, got {idx.size} values"
            )
        return index_select(x.reshape(1), 0, idx).reshape(())
    _check_in_range(idx, x.shape[d], "index_select", dim, x.shape)
    return Gather.apply(x, (slice(None),) * d + (index_on_device(idx, x.data),))


def _check_in_range(idx: Any, n: int, op: str, dim: int, shape: tuple[int, ...]) -> None:
    """Refuse index values outside [0, n): NumPy would wrap negative ones, PyTorch does not.
    A GPU index is not read back here (that would wait for the GPU)."""
    if not backend.is_device_array(idx) and idx.size:
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= n:
            raise IndexError(
                f"{op}: index values must be in [0, {n}) along dim {dim} of x {shape}, got "
                f"values from {low} to {high}"
            )


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """As ``torch.narrow``: the ``length`` elements of x from ``start`` along ``dim``, a
    view (a basic slice: writing into it writes into x). A negative ``start`` counts from
    the end. The gradient is g written back at those positions, zeros elsewhere.

    Shape:
        x: (*, n, *) along ``dim``; result: (*, length, *).

    Example:
        >>> cr.narrow(cr.tensor([[1, 2, 3], [4, 5, 6]]), 1, 1, 2)
        tensor([[2, 3],
                [5, 6]])
    """
    d = axis_of(x, dim, "narrow")
    n, start, length = x.shape[d], int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(
            f"narrow: start {start} is out of range for dim {dim} of size {n} (shape "
            f"{x.shape}); expected a start in [{-n}, {n}]"
        )
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise ShapeError(
            f"narrow: start {start} + length {length} does not fit in dim {dim} of size {n} "
            f"(shape {x.shape}); use a length in [0, {n - start}]"
        )
    return Slice.apply(x, (slice(None),) * d + (slice(start, start + length),))


def _order(x: Tensor, d: int, descending: bool) -> Any:
    """The indices that sort x along ``d`` (stable: ties keep their order)."""
    xp = backend.get_array_module(x.data)
    if descending:
        # The ascending stable order of the reversed line, read backwards: largest first,
        # ties in their original order, NaN first (as torch, which ranks NaN highest).
        flipped = xp.argsort(xp.flip(x.data, axis=d), axis=d, kind="stable")
        return xp.flip(x.shape[d] - 1 - flipped, axis=d)
    return xp.argsort(x.data, axis=d, kind="stable")


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    """As ``torch.sort``: (values, indices) sorted along ``dim``; the values are
    differentiable (the gradient goes back to where each value came from). Ties keep
    their order (a stable sort, whatever ``stable`` says)."""
    d = axis_of(x, dim, "sort")
    indices = _order(x, d, descending)
    return SortResult(gather(x, d, Tensor(indices)), Tensor(indices))


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
    """As ``torch.topk``: the ``k`` largest (or smallest) values along ``dim`` and their
    indices, largest first (smallest first with ``largest=False``); values differentiable.
    The order's first k indices pick the values in one gather (not all, then a slice)."""
    d = axis_of(x, dim, "topk")
    if not 0 <= k <= x.shape[d]:
        raise ValueError(f"topk: k={k} must be in [0, {x.shape[d]}] for dim {dim} of {x.shape}")
    indices = _order(x, d, largest)[(slice(None),) * d + (slice(0, k),)]
    return SortResult(gather(x, d, Tensor(indices)), Tensor(indices))


def split(
    x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0
) -> tuple[Tensor, ...]:
    """As ``torch.split``: pieces of ``split_size`` along ``dim`` (the last may be
    smaller), or of the listed sizes. One differentiable op (``Split``) whatever the
    number of pieces; the pieces are copies, not views of x (see ``Split``)."""
    d = axis_of(x, dim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = [int(v) for v in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.min(sizes, default=0) < 0:
            raise ValueError(
                f"split: sections {sizes} must be non-negative and add up to dim {dim}'s "
                f"size {n} (shape {x.shape})"
            )
    if len(sizes) <= 1:
        return (Slice.apply(x, (slice(None),) * (d + 1)),)
    bounds = tuple(itertools.accumulate(sizes))[:-1]
    return tuple(Split.apply(x, d, bounds))


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """As ``torch.unbind``: the slices of x along ``dim``, each without that dim (one
    ``Split`` node, so a loop over a sequence's steps backpropagates in one pass)."""
    d = axis_of(x, dim, "unbind")
    return tuple(piece.squeeze(d) for piece in split(x, 1, d))


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """As ``torch.chunk``: at most ``chunks`` pieces of ⌈size/chunks⌉ along ``dim``."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[axis_of(x, dim, "chunk")]
    return split(x, builtins.max(1, math.ceil(n / chunks)), dim)
