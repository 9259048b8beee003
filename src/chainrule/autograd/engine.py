"""The engine: walk the graph backwards, chaining vector-Jacobian products.

For a loss C and a node y = f(x₁, …, xₙ), the chain rule gives ∂C/∂xᵢ = (∂y/∂xᵢ)ᵀ ∂C/∂y:
each node only needs the gradient flowing into its output to produce the gradients of
its inputs. The engine

1. runs the nodes in reverse topological order without recursion: a node is always
   created after its inputs, so its creation tick (``Function._seq``) orders the graph,
   and a heap of the nodes that have received a gradient yields the newest first (a
   chain of 100,000 ops needs neither recursion nor a separate sorting pass);
2. thereby runs every node once, after all the nodes that use its output have sent their
   gradient: where an output feeds several nodes (the lecture's Duplicate module) the
   gradients are summed before the node runs;
3. sums each input gradient back to that input's shape where the forward pass broadcast
   it: the one place where broadcasting is undone;
4. hands each leaf (a tensor made by the user, with no node) the sum of its gradients,
   adding it to ``.grad``;
5. frees each node's saved arrays and inputs after use unless ``retain_graph`` is set.

``topological_order`` gives the same order explicitly, for tools that draw the graph.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Sequence
from typing import Any

from chainrule.autograd.function import _FREED_MESSAGE, Function, clock
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.backend import xp
from chainrule.errors import AnomalyError, GraphError, ShapeError
from chainrule.tensor import Tensor


def unbroadcast(grad: Any, shape: tuple[int, ...], op: str = "") -> Any:
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1; its
    VJP adds up those copies.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != grad.shape[lead + i] for i, s in enumerate(shape)):
        raise ShapeError(
            f"{op}: backward returned a gradient of shape {tuple(grad.shape)} for an input "
            f"of shape {tuple(shape)}; the gradient must have the input's shape or a shape "
            f"it broadcasts to"
        )
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    )
    summed = grad.sum(axis=axes, keepdims=True) if axes else grad
    return summed.reshape(shape)


def topological_order(roots: Sequence[Function]) -> list[Function]:
    """The nodes reachable from ``roots``, each listed before every node it depends on.

    An iterative depth-first search: a post-order (every node after its inputs) reversed.
    """
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.saved_tensors is None:
            continue  # freed: its inputs were released
        for a in node._inputs:
            if isinstance(a, Tensor) and a._node is not None and id(a._node) not in visited:
                stack.append((a._node, False))
    order.reverse()
    return order


def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
    accumulate: bool = True,
) -> dict[int, Any]:
    """Backpropagate from ``outputs`` seeded with ``grad_outputs`` (arrays).

    Args:
        outputs: tensors with a node (``grad_fn``) or leaves requiring grad.
        grad_outputs: the gradient of the final quantity with respect to each output.
        retain_graph: keep saved arrays so the graph can be walked again.
        inputs: tensors whose gradients to capture and return (for ``autograd.grad``).
        accumulate: add leaf gradients into ``.grad`` (``Tensor.backward``) or not
            (``autograd.grad``).

    Returns:
        ``{id(tensor): gradient array}`` for each tensor of ``inputs`` that was reached.
    """
    # Where to catch the gradients asked for: non-leaf inputs by (node, index), leaves by id.
    capture_node: dict[tuple[int, int], int] = {}
    capture_leaf: set[int] = set()
    for t in inputs or ():
        if t._node is not None:
            capture_node[(id(t._node), t._out_index)] = id(t)
        else:
            capture_leaf.add(id(t))
    captured: dict[int, Any] = {}

    # Gradient buffers: node -> gradient of its single output, or a list for several.
    buffers: dict[Function, Any] = {}
    leaves: dict[int, list[Any]] = {}  # id(leaf) -> [leaf, summed gradient]
    roots: list[Function] = []
    for out, g in zip(outputs, grad_outputs):
        if out._node is None:
            _add_leaf(leaves, out, g)
        else:
            _add_to_buffer(buffers, out._node, out._out_index, g)
            roots.append(out._node)

    # Backward formulas run on arrays, not tensors: no graph is recorded while they run.
    prev_enabled = _grad_state.enabled
    _grad_state.enabled = False
    try:
        _run_nodes(roots, buffers, leaves, capture_node, captured, retain_graph)
    finally:
        _grad_state.enabled = prev_enabled

    taken = {id(g) for g in grad_outputs}  # the caller's seeds are never adopted
    for leaf, g in leaves.values():
        if leaf._hooks:
            for hook in leaf._hooks:
                result = hook(Tensor._wrap(g, False, None, 0))
                if result is not None:
                    g = result.data if isinstance(result, Tensor) else xp.asarray(result)
        if id(leaf) in capture_leaf:
            captured[id(leaf)] = g
        if accumulate:
            _accumulate_grad(leaf, g, taken)
    return captured


def _run_nodes(
    roots: list[Function],
    buffers: dict[Function, Any],
    leaves: dict[int, list[Any]],
    capture_node: dict[tuple[int, int], int],
    captured: dict[int, Any],
    retain_graph: bool,
) -> None:
    """Run every node that receives a gradient, newest first, filling ``leaves``.

    A function of its own so that its locals, which refer to gradient arrays, are gone
    when the leaves adopt their gradients (see ``_accumulate_grad``).
    """
    anomaly = _grad_state.anomaly
    ndarray = xp.ndarray
    # Nodes run newest first: a node is created after all of its inputs, so by the time it
    # runs, every node that consumed its output has already sent its gradient.
    heap = [(-node._seq, node) for node in dict.fromkeys(roots)]
    heapq.heapify(heap)
    heappush, heappop = heapq.heappush, heapq.heappop
    follow = None  # along a chain, the next node is run directly, without the heap
    while follow is not None or heap:
        if follow is not None:
            node, follow = follow, None
        else:
            node = heappop(heap)[1]
        g = buffers.pop(node)
        if node.saved_tensors is None:
            raise GraphError(_FREED_MESSAGE.format(op=node.name()))
        if clock.last_inplace > node._seq:  # something changed in place since the forward
            node._check_saved_unchanged()
        if node._n_out == 1 and node._hooks is None and not capture_node:
            grads_in = node.backward(node, g)  # the common case, without the tuples below
        else:
            if node._n_out == 1:
                grads_out: tuple[Any, ...] = (g,)
            else:
                grads_out = tuple(
                    xp.zeros(shape, dtype) if gi is None else gi
                    for gi, (shape, dtype) in zip(g, node._out_meta)
                )
            if node._hooks is not None:
                grads_out = _run_node_hooks(node, grads_out)
            for i, gi in enumerate(grads_out):
                key = (id(node), i)
                if key in capture_node:
                    captured[capture_node[key]] = gi
            grads_in = node.backward(node, *grads_out)
        if type(grads_in) is not tuple:
            grads_in = (grads_in,)
        inputs_of_node = node._inputs
        if len(grads_in) < len(inputs_of_node):
            raise GraphError(
                f"{node.name()}: backward returned {len(grads_in)} gradients but forward "
                f"took {len(inputs_of_node)} inputs; return one per input (None for an "
                f"input without a gradient)"
            )
        if not retain_graph:
            # Release what only backward needed: saved arrays and the input tensors.
            node.saved_tensors = None
            node._inputs = ()

        for a, gi in zip(inputs_of_node, grads_in):
            if gi is None or not isinstance(a, Tensor) or not a.requires_grad:
                continue
            if type(gi) is not ndarray:
                gi = xp.asarray(gi)
            if gi.shape != a.data.shape:
                gi = unbroadcast(gi, a.data.shape, node.name())
            if anomaly:
                _check_finite(node, gi)
            parent = a._node
            if parent is None:
                _add_leaf(leaves, a, gi)
            elif parent in buffers:
                _add_to_buffer(buffers, parent, a._out_index, gi)
            else:
                if parent._n_out == 1:
                    buffers[parent] = gi
                else:
                    _add_to_buffer(buffers, parent, a._out_index, gi)
                # A parent first reached here is run next if nothing else is waiting
                # (the common chain); otherwise it waits in the heap, newest first.
                if follow is None and not heap:
                    follow = parent
                else:
                    if follow is not None:
                        heappush(heap, (-follow._seq, follow))
                        follow = None
                    heappush(heap, (-parent._seq, parent))


def _add_to_buffer(buffers: dict[Function, Any], node: Function, index: int, g: Any) -> None:
    # Sums are out of place: an incoming array may be shared with another branch.
    if node._n_out == 1:
        prev = buffers.get(node)
        buffers[node] = g if prev is None else prev + g
    else:
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node._n_out
        prev = slots[index]
        slots[index] = g if prev is None else prev + g


def _add_leaf(leaves: dict[int, list[Any]], leaf: Any, g: Any) -> None:
    entry = leaves.get(id(leaf))
    if entry is None:
        leaves[id(leaf)] = [leaf, g]
    else:
        entry[1] = entry[1] + g


def _accumulate_grad(leaf: Any, g: Any, taken: set[int] | None = None) -> None:
    """Add ``g`` into ``leaf.grad``, making sure ``.grad`` owns its memory.

    A backward formula may pass its upstream gradient through unchanged (Add, a reshape),
    so one array can reach several leaves; ``.grad`` must not alias another tensor's. A
    fresh array that nothing else refers to is adopted as it is (PyTorch's AccumulateGrad
    does the same, by reference count), anything else is copied. ``taken`` holds the ids
    of arrays that belong elsewhere already (the seeds, earlier leaves' gradients), so
    sharing within one backward pass is caught without relying on reference counts.
    """
    if type(g) is not xp.ndarray:
        g = xp.asarray(g)
    elif g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        # The references a fresh array has here: the caller's loop variable and the
        # `leaves` entry, this function's `g`, and getrefcount's own argument.
        if (
            g.base is not None
            or not g.flags.writeable
            or (taken is not None and id(g) in taken)
            or sys.getrefcount(g) > 4
        ):
            g = g.copy()
        if taken is not None:
            taken.add(id(g))
        leaf.grad = Tensor._wrap(g, False, None, 0)
    else:
        leaf.grad = Tensor._wrap(leaf.grad.data + g, False, None, 0)


def _run_node_hooks(node: Function, grads: tuple[Any, ...]) -> tuple[Any, ...]:
    result = list(grads)
    assert node._hooks is not None
    for index, hooks in node._hooks.items():
        for hook in hooks:
            out = hook(Tensor._wrap(result[index], False, None, 0))
            if out is not None:
                result[index] = out.data if isinstance(out, Tensor) else xp.asarray(out)
    return tuple(result)


def _check_finite(node: Function, g: Any) -> None:
    if xp.issubdtype(g.dtype, xp.floating) and not bool(xp.isfinite(g).all()):
        where = ""
        if node._trace:
            frame = node._trace[-1]
            for f in reversed(node._trace):
                if "/chainrule/" not in f.filename.replace("\\", "/"):
                    frame = f
                    break
            where = f"\nThe forward op was created at {frame.filename}:{frame.lineno}: {frame.line}"
        raise AnomalyError(
            f"{node.name()} produced a gradient containing NaN or Inf during backward.{where}"
        )
