"""Read one traced computation (the graph behind some output tensors) into a ``Picture``.

The walk uses the core's public view of a node: ``inputs`` (the tensors and plain values
the op was applied to, whose shapes are the Jacobian's columns), ``next_functions``
(where each input's gradient goes, and which output of a multi-output node it is) and the
op's docstring (its VJP). A value read by k > 1 nodes becomes a fan-out box: the
lecture's Duplicate in the forward half, the sum of k gradients in the gradient half.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrule.errors import GraphError
from chainrule.tensor import Tensor
from chainrule.viz.ir import (
    FANOUT,
    INPUT,
    LEAF,
    OP,
    SEED,
    Box,
    Picture,
    Wire,
    common_module,
    jacobian_line,
    op_docs,
)
from chainrule.viz.record import record

# (box key, output index): one value of the graph.
ValueKey = tuple[str, int]


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


class Walker:
    """Collects the boxes and wires of a graph, walking back from its outputs."""

    def __init__(self, params: dict[int, str], trace: record | None) -> None:
        self.params = params
        self.trace = trace
        self.boxes: dict[str, Box] = {}
        self.order: list[str] = []
        self.keys: dict[int, str] = {}  # id(node or leaf tensor) → box key
        self.keep: list[Any] = []  # objects whose ids are keys stay alive meanwhile
        # value → consumers (dst key, position), in forward order
        self.reads: dict[ValueKey, list[tuple[str, int]]] = {}
        self.tensors: dict[ValueKey, Tensor] = {}
        # op box → (output name, [(input name, input shape)]) for its Jacobian lines
        self.pending: dict[str, tuple[str, list[tuple[str, tuple[int, ...]]]]] = {}

    def _new_key(self) -> str:
        return f"n{len(self.boxes)}"

    # -------------------------------------------------------------------------- leaves
    def leaf(self, t: Tensor) -> str:
        if id(t) in self.keys:
            return self.keys[id(t)]
        key = self._new_key()
        name = self.params.get(id(t)) or t.name
        kind = LEAF if t.requires_grad else INPUT
        title = name or ("leaf" if kind == LEAF else "input")
        module = None
        if name is not None and self.trace is not None:
            owner = name.rpartition(".")[0]
            module = owner if owner in self.trace.modules else None
        box = Box(key, kind, title, outputs={0: (t.shape, _dtype_name(t.dtype))}, module=module)
        if kind == LEAF:
            box.has_grad = True
            box.grad_title = f"∂L/∂{title}"
            box.vjp = "accumulates into .grad"
        self.boxes[key] = box
        self.order.append(key)
        self.keys[id(t)] = key
        self.keep.append(t)
        self.tensors[(key, 0)] = t
        return key

    # ----------------------------------------------------------------------------- ops
    def walk(self, roots: Sequence[Tensor]) -> None:
        """Post-order over the graph (inputs before the node), iterative: deep chains of
        ops must not hit the recursion limit."""
        for root in roots:
            node = root.grad_fn
            if node is None:
                continue
            stack: list[tuple[Any, bool]] = [(node, False)]
            while stack:
                node, expanded = stack.pop()
                if id(node) in self.keys:
                    continue
                if node.is_freed and not node.inputs:
                    raise GraphError(
                        f"viz.draw: {node.name()} was freed by a backward pass, so its inputs "
                        f"are gone. Draw before calling backward(), or call "
                        f"backward(retain_graph=True)."
                    )
                if expanded:
                    self.op(node)
                    continue
                stack.append((node, True))
                for parent, index in reversed(node.next_functions):
                    if parent is not None and index >= 0 and id(parent) not in self.keys:
                        stack.append((parent, False))

    def op(self, node: Any) -> None:
        key = self._new_key()
        op_type = type(node)
        out_name, vjp, names = op_docs(op_type)
        module = self.trace.module_of(node) if self.trace is not None else None
        box = Box(key, OP, op_type.__name__, module=module, grad_title=node.name(), vjp=vjp)
        box.has_grad = True
        self.boxes[key] = box
        self.order.append(key)
        self.keys[id(node)] = key
        self.keep.append(node)

        tensor_inputs = [(i, a) for i, a in enumerate(node.inputs) if isinstance(a, Tensor)]
        # The VJP names the float inputs (``da``, ``db``); integer ones (a condition, class
        # targets) have no derivative.
        float_inputs = [i for i, a in tensor_inputs if a.dtype.kind == "f"]
        name_of = dict(zip(float_inputs, names)) if len(names) == len(float_inputs) else {}
        edges = node.next_functions
        box_jacobians: list[tuple[str, tuple[int, ...]]] = []
        for n, (position, t) in enumerate(tensor_inputs):
            parent, index = edges[position]
            if parent is None or index < 0:
                src, out_index = self.leaf(t), 0
            else:
                src, out_index = self.keys[id(parent)], index
                src_box = self.boxes[src]
                src_box.outputs.setdefault(index, (t.shape, _dtype_name(t.dtype)))
                self.tensors.setdefault((src, index), t)
            self.reads.setdefault((src, out_index), []).append((key, position))
            if t.requires_grad:
                in_name = name_of.get(position, f"x{n}" if len(tensor_inputs) > 1 else "x")
                box_jacobians.append((in_name, t.shape))
        # The output's shape is known only once a consumer (or the root) shows it.
        self.pending[key] = (out_name, box_jacobians)

    # ------------------------------------------------------------------------- finish
    def finish(self, roots: Sequence[Tensor], seed: bool) -> Picture:
        for root in roots:
            if root.grad_fn is not None:
                # A root is taken as output 0 of its node (the core does not say which
                # output of a multi-output node a tensor is, except to its consumers).
                key = self.keys[id(root.grad_fn)]
                self.boxes[key].outputs.setdefault(0, (root.shape, _dtype_name(root.dtype)))
                self.tensors.setdefault((key, 0), root)
            else:
                self.leaf(root)
        for key, (out_name, pending) in self.pending.items():
            box = self.boxes[key]
            out_shape = box.outputs.get(0, ((), ""))[0] if len(box.outputs) <= 1 else None
            lines = []
            for in_name, in_shape in pending:
                if out_shape is None:  # several outputs: one Jacobian block per output
                    for index, (shape, _) in sorted(box.outputs.items()):
                        lines.append(jacobian_line(f"{out_name}{index}", in_name, shape, in_shape))
                else:
                    lines.append(jacobian_line(out_name, in_name, out_shape, in_shape))
            box.jacobians = lines

        wires: list[Wire] = []
        boxes = [self.boxes[k] for k in self.order]
        for (src, index), readers in self.reads.items():
            src_box = self.boxes[src]
            label = f"[{index}]" if len(src_box.outputs) > 1 else ""
            if len(readers) == 1:
                dst, position = readers[0]
                wires.append(Wire(src, dst, position, label, index))
                continue
            fan = Box(
                f"n{len(self.boxes)}",
                FANOUT,
                f"Duplicate ×{len(readers)}",
                outputs={i: src_box.outputs.get(index, ((), "")) for i in range(len(readers))},
                module=common_module([self.boxes[d].module for d, _ in readers]),
                grad_title="Σ",
                vjp=f"g = g₁ + … + g{_subscript(len(readers))}",
                has_grad=src_box.has_grad and src_box.kind != INPUT,
            )
            self.boxes[fan.key] = fan
            boxes.insert(boxes.index(src_box) + 1, fan)
            self.tensors[(fan.key, 0)] = self.tensors[(src, index)]
            wires.append(Wire(src, fan.key, 0, label, index))
            for dst, position in readers:
                wires.append(Wire(fan.key, dst, position))
        if seed and any(r.requires_grad for r in roots):
            boxes.append(Box("seed", SEED, "∂L/∂L = 1", grad_title="∂L/∂L = 1", has_grad=True))
            for root in roots:
                if root.requires_grad:
                    made_by = root.grad_fn if root.grad_fn is not None else root
                    wires.append(Wire(self.keys[id(made_by)], "seed"))
        return Picture(boxes, wires)


def _subscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
