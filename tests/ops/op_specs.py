"""The spec table: for every primitive of ``chainrule.ops``, how to reach it through the
public API, on which inputs, and what torch computes instead.

``SPECS[name]`` is a Hypothesis strategy of ``Case``s for the primitive ``name``. The
registry tests (``tests/autograd/test_primitives_gradcheck.py``,
``test_primitives_second_order.py`` and ``test_primitives_torch.py``) gradcheck,
gradgradcheck and torch-compare every case, and fail for any primitive without a spec, so
a new op cannot land untested. PyTorch is optional here: without it the gradient checks
run and only the parity tests skip (the torch side of a case is called only by them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import op_specs_rearrange as rearrange
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_strategies import (
    Case,
    basic_index,
    broadcast_shapes,
    dims,
    rng_from,
    shapes,
    torch_basic_index,
    torch_dims,
    values,
)

import chainrule as cr
from chainrule.device import CPU
from chainrule.ops.elementwise import ToDevice
from chainrule.ops.movement import ScatterAdd

try:
    import torch
except ImportError:  # the gradient checks need no torch; the parity tests skip
    torch = None


def _torch(name: str) -> Any:
    """``torch.<name>`` looked up when called, so this table imports without torch."""

    def call(*args: Any) -> Any:
        fn: Any = torch
        for part in name.split("."):
            fn = getattr(fn, part)
        return fn(*args)

    return call


def _from_numpy(a: Any) -> Any:
    return None if torch is None else torch.from_numpy(a)


def _unary(name: str, cr_fn: Any, torch_fn: Any, domain: str = "real") -> Any:
    @st.composite
    def cases(draw: Any) -> Case:
        x = values(rng_from(draw), draw(shapes()), domain)
        return Case(f"{name}{x.shape}", (x,), cr_fn, torch_fn)

    return cases()


@st.composite
def _binary(draw: Any, variants: dict[str, tuple[Any, Any, int]], domains: tuple[str, str]) -> Case:
    """Two broadcasting tensors, or one tensor and a Python number (``arity`` 1)."""
    label = draw(st.sampled_from(sorted(variants)))
    cr_fn, torch_fn, arity = variants[label]
    rng = rng_from(draw)
    (sa, sb), _ = draw(broadcast_shapes(2))
    inputs = (values(rng, sa, domains[0]), values(rng, sb, domains[1]))[:arity]
    return Case(f"{label} {[x.shape for x in inputs]}", inputs, cr_fn, torch_fn)


def _both(fn: Any, arity: int = 2) -> tuple[Any, Any, int]:
    return fn, fn, arity


@st.composite
def _where(draw: Any) -> Case:
    rng = rng_from(draw)
    (sa, sb, sc), _ = draw(broadcast_shapes(3))
    cond = np.asarray(rng.random(sc) < 0.5)
    return Case(
        f"where cond{sc} a{sa} b{sb}",
        (values(rng, sa, "real"), values(rng, sb, "real")),
        lambda a, b: cr.where(cr.tensor(cond), a, b),
        lambda a, b: _torch("where")(_from_numpy(cond), a, b),
    )


@st.composite
def _clamp(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes()), "real")
    x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, x + 0.1, x)  # away from the bounds ±0.5
    lo, hi = draw(st.sampled_from([(-0.5, 0.5), (-0.5, None), (None, 0.5)]))
    return Case(
        f"clamp{x.shape} [{lo}, {hi}]", (x,), lambda t: t.clamp(lo, hi), lambda t: t.clamp(lo, hi)
    )


def _cast(t: Any) -> Any:
    # float64 -> float32 and back: the graph holds a Cast either way.
    return t.float() if str(t.dtype).endswith("float64") else t.double()


@st.composite
def _matmul(draw: Any) -> Case:
    """1-D, 2-D and batched operands with broadcast batch dims (NumPy's matmul rules)."""
    (sa, sb), _ = draw(hnp_matmul_shapes())
    rng = rng_from(draw)
    method = draw(st.sampled_from(["@", "matmul"]))
    fn = (lambda a, b: a @ b) if method == "@" else (lambda a, b: a.matmul(b))
    return Case(
        f"{sa} {method} {sb}",
        (values(rng, sa, "real"), values(rng, sb, "real")),
        fn,
        lambda a, b: a @ b,
    )


def hnp_matmul_shapes() -> Any:
    return hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, min_side=1, max_side=4
    )


