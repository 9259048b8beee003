"""Copies of a tensor with its elements moved or repeated (``flip``, ``roll``, ``repeat``,
``tile``, ``repeat_interleave``) or with a triangle kept (``tril``, ``triu``).

All but ``roll`` are compositions: a reversing slice, expand + reshape, or ``where`` with
a constant mask, so their gradients are those primitives' (and differentiable again).
``roll`` is the ``Roll`` primitive: as a composition it would be a ``cat`` of two slices
per rolled dim, whose backward allocates and sums full-size gradients for every piece,
where rolling the gradient back is one copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.errors import ShapeError
from chainrule.ops.arguments import as_array, as_sizes, axes_of, axis_of
from chainrule.ops.elementwise import Where
from chainrule.ops.movement import Roll, Slice
from chainrule.ops.selection import index_select
from chainrule.tensor import Tensor


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """As ``torch.flip``: x with the order of its elements reversed along ``dims``.

    A copy, as in PyTorch (NumPy's flip is a view): a slice with step −1 along each dim,
    then ``clone``. The gradient is g flipped back.

    Args:
        x: any tensor.
        dims: a dim or a sequence of distinct dims (negative ones count from the end).

    Example:
        >>> cr.flip(cr.tensor([[1, 2, 3], [4, 5, 6]]), (0, 1))
        tensor([[6, 5, 4],
                [3, 2, 1]])
    """
    axes = axes_of(x, dims, "flip") or ()
    reverse = tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim))
    return Slice.apply(x, reverse).clone()


def roll(x: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
    """As ``torch.roll``: x shifted cyclically, by ``shifts[k]`` along ``dims[k]``; the
    elements pushed past the end come back at the start. Without ``dims``, x is rolled as
    if flattened, then given its shape back.

    Args:
        x: any tensor.
        shifts: one shift per dim (negative shifts roll towards the start).
        dims: the dims to roll along, as many as ``shifts``; None: x flattened.

    Example:
        >>> cr.roll(cr.tensor([[1, 2, 3], [4, 5, 6]]), 1)
        tensor([[6, 1, 2],
                [3, 4, 5]])
        >>> cr.roll(cr.tensor([[1, 2, 3], [4, 5, 6]]), (1, -1), (0, 1))
        tensor([[5, 6, 4],
                [2, 3, 1]])
    """
    shift_list = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shift_list) != 1:
            raise ShapeError(
                f"roll: {len(shift_list)} shifts {shift_list} but no dims; give one dim per "
                f"shift, or a single shift to roll the flattened tensor"
            )
        return Roll.apply(x, int(shift_list[0]), None)
    dim_list = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shift_list) != len(dim_list):
        raise ShapeError(
            f"roll: {len(shift_list)} shifts {shift_list} for {len(dim_list)} dims "
            f"{dim_list}; give one shift per dim"
        )
    axes = tuple(axis_of(x, d, "roll") for d in dim_list)
    return Roll.apply(x, tuple(int(s) for s in shift_list), axes)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """As ``torch.tril``: the lower triangle of each matrix in x (its last two dims),
    zeros above it. Element (i, j) is kept where j ≤ i + ``diagonal``: 0 keeps the main
    diagonal, 1 one more above it, −1 starts one below it.

    Composed as ``where(mask, x, 0)`` with a constant mask: the gradient is g masked the
    same way. x may be a batch of matrices, of any dtype (bools and integers stay so).

    Shape:
        x: (*, m, n); the result has x's shape and dtype.

    Example:
        >>> cr.tril(cr.ones(3, 3))
        tensor([[1., 0., 0.],
                [1., 1., 0.],
                [1., 1., 1.]])
    """
    return _triangle(x, diagonal, lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """As ``torch.triu``: the upper triangle of each matrix in x, zeros below it. Element
    (i, j) is kept where j ≥ i + ``diagonal`` (see ``tril``).

    Example:
        >>> cr.triu(cr.ones(2, 3), diagonal=1)
        tensor([[0., 1., 1.],
                [0., 0., 1.]])
    """
    return _triangle(x, diagonal, lower=False)


def _triangle(x: Tensor, diagonal: int, lower: bool) -> Tensor:
    op = "tril" if lower else "triu"
    if x.ndim < 2:
        raise ShapeError(
            f"{op}: needs a matrix or a batch of matrices (at least 2 dims), got shape "
            f"{x.shape}; for a vector v, use {op}(v.unsqueeze(0)) or build the matrix first"
        )
    xp = backend.get_array_module(x.data)  # the mask is made where x lives
    rows, cols = x.shape[-2:]
    below = xp.tri(rows, cols, k=diagonal if lower else diagonal - 1, dtype=bool)
    keep = below if lower else ~below
    # A zero of x's own dtype, so that bool and integer tensors keep their dtype.
    return Where.apply(keep, x, xp.zeros((), dtype=x.dtype))


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """As ``Tensor.repeat``: x tiled ``sizes[k]`` times along dim k (a copy). Unlike
    NumPy's ``repeat``, which repeats each element, the whole tensor is repeated:
    ``[1, 2].repeat(2)`` is ``[1, 2, 1, 2]``. With more sizes than x has dims, x is
    treated as having leading dims of size 1, which become new dims.

    Composed of a reshape that puts a size-1 axis before each dim, an expand of those
    axes to ``sizes`` (a view, no copy), one copy and a reshape that merges each pair:
    the memory of the result alone; the gradient sums g over the repetitions.

    Args:
        sizes: at least one per dim of x, e.g. ``x.repeat(2, 3)`` or ``x.repeat((2, 3))``.

    Shape:
        x: (d₀, …, dₙ₋₁); result: (s₀·d₀, …) with x's shape padded by leading 1s.

    Example:
        >>> cr.tensor([1, 2]).repeat(2, 2)
        tensor([[1, 2, 1, 2],
                [1, 2, 1, 2]])
    """
    return _repeat(x, as_sizes(sizes, "repeat"), "repeat")


def _repeat(x: Tensor, sizes: tuple[int, ...], op: str) -> Tensor:
    if len(sizes) < x.ndim:
        raise ShapeError(
            f"{op}: {len(sizes)} sizes {sizes} for a tensor of shape {x.shape} with {x.ndim} "
            f"dims; give one size per dim (1 keeps a dim as it is), extra leading sizes "
            f"add new dims"
        )
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = tuple(n for d in shape for n in (1, d))  # (1, d₀, 1, d₁, …)
    grown = tuple(n for s, d in zip(sizes, shape) for n in (s, d))  # (s₀, d₀, s₁, d₁, …)
    # clone copies the broadcast view once; the reshapes around it are views.
    copied = x.reshape(spread).expand(grown).clone()
    return copied.reshape(tuple(s * d for s, d in zip(sizes, shape)))


def tile(x: Tensor, dims: Sequence[int] | int) -> Tensor:
    """As ``torch.tile``: x repeated ``dims[k]`` times along dim k, like ``repeat``, except
    that fewer ``dims`` than x has dims are padded with leading 1s (``x.tile((2,))`` on a
    matrix repeats its columns).

    Example:
        >>> cr.tile(cr.tensor([[1, 2], [3, 4]]), (2,))
        tensor([[1, 2, 1, 2],
                [3, 4, 3, 4]])
    """
    sizes = as_sizes((dims,) if isinstance(dims, int) else tuple(dims), "tile")
    return _repeat(x, (1,) * (x.ndim - len(sizes)) + sizes, "tile")


def repeat_interleave(x: Tensor, repeats: int | Any, dim: int | None = None) -> Tensor:
    """As ``torch.repeat_interleave``: each element of x repeated ``repeats`` times along
    ``dim`` (NumPy's ``repeat``): ``[1, 2]`` gives ``[1, 1, 2, 2]``. Without ``dim``, x is
    flattened first.

    With an int, composed as unsqueeze + expand + one copy + reshape (the gradient sums g
    over each run of copies). ``repeats`` may also be a 1-D integer tensor with one count
    per element along ``dim``: then the output's length depends on its values, which are
    read on the host (as PyTorch does), and the result is an ``index_select``.

    Shape:
        x: (*, n, *) along ``dim``; result: (*, n·repeats, *), or (*, Σ repeats, *).

    Example:
        >>> cr.repeat_interleave(cr.tensor([[1, 2], [3, 4]]), 2, dim=1)
        tensor([[1, 1, 2, 2],
                [3, 3, 4, 4]])
        >>> cr.repeat_interleave(cr.tensor([1, 2]), cr.tensor([1, 3]))
        tensor([1, 2, 2, 2])
    """
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = axis_of(x, dim, "repeat_interleave")
    if not isinstance(repeats, int):
        values = repeats.data if isinstance(repeats, Tensor) else as_array(repeats)
        counts = backend.to_host(values)  # the output's length depends on them
        if counts.dtype.kind not in "iu" or counts.ndim > 1:
            raise ShapeError(
                f"repeat_interleave: repeats must be an int or a 1-D integer tensor, got "
                f"{counts.dtype} of shape {tuple(counts.shape)}"
            )
        if counts.size != 1:
            return _repeat_counts(x, counts, d, dim)
        repeats = int(counts.reshape(-1)[0])
    if repeats < 0:
        raise ShapeError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
    before, n, after = x.shape[:d], x.shape[d], x.shape[d + 1 :]
    runs = x.reshape((*before, n, 1, *after)).expand((*before, n, repeats, *after)).clone()
    return runs.reshape((*before, n * repeats, *after))


def _repeat_counts(x: Tensor, counts: Any, d: int, dim: int | None) -> Tensor:
    """``repeat_interleave`` with one count per element along ``d`` (host ``counts``)."""
    if counts.shape != (x.shape[d],) or (counts < 0).any():
        raise ShapeError(
            f"repeat_interleave: repeats {counts.tolist()} must be non-negative, one per "
            f"element along dim {dim} of size {x.shape[d]} (shape {x.shape})"
        )
    # Host arrays: the counts were read on the host; index_select moves the index over.
    host = backend.xp
    return index_select(x, d, host.repeat(host.arange(x.shape[d]), counts))
