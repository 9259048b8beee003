"""``Graph``: any directed acyclic graph of modules, wired by name.

Each node is a named module with the names of its inputs, declared in any order::

    g = nn.Graph(inputs=["x"], outputs=["out"])
    g.add("out", nn.LogSoftmax(dim=1), "m")          # declared before its inputs: fine
    g.add("split", nn.Duplicate(2), "x")
    g.add("a", nn.Sequential(nn.Linear(8, 16), nn.ReLU()), "split.0")
    g.add("b", nn.Sequential(nn.Linear(8, 16), nn.Tanh()), "split.1")
    g.add("m", nn.Max(), "a", "b")
    y = g(x)

An input reference is a graph input (``"x"``), a node (``"a"``: its whole output), or
one output of a node that returns several (``"split.0"``). The nodes are sorted
topologically (Kahn's algorithm: the lecture's partial order made total, ties broken by
declaration order) before the first forward; ``forward`` runs them in that order and the
autograd engine provides the backward. A cycle, a reference to nothing and a node whose
output nobody uses are errors that name them. ``nodes``, ``edges`` and ``order`` expose
the structure for drawings.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any, NamedTuple

from chainrule.errors import GraphError
from chainrule.nn.module import Module


class Edge(NamedTuple):
    """One wire of a ``Graph``: ``source`` (a node or graph input) feeds argument
    ``position`` of node ``target``; ``output`` picks one output of a multi-output source
    (None: its whole output).
    """

    source: str
    output: int | None
    target: str
    position: int


def _parse(ref: str) -> tuple[str, int | None]:
    """``"split.0"`` → ("split", 0); ``"a"`` → ("a", None)."""
    if not isinstance(ref, str) or not ref:
        raise GraphError(f"a Graph input reference must be a non-empty string, got {ref!r}")
    base, dot, index = ref.rpartition(".")
    if not dot:
        return ref, None
    if not index.isdigit() or not base:
        raise GraphError(f"bad Graph reference {ref!r}: write 'node' or 'node.<output index>'")
    return base, int(index)


class Graph(Module):
    """A directed acyclic graph of named modules (see the module docstring for an example).

    Args:
        inputs: the names of the graph's inputs, in the order ``forward`` takes them.
        outputs: the references whose values ``forward`` returns (a tensor for one, a
            tuple for several).

    The nodes' modules are registered under their node names, so parameter names read
    ``"a.0.weight"``.
    """

    def __init__(self, inputs: Sequence[str] | str, outputs: Sequence[str] | str) -> None:
        super().__init__()
        self.input_names = [inputs] if isinstance(inputs, str) else list(inputs)
        self.output_refs = [outputs] if isinstance(outputs, str) else list(outputs)
        if len(set(self.input_names)) != len(self.input_names):
            raise GraphError(f"Graph inputs must have distinct names, got {self.input_names}")
        for name in self.input_names:
            if "." in name or not name:
                raise GraphError(f"Graph input name {name!r} must be non-empty, without '.'")
        self._wiring: dict[str, list[tuple[str, int | None]]] = {}
        self._order: list[str] | None = None

    # ------------------------------------------------------------------------- building
    def add(self, name: str, module: Module, *inputs: str) -> Graph:
        """Add node ``name`` computing ``module(*inputs)``; returns the graph (chainable).

        Args:
            name: the node's name (no '.'); also its parameters' prefix.
            module: the module to run.
            inputs: references to graph inputs or nodes, in ``module``'s argument order.
        """
        if not isinstance(name, str) or not name or "." in name:
            raise GraphError(f"Graph node name {name!r} must be a non-empty string without '.'")
        if name in self._wiring:
            raise GraphError(f"Graph already has a node named {name!r}")
        if name in self.input_names:
            raise GraphError(f"Graph node {name!r} has the name of a graph input")
        if not isinstance(module, Module):
            raise TypeError(f"Graph node {name!r} must be a Module, got {type(module).__name__}")
        if not inputs:
            raise GraphError(f"Graph node {name!r} needs at least one input")
        self._wiring[name] = [_parse(ref) for ref in inputs]
        self.add_module(name, module)
        self._order = None
        return self

    # ------------------------------------------------------------------------ structure
    @property
    def nodes(self) -> dict[str, Module]:
        """Node name → module, in declaration order."""
        return {name: self._modules[name] for name in self._wiring}

    @property
    def edges(self) -> list[Edge]:
        """Every wire, graph inputs included, in declaration order."""
        return [
            Edge(source, output, target, position)
            for target, refs in self._wiring.items()
            for position, (source, output) in enumerate(refs)
        ]

    @property
    def order(self) -> list[str]:
        """The node names in the order ``forward`` runs them (validates the graph)."""
        if self._order is None:
            self._order = self._sort()
        return list(self._order)

    def inputs_of(self, name: str) -> list[str]:
        """The references node ``name`` reads, as written."""
        return [src if out is None else f"{src}.{out}" for src, out in self._wiring[name]]

    def _sort(self) -> list[str]:
        declared = {name: i for i, name in enumerate(self._wiring)}
        known = set(self.input_names) | set(declared)
        for target, refs in self._wiring.items():
            for source, output in refs:
                if source not in known:
                    ref = source if output is None else f"{source}.{output}"
                    raise GraphError(
                        f"Graph node {target!r} reads {ref!r}, which is neither a node nor a "
                        f"graph input (inputs: {self.input_names}; nodes: {list(declared)})"
                    )
        for ref in self.output_refs:
            source, _ = _parse(ref)
            if source not in known:
                raise GraphError(
                    f"Graph output {ref!r} is neither a node nor a graph input "
                    f"(nodes: {list(declared)})"
                )

        consumers: dict[str, set[str]] = {name: set() for name in known}
        for target, refs in self._wiring.items():
            for source, _ in refs:
                consumers[source].add(target)
        outputs = {_parse(ref)[0] for ref in self.output_refs}
        unused = [
            n for n in [*self.input_names, *declared] if not consumers[n] and n not in outputs
        ]
        if unused:
            raise GraphError(
                f"Graph: {unused} feed no node and are not graph outputs; "
                f"wire them in or remove them"
            )

        waiting = {
            name: len({s for s, _ in refs if s in declared}) for name, refs in self._wiring.items()
        }
        ready = [(declared[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for consumer in sorted(consumers[name], key=declared.__getitem__):
                waiting[consumer] -= 1
                if waiting[consumer] == 0:
                    heapq.heappush(ready, (declared[consumer], consumer))
        if len(order) < len(declared):
            raise GraphError(
                f"Graph has a cycle: {self._find_cycle(set(declared) - set(order))}"
                f"; a Graph must be acyclic"
            )
        return order

    def _find_cycle(self, remaining: set[str]) -> str:
        """One cycle among ``remaining`` (nodes Kahn could not order), as 'a -> b -> a'."""
        # Every remaining node reads from another remaining node, so walking back along
        # inputs must revisit a node: the walk from its first visit is a cycle.
        declared = list(self._wiring)
        node = min(remaining, key=declared.index)
        path: list[str] = []
        seen: dict[str, int] = {}
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(s for s, _ in self._wiring[node] if s in remaining)
        cycle = path[seen[node] :]
        cycle.reverse()  # walked against the data flow
        first = min(range(len(cycle)), key=lambda i: declared.index(cycle[i]))
        cycle = cycle[first:] + cycle[:first]  # start at the earliest-declared node
        return " -> ".join([*cycle, cycle[0]])

    # -------------------------------------------------------------------------- forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) + len(kwargs) != len(self.input_names):
            raise GraphError(
                f"Graph takes {len(self.input_names)} inputs "
                f"{self.input_names}, got {len(args)} positional and "
                f"{sorted(kwargs)} by name"
            )
        values: dict[str, Any] = dict(zip(self.input_names, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.input_names or key in values:
                raise GraphError(
                    f"Graph got an unexpected or repeated input {key!r}; its "
                    f"inputs are {self.input_names}"
                )
            values[key] = value
        order = self._order if self._order is not None else self.order
        modules = self._modules
        for name in order:
            refs = self._wiring[name]
            values[name] = modules[name](*[self._value(values, s, o, name) for s, o in refs])
        results = [self._value(values, *_parse(ref), "output") for ref in self.output_refs]
        return results[0] if len(results) == 1 else tuple(results)

    @staticmethod
    def _value(values: dict[str, Any], source: str, output: int | None, reader: str) -> Any:
        value = values[source]
        if output is None:
            return value
        if not isinstance(value, (tuple, list)) or output >= len(value):
            count = len(value) if isinstance(value, (tuple, list)) else "a single"
            raise GraphError(
                f"Graph {reader!r} reads '{source}.{output}', but node "
                f"{source!r} returned {count} output(s)"
            )
        return value[output]

    def __repr__(self) -> str:
        lines = [f"inputs={self.input_names}, outputs={self.output_refs}"]
        for name in self._wiring:
            child = repr(self._modules[name]).replace("\n", "\n  ")
            lines.append(f"({name}) <- {', '.join(self.inputs_of(name))}: {child}")
        return "Graph(\n  " + "\n  ".join(lines) + "\n)"