@st.composite
def _reduction(draw: Any, method: str, domain: str) -> Case:
    x = values(rng_from(draw), draw(shapes()), domain)
    dim, keepdim = draw(dims(x.ndim)), draw(st.booleans())
    torch_dim = torch_dims(dim, x.ndim)
    return Case(
        f"{method}{x.shape} dim={dim} keepdim={keepdim}",
        (x,),
        lambda t: getattr(t, method)(dim, keepdim=keepdim),
        lambda t: getattr(t, method)(torch_dim, keepdim=keepdim),
    )


@st.composite
def _max_dim(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes(min_dims=1)), "distinct")
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    keepdim = draw(st.booleans())
    method = draw(st.sampled_from(["max", "min"]))
    return Case(
        f"{method}{x.shape} dim={dim} keepdim={keepdim}",
        (x,),
        lambda t: getattr(t, method)(dim=dim, keepdim=keepdim).values,
        lambda t: getattr(t, method)(dim=dim, keepdim=keepdim).values,
    )


@st.composite
def _along_dim(draw: Any, method: str) -> Case:
    x = values(rng_from(draw), draw(shapes(min_dims=1)), "real")
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    return Case(
        f"{method}{x.shape} dim={dim}",
        (x,),
        lambda t: getattr(t, method)(dim),
        lambda t: getattr(t, method)(dim),
    )


@st.composite
def _reshape(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes()), "real")
    options = {"flat": (-1,), "reversed": x.shape[::-1], "lead1": (1, *x.shape)}
    if x.ndim >= 2:
        options["merge"] = (x.shape[0] * x.shape[1], *x.shape[2:])
        options["infer"] = (x.shape[0], -1)
    how = draw(st.sampled_from(sorted(options)))
    new = options[how]
    method = draw(st.sampled_from(["reshape", "view"]))
    return Case(
        f"{method}{x.shape}->{new}",
        (x,),
        lambda t: getattr(t, method)(*new),
        lambda t: t.reshape(new),
    )


@st.composite
def _permute(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes(min_dims=1)), "real")
    how = draw(st.sampled_from(["permute", "transpose", "T"]))
    if how == "permute":
        order = tuple(draw(st.permutations(range(x.ndim))))
        return Case(
            f"permute{x.shape} {order}",
            (x,),
            lambda t: t.permute(*order),
            lambda t: t.permute(*order),
        )
    if how == "transpose":
        d0, d1 = draw(st.integers(-x.ndim, x.ndim - 1)), draw(st.integers(-x.ndim, x.ndim - 1))
        return Case(
            f"transpose{x.shape} {d0},{d1}",
            (x,),
            lambda t: t.transpose(d0, d1),
            lambda t: t.transpose(d0, d1),
        )
    reverse = tuple(reversed(range(x.ndim)))
    return Case(f"T{x.shape}", (x,), lambda t: t.T, lambda t: t.permute(*reverse))


@st.composite
def _expand(draw: Any) -> Case:
    ones = tuple(1 if draw(st.booleans()) else s for s in draw(shapes()))
    x = values(rng_from(draw), ones, "real")
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    grown = tuple(draw(st.integers(1, 3)) if s == 1 else s for s in ones)
    # -1 keeps a dimension as it is.
    kept = tuple(-1 if draw(st.booleans()) else s for s in grown)
    target = (*lead, *kept)
    return Case(
        f"expand{x.shape}->{target}", (x,), lambda t: t.expand(*target), lambda t: t.expand(target)
    )


@st.composite
def _slice(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes(min_dims=1)), "real")
    index = draw(basic_index(x.shape))
    return Case(
        f"{x.shape}[{index}]", (x,), lambda t: t[index], lambda t: torch_basic_index(t, index)
    )


_GATHER_KINDS = [
    *("ints", "list", "int_tensor", "mask", "row_mask", "pair", "slice_ints"),
    *("along_dim", "sort", "topk"),  # torch.gather, and the values of sort and topk
]


