"""Drawing the ops that copy values to new places: roll, flip, tril/triu, Tensor.repeat,
tile, repeat_interleave, index_select and narrow.

Like the movement ops (``draw_movement.py``) they keep values exact (tril/triu's zeros
are exact too), so ties set up upstream stay ties downstream. Shifts past the size,
negative dims and starts, repeated indices and every spelling PyTorch shares (methods,
functions, varargs or tuples, keywords) are drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graphs import MAX_NUMEL, Builder


def _choice(b: Builder, options: list[Any]) -> Any:
    return options[int(b.rng.integers(len(options)))]


def _some_dims(b: Builder, nd: int) -> tuple[int, ...]:
    """One to ``nd`` distinct dims in random order, some counted from the end."""
    chosen = b.rng.permutation(nd)[: b.rng.integers(1, nd + 1)]
    return tuple(int(d) - nd if b.rng.random() < 0.3 else int(d) for d in chosen)


def draw_roll(b: Builder) -> None:
    """Flattened (no dims), one dim, or several (a dim may repeat: its shifts add up)."""
    a = b.pick()
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    shifts: Any
    dims: Any
    if not nd or b.rng.random() < 0.3:
        dims = None
        shifts = int(b.rng.integers(-7, 8))
    else:
        dims = _some_dims(b, nd)
        if b.rng.random() < 0.1:
            dims = (*dims, dims[0])
        shifts = tuple(int(b.rng.integers(-2 * shape[d] - 1, 2 * shape[d] + 2)) for d in dims)
        if len(dims) == 1 and b.rng.random() < 0.5:
            dims, shifts = dims[0], shifts[0]
    form = _choice(b, ["method", "function", "keywords"])
    b.add("roll", (a,), exact=True, shifts=shifts, dims=dims, form=form)


def draw_flip(b: Builder) -> None:
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    dims = _some_dims(b, len(b.values[a].shape))
    form = _choice(b, ["method", "function", "varargs"])
    b.add("flip", (a,), exact=True, dims=dims, form=form)


def draw_triangle(b: Builder) -> None:
    """tril/triu of a matrix or a batch of them, diagonals inside and beyond the matrix."""
    a = b.pick(lambda v: len(v.shape) >= 2)
    if a is None:
        return
    diagonal = int(_choice(b, [0, 0, 1, -1, 2, -2, 5, -5]))
    form = _choice(b, ["method", "function"] + (["default"] if diagonal == 0 else []))
    name = _choice(b, ["tril", "triu"])
    b.add("triangle", (a,), exact=True, name=name, diagonal=diagonal, form=form)


def draw_repeat(b: Builder) -> None:
    """``Tensor.repeat`` (one size per dim, maybe leading new ones) or ``tile`` (fewer
    sizes than dims allowed), as varargs, a tuple or ``torch.tile``."""
    a = b.pick(lambda v: len(v.shape) <= 3)
    if a is None:
        return
    v = b.values[a]
    nd = len(v.shape)
    name = _choice(b, ["repeat", "tile"])
    low = nd if name == "repeat" else 1
    count = int(b.rng.integers(max(low, 1), nd + 2))
    sizes = [int(b.rng.integers(1, 4)) for _ in range(count)]
    budget = MAX_NUMEL // max(int(np.prod(v.shape)), 1)
    while int(np.prod(sizes)) > budget and max(sizes) > 1:
        sizes[int(np.argmax(sizes))] -= 1
    if name == "tile":
        form = _choice(b, ["varargs", "tuple", "function"])
    else:
        form = _choice(b, ["varargs", "tuple"])
    b.add("repeat", (a,), exact=True, name=name, sizes=tuple(sizes), form=form)


def draw_repeat_interleave(b: Builder) -> None:
    """Int repeats, flattened (no dim) or along a dim; now and then one count per element
    (a 1-D int64 tensor, zeros included: those elements go, as their gradient)."""
    a = b.pick()
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    dim = None if not nd or b.rng.random() < 0.3 else int(b.rng.integers(-nd, nd))
    repeats: Any = int(b.rng.integers(1, 4))
    if dim is not None and b.rng.random() < 0.25:
        counts = b.rng.integers(0, 3, shape[dim])
        counts[int(b.rng.integers(shape[dim]))] = 1 + int(b.rng.integers(2))  # never empty
        repeats = np.asarray(counts, dtype=np.int64)
    form = _choice(b, ["method", "function"])
    b.add("repeat_interleave", (a,), exact=True, repeats=repeats, dim=dim, form=form)


def draw_index_select(b: Builder) -> None:
    """A 1-D index (repeats, any order; int64 or int32) or a 0-d one, on any tensor."""
    a = b.pick()
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    dim = int(b.rng.integers(-max(nd, 1), max(nd, 1)))
    n = shape[dim] if nd else 1
    index = b.rng.integers(0, n, int(b.rng.integers(1, 5)) if nd else 1)
    if b.rng.random() < 0.15:
        index = index[:1].reshape(())
    dtype = np.int32 if b.rng.random() < 0.2 else np.int64
    how = _choice(b, ["tensor", "numpy", "list"])
    if how == "list" and not index.ndim:
        how = "tensor"
    form = _choice(b, ["method", "function"])
    b.add(
        "index_select",
        (a,),
        exact=True,
        dim=dim,
        index=np.asarray(index, dtype=dtype),
        how=how,
        form=form,
    )


def draw_narrow(b: Builder) -> None:
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    dim = int(b.rng.integers(-nd, nd))
    n = shape[dim]
    start = int(b.rng.integers(-n, n))
    length = int(b.rng.integers(1, n - start % n + 1))
    form = _choice(b, ["method", "function"])
    b.add("narrow", (a,), exact=True, dim=dim, start=start, length=length, form=form)


REARRANGE_DRAWERS: dict[str, Callable[[Builder], None]] = {
    "roll": draw_roll,
    "flip": draw_flip,
    "triangle": draw_triangle,
    "repeat": draw_repeat,
    "repeat_interleave": draw_repeat_interleave,
    "index_select": draw_index_select,
    "narrow": draw_narrow,
}
