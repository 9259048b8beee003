"""``draw_graph``: an ``nn.Graph`` drawn from its declared structure (no forward pass).

Each declared node is one box; each graph input is a leaf whose gradient the graph
computes. A reference read by several nodes is drawn as the lecture's Duplicate (forward)
and Σ (gradient). Given example inputs, the graph is run once instead and drawn from
the trace with each node collapsed to a box, which adds the shapes and Jacobian sizes.
"""

from __future__ import annotations

import re
from typing import Any

from chainrule.nn.graph import Graph
from chainrule.nn.module import Module
from chainrule.viz.collapse import add_clusters
from chainrule.viz.dot import to_dot
from chainrule.viz.drawing import Drawing, draw
from chainrule.viz.ir import FANOUT, LEAF, MODULE, SEED, Box, Picture, Wire, shorten
from chainrule.viz.record import record


def _gradient_rule(module: Module) -> str:
    """The sentence of a module's docstring that says what its gradient is."""
    doc = " ".join((type(module).__doc__ or "").split())
    for sentence in re.split(r"(?<=\.)\s+", doc):
        if "radient" in sentence:
            return sentence.strip()
    return ""


def draw_graph(graph: Graph, *example_inputs: Any, name: str = "model", title: str = "") -> Drawing:
    """Draw an ``nn.Graph``: forward wiring and its mirrored gradient wiring.

    Args:
        graph: the graph to draw.
        example_inputs: optional inputs; when given, the graph runs once on them and the
            drawing shows each node's output shape and Jacobian sizes.
        name: the graph's name in paths (``model.a.0``).
        title: a caption above the drawing.

    Returns:
        A ``Drawing`` (``.source``, ``.render(path)``).

    Example:
        >>> from chainrule import nn, viz
        >>> g = nn.Graph(inputs=["x"], outputs=["y"])
        >>> _ = g.add("y", nn.ReLU(), "x")
        >>> "y · ReLU" in viz.draw_graph(g).source
        True
    """
    if not isinstance(graph, Graph):
        raise TypeError(
            f"viz.draw_graph expects an nn.Graph, got {type(graph).__name__}; draw any other "
            f"model from a forward pass with viz.draw(output, trace=viz.record(model))"
        )
    if example_inputs:
        with record(graph, name=name) as trace:
            output = graph(*example_inputs)
        return draw(output, trace=trace, depth=1, title=title)

    graph.order  # noqa: B018 (validates the wiring: a cycle or dangling name is an error)
    boxes = [Box(f"i{i}", LEAF, x, has_grad=True) for i, x in enumerate(graph.input_names)]
    for b in boxes:
        b.grad_title, b.vjp = f"∂L/∂{b.title}", "gradient of the input"
    key_of = {b.title: b.key for b in boxes}
    for i, (node, module) in enumerate(graph.nodes.items()):
        box = Box(f"g{i}", MODULE, f"{node} · {type(module).__name__}", has_grad=True)
        children = [type(c).__name__ for c in module.children()]
        box.extra = [shorten(" → ".join(children) if children else module.short_repr(), 44)]
        box.grad_title = f"{node} backward"
        box.vjp = _gradient_rule(module)
        boxes.append(box)
        key_of[node] = box.key

    reads: dict[tuple[str, int | None], list[tuple[str, int]]] = {}
    for edge in graph.edges:
        reads.setdefault((edge.source, edge.output), []).append((edge.target, edge.position))
    wires: list[Wire] = []
    for (source, output), readers in reads.items():
        label = "" if output is None else f"[{output}]"
        src = key_of[source]
        if len(readers) == 1:
            target, position = readers[0]
            wires.append(Wire(src, key_of[target], position, label, output or 0))
            continue
        fan = Box(f"d{len(boxes)}", FANOUT, f"Duplicate ×{len(readers)}", has_grad=True)
        fan.grad_title, fan.vjp = "Σ", "g = sum of the gradients of its readers"
        boxes.insert(boxes.index(next(b for b in boxes if b.key == src)) + 1, fan)
        wires.append(Wire(src, fan.key, 0, label, output or 0))
        wires.extend(Wire(fan.key, key_of[t], p) for t, p in readers)
    seed = Box("seed", SEED, "∂L/∂output = g", grad_title="∂L/∂output = g", has_grad=True)
    boxes.append(seed)
    for ref in graph.output_refs:
        source, _, index = ref.partition(".")
        wires.append(Wire(key_of[source], "seed", 0, f"[{index}]" if index else ""))
    picture = add_clusters(Picture(boxes, wires), None)
    return Drawing(to_dot(picture, title), picture)