@st.composite
def _gather(draw: Any) -> Case:
    """Integer arrays (repeated and negative indices), lists, int tensors, boolean masks."""
    rng = rng_from(draw)
    x = values(rng, draw(shapes(min_dims=1)), "real")
    n0 = x.shape[0]
    kind = draw(st.sampled_from(_GATHER_KINDS))
    if kind in ("along_dim", "sort", "topk"):
        return _gather_along_dim(draw, rng, kind)
    repeated = np.concatenate([rng.integers(-n0, n0, 3), [0, 0]])
    if kind == "ints":
        index: Any = repeated
        torch_index: Any = _from_numpy(repeated)
    elif kind == "list":
        index = [int(i) for i in repeated]
        torch_index = index
    elif kind == "int_tensor":
        index = cr.tensor(repeated)
        torch_index = _from_numpy(repeated)
    elif kind == "mask":
        mask = rng.random(x.shape) < 0.5
        mask.reshape(-1)[0] = True
        index, torch_index = mask, _from_numpy(mask)
    elif kind == "row_mask":
        mask = rng.random(n0) < 0.5
        mask[-1] = True
        index, torch_index = cr.tensor(mask), _from_numpy(mask)
    elif kind == "pair":
        # Two broadcasting integer arrays pick elements pairwise; (0, 0) appears twice.
        rows = np.array([[0], [0], [n0 - 1]])
        cols = np.array([0, -1]) if x.ndim > 1 else None
        if cols is None:
            index, torch_index = rows, _from_numpy(rows)
        else:
            index = (rows, cols)
            torch_index = (_from_numpy(rows), _from_numpy(cols))
    else:
        if x.ndim == 1:
            index, torch_index = repeated, _from_numpy(repeated)
        else:
            cols = rng.integers(0, x.shape[1], 4)
            cols[1] = cols[0]
            index = (slice(None), cols)
            torch_index = (slice(None), _from_numpy(cols))
    return Case(f"{x.shape}[{kind}]", (x,), lambda t: t[index], lambda t: t[torch_index])


def _gather_along_dim(draw: Any, rng: np.random.Generator, kind: str) -> Case:
    """torch.gather along a dim (repeated indices, an index smaller than x), and sort and
    topk, whose values are a gather along the sorted dim (distinct values: no ties)."""
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    axis = dim % len(shape)
    if kind == "along_dim":
        x = values(rng, shape, "real")
        small = tuple(draw(st.integers(1, n)) if a != axis else n + 1 for a, n in enumerate(shape))
        index = rng.integers(0, shape[axis], small)
        return Case(
            f"gather{shape} dim={dim} index{small}",
            (x,),
            lambda t: t.gather(dim, cr.tensor(index)),
            lambda t: t.gather(dim, _from_numpy(index)),
        )
    x = values(rng, shape, "distinct")
    descending = draw(st.booleans())
    if kind == "sort":
        return Case(
            f"sort{shape} dim={dim} descending={descending}",
            (x,),
            lambda t: cr.sort(t, dim, descending=descending).values,
            lambda t: _torch("sort")(t, dim, descending).values,
        )
    k = draw(st.integers(0, shape[axis]))
    return Case(
        f"topk{shape} k={k} dim={dim} largest={descending}",
        (x,),
        lambda t: t.topk(k, dim, largest=descending).values,
        lambda t: t.topk(k, dim, largest=descending).values,
    )


