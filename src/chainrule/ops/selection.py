"""Picking and cutting along a dim: ``gather``, ``sort``, ``topk`` (built on the Gather
primitive: the values are differentiable, the gradient goes back to where each came from)
and ``split``, ``chunk``, ``unbind`` (one Split node however many pieces)."""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.errors import ShapeError
from chainrule.inplace import index_on_device
from chainrule.ops.arguments import as_array, axis_of
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
    if not backend.is_device_array(idx) and idx.size:  # a GPU index is not read back here
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= x.shape[d]:
            raise IndexError(
                f"gather: index values must be in [0, {x.shape[d]}) along dim {dim} of x "
                f"{x.shape}, got values from {low} to {high}"
            )
    return Gather.apply(x, along_axis(index_on_device(idx, x.data), d))


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
