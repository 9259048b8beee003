"""Shrinking a failing graph to a minimal one, and printing it as a runnable script.

The shrinker keeps any change after which a mismatch of the same kind remains: end the
graph at an earlier value, turn a node into a leaf holding its values (dropping all that
led to it), bypass a node by an input of the same shape and dtype, make a leaf a plain
contiguous array, drop second order. It repeats until nothing more goes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .graphs import Graph, Leaf, Node
from .replay import InvalidGraphError, Mismatch, check, run

MAX_CHECKS = 400


def _ancestors(steps: list[Leaf | Node], roots: list[int]) -> set[int]:
    keep: set[int] = set()
    todo = list(roots)
    while todo:
        i = todo.pop()
        if i in keep:
            continue
        keep.add(i)
        step = steps[i]
        if isinstance(step, Node):
            todo.extend(step.args)
    return keep


def prune(graph: Graph) -> Graph:
    """Only the steps the outputs depend on, renumbered."""
    keep = sorted(_ancestors(graph.steps, graph.outputs))
    new = {old: k for k, old in enumerate(keep)}
    steps: list[Leaf | Node] = []
    for old in keep:
        step = graph.steps[old]
        if isinstance(step, Node):
            step = Node(step.kind, tuple(new[a] for a in step.args), step.params)
        steps.append(step)
    outputs = sorted({new[o] for o in graph.outputs})
    return Graph(steps, outputs, graph.seed, graph.second_order)


def _candidates(graph: Graph) -> list[Callable[[], Graph]]:
    """Smaller or simpler variants of ``graph``, the most reducing first."""
    n = len(graph.steps)
    out: list[Callable[[], Graph]] = []
    for i in range(n):  # end the graph at value i
        if graph.outputs != [i]:
            out.append(lambda i=i: prune(Graph(graph.steps, [i], graph.seed, graph.second_order)))
    values = None
    for i in reversed(range(n)):  # value i becomes a leaf: all before it goes
        if isinstance(graph.steps[i], Node):
            if values is None:
                values = run(graph, "torch").values
            out.append(lambda i=i, v=values[i]: _cut(graph, i, v))
    for i, step in enumerate(graph.steps):
        if isinstance(step, Leaf) and step.view != "{x}":
            out.append(lambda i=i: _plain(graph, i))
        if isinstance(step, Node):
            for j in step.args:
                out.append(lambda i=i, j=j: _bypass(graph, i, j))
    if graph.second_order:
        out.append(lambda: Graph(graph.steps, graph.outputs, graph.seed, False))
    return out


def _cut(graph: Graph, i: int, value: np.ndarray) -> Graph:
    steps = list(graph.steps)
    steps[i] = Leaf(np.array(value), "{x}", requires_grad=True)
    return prune(Graph(steps, graph.outputs, graph.seed, graph.second_order))


def _plain(graph: Graph, i: int) -> Graph:
    steps = list(graph.steps)
    leaf = steps[i]
    assert isinstance(leaf, Leaf)
    steps[i] = Leaf(np.array(leaf.array()), "{x}", leaf.requires_grad)
    return Graph(steps, graph.outputs, graph.seed, graph.second_order)


def _bypass(graph: Graph, i: int, j: int) -> Graph:
    """Every use of value i reads value j instead (same shape and dtype, else unchanged)."""
    ref = run(graph, "torch")
    if ref.values[i].shape != ref.values[j].shape or ref.dtypes[i] != ref.dtypes[j]:
        return graph
    steps = [
        Node(s.kind, tuple(j if a == i else a for a in s.args), s.params)
        if isinstance(s, Node)
        else s
        for s in graph.steps
    ]
    outputs = [j if o == i else o for o in graph.outputs]
    return prune(Graph(steps, outputs, graph.seed, graph.second_order))


def _same_kind(found: list[Mismatch], target: Mismatch) -> bool:
    if target.category == "error":  # the same exception type
        return any(
            m.category == "error" and m.detail.split(":")[0] == target.detail.split(":")[0]
            for m in found
        )
    return any(m.category == target.category for m in found)


def _healthy(graph: Graph) -> bool:
    """torch computes finite values and gradients: a shrink step did not leave the domain."""
    ref = run(graph, "torch")
    arrays = ref.values + [g for g in ref.grads + ref.grads2 if g is not None]
    return ref.error is None and all(np.isfinite(a).all() for a in arrays)


def shrink(graph: Graph, target: Mismatch) -> tuple[Graph, list[Mismatch]]:
    """The smallest variant of ``graph`` still showing a mismatch like ``target``."""
    best, best_found = graph, check(graph)
    checks = 0
    progress = True
    while progress and checks < MAX_CHECKS:
        progress = False
        for make in _candidates(best):
            candidate = make()
            if candidate is best or len(candidate.steps) > len(best.steps):
                continue
            checks += 1
            try:
                found = check(candidate)
            except InvalidGraphError:
                continue
            if _same_kind(found, target) and _healthy(candidate):
                best, best_found = candidate, found
                progress = True
                break
            if checks >= MAX_CHECKS:
                break
    return best, [m for m in best_found if m.category == target.category] or best_found