@st.composite
def _split(draw: Any) -> Case:
    """split by size or sections, and chunk: one of the pieces (the others unused, so
    their gradients come back as zeros)."""
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim % len(shape)]
    assume(n >= 2)
    kind = draw(st.sampled_from(["size", "sections", "chunk"]))
    size = draw(st.integers(1, n - 1))
    sections = [size, n - size]
    count = -(-n // size) if kind == "size" else 2
    pick = draw(st.integers(0, count - 1))

    def piece(t: Any) -> Any:
        if kind == "size":
            return t.split(size, dim)[pick]
        if kind == "sections":
            return t.split(sections, dim)[pick]
        return t.chunk(2, dim)[pick]

    return Case(
        f"{kind}{shape} dim={dim} size={size} piece {pick}",
        (values(rng, shape, "real"),),
        piece,
        piece,
    )


@st.composite
def _cumsum(draw: Any) -> Case:
    x = values(rng_from(draw), draw(shapes()), "real")
    positions = max(x.ndim, 1)  # a 0-d tensor takes dim 0 or -1, as in torch
    dim = draw(st.integers(-positions, positions - 1))
    return Case(
        f"cumsum{x.shape} dim={dim}",
        (x,),
        lambda t: t.cumsum(dim),
        lambda t: _torch("cumsum")(t, dim),
    )


@st.composite
def _einsum(draw: Any) -> Case:
    """A random equation over 1-3 operands: shared, private and repeated letters (a
    diagonal), size-1 axes that broadcast, an optional '...' over broadcast batch dims,
    and an implicit, explicit or ellipsis-summing output."""
    rng = rng_from(draw)
    letters = "ijkl"
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    n = draw(st.integers(1, 3))
    terms = [
        "".join(draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3))) for _ in range(n)
    ]
    ellipsis = draw(st.booleans())
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=2, max_side=2))[0]
    shapes_, written = [], []
    for term, lead in zip(terms, batch, strict=True):
        shape = [sizes[c] for c in term]
        for a, c in enumerate(term):  # a size-1 axis broadcasts (not on a diagonal)
            if term.count(c) == 1 and draw(st.integers(0, 4)) == 0:
                shape[a] = 1
        shapes_.append((*lead, *shape) if ellipsis else tuple(shape))
        written.append("..." + term if ellipsis else term)
    used = sorted(set("".join(terms)))
    mode = draw(st.sampled_from(["implicit", "explicit", "explicit"]))
    if mode == "implicit":
        equation = ",".join(written)
    else:
        out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
        keep_batch = ellipsis and draw(st.booleans())
        equation = ",".join(written) + "->" + ("..." if keep_batch else "") + out
    inputs = tuple(values(rng, shape, "real") for shape in shapes_)
    return Case(
        f"einsum {equation!r} {[x.shape for x in inputs]}",
        inputs,
        lambda *ts: cr.einsum(equation, *ts),
        lambda *ts: _torch("einsum")(equation, *ts),
    )


@st.composite
def _cat(draw: Any) -> Case:
    rng = rng_from(draw)
    base = draw(shapes(min_dims=1))
    dim = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    axis = dim % len(base)
    inputs = tuple(values(rng, (*base[:axis], s, *base[axis + 1 :]), "real") for s in sizes)
    return Case(
        f"cat {[x.shape for x in inputs]} dim={dim}",
        inputs,
        lambda *ts: cr.cat(list(ts), dim),
        lambda *ts: _torch("cat")(list(ts), dim),
    )


@st.composite
def _stack(draw: Any) -> Case:
    rng = rng_from(draw)
    shape = draw(shapes())
    dim = draw(st.integers(-len(shape) - 1, len(shape)))
    inputs = tuple(values(rng, shape, "real") for _ in range(draw(st.integers(1, 3))))
    return Case(
        f"stack {len(inputs)}x{shape} dim={dim}",
        inputs,
        lambda *ts: cr.stack(list(ts), dim),
        lambda *ts: _torch("stack")(list(ts), dim),
    )


@st.composite
def _scatter_add(draw: Any) -> Case:
    """The VJP of indexing as a primitive: repeated rows accumulate; a basic index writes."""
    rng = rng_from(draw)
    shape = draw(shapes(min_dims=1))
    if draw(st.booleans()):
        rows = np.concatenate([rng.integers(0, shape[0], 3), [0, 0]])
        g = values(rng, (len(rows), *shape[1:]), "real")
        return Case(
            f"scatter_add rows {rows.tolist()} into {shape}",
            (g,),
            lambda t: ScatterAdd.apply(t, shape, rows),
            lambda t: t.new_zeros(shape).index_add(0, _from_numpy(rows), t),
        )
    g = values(rng, (1, *shape[1:]), "real")
    return Case(
        f"scatter_add [0:1] into {shape}",
        (g,),
        lambda t: ScatterAdd.apply(t, shape, (slice(0, 1),)),
        lambda t: _torch("cat")([t, t.new_zeros((shape[0] - 1, *shape[1:]))]),
    )


def _arith(op: Any, scalar_left: Any, scalar_right: Any) -> dict[str, tuple[Any, Any, int]]:
    return {
        "tensor-tensor": _both(op),
        "number-tensor": _both(scalar_left, 1),
        "tensor-number": _both(scalar_right, 1),
    }


