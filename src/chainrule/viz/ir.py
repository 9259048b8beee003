"""The structure of a drawing: boxes and wires of the forward graph, from which the
gradient graph is mirrored.

A ``Picture`` is a list of ``Box``es (an op, a leaf, an input, a fan-out, or a collapsed
module) and ``Wire``s in the forward direction. The gradient half is not stored: each box
that takes part in backpropagation (``has_grad``) has a gradient twin, and each forward
wire between two such boxes is the reverse of a gradient wire. Keeping one structure for
both halves is what makes them mirror each other by construction.

This module knows nothing about DOT; ``chainrule.viz.dot`` writes a ``Picture`` out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# Kinds of boxes.
OP = "op"  # a node of the autograd graph (forward: the op; gradient: its VJP)
LEAF = "leaf"  # a leaf tensor that requires grad (a parameter, an input to differentiate)
INPUT = "input"  # a tensor without gradient (data, targets): forward half only
FANOUT = "fanout"  # one value read k > 1 times: Duplicate forward, Σ of gradients backward
MODULE = "module"  # a module collapsed to one box (``depth=``) or an ``nn.Graph`` node
SEED = "seed"  # ∂L/∂L = 1, where the gradient half starts


@dataclass
class Box:
    """One box of the forward half (and, when ``has_grad``, its twin in the gradient half).

    Attributes:
        key: a unique identifier (``"n3"``), also the DOT node name with a prefix.
        kind: one of OP, LEAF, INPUT, FANOUT, MODULE, SEED.
        title: the first line: the op (``Mul``), the leaf's name, ``Duplicate ×2``.
        outputs: output index → (shape, dtype name) of the values the box produces.
        module: dotted path of the module that created it (None: outside any module).
        grad_title: the first line of the gradient twin (``MulBackward``).
        vjp: the VJP formula the gradient twin applies (from the op's docstring).
        jacobians: lines such as ``∂y/∂x: (32·10)×(32·256)``, one per differentiable input.
        has_grad: the box has a gradient twin.
        value_note, grad_note: optional numbers (norms) shown after a backward.
        extra: further forward lines (a collapsed module's parameters).
    """

    key: str
    kind: str
    title: str
    outputs: dict[int, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    module: str | None = None
    grad_title: str = ""
    vjp: str = ""
    jacobians: list[str] = field(default_factory=list)
    has_grad: bool = False
    value_note: str | None = None
    grad_note: str | None = None
    extra: list[str] = field(default_factory=list)


@dataclass
class Wire:
    """A forward wire: output ``index`` of box ``src`` is argument ``position`` of ``dst``.

    ``label`` names the output on multi-output boxes (``[1]``).
    """

    src: str
    dst: str
    position: int = 0
    label: str = ""
    index: int = 0


@dataclass
class Picture:
    """Boxes (in forward order: inputs first) and forward wires; ``clusters`` maps each
    module path to its caption (``model.0 · Linear(in=64, out=32)``)."""

    boxes: list[Box]
    wires: list[Wire]
    clusters: dict[str, str] = field(default_factory=dict)

    def box(self, key: str) -> Box:
        for b in self.boxes:
            if b.key == key:
                return b
        raise KeyError(key)


# ----------------------------------------------------------------------- text helpers
def shape_text(shape: tuple[int, ...]) -> str:
    """``(4, 3)`` as written in the lecture's Jacobian sizes: ``(4·3)``; ``5``; ``1``."""
    if len(shape) == 0:
        return "1"
    if len(shape) == 1:
        return str(shape[0])
    return "(" + "·".join(str(s) for s in shape) + ")"


def jacobian_line(out_name: str, in_name: str, out_shape: Any, in_shape: Any) -> str:
    """``∂y/∂x: (32·10)×(32·256)``: the local Jacobian is M×N with M, N the sizes of the
    output and the input (never built: backprop applies it as a VJP)."""
    return f"∂{out_name}/∂{in_name}: {shape_text(out_shape)}×{shape_text(in_shape)}"


def numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


_VJP = re.compile(r"VJP[^:\n]*:\s*(.*?)(?:\n\s*\n|$)", re.S)
_DERIVATIVE_NAME = re.compile(r"\bd([A-Za-z][A-Za-z0-9_]*)\s*=")


def op_docs(op: type) -> tuple[str, str, list[str]]:
    """From an op's docstring: the output's name (``y``), the VJP text, and the names of
    the inputs the VJP differentiates (``["a", "b"]`` for ``da = …, db = …``)."""
    doc = op.__doc__ or ""
    first = doc.strip().split("=", 1)[0].strip() if "=" in doc else ""
    out_name = first if re.fullmatch(r"[A-Za-zℓ][A-Za-z0-9_]*", first) else "y"
    match = _VJP.search(doc)
    vjp = " ".join(match.group(1).replace("``", "").split()) if match else ""
    # The formula is the first clause; what follows (" (…)", "; …", ". …") explains it.
    vjp = re.split(r"\.\s|\.$|;|\s\((?=[A-Za-z]{2,}[\s(,])", vjp)[0].strip()
    names = _DERIVATIVE_NAME.findall(vjp)
    return out_name, vjp, list(dict.fromkeys(names))


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def common_module(paths: list[str | None]) -> str | None:
    """The innermost module containing all ``paths`` (None when one is outside)."""
    if not paths or any(p is None for p in paths):
        return None
    parts = [p.split(".") for p in paths if p is not None]
    prefix: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        prefix.append(level[0])
    return ".".join(prefix) or None


def module_level(path: str) -> int:
    """``model`` is level 0, ``model.0`` level 1, ``model.0.fc`` level 2."""
    return path.count(".")
