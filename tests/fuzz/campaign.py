"""A fuzz campaign: graphs from consecutive seeds, each replayed and compared, mismatches
shrunk and printed as scripts; figures at the end."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .generate import generate
from .graphs import Graph
from .ops import label
from .replay import InvalidGraphError, Mismatch, check
from .repro import snippet
from .shrink import shrink


@dataclass
class Failure:
    """A graph on which chainrule and torch disagree, shrunk, with its script."""

    seed: int
    mismatches: list[Mismatch]
    graph: Graph
    script: str


@dataclass
class Figures:
    graphs: int = 0
    ops: int = 0
    second_order: int = 0
    float32: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    invalid: list[str] = field(default_factory=list)  # torch failed: generator faults
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        lines = [
            f"graphs: {self.graphs} ({self.second_order} with second order, "
            f"{self.float32} holding float32)",
            f"ops: {self.ops} in {self.seconds:.0f} s",
            "ops per kind: "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items(), key=lambda kv: -kv[1])),
            f"invalid graphs (torch refused; a generator fault): {len(self.invalid)}",
            f"mismatches: {len(self.failures)}",
        ]
        for f in self.failures:
            lines += [f"\n--- seed {f.seed}: {f.mismatches[0]}", f.script]
        lines += [f"invalid: {msg}" for msg in self.invalid[:5]]
        return "\n".join(lines)


def fuzz(
    seed: int = 0,
    graphs: int | None = None,
    seconds: float | None = None,
    n_ops: int = 12,
    max_failures: int = 20,
    avoid_known: bool = True,
) -> Figures:
    """Replay graphs from seeds ``seed, seed + 1, …`` until ``graphs`` are done or
    ``seconds`` have passed; shrink each mismatch (at most ``max_failures``)."""
    figures = Figures()
    start = time.perf_counter()
    s = seed
    while True:
        if graphs is not None and figures.graphs >= graphs:
            break
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        graph = generate(s, n_ops, avoid_known=avoid_known)
        s += 1
        try:
            found = check(graph)
        except InvalidGraphError as exc:
            figures.invalid.append(f"seed {graph.seed}: {exc}")
            continue
        figures.graphs += 1
        figures.ops += len(graph.nodes)
        figures.second_order += graph.second_order
        figures.float32 += graph.has_float32()
        figures.kinds.update(label(n.kind, n.params) for n in graph.nodes)
        if found and len(figures.failures) < max_failures:
            small, remaining = shrink(graph, found[0])
            figures.failures.append(
                Failure(graph.seed, remaining, small, snippet(small, remaining))
            )
    figures.seconds = time.perf_counter() - start
    return figures