SPECS: dict[str, Any] = {
    "Add": _binary(
        _arith(lambda a, b: a + b, lambda a: 2.5 + a, lambda a: a.add(0.5)), ("real", "real")
    ),
    "Sub": _binary(
        _arith(lambda a, b: a - b, lambda a: 1.5 - a, lambda a: a - 0.25), ("real", "real")
    ),
    "Mul": _binary(
        _arith(lambda a, b: a * b, lambda a: 3.0 * a, lambda a: a * -2.0), ("real", "real")
    ),
    "Div": _binary(
        _arith(lambda a, b: a / b, lambda b: 2.0 / b, lambda a: a / 4.0), ("positive", "positive")
    ),
    "Neg": _unary("neg", lambda t: -t, lambda t: -t),
    "Pow": _binary(
        {
            "tensor**tensor": _both(lambda a, b: a**b),
            "tensor**2": _both(lambda a: a**2, 1),
            "tensor**0.5": _both(lambda a: a**0.5, 1),
            "2**tensor": _both(lambda a: 2.0**a, 1),
            "pow()": (lambda a, b: cr.pow(a, b), _torch("pow"), 2),
        },
        ("positive", "real"),
    ),
    "Exp": _unary("exp", cr.exp, _torch("exp")),
    "Sin": _unary("sin", cr.sin, _torch("sin")),
    "Cos": _unary("cos", lambda t: t.cos(), _torch("cos")),
    "CumSum": _cumsum(),
    "Split": _split(),
    "Einsum": _einsum(),
    "Log": _unary("log", cr.log, _torch("log"), "positive"),
    "Sqrt": _unary("sqrt", cr.sqrt, _torch("sqrt"), "positive"),
    "Abs": _unary("abs", cr.abs, _torch("abs"), "nonzero"),
    "Maximum": _binary(
        {
            "maximum": (cr.maximum, _torch("maximum"), 2),
            "max(t, t)": (lambda a, b: a.max(b), lambda a, b: a.max(b), 2),
            "minimum": (cr.minimum, _torch("minimum"), 2),
            "min(t, t)": (lambda a, b: a.min(b), lambda a, b: a.min(b), 2),
        },
        ("real", "real"),
    ),
    "Where": st.one_of(_where(), rearrange.triangle_and_norm()),
    "Clamp": _clamp(),
    "ReLU": _unary("relu", cr.relu, _torch("relu"), "nonzero"),
    "Sigmoid": _unary("sigmoid", cr.sigmoid, _torch("sigmoid")),
    "Tanh": _unary("tanh", cr.tanh, _torch("tanh")),
    "Softplus": _unary("softplus", cr.softplus, _torch("nn.functional.softplus")),
    "Cast": st.builds(
        lambda c: Case(c.label, c.inputs, c.cr_fn, c.torch_fn, eps=1e-2),
        _unary("cast", _cast, _cast),
    ),
    "Clone": st.one_of(_unary("clone", lambda t: t.clone(), lambda t: t.clone()), rearrange.flip()),
    # On the CPU a move to the CPU is the identity; the primitive is called directly (the
    # public x.to("cpu") returns x itself), which checks its two backwards.
    "ToDevice": _unary("to_device", lambda t: ToDevice.apply(t, CPU), lambda t: t.to("cpu")),
    "MatMul": _matmul(),
    "Reshape": st.one_of(_reshape(), rearrange.repeat_and_tile()),
    "Permute": _permute(),
    "Expand": _expand(),
    "Slice": st.one_of(_slice(), rearrange.narrow()),
    "Gather": st.one_of(_gather(), rearrange.index_select()),
    "Cat": _cat(),
    "Stack": _stack(),
    "Sum": st.one_of(_reduction("sum", "real"), rearrange.norm(1.0)),
    "Mean": _reduction("mean", "real"),
    "Amax": st.one_of(
        _reduction("amax", "distinct"),
        _reduction("amin", "distinct"),
        rearrange.norm(math.inf),
        rearrange.norm(-math.inf),
    ),
    "Prod": rearrange.prod(),
    "Roll": rearrange.roll(),
    "ScatterAdd": _scatter_add(),
    "MaxDim": _max_dim(),
    "LogSumExp": _reduction("logsumexp", "real"),
    "Softmax": _along_dim("softmax"),
    "LogSoftmax": _along_dim("log_softmax"),
}


def graph_ops(out: Any) -> set[str]:
    """The names of the Functions in the graph behind chainrule tensor ``out``."""
    seen: set[int] = set()
    names: set[str] = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or not hasattr(node, "next_functions"):
            continue
        seen.add(id(node))
        names.add(type(node).__name__)
        stack.extend(nxt for nxt, _ in node.next_functions)
    return names
