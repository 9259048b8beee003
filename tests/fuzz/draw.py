"""The op-specific choices of the generator: which inputs, dims, indices and numbers each
kind draws, and how it stays in its domain (``Builder.add`` then drops any candidate whose
values leave the safe range).

Every public primitive of chainrule is drawn here, in every public spelling that PyTorch
shares: operators, functions and methods; Python numbers on either side; dims as None,
ints (negative too) and tuples; ``keepdim``; indices of every kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .graphs import Builder, Value

ARITH_FORMS = ["operator", "operator", "function", "method", "number-left", "number-right"]


def _choice(b: Builder, options: list[Any]) -> Any:
    return options[int(b.rng.integers(len(options)))]


def _has_dims(n: int) -> Callable[[Value], bool]:
    return lambda v: len(v.shape) >= n


def draw_arith(b: Builder, name: str) -> None:
    a = b.pick()
    if a is None:
        return
    form = _choice(b, ARITH_FORMS)
    number = float(_choice(b, [2.5, -1.5, 0.5, 3.0]))
    if name == "div":
        if form == "number-left":
            a = b.positive(a)
        elif form == "number-right":
            number = float(_choice(b, [0.5, 4.0, -2.5]))
        else:
            c = b.positive(b.broadcast_partner(b.values[a].shape))
            if c is not None and b.rng.random() < 0.3:
                c = b.add("neg", (c,), form="operator")
            if a is not None and c is not None:
                b.add(name, (a, c), form=form)
            return
        if a is not None:
            b.add(name, (a,), form=form, number=number)
        return
    if form.startswith("number"):
        b.add(name, (a,), form=form, number=number)
        return
    c = b.broadcast_partner(b.values[a].shape)
    args = (a, c) if b.rng.random() < 0.5 else (c, a)
    b.add(name, args, form=form)


def draw_pow(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    how = _choice(b, ["integer", "integer", "real", "tensor", "base"])
    if how == "integer":  # any base, ties at 0 included: x ** 0 and x ** 1 at x = 0
        number = _choice(b, [0, 1, 2, 3, 2.0, 0.0, 1.0])
        b.add("pow", (a,), form="number-right", number=number)
    elif how == "real":
        base = b.positive(a)
        if base is not None:
            number = float(_choice(b, [0.5, -1.0, 1.5, -0.5]))
            b.add("pow", (base,), form="number-right", number=number)
    elif how == "tensor":
        base = b.positive(a)
        exponent = b.bounded(b.broadcast_partner(b.values[a].shape), 3.0)
        if base is not None and exponent is not None:
            b.add("pow", (base, exponent), form=_choice(b, ["operator", "function", "method"]))
    else:
        exponent = b.bounded(a, 4.0)
        if exponent is not None:
            b.add("pow", (exponent,), form="number-left", number=float(_choice(b, [2.0, 0.5])))


def draw_unary(b: Builder, name: str) -> None:
    a = b.pick()
    if a is None:
        return
    form = _choice(b, ["method", "function"])
    if name in ("log", "sqrt"):
        a = b.positive(a)
    elif name == "exp":
        a = b.bounded(a, 4.0)
    elif name == "softplus":
        # torch's softplus is x itself above its threshold 20 (off by up to e⁻²⁰ relative);
        # chainrule's is exact there: keep below it, where both are exact.
        a = b.bounded(a, 15.0)
    elif name in ("abs", "relu"):
        v = b.values[a]
        if not b.gap_ok(np.abs(v.golden), v.exact):
            return
    if a is None:
        return
    if name == "neg":
        b.add("neg", (a,), exact=True, form=_choice(b, ["operator", "method"]))
    elif name == "softplus":
        b.add("softplus", (a,))
    else:
        b.add(name, (a,), exact=name in ("abs", "relu"), form=form)


def draw_maximum(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    c = b.broadcast_partner(b.values[a].shape)
    va, vc = b.values[a], b.values[c]
    if not b.gap_ok(np.abs(va.golden - vc.golden), va.exact and vc.exact):
        return
    name = _choice(b, ["maximum", "minimum"])
    b.add("maximum", (a, c), exact=True, name=name, form=_choice(b, ["function", "method", "max"]))


def draw_where(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    shape = b.values[a].shape
    if b.rng.random() < 0.2:
        rest: tuple[int, ...] = (a,)
        number: Any = float(_choice(b, [0.0, 1.5]))
    else:
        rest, number = (a, b.broadcast_partner(shape)), None
    out = np.broadcast_shapes(*(b.values[i].shape for i in rest))
    if b.rng.random() < 0.7:
        mask_shape = tuple(1 if b.rng.random() < 0.3 else s for s in out)
        mask = b.rng.random(mask_shape) < 0.5
        b.add("where", rest, exact=True, mask=mask, number=number)
        return
    d = b.pick(lambda v: _broadcasts(v.shape, out))
    if d is None:
        return
    threshold = float(_choice(b, [0.0, 0.5, -0.5]))
    if b.gap_ok(np.abs(b.values[d].golden - threshold), exact=False):
        b.add("where", (d, *rest), threshold=threshold, number=number)


def _broadcasts(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, out) == out
    except ValueError:
        return False


def draw_clamp(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    bounds = [-1.0, -0.5, 0.0, 0.5, 1.0, round(float(b.rng.uniform(-1, 1)), 3)]
    lo, hi = sorted(float(x) for x in b.rng.choice(bounds, 2, replace=False))
    which = _choice(b, ["both", "both", "min", "max"])
    lo_, hi_ = (lo if which != "max" else None), (hi if which != "min" else None)
    v = b.values[a]
    gaps = [np.abs(v.golden - x) for x in (lo_, hi_) if x is not None]
    if b.gap_ok(np.minimum.reduce(gaps), v.exact):
        form = "function" if which == "both" and b.rng.random() < 0.3 else "method"
        b.add("clamp", (a,), exact=True, min=lo_, max=hi_, form=form)


def _find_or_leaf(b: Builder, shape: tuple[int, ...], dtype: str) -> int:
    """A value of ``shape`` and ``dtype`` (torch's matmul takes no mixed dtypes)."""
    found = (
        b.pick(lambda v: v.shape == shape and v.dtype == dtype) if b.rng.random() < 0.5 else None
    )
    return b.leaf(shape, dtype=dtype) if found is None else found


def draw_matmul(b: Builder) -> None:
    """1-D, 2-D and batched operands on either side, batch dims broadcasting."""
    a = b.pick(_has_dims(1))
    if a is None:
        return
    shape = b.values[a].shape
    n = int(b.rng.integers(1, 4))
    batch = tuple(
        1 if b.rng.random() < 0.5 else int(b.rng.integers(1, 3))
        for _ in range(b.rng.integers(0, 2))
    )
    if b.rng.random() < 0.5:  # a on the left: (…, m, k) @ other
        k = shape[-1]
        other = _choice(b, [(k,), (k, n), (*batch, k, n)])
        args = (a, _find_or_leaf(b, other, b.values[a].dtype))
    else:  # a on the right: other @ (…, k, p)
        k = shape[0] if len(shape) == 1 else shape[-2]
        other = _choice(b, [(k,), (n, k), (*batch, n, k)])
        args = (_find_or_leaf(b, other, b.values[a].dtype), a)
    try:
        np.broadcast_shapes(b.values[args[0]].shape[:-2], b.values[args[1]].shape[:-2])
    except ValueError:
        return
    b.add("matmul", args, form=_choice(b, ["operator", "function", "method"]))


def _dims(b: Builder, ndim: int) -> Any:
    """None, an int (maybe negative) or a tuple of distinct dims."""
    kind = _choice(b, ["none", "int", "tuple"])
    if kind == "none":
        return None
    if ndim == 0:
        return _choice(b, [0, -1])
    if kind == "int":
        return int(b.rng.integers(-ndim, ndim))
    chosen = b.rng.permutation(ndim)[: b.rng.integers(1, ndim + 1)]
    return tuple(int(d) - ndim if b.rng.random() < 0.3 else int(d) for d in chosen)


def _tie_gap(golden: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The gap between the largest and second largest value of each reduced group, and
    between the smallest and second smallest (for max and min alike)."""
    if not axes or golden.ndim == 0:
        return np.full(1, np.inf)
    rest = [d for d in range(golden.ndim) if d not in axes]
    groups = np.transpose(golden, (*rest, *axes)).reshape(*[golden.shape[d] for d in rest], -1)
    if groups.shape[-1] < 2:
        return np.full(1, np.inf)
    s = np.sort(groups, axis=-1)
    return np.minimum(s[..., -1] - s[..., -2], s[..., 1] - s[..., 0])


def _axes_of(dim: Any, ndim: int) -> tuple[int, ...]:
    if ndim == 0:
        return ()
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else dim
    return tuple(sorted(d % ndim for d in dims))


_EINSUM_LETTERS = "abcdefgh"


def draw_einsum(b: Builder) -> None:
    """A contraction of a value with a partner over shared letters: a matrix product, an
    outer product, a trace-like diagonal, or a sum, with broadcast batch dims ('...')."""
    a = b.pick(_has_dims(1))
    if a is None:
        return
    shape = b.values[a].shape
    n = len(shape)
    # a's own letters; one trailing letter may be shared with a partner
    mine = _EINSUM_LETTERS[:n]
    kind = _choice(b, ["contract", "outer", "reduce", "diagonal"])
    if kind == "diagonal" and n >= 2 and shape[-1] == shape[-2]:
        term = mine[:-1] + mine[-2]  # the last two axes on their diagonal
        b.add("einsum", (a,), equation=f"{term}->{mine[:-1]}")
        return
    if kind == "reduce":
        kept = "".join(c for c in mine if b.rng.random() < 0.5)
        b.add("einsum", (a,), equation=f"{mine}->{kept}")
        return
    m = int(b.rng.integers(1, 4))
    if kind == "outer":
        partner = _find_or_leaf(b, (m,), b.values[a].dtype)
        b.add("einsum", (a, partner), equation=f"{mine},z->{mine}z")
        return
    partner = _find_or_leaf(b, (shape[-1], m), b.values[a].dtype)
    b.add("einsum", (a, partner), equation=f"...{mine[-1]},{mine[-1]}z->...z")


def draw_cumsum(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    positions = max(len(b.values[a].shape), 1)
    dim = int(b.rng.integers(-positions, positions))
    b.add("cumsum", (a,), dim=dim, form=_choice(b, ["method", "function"]))


def draw_reduce(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    v = b.values[a]
    name = _choice(b, ["sum", "mean", "amax", "amin", "logsumexp", "sum", "mean", "var", "std"])
    dim = _dims(b, len(v.shape))
    axes = _axes_of(dim, len(v.shape))
    if name in ("amax", "amin") and not b.gap_ok(_tie_gap(v.golden, axes), v.exact):
        return
    unbiased = bool(b.rng.random() < 0.5)
    if name == "std":  # sqrt at a zero variance has an infinite derivative
        ddof = 1 if unbiased else 0
        n = int(np.prod([v.shape[d] for d in axes])) if axes else 1
        if n <= ddof or v.golden.var(axis=axes or None, ddof=ddof).min() < 0.01:
            return
    keepdim = bool(b.rng.random() < 0.4)
    b.add(
        "reduce",
        (a,),
        exact=name in ("amax", "amin"),
        name=name,
        dim=dim,
        keepdim=keepdim,
        ndim=len(v.shape),
        unbiased=unbiased,
    )


def draw_max(b: Builder) -> None:
    a = b.pick()
    if a is None:
        return
    v = b.values[a]
    name = _choice(b, ["max", "min"])
    if not v.shape or b.rng.random() < 0.3:
        if b.gap_ok(_tie_gap(v.golden, tuple(range(len(v.shape)))), v.exact):
            b.add("max_all", (a,), exact=True, name=name)
        return
    dim = int(b.rng.integers(-len(v.shape), len(v.shape)))
    if b.gap_ok(_tie_gap(v.golden, (dim % len(v.shape),)), v.exact):
        keepdim = bool(b.rng.random() < 0.4)
        form = _choice(b, ["method", "function"])
        b.add("max_dim", (a,), exact=True, name=name, dim=dim, keepdim=keepdim, form=form)


def draw_softmax(b: Builder) -> None:
    a = b.pick(_has_dims(1))
    if a is None:
        return
    ndim = len(b.values[a].shape)
    dim = int(b.rng.integers(-ndim, ndim))
    name = _choice(b, ["softmax", "log_softmax"])
    b.add("softmax", (a,), name=name, dim=dim, form=_choice(b, ["method", "function"]))


MAX_PROD_SLICE = 8  # at most 8 factors per product, each |x| ≤ 1.5: |prod| ≤ 26


def draw_prod(b: Builder) -> None:
    """prod over every element or one dim, half the time of a fresh leaf with exact zeros
    (none, one or several per slice: the cases where prod's gradient cannot divide)."""
    if b.rng.random() < 0.5:
        shape = tuple(int(s) for s in b.rng.integers(1, 5, int(b.rng.integers(1, 4))))
        a: int | None = b.leaf(shape, domain="zeros")
    else:
        picked = b.pick()
        a = None if picked is None else b.bounded(picked, 1.5)
    if a is None:
        return
    v = b.values[a]
    nd = len(v.shape)
    dim = None
    if nd and (v.golden.size > MAX_PROD_SLICE or b.rng.random() < 0.7):
        dim = int(b.rng.integers(-nd, nd))
    n = v.golden.size if dim is None else v.shape[dim]
    if n > MAX_PROD_SLICE:
        return
    b.add(
        "prod",
        (a,),
        dim=dim,
        keepdim=bool(b.rng.random() < 0.4),
        dtype=bool(b.rng.random() < 0.15),
        form=_choice(b, ["method", "function"]),
    )


NORM_ORDERS: list[Any] = [2, 2, 1, math.inf, -math.inf, "fro", 1.5, 0.5, 3.0]


def draw_norm(b: Builder) -> None:
    """p-norms over None, an int or a tuple of dims, each order kept where its gradient is
    finite and continuous: p = 1 away from non-exact zeros (|x|'s kink), ±inf away from
    near-ties of |x|, 2 away from a zero norm (1/‖x‖ in the second order), other p away
    from zero inputs (|x|ᵖ⁻¹ at 0)."""
    p = _choice(b, NORM_ORDERS)
    if p in (1, 2, math.inf) and b.rng.random() < 0.3:
        a: int | None = b.leaf(b.random_shape(), domain="zeros")
    elif p not in (1, 2, math.inf, "fro") and b.rng.random() < 0.5:
        a = b.leaf(b.random_shape(), domain="signed")  # no zeros, no near-zeros
    else:
        a = b.pick()
    if a is None:
        return
    v = b.values[a]
    nd = len(v.shape)
    form = _choice(b, ["method", "function", "keywords"] * 2 + ["default"])
    dim = None if form == "default" else _dims(b, nd)
    if form == "default":
        p = 2
    if p == "fro" and isinstance(dim, tuple) and len(dim) > 2:
        dim = dim[:2]
    axes = _axes_of(dim, nd)
    magnitude = np.abs(v.golden)
    if p == 1:
        ok = b.gap_ok(magnitude, v.exact)
    elif p in (math.inf, -math.inf):
        ok = b.gap_ok(magnitude, v.exact) and b.gap_ok(_tie_gap(magnitude, axes), v.exact)
    elif p in (2, "fro"):
        squares = (v.golden**2).sum(axis=axes) if axes else v.golden**2
        ok = bool(np.sqrt(squares).min() >= 0.3) if squares.size else False
    else:
        ok = bool(magnitude.min() >= 0.2) if magnitude.size else False
    if ok:
        b.add("norm", (a,), p=p, dim=dim, keepdim=bool(b.rng.random() < 0.4), form=form)


DRAWERS: dict[str, Callable[[Builder], None]] = {
    "add": lambda b: draw_arith(b, "add"),
    "sub": lambda b: draw_arith(b, "sub"),
    "mul": lambda b: draw_arith(b, "mul"),
    "div": lambda b: draw_arith(b, "div"),
    "pow": draw_pow,
    **{
        name: (lambda b, name=name: draw_unary(b, name))
        for name in (
            *("neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "softplus"),
            *("sin", "cos"),
        )
    },
    "maximum": draw_maximum,
    "where": draw_where,
    "clamp": draw_clamp,
    "matmul": draw_matmul,
    "einsum": draw_einsum,
    "cumsum": draw_cumsum,
    "reduce": draw_reduce,
    "max": draw_max,
    "softmax": draw_softmax,
    "prod": draw_prod,
    "norm": draw_norm,
}
