"""Replaying a graph in chainrule and in torch from the same NumPy inputs, and comparing
forward values, gradients, second-order gradients and dtypes.

The loss is a random projection of the outputs: the gradients are the VJPs
``Jᵀw`` for random ``w`` (``grad_outputs``), so every output element matters. Second order
differentiates ``⟨∇L, v⟩`` (random ``v``) again, through ``create_graph=True``.

Tolerances: an all-float64 graph must agree with torch to 1e-10 (relative to the largest
magnitude of the tensor compared). A graph holding any float32 value is judged against
"golden" values, the same graph run by torch entirely in float64: chainrule may differ
from them by 1e-6 + 1e-5·max|golden| (3e-5 for gradients), plus 8× what torch's own
float32 result differs by
(rounding that the graph amplifies, e.g. after a cancellation, is then no false alarm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import chainrule as cr

from .graphs import Graph, Leaf


@dataclass
class Run:
    """What one library computed: every value, the gradient of each leaf that requires
    grad (None: unused), and for second-order graphs the gradient of ⟨∇L, v⟩."""

    values: list[np.ndarray] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    grads: list[np.ndarray | None] = field(default_factory=list)
    grad_dtypes: list[str | None] = field(default_factory=list)
    grads2: list[np.ndarray | None] = field(default_factory=list)
    grad2_dtypes: list[str | None] = field(default_factory=list)
    error: str | None = None
    mutated: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Mismatch:
    """``category``: error, forward, dtype, grad, grad-dtype, grad2, grad2-dtype, mutated."""

    category: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.category} at {self.where}: {self.detail}"


class InvalidGraphError(Exception):
    """torch itself failed on the graph: a fault of the generator, not of chainrule."""


def weights(seed: int, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The projection weights of output ``k`` (and, from k = 1000, of the second order)."""
    return np.asarray(np.random.default_rng([seed, k]).standard_normal(shape))


