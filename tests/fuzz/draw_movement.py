"""Drawing the ops that move values without changing them: reshape and its spellings,
permute/transpose, expand, basic and advanced indexing, cat/stack, split/chunk/unbind,
casts and clone.

They keep values exact (a tie stays a tie in every library), so they also set up the
exact ties that relu, abs, max and clamp meet downstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graphs import MAX_NUMEL, Builder


def _choice(b: Builder, options: list[Any]) -> Any:
    return options[int(b.rng.integers(len(options)))]


def draw_reshape(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    shape = b.values[a].shape
    nd = len(shape)
    options: list[tuple[str, Any]] = [
        ("reshape", (-1,)),
        ("reshape", shape[::-1]),
        ("reshape_function", (1, *shape)),
        ("unsqueeze", int(b.rng.integers(-nd - 1, nd + 1))),
        ("squeeze_all", None),
    ]
    if nd >= 1:
        d = int(b.rng.integers(-nd, nd))
        options += [("squeeze", d), ("flatten", (0, -1))]
    if nd >= 2:
        i = int(b.rng.integers(nd))
        infer = tuple(-1 if j == i else s for j, s in enumerate(shape))
        options += [
            ("reshape", (shape[0] * shape[1], *shape[2:])),
            ("reshape", infer),
            ("flatten", (int(b.rng.integers(0, nd - 1)), -1)),
            ("flatten", (0, int(b.rng.integers(1, nd)))),
        ]
    how, arg = _choice(b, options)
    b.add("reshape", (a,), exact=True, how=how, arg=arg)


def draw_permute(b: Builder) -> None:
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    nd = len(b.values[a].shape)
    how = _choice(b, ["permute", "transpose"] + (["T" if nd == 2 else "mT"] if nd >= 2 else []))
    arg: Any = None
    if how == "permute":
        arg = tuple(int(d) - nd if b.rng.random() < 0.3 else int(d) for d in b.rng.permutation(nd))
    elif how == "transpose":
        arg = (int(b.rng.integers(-nd, nd)), int(b.rng.integers(-nd, nd)))
    b.add("permute", (a,), exact=True, how=how, arg=arg)


def draw_expand(b: Builder) -> None:
    a = b.pick(lambda v: 1 in v.shape or len(v.shape) < 3)
    if a is None:
        return
    shape = b.values[a].shape
    grown = [int(b.rng.integers(1, 4)) if s == 1 else s for s in shape]
    kept = [-1 if b.rng.random() < 0.3 else s for s in grown]
    lead = [int(b.rng.integers(1, 4)) for _ in range(b.rng.integers(0, 3 - min(len(shape), 2)))]
    sizes = (*lead, *kept)
    if sizes and int(np.prod([abs(s) for s in (*lead, *grown)])) <= MAX_NUMEL:
        b.add("expand", (a,), exact=True, sizes=sizes)


def draw_index_basic(b: Builder) -> None:
    """Ints (negative too), slices (negative steps too), None and Ellipsis; never empty."""
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    shape = b.values[a].shape
    items: list[Any] = []
    for n in shape:
        kind = _choice(b, ["int", "slice", "slice", "full"])
        if kind == "int":
            items.append(int(b.rng.integers(-n, n)))
        elif kind == "full":
            items.append(slice(None))
        else:
            step = _choice(b, [-2, -1, 1, 2, None])
            start = _choice(b, [None, int(b.rng.integers(-n, n))])
            stop = _choice(b, [None, int(b.rng.integers(-n - 1, n + 1))])
            s = slice(start, stop, step)
            if not len(range(*s.indices(n))):
                s = slice(None, None, step)
            items.append(s)
    if b.rng.random() < 0.4:  # drop trailing items, or lead with an Ellipsis
        cut = int(b.rng.integers(0, len(items)))
        items = [Ellipsis, *items[cut + 1 :]] if b.rng.random() < 0.5 else items[:cut]
    if b.rng.random() < 0.3:
        items.insert(int(b.rng.integers(0, len(items) + 1)), None)
    b.add("index_basic", (a,), exact=True, index=tuple(items), shape=shape)


def draw_index_advanced(b: Builder) -> None:
    """Integer arrays with repeated and negative entries, lists, int tensors, boolean masks
    (whole-shape and first-dim), two broadcasting arrays, a slice then an array."""
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    shape = b.values[a].shape
    n0 = shape[0]
    rng = b.rng
    kind = _choice(b, ["ints", "ints2d", "mask", "row_mask", "pair", "slice_ints"])
    how = _choice(b, ["numpy", "list", "tensor"])
    index: tuple[Any, ...]
    if kind == "ints":
        index = (np.concatenate([rng.integers(-n0, n0, 3), [0, 0]]),)
    elif kind == "ints2d":
        index = (rng.integers(-n0, n0, (2, 2)),)
    elif kind in ("mask", "row_mask"):
        mask = rng.random(shape if kind == "mask" else (n0,)) < 0.5
        mask.reshape(-1)[int(rng.integers(mask.size))] = True
        index, how = (mask,), ("numpy" if how == "list" else how)
    elif kind == "pair" and len(shape) >= 2:
        rows = np.array([[0], [0], [n0 - 1]])
        index = (rows, rng.integers(-shape[1], shape[1], 2))
    elif kind == "slice_ints" and len(shape) >= 2:
        cols = rng.integers(0, shape[1], 4)
        cols[1] = cols[0]  # a repeat: its gradient accumulates
        index = (slice(None), cols)
    else:
        index = (np.array([n0 - 1, 0, n0 - 1]),)
    b.add("index_advanced", (a,), exact=True, index=index, how=how)


def draw_join(b: Builder) -> None:
    """cat along an existing dim (parts of other sizes there) or stack along a new one;
    a part may repeat (fan-out) and parts may differ in dtype (torch promotes)."""
    a = b.pick(lambda v: len(v.shape) >= 1)
    if a is None:
        return
    shape = b.values[a].shape
    parts = [a]
    if b.rng.random() < 0.5:
        d = int(b.rng.integers(-len(shape), len(shape)))
        axis = d % len(shape)
        for _ in range(int(b.rng.integers(1, 3))):
            if b.rng.random() < 0.3:
                parts.append(a)
            else:
                size = int(b.rng.integers(1, 3))
                parts.append(b.leaf((*shape[:axis], size, *shape[axis + 1 :])))
        name = "cat"
    else:
        d = int(b.rng.integers(-len(shape) - 1, len(shape) + 1))
        for _ in range(int(b.rng.integers(1, 3))):
            found = b.pick(lambda v: v.shape == shape)
            parts.append(b.leaf(shape) if found is None or b.rng.random() < 0.3 else found)
        name = "stack"
    b.rng.shuffle(parts)
    b.add("join", tuple(parts), exact=True, name=name, dim=d)


def draw_split(b: Builder) -> None:
    """One piece of split (by size or sections), chunk or unbind: the other pieces go
    unused, so their gradients come back as zeros."""
    a = b.pick(lambda v: len(v.shape) >= 1 and max(v.shape) >= 2)
    if a is None:
        return
    shape = b.values[a].shape
    d = int(b.rng.integers(-len(shape), len(shape)))
    n = shape[d]
    if n < 2:
        return
    how = _choice(b, ["size", "sections", "chunk", "unbind"])
    size = int(b.rng.integers(1, n))
    pieces = {
        "size": -(-n // size),
        "sections": 2,
        "chunk": len(range(0, n, -(-n // 2))),
        "unbind": n,
    }
    pick = int(b.rng.integers(pieces[how]))
    b.add(
        "split", (a,), exact=True, how=how, dim=d, size=size, sections=[size, n - size], pick=pick
    )


def draw_cast(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    to = "float32" if b.values[a].dtype == "float64" else "float64"
    b.add("cast", (a,), to=to, form=_choice(b, ["method", "to"]))


def draw_clone(b: Builder) -> None:
    a = b.pick()
    if a is not None:
        b.add("clone", (a,), exact=True)


MOVEMENT_DRAWERS: dict[str, Callable[[Builder], None]] = {
    "reshape": draw_reshape,
    "permute": draw_permute,
    "expand": draw_expand,
    "index_basic": draw_index_basic,
    "index_advanced": draw_index_advanced,
    "join": draw_join,
    "split": draw_split,
    "cast": draw_cast,
    "clone": draw_clone,
}
