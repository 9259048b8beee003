"""Group a ``Picture`` by module: cluster captions, and ``depth=`` collapse.

With ``depth=k``, every module at nesting level k (``model`` is level 0, ``model.3``
level 1) becomes one box: its ops, its parameters and the fan-outs inside it disappear
into it, and the box's gradient twin shows the module's Jacobians with respect to what
enters it (``∂y/∂x`` and ``∂y/∂weight``). A 20-layer network drawn with ``depth=1`` is 20
boxes per half instead of hundreds of ops.
"""

from __future__ import annotations

from chainrule.viz.ir import (
    FANOUT,
    INPUT,
    LEAF,
    MODULE,
    OP,
    Box,
    Picture,
    Wire,
    jacobian_line,
    module_level,
    shorten,
)
from chainrule.viz.record import record


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def add_clusters(picture: Picture, trace: record | None) -> Picture:
    """Caption every module that holds a box (and its ancestors) for clustering."""
    paths: set[str] = set()
    for box in picture.boxes:
        if box.module is not None:
            paths.update(_ancestors(box.module))
    for path in sorted(paths):
        caption = path
        if trace is not None and path in trace.modules:
            caption = f"{path} · {shorten(trace.modules[path].short_repr(), 60)}"
        picture.clusters[path] = caption
    return picture


def _group_of(module: str | None, depth: int) -> str | None:
    if module is None or module_level(module) < depth:
        return None
    return ".".join(module.split(".")[: depth + 1])


def collapse(picture: Picture, trace: record | None, depth: int) -> Picture:
    """Replace each module at level ``depth`` by one box (see the module docstring)."""
    if depth < 0:
        raise ValueError(f"viz.draw: depth must be >= 0 (0 collapses the whole model), got {depth}")
    group = {b.key: _group_of(b.module, depth) for b in picture.boxes}
    members: dict[str, list[Box]] = {}
    for b in picture.boxes:
        g = group[b.key]
        if g is not None:
            members.setdefault(g, []).append(b)
    if not members:
        return picture
    group_key = {g: f"m{i}" for i, g in enumerate(members)}

    def where(key: str) -> str:
        g = group[key]
        return key if g is None else group_key[g]

    wires: list[Wire] = []
    seen: set[tuple[str, str, int, int]] = set()
    for w in picture.wires:
        src, dst = where(w.src), where(w.dst)
        if src == dst:
            continue
        ident = (src, dst, w.index if src == w.src else 0, w.position if dst == w.dst else 0)
        if ident in seen:
            continue
        seen.add(ident)
        wires.append(Wire(src, dst, ident[3], w.label if src == w.src else "", ident[2]))

    boxes_by_key = {b.key: b for b in picture.boxes}
    boxes: list[Box] = []
    placed: set[str] = set()
    for b in picture.boxes:
        g = group[b.key]
        if g is None:
            boxes.append(b)
        elif g not in placed:
            placed.add(g)
            boxes.append(_module_box(g, group_key[g], members[g], picture, boxes_by_key, trace))
    # The box's outputs: what leaves the group, in wire order.
    for g, key in group_key.items():
        box = next(b for b in boxes if b.key == key)
        inside = {m.key for m in members[g]}
        outs = [w for w in picture.wires if w.src in inside and w.dst not in inside]
        for i, w in enumerate(_unique_outputs(outs)):
            box.outputs[i] = boxes_by_key[w.src].outputs.get(w.index, ((), ""))
        _module_jacobians(box, g, members[g], picture, boxes_by_key)
    return Picture(boxes, wires)


def _unique_outputs(wires: list[Wire]) -> list[Wire]:
    seen: set[tuple[str, int]] = set()
    out = []
    for w in wires:
        if (w.src, w.index) not in seen:
            seen.add((w.src, w.index))
            out.append(w)
    return out


def _module_box(
    path: str,
    key: str,
    members: list[Box],
    picture: Picture,
    boxes_by_key: dict[str, Box],
    trace: record | None,
) -> Box:
    kind = trace.module_type(path) if trace is not None and path in trace.modules else "module"
    ops = [m for m in members if m.kind == OP]
    params = [m for m in members if m.kind in (LEAF, INPUT)]
    box = Box(key, MODULE, f"{path} · {kind}", module=path.rpartition(".")[0] or None)
    box.grad_title = f"{path} backward"
    box.has_grad = any(m.has_grad for m in members)
    box.extra = [f"{p.title.rpartition('.')[2]} {p.outputs[0][0]}" for p in params]
    if len(ops) == 1:
        box.vjp = ops[0].vjp
    elif ops:
        box.vjp = "chain of " + " → ".join(o.title for o in ops)
    return box


def _module_jacobians(
    box: Box, path: str, members: list[Box], picture: Picture, boxes_by_key: dict[str, Box]
) -> None:
    """``∂y/∂x`` for each value entering the group, ``∂y/∂weight`` for each parameter."""
    inside = {m.key for m in members}
    out_shape = box.outputs.get(0, ((), ""))[0]
    entering = _unique_outputs(
        [w for w in picture.wires if w.dst in inside and w.src not in inside]
    )
    lines: list[str] = []
    differentiable = [w for w in entering if boxes_by_key[w.src].has_grad]
    for i, w in enumerate(differentiable):
        name = "x" if len(differentiable) == 1 else f"x{i}"
        in_shape = boxes_by_key[w.src].outputs.get(w.index, ((), ""))[0]
        lines.append(jacobian_line("y", name, out_shape, in_shape))
    for m in members:
        if m.kind == LEAF:
            lines.append(jacobian_line("y", m.title.rpartition(".")[2], out_shape, m.outputs[0][0]))
    box.jacobians = lines
    if any(m.kind == FANOUT for m in members):
        box.extra.append("fan-out inside")