def _array(lib: str, t: Any) -> np.ndarray:
    if lib == "cr":
        return np.array(t.detach().numpy())
    t = t.detach()
    if t._is_zerotensor():  # torch's lazily-zero gradients have no memory to read
        return np.zeros(tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."))
    return t.numpy().copy()


def _dtype(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def _tensor(lib: str, a: np.ndarray, requires_grad: bool = False) -> Any:
    if lib == "cr":
        # Tensor() wraps the array as it is: a non-contiguous view stays one.
        return cr.Tensor(a, requires_grad=requires_grad)
    dtype = torch.float64 if lib == "golden" else None
    # torch takes no negative strides: it gets a contiguous copy of the same values.
    return torch.tensor(np.array(a, order="C"), dtype=dtype, requires_grad=requires_grad)


def run(graph: Graph, lib: str) -> Run:
    """Run ``graph`` in ``lib`` ("cr", "torch" or "golden"); exceptions become ``error``."""
    namespace: dict[str, Any] = {"np": np, "cr": cr, "torch": torch}
    exec(graph.source(lib), namespace)
    fn = namespace["graph_cr" if lib == "cr" else "graph_torch"]
    leaves = [(i, s) for i, s in enumerate(graph.steps) if isinstance(s, Leaf)]
    arrays = [s.array() for _, s in leaves]
    before = [a.copy() for a in arrays]
    inputs = [_tensor(lib, a, s.requires_grad) for a, (_, s) in zip(arrays, leaves)]
    result = Run()
    try:
        values = fn(*inputs)
        result.values = [_array(lib, v) for v in values]
        result.dtypes = [_dtype(v) for v in values]
        _gradients(graph, lib, values, [t for t in inputs if t.requires_grad], result)
    except Exception as exc:  # any failure of chainrule is a finding
        result.error = f"{type(exc).__name__}: {exc}"
    result.mutated = [i for (i, _), a, b in zip(leaves, arrays, before) if not np.array_equal(a, b)]
    return result


def _grad(lib: str, outputs: list[Any], inputs: list[Any], **kwargs: Any) -> tuple[Any, ...]:
    grad = cr.autograd.grad if lib == "cr" else torch.autograd.grad
    return tuple(grad(outputs, inputs, allow_unused=True, **kwargs))


def _gradients(graph: Graph, lib: str, values: list[Any], xs: list[Any], result: Run) -> None:
    outs = list(enumerate(values[i] for i in graph.outputs if values[i].requires_grad))
    if not xs or not outs:
        return
    ws = [
        _tensor(lib, weights(graph.seed, k, tuple(o.shape)).astype(_dtype(o)))
        if lib != "golden"
        else torch.from_numpy(weights(graph.seed, k, tuple(o.shape)))
        for k, o in outs
    ]
    second = graph.second_order
    gs = _grad(lib, [o for _, o in outs], xs, grad_outputs=ws, create_graph=second)
    result.grads = [None if g is None else _array(lib, g) for g in gs]
    result.grad_dtypes = [None if g is None else _dtype(g) for g in gs]
    if not second:
        return
    terms = [
        (g * _tensor(lib, weights(graph.seed, 1000 + k, tuple(g.shape)).astype(_dtype(g)))).sum()
        for k, g in enumerate(gs)
        if g is not None and g.requires_grad
    ]
    if not terms:
        result.grads2 = [None] * len(xs)
        result.grad2_dtypes = [None] * len(xs)
        return
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    g2 = _grad(lib, [total], xs)
    result.grads2 = [None if g is None else _array(lib, g) for g in g2]
    result.grad2_dtypes = [None if g is None else _dtype(g) for g in g2]


def _error(
    a: np.ndarray, b: np.ndarray, golden: np.ndarray | None, rtol: float = 1e-5
) -> str | None:
    """Why ``a`` (chainrule) is not close enough to ``b`` (torch), or None."""
    if a.shape != b.shape:
        return f"shape {a.shape} vs torch {b.shape}"
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return f"non-finite values differ: {a.ravel()[:6]} vs torch {b.ravel()[:6]}"
    finite = np.isfinite(b)
    a64, b64 = a[finite].astype(np.float64), b[finite].astype(np.float64)
    if not a64.size:
        return None
    if golden is None:
        err = float(np.abs(a64 - b64).max())
        allowed = 1e-10 * (1.0 + float(np.abs(b64).max()))
    else:
        g = golden[finite].astype(np.float64)
        err = float(np.abs(a64 - g).max())
        torch_err = float(np.abs(b64 - g).max())
        allowed = 1e-6 + rtol * float(np.abs(g).max()) + 8 * torch_err
    if err <= allowed:
        return None
    return f"max error {err:.3g} > allowed {allowed:.3g}"


def compare(graph: Graph, ours: Run, ref: Run, golden: Run | None) -> list[Mismatch]:
    """Every way chainrule's run differs from torch's (``golden`` for float32 graphs)."""
    if ref.error is not None:
        raise InvalidGraphError(ref.error)
    if ours.error is not None:
        return [Mismatch("error", "chainrule", ours.error)]
    found = [
        Mismatch("mutated", f"leaf x{i}", "chainrule wrote into the input") for i in ours.mutated
    ]
    names = [f"x{i}" if isinstance(s, Leaf) else f"v{i}" for i, s in enumerate(graph.steps)]
    for i, (a, b) in enumerate(zip(ours.values, ref.values)):
        if ours.dtypes[i] != ref.dtypes[i]:
            found.append(Mismatch("dtype", names[i], f"{ours.dtypes[i]} vs torch {ref.dtypes[i]}"))
        why = _error(a, b, None if golden is None else golden.values[i])
        if why:
            found.append(Mismatch("forward", names[i], why))
    leaves = [
        names[i] for i, s in enumerate(graph.steps) if isinstance(s, Leaf) and s.requires_grad
    ]
    found += _compare_grads(
        "grad",
        leaves,
        ours.grads,
        ours.grad_dtypes,
        ref.grads,
        ref.grad_dtypes,
        None if golden is None else golden.grads,
        strict_none=True,
    )
    found += _compare_grads(
        "grad2",
        leaves,
        ours.grads2,
        ours.grad2_dtypes,
        ref.grads2,
        ref.grad2_dtypes,
        None,
        strict_none=False,
    )
    return found


def _compare_grads(
    category: str,
    leaves: list[str],
    ours: list[np.ndarray | None],
    ours_dtypes: list[str | None],
    ref: list[np.ndarray | None],
    ref_dtypes: list[str | None],
    golden: list[np.ndarray | None] | None,
    strict_none: bool,
) -> list[Mismatch]:
    found: list[Mismatch] = []
    if len(ours) != len(ref):
        return [Mismatch(category, "all leaves", f"{len(ours)} gradients vs torch {len(ref)}")]
    for k, (a, b) in enumerate(zip(ours, ref)):
        where = f"d/d{leaves[k]}"
        if a is None or b is None:
            if a is None and b is None:
                continue
            if strict_none:
                found.append(
                    Mismatch(
                        category,
                        where,
                        f"{'None' if a is None else 'a gradient'} "
                        f"vs torch {'None' if b is None else 'a gradient'}",
                    )
                )
                continue
            # Second order: torch says None where the gradient does not depend on x.
            shape = (b if a is None else a).shape
            a = np.zeros(shape) if a is None else a
            b = np.zeros(shape) if b is None else b
        elif ours_dtypes[k] != ref_dtypes[k]:
            found.append(
                Mismatch(f"{category}-dtype", where, f"{ours_dtypes[k]} vs torch {ref_dtypes[k]}")
            )
        g = None if golden is None else golden[k]
        # A float32 gradient runs through about twice the ops of the forward, and rounding
        # in 1 − y² (tanh) or y(1 − y) (sigmoid) near saturation is amplified: 3e-5.
        why = _error(a, b, g, rtol=3e-5)
        if why:
            found.append(Mismatch(category, where, why))
    return found


def check(graph: Graph) -> list[Mismatch]:
    """Replay ``graph`` in chainrule, torch (and golden float64 torch when it holds float32)."""
    ours = run(graph, "cr")
    ref = run(graph, "torch")
    golden = None
    if any(d != "float64" for d in ref.dtypes):
        golden = run(graph, "golden")
        if golden.error is not None:
            raise InvalidGraphError(golden.error)
    return compare(graph, ours, ref, golden)
