"""A fuzz graph: leaves (NumPy arrays, maybe non-contiguous views) and op nodes, in
topological order, and the builder that grows one while keeping every op in its domain.

The builder evaluates each candidate node at once in torch, in the graph's real dtypes
(which also proves torch accepts it) and in float64 (the "golden" values the domain
checks look at), and drops a candidate whose values leave the safe range.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .ops import RENDER, literal

MAX_NUMEL = 64  # every value stays small: a graph replays in milliseconds
MAX_MAGNITUDE = 1e3  # values past this are dropped: they make tolerances meaningless
MARGIN = 0.05  # how far values keep from a kink (relu at 0, a clamp bound, a near-tie)

SATURATING = {"tanh", "sigmoid"}
# Ops with an open defect to steer clear of (see test_regressions.py); empty since the
# 0-d promotion fix ({"add", "sub", "mul", "div", "pow", "maximum", "where"} until then).
KNOWN_ZERO_DIM_PROMOTION: set[str] = set()


@dataclass
class Leaf:
    """An input: ``view`` applied to ``base`` (``"{x}"`` for the array itself, ``"{x}.T"``,
    ``"{x}[::2]"``, ``"np.broadcast_to({x}, (3, 4))"``…)."""

    base: np.ndarray
    view: str = "{x}"
    requires_grad: bool = True

    def array(self) -> np.ndarray:
        return eval(self.view.format(x="base"), {"np": np, "base": self.base})

    def source(self, name: str) -> str:
        return f"{name} = " + self.view.format(x=literal(self.base))


@dataclass
class Node:
    """An op: ``kind`` (a key of ``ops.RENDER``) applied to values ``args``."""

    kind: str
    args: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lib: str, names: list[str]) -> str:
        return RENDER[self.kind](lib, [names[a] for a in self.args], self.params)


@dataclass
class Graph:
    """Values ``steps[i]`` in topological order; the loss projects ``outputs`` on random
    weights (seeded by ``seed``); ``second_order`` also differentiates the gradient."""

    steps: list[Leaf | Node]
    outputs: list[int]
    seed: int
    second_order: bool = False

    @property
    def nodes(self) -> list[Node]:
        return [s for s in self.steps if isinstance(s, Node)]

    def has_float32(self) -> bool:
        """Whether a float32 leaf or a cast to float32 takes part."""
        return any(
            (isinstance(s, Leaf) and s.base.dtype == np.float32)
            or (isinstance(s, Node) and s.kind == "cast" and s.params["to"] == "float32")
            for s in self.steps
        )

    def source(self, lib: str) -> str:
        """The graph as a function of its leaves returning every value."""
        names = [f"x{i}" if isinstance(s, Leaf) else f"v{i}" for i, s in enumerate(self.steps)]
        leaves = [names[i] for i, s in enumerate(self.steps) if isinstance(s, Leaf)]
        lines = [f"def graph_{'cr' if lib == 'cr' else 'torch'}({', '.join(leaves)}):"]
        for i, step in enumerate(self.steps):
            if isinstance(step, Node):
                lines.append(f"    {names[i]} = {step.render(lib, names)}")
        lines.append(f"    return [{', '.join(names)}]")
        return "\n".join(lines)


@dataclass
class Value:
    """What the builder knows about a value: its torch result in the graph's dtypes, its
    float64 golden result, whether it needs grad and whether it is "exact" (made from the
    leaves by ops that only move or select values, so exact ties are ties in every library)."""

    typed: torch.Tensor
    golden: np.ndarray
    needs_grad: bool
    exact: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.typed.shape)

    @property
    def dtype(self) -> str:
        return str(self.typed.dtype).removeprefix("torch.")


class Builder:
    """Grows a graph one node at a time; ``draw.py`` holds the op-specific choices."""

    def __init__(
        self, rng: np.random.Generator, dtypes: tuple[str, ...], avoid_known: bool = True
    ) -> None:
        self.rng = rng
        self.dtypes = dtypes  # the leaf dtypes of this graph: float32, float64 or both
        self.steps: list[Leaf | Node] = []
        self.values: list[Value] = []
        self.used: set[int] = set()
        self.refused: list[str] = []  # candidates torch rejected (the generator's business)
        self.avoid_known = avoid_known

    # -- leaves ---------------------------------------------------------------------------
    def leaf(self, shape: tuple[int, ...], domain: str = "real", dtype: str | None = None) -> int:
        """A new input of ``shape``, often stored as a non-contiguous view."""
        dtype = dtype or str(self.rng.choice(self.dtypes))
        layout = str(
            self.rng.choice(["plain"] * 5 + ["transposed", "strided", "reversed", "bcast"])
        )
        if len(shape) < 2 and layout == "transposed":
            layout = "plain"
        if not shape and layout != "plain":
            layout = "plain"
        if layout == "transposed":
            order = tuple(int(a) for a in self.rng.permutation(len(shape)))
            inverse = tuple(int(a) for a in np.argsort(order))
            base = self._draw(tuple(shape[a] for a in order), domain, dtype)
            view = f"{{x}}.transpose({inverse!r})"
        elif layout == "strided":
            base = self._draw((shape[0] * 2, *shape[1:]), domain, dtype)
            view = "{x}[::2]"
        elif layout == "reversed":
            base = self._draw(shape, domain, dtype)
            view = "{x}[..., ::-1]"
        elif layout == "bcast" and shape[0] > 1:
            base = self._draw((1, *shape[1:]), domain, dtype)
            view = f"np.broadcast_to({{x}}, {tuple(shape)!r})"
        else:
            base, view = self._draw(shape, domain, dtype), "{x}"
        leaf = Leaf(base, view, requires_grad=bool(self.rng.random() < 0.9))
        array = leaf.array()
        self.steps.append(leaf)
        self.values.append(
            Value(
                torch.tensor(np.array(array, order="C")),
                array.astype(np.float64),
                leaf.requires_grad,
                exact=True,
            )
        )
        return len(self.steps) - 1

    def _draw(self, shape: tuple[int, ...], domain: str, dtype: str) -> np.ndarray:
        rng = self.rng
        if domain == "positive":
            a = rng.uniform(0.5, 2.0, shape)
        elif domain == "ties":  # exact small values: relu, abs and max meet their tie rules
            a = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], shape)
        elif domain in ("zeros", "signed"):  # moderate magnitudes, either sign
            a = np.array(rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape))
            if domain == "zeros":  # and many exact zeros: prod's delicate case
                a[np.asarray(rng.random(shape) < rng.choice([0.2, 0.4]))] = 0.0
        else:
            a = rng.standard_normal(shape)
        return np.asarray(a, dtype=dtype)

    # -- nodes ----------------------------------------------------------------------------
    def add(
        self, kind: str, args: tuple[int, ...], exact: bool = False, **params: Any
    ) -> int | None:
        """Append node ``kind(args, params)`` unless its values leave the safe range."""
        node = Node(kind, args, params)
        if self.avoid_known and self._known_issue(kind, args):
            return None
        if kind in SATURATING and self._saturates(args[0]):
            return None
        names = [f"v{i}" for i in range(len(self.values))]
        typed_ns: dict[str, Any] = {"torch": torch, "np": np}
        golden_ns: dict[str, Any] = {"torch": torch, "np": np}
        for a in args:
            typed_ns[names[a]] = self.values[a].typed
            golden_ns[names[a]] = torch.from_numpy(self.values[a].golden)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # var over one element: NaN, dropped below
                typed = eval(node.render("torch", names), typed_ns)
                golden = eval(node.render("golden", names), golden_ns)
        except (RuntimeError, IndexError, ValueError) as exc:
            # torch refuses it (e.g. matmul of float32 with float64): nothing to compare.
            self.refused.append(f"{node.render('torch', names)}: {exc}")
            return None
        g = golden.numpy()
        if typed.dtype not in (torch.float32, torch.float64) or typed.numel() > MAX_NUMEL:
            return None
        if not np.isfinite(g).all() or (g.size and np.abs(g).max() > MAX_MAGNITUDE):
            return None
        needs_grad = any(self.values[a].needs_grad for a in args)
        exact = exact and all(self.values[a].exact for a in args)
        self.steps.append(node)
        self.values.append(Value(typed, g, needs_grad, exact))
        self.used.update(args)
        return len(self.steps) - 1

    def _saturates(self, i: int) -> bool:
        """A float32 input past ±3 to tanh or sigmoid: their VJPs 1 − y² and y(1 − y) cancel
        there, and float32 rounding grows by 1/(1 − y²) (2,000× at x = 4.5) in any
        library: a comparison of rounding, not of formulas."""
        v = self.values[i]
        return v.dtype == "float32" and bool(np.abs(v.golden).max() > 3.0)

    def _known_issue(self, kind: str, args: tuple[int, ...]) -> bool:
        """A pattern of an open bug (tests/fuzz/test_regressions.py), avoided so that the
        campaign finds new ones: a 0-d tensor of one float dtype with a tensor of ≥ 1 dim
        of another (torch keeps the dimensioned tensor's dtype, chainrule promotes)."""
        if kind not in KNOWN_ZERO_DIM_PROMOTION:
            return False
        zero_d = {self.values[a].dtype for a in args if not self.values[a].shape}
        dimensioned = {self.values[a].dtype for a in args if self.values[a].shape}
        return bool(zero_d and dimensioned and zero_d != dimensioned)

    # -- choosing inputs ------------------------------------------------------------------
    def pick(self, ok: Any = None) -> int | None:
        """A value satisfying ``ok(value)``, recent ones more likely, any can be reused."""
        ids = [i for i, v in enumerate(self.values) if ok is None or ok(v)]
        if not ids:
            return None
        weights = np.array([1.0 + i for i in ids])
        return int(self.rng.choice(ids, p=weights / weights.sum()))

    def gap_ok(self, gap: np.ndarray, exact: bool) -> bool:
        """Every distance to a kink is ≥ MARGIN, or exactly 0 on exact values (a tie that
        every library sees, where the tie rule itself is under test)."""
        if exact:
            return bool(((gap == 0) | (gap >= MARGIN)).all())
        return bool((gap >= MARGIN).all())

    def positive(self, i: int) -> int | None:
        """Value ``i`` if it is ≥ 0.3 everywhere, else a new node of it that is."""
        if self.values[i].golden.size and self.values[i].golden.min() >= 0.3:
            return i
        recipe = str(self.rng.choice(["softplus", "square", "sigmoid", "exp_tanh"]))
        if recipe == "softplus" and self.values[i].golden.max() > 15:
            recipe = "sigmoid"  # torch's softplus is linear past 20 (see draw_unary)
        if recipe == "softplus":
            j = self.add("softplus", (i,))
        elif recipe == "square":
            j = self.add("mul", (i, i), form="operator")  # fan-out: i used twice
        elif recipe == "sigmoid":
            j = self.add("sigmoid", (i,), form="method")
        else:
            t = self.add("tanh", (i,), form="function")
            return None if t is None else self.add("exp", (t,), form="method")
        return None if j is None else self.add("add", (j,), form="number-right", number=0.3)

    def bounded(self, i: int, limit: float) -> int | None:
        """Value ``i`` if |i| ≤ limit everywhere, else tanh(i)."""
        g = self.values[i].golden
        if not g.size or np.abs(g).max() <= limit:
            return i
        return self.add("tanh", (i,), form="method")

    def broadcast_partner(self, shape: tuple[int, ...]) -> int:
        """A value whose shape broadcasts with ``shape`` (often a new, smaller leaf)."""

        def fits(v: Value) -> bool:
            try:
                out = np.broadcast_shapes(v.shape, shape)
            except ValueError:
                return False
            return int(np.prod(out)) <= MAX_NUMEL

        found = self.pick(fits) if self.rng.random() < 0.5 else None
        if found is not None:
            return found
        drop = int(self.rng.integers(0, len(shape) + 1))
        partner = [1 if self.rng.random() < 0.4 else s for s in shape[drop:]]
        if not drop and len(shape) < 4 and self.rng.random() < 0.2:
            partner = [2, *partner]  # the result grows a leading dim
        return self.leaf(tuple(partner))

    def random_shape(self, min_dims: int = 0) -> tuple[int, ...]:
        ndim = int(self.rng.integers(min_dims, 4))
        return tuple(int(s) for s in self.rng.integers(1, 5, ndim))
