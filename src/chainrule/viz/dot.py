"""Write a ``Picture`` as Graphviz DOT: the forward half and the gradient half side by side.

Layout: the graph runs bottom to top (``rankdir=BT``), as the lecture draws it: inputs
at the bottom, the loss at the top of the forward half; the gradient half starts at
∂L/∂L = 1 at the top and flows down. Each gradient wire is written in the forward
direction with ``dir=back``, so Graphviz ranks every gradient box level with its forward
twin, and a dashed, unconstrained link (the local Jacobian) joins the twins.
"""

from __future__ import annotations

import html

from chainrule.viz.ir import FANOUT, INPUT, LEAF, MODULE, SEED, Box, Picture, shorten

FONT = "DejaVu Sans"

# Forward colours: ops blue, parameters yellow, data grey; gradients warm.
_FORWARD_FILL = {
    "op": "#dbe9f6",
    LEAF: "#fff2cc",
    INPUT: "#eeeeee",
    FANOUT: "#e8dcf4",
    MODULE: "#cfe2f3",
}
_GRADIENT_FILL = {"op": "#fde2d2", LEAF: "#fff2cc", FANOUT: "#f4d6e8", MODULE: "#fbd3bd"}


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _label(title: str, lines: list[str]) -> str:
    """An HTML-like label: the title in bold, the details smaller below it."""
    parts = [f"<B>{html.escape(title)}</B>"]
    for line in lines:
        parts.append(f'<FONT POINT-SIZE="10">{html.escape(line)}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def _shape_line(box: Box) -> list[str]:
    if not box.outputs:
        return []
    if len(box.outputs) == 1:
        shape, dtype = next(iter(box.outputs.values()))
        return [f"{shape} {dtype}".strip()]
    return [f"[{i}] {shape} {dtype}".strip() for i, (shape, dtype) in sorted(box.outputs.items())]


def forward_label(box: Box) -> str:
    lines = [*box.extra, *_shape_line(box)]
    if box.kind == FANOUT and box.outputs:  # k copies of one value: show it once
        shape, dtype = box.outputs[0]
        lines = [f"{shape} {dtype}".strip()]
    if box.value_note:
        lines.append(box.value_note)
    return _label(box.title, lines)


def gradient_label(box: Box) -> str:
    lines: list[str] = []
    if box.kind == LEAF:
        lines.append(" ".join([*_shape_line(box)[:1], box.vjp]).strip())
    elif box.vjp:
        vjp_lines = _wrap(shorten(box.vjp, 110), 40)
        lines.extend(vjp_lines)
    lines.extend(box.jacobians)
    if box.grad_note:
        lines.append(box.grad_note)
    return _label(box.grad_title, lines)


def _node(name: str, label: str, fill: str, extra: str = "") -> str:
    return f'{name} [label={label}, fillcolor="{fill}"{extra}];'


def _cluster_tree(picture: Picture) -> dict[str | None, list[str]]:
    """Parent cluster → child clusters (None: the top level)."""
    children: dict[str | None, list[str]] = {}
    for path in sorted(picture.clusters):
        parent = path.rpartition(".")[0] or None
        while parent is not None and parent not in picture.clusters:
            parent = parent.rpartition(".")[0] or None
        children.setdefault(parent, []).append(path)
    return children


def _half(picture: Picture, prefix: str, gradient: bool, indent: str) -> list[str]:
    boxes = [
        b
        for b in picture.boxes
        if (b.has_grad if gradient else b.kind != SEED) and not (gradient and b.kind == INPUT)
    ]
    by_module: dict[str | None, list[Box]] = {}
    for b in boxes:
        by_module.setdefault(b.module if b.module in picture.clusters else None, []).append(b)
    tree = _cluster_tree(picture)
    ids = {path: i for i, path in enumerate(sorted(picture.clusters))}
    out: list[str] = []

    def emit(path: str | None, pad: str) -> None:
        for b in by_module.get(path, []):
            if gradient:
                fill = "#e3f1dd" if b.kind == SEED else _GRADIENT_FILL.get(b.kind, "#fde2d2")
                out.append(pad + _node(f"g_{b.key}", gradient_label(b), fill, _style(b, True)))
            else:
                fill = _FORWARD_FILL.get(b.kind, "#dbe9f6")
                out.append(pad + _node(f"f_{b.key}", forward_label(b), fill, _style(b, False)))
        for child in tree.get(path, []):
            caption = picture.clusters[child]
            if gradient:
                caption = f"{caption.split(' · ')[0]} backward"
            out.append(f"{pad}subgraph cluster_{prefix}{ids[child]} {{")
            out.append(f'{pad}  label="{_escape(caption)}"; style="rounded,dashed";')
            out.append(f'{pad}  color="#7f7f7f"; fontsize=11;')
            emit(child, pad + "  ")
            out.append(f"{pad}}}")

    emit(None, indent)
    return out


def _style(box: Box, gradient: bool) -> str:
    if box.kind == INPUT:
        return ', style="filled,dashed"'
    if box.kind == MODULE:
        return ", penwidth=1.6"
    if box.kind in (FANOUT, SEED):
        return ", shape=box, style=filled"
    return ""


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(picture: Picture, title: str = "") -> str:
    """The DOT text of both halves."""
    lines = [
        "digraph chainrule {",
        f'  graph [rankdir=BT, newrank=true, fontname="{FONT}", fontsize=13, '
        f'nodesep=0.25, ranksep=0.3, labelloc=t, label="{_escape(title)}"];',
        f'  node [shape=box, style="rounded,filled", fontname="{FONT}", fontsize=12, '
        f'margin="0.12,0.05", color="#555555"];',
        f'  edge [fontname="{FONT}", fontsize=9, color="#444444", arrowsize=0.7];',
        "  subgraph cluster_forward {",
        '    label="forward: values flow up"; style=rounded; color="#2b6cb0"; fontsize=13;',
        *_half(picture, "f", False, "    "),
        "  }",
        "  subgraph cluster_gradient {",
        '    label="gradient: ∂L/∂(·) flows down, one VJP per box"; style=rounded;',
        '    color="#c05621"; fontsize=13;',
        *_half(picture, "g", True, "    "),
        "  }",
    ]
    grad_keys = {b.key for b in picture.boxes if b.has_grad and b.kind != INPUT}
    for w in picture.wires:
        if w.dst == "seed":
            continue
        label = f' [label="{w.label}"]' if w.label else ""
        lines.append(f"  f_{w.src} -> f_{w.dst}{label};")
    for w in picture.wires:
        if w.src in grad_keys and w.dst in grad_keys:
            label = f', label="{w.label}"' if w.label else ""
            lines.append(f'  g_{w.src} -> g_{w.dst} [dir=back, color="#c05621"{label}];')
    for b in picture.boxes:
        if b.key in grad_keys and b.kind != SEED:
            lines.append(f"  {{rank=same; f_{b.key}; g_{b.key};}}")
        # The Jacobian links join op twins; drawn for leaves too, they tangle at the bottom.
        if b.key in grad_keys and b.kind not in (SEED, LEAF):
            lines.append(
                f'  f_{b.key} -> g_{b.key} [style=dotted, arrowhead=none, color="#b0b0b0", '
                f"constraint=false];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
