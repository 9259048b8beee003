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
   adding it to ``.grad``; a leaf with post-accumulate hooks gets its ``.grad`` as soon
   as the last node that uses it has run, and its hooks fire then, during the pass;
5. frees each node's saved arrays and inputs after use unless ``retain_graph`` is set.

Two modes share this one loop. By default gradients are arrays and each node's
``backward`` runs on arrays with graph recording off: the fast path. With
``create_graph=True`` gradients are Tensors and each node's ``backward_graph`` runs with
recording on, so the gradients computed are themselves a graph that can be differentiated
again (Hessian-vector products, gradient penalties, any order).

Gradients live where their tensors live: the seeds are made on each output's device
(``functional._seed``), every ``backward`` computes with its node's array library
(``ctx.xp``), zeros for unused outputs come from that library too, and a ``ToDevice`` node
sends its gradient back to the source device. The loop itself only adds arrays and reads
shapes, so it runs unchanged on NumPy and CuPy arrays and never reads a GPU value.

``topological_order`` gives the same order explicitly, for tools that draw the graph.
"""

from __future__ import annotations

import heapq
import os
import sys
from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.autograd.function import FREED_MESSAGE, Function
from chainrule.autograd.grad_mode import clock
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.autograd.hooks import post_accumulate_hook_count
from chainrule.errors import AnomalyError, GraphError, ShapeError
from chainrule.tensor import Tensor


def unbroadcast(grad: Any, shape: tuple[int, ...], op: str = "") -> Any:
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1; its
    VJP adds up those copies. Works on arrays and on Tensors (whose ``sum`` takes NumPy's
    ``axis``/``keepdims`` too), so both modes of the engine share it.
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


class _Pass:
    """The state of one backward pass: gradient buffers, leaves reached, captures."""

    def __init__(
        self,
        retain_graph: bool,
        create_graph: bool,
        inputs: Sequence[Tensor] | None,
        accumulate: bool,
        seeds: Sequence[Any],
    ) -> None:
        self.retain_graph = retain_graph
        self.create_graph = create_graph
        self.accumulate = accumulate
        # Where to catch the gradients asked for: non-leaf inputs by (node, index), leaves
        # by id.
        self.capture_node: dict[tuple[int, int], int] = {}
        self.capture_leaf: set[int] = set()
        for t in inputs or ():
            if t._node is not None:
                self.capture_node[(id(t._node), t._out_index)] = id(t)
            else:
                self.capture_leaf.add(id(t))
        self.captured: dict[int, Any] = {}
        # With ``inputs`` and no accumulation (``autograd.grad``, ``backward(inputs=)``):
        # the nodes on a path to an input (``visit``) and, of those, the ones whose own
        # backward leads on to one (``through``); see ``_prune``. None: run every node.
        self.visit: set[int] | None = None
        self.through: set[int] | None = None
        # Gradient buffers: node -> gradient of its single output, or a list for several.
        self.buffers: dict[Function, Any] = {}
        self.leaves: dict[int, list[Any]] = {}  # id(leaf) -> [leaf, summed gradient]
        # Leaves whose .grad must be final during the pass (post-accumulate hooks): id ->
        # how many edges from nodes of this graph still have to deliver to it.
        self.pending: dict[int, int] = {}
        # Arrays that belong elsewhere already (the caller's seeds, earlier leaves' grads):
        # a leaf must not adopt them as its own .grad.
        self.taken: set[int] = {id(g) for g in seeds}


def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Any],
    retain_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
    accumulate: bool = True,
    create_graph: bool = False,
) -> dict[int, Any]:
    """Backpropagate from ``outputs`` seeded with ``grad_outputs``.

    Args:
        outputs: tensors with a node (``grad_fn``) or leaves requiring grad.
        grad_outputs: the gradient of the final quantity with respect to each output:
            arrays, or Tensors with ``create_graph``.
        retain_graph: keep saved arrays so the graph can be walked again.
        inputs: tensors whose gradients to capture and return (for ``autograd.grad``).
        accumulate: add leaf gradients into ``.grad`` (``Tensor.backward``) or not
            (``autograd.grad``).
        create_graph: run each node's ``backward_graph`` with recording on, so the
            gradients are Tensors with a graph of their own.

    Returns:
        ``{id(tensor): gradient}`` for each tensor of ``inputs`` that was reached: arrays,
        or Tensors with ``create_graph``.
    """
    run = _Pass(retain_graph, create_graph, inputs, accumulate, grad_outputs)
    roots: list[Function] = []
    for out, g in zip(outputs, grad_outputs):
        if out._node is None:
            _add_leaf(run.leaves, out, g)
        else:
            _add_to_buffer(run.buffers, out._node, out._out_index, g)
            roots.append(out._node)
    if inputs is not None and not accumulate:
        run.visit, run.through = _prune(roots, run)
        for root in [r for r in roots if id(r) not in run.visit]:
            run.buffers.pop(root, None)  # an output that leads to no input: nothing to do
        roots = [r for r in roots if id(r) in run.visit]
    if accumulate and post_accumulate_hook_count() and roots:
        run.pending = _count_leaf_edges(roots)

    # Backward formulas on arrays record nothing; with create_graph they record the graph
    # of the gradients.
    prev_enabled = _grad_state.enabled
    _grad_state.enabled = create_graph
    try:
        _run_nodes(roots, run)
        for key in list(run.leaves):
            leaf, g = run.leaves.pop(key)
            _finish_leaf(run, leaf, g)
            del g  # drop the reference before the next leaf counts its own (accumulate_grad)
    finally:
        _grad_state.enabled = prev_enabled
    return run.captured


def _prune(roots: list[Function], run: _Pass) -> tuple[set[int], set[int]]:
    """Which nodes a pass that only wants ``inputs``' gradients must reach, as PyTorch's
    engine decides: a node whose output is an input gets its gradient (captured there);
    a node runs its backward only if some input lies beyond it. Nothing else runs, so
    ``autograd.grad(y, [h])`` for a tensor h in the middle of the graph does not walk the
    graph that made h (its work, its tensors' hooks), which is what a recomputation
    inside a backward (``utils.checkpoint``) relies on.

    Returns:
        (visit, through): the ids of the nodes to reach, and of those to run.
    """
    targets = {node_id for node_id, _ in run.capture_node}
    leaves = run.capture_leaf
    through: set[int] = set()
    for node in reversed(topological_order(roots)):  # every node after the ones it uses
        if node.saved_tensors is None:
            continue
        for a in node._inputs:
            if not isinstance(a, Tensor) or not a.requires_grad:
                continue
            parent = a._node
            if (parent is None and id(a) in leaves) or (
                parent is not None and (id(parent) in through or id(parent) in targets)
            ):
                through.add(id(node))
                break
    return through | targets, through


def _run_nodes(roots: list[Function], run: _Pass) -> None:
    """Run every node that receives a gradient, newest first, filling ``run.leaves``.

    A function of its own so that its locals, which refer to gradient arrays, are gone
    when the leaves adopt their gradients (see ``accumulate_grad``).
    """
    anomaly = _grad_state.anomaly
    graph = run.create_graph
    retain_graph = run.retain_graph
    buffers, leaves, pending = run.buffers, run.leaves, run.pending
    visit = run.visit
    # The common case calls backward with the one gradient, skipping the general path.
    simple = not graph and not run.capture_node
    ndarray = backend.ndarray  # the CPU's arrays pass with one type check
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
            raise GraphError(FREED_MESSAGE.format(op=node.name()))
        if clock.last_inplace > node._seq:  # something changed in place since the forward
            node._check_saved_unchanged()
        if simple and node._n_out == 1 and node._hooks is None:
            grads_in = node.backward(node, g)  # the common case, without the tuples below
        else:
            grads_in = _call_backward(node, g, run)
            if grads_in is _CAPTURED_ONLY:
                continue  # an input's node: its gradient is captured, nothing lies beyond
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
            if graph:
                gi = _as_graph_gradient(node, gi)
            elif type(gi) is not ndarray:
                gi = _as_gradient_array(gi, a.data)
            if gi.shape != a.data.shape:
                gi = unbroadcast(gi, a.data.shape, node.name())
            if anomaly:
                _check_finite(node, gi)
            parent = a._node
            if parent is None:
                _add_leaf(leaves, a, gi)
            elif visit is not None and id(parent) not in visit:
                continue  # no input lies that way
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
        if pending:
            # Drop this loop's references first, so a leaf finished now can adopt its
            # gradient array without a copy (accumulate_grad counts references).
            grads_in = gi = g = None
            _release_finished_leaves(run, inputs_of_node)


# What ``_call_backward`` returns for a node reached only to capture its gradient.
_CAPTURED_ONLY = object()


def _call_backward(node: Function, g: Any, run: _Pass) -> Any:
    """The general call of a node's backward: several outputs, hooks, captures, graphs."""
    if node._n_out == 1:
        grads_out: tuple[Any, ...] = (g,)
    else:
        grads_out = tuple(
            _zeros(node, shape, dtype, run.create_graph) if gi is None else gi
            for gi, (shape, dtype) in zip(g, node._out_meta)
        )
    if node._hooks is not None:
        grads_out = _run_node_hooks(node, grads_out, run.create_graph)
    for i, gi in enumerate(grads_out):
        key = (id(node), i)
        if key in run.capture_node:
            run.captured[run.capture_node[key]] = gi
    if run.through is not None and id(node) not in run.through:
        return _CAPTURED_ONLY
    if run.create_graph:
        return type(node).backward_graph(node, *grads_out)
    return node.backward(node, *grads_out)


def _as_gradient_array(g: Any, like: Any) -> Any:
    """A gradient that ``backward`` returned as something else than a NumPy array: a GPU
    array passes; a number or a NumPy scalar becomes an array on the device of ``like``
    (the input's array)."""
    if backend.is_device_array(g):
        return g
    return backend.get_array_module(like).asarray(g)


def _zeros(node: Function, shape: tuple[int, ...], dtype: Any, graph: bool) -> Any:
    """The gradient of an output that received none: zeros on the node's device."""
    z = node.xp.zeros(shape, dtype)
    return Tensor(z) if graph else z


def _as_graph_gradient(node: Function, g: Any) -> Tensor:
    """A gradient returned by ``backward_graph``, as a Tensor (arrays become constants)."""
    if isinstance(g, Tensor):
        return g
    if isinstance(g, backend.ndarray) or backend.is_device_array(g):
        return Tensor(g)
    if isinstance(g, (int, float)):
        return Tensor(node.xp.asarray(g))
    raise GraphError(
        f"{node.name()}: backward_graph returned a {type(g).__name__}; it must return "
        f"Tensors (or None) built with chainrule ops"
    )


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


# -------------------------------------------------------------------------------- leaves
def _count_leaf_edges(roots: list[Function]) -> dict[int, int]:
    """For each leaf requiring grad, how many edges of the graph below ``roots`` reach it.

    Run only when some leaf has post-accumulate hooks: a leaf's gradient is final once
    every node that uses it has run, and this count is how the engine knows.
    """
    counts: dict[int, int] = {}
    for node in topological_order(roots):
        if node.saved_tensors is None:
            continue
        for a in node._inputs:
            if isinstance(a, Tensor) and a.requires_grad and a._node is None:
                counts[id(a)] = counts.get(id(a), 0) + 1
    return counts


def _release_finished_leaves(run: _Pass, inputs_of_node: tuple[Any, ...]) -> None:
    """After a node ran: leaves it used whose last consumer it was get their .grad now."""
    for a in inputs_of_node:
        if not (isinstance(a, Tensor) and a._node is None and id(a) in run.pending):
            continue
        left = run.pending[id(a)] - 1
        if left:
            run.pending[id(a)] = left
            continue
        del run.pending[id(a)]
        entry = run.leaves.pop(id(a), None)
        if entry is not None:
            _finish_leaf(run, entry[0], entry[1])


def _finish_leaf(run: _Pass, leaf: Tensor, g: Any) -> None:
    """A leaf's gradient is final: its hooks, capture, ``.grad`` and post-accumulate hooks."""
    if leaf._hooks:
        for hook in leaf._hooks:
            result = hook(_as_tensor(g))
            if result is not None:
                g = check_hook_result(hook, result, g, leaf, run.create_graph)
    if id(leaf) in run.capture_leaf:
        run.captured[id(leaf)] = g
    if run.accumulate:
        accumulate_grad(leaf, g, run.taken)
        for hook in leaf._post_accumulate_hooks or ():
            hook(leaf)


def _as_tensor(g: Any) -> Tensor:
    return g if isinstance(g, Tensor) else Tensor(g)


def accumulate_grad(leaf: Any, g: Any, taken: set[int] | None = None) -> None:
    """Add ``g`` into ``leaf.grad``, making sure ``.grad`` owns its memory.

    ``g`` is an array, or a Tensor with a graph (``create_graph``: then the sum is
    recorded too).

    A backward formula may pass its upstream gradient through unchanged (Add, a reshape),
    so one array can reach several leaves; ``.grad`` must not alias another tensor's. A
    fresh array that nothing else refers to is adopted as it is (PyTorch's AccumulateGrad
    does the same, by reference count), anything else is copied. ``taken`` holds the ids
    of arrays that belong elsewhere already (the seeds, earlier leaves' gradients), so
    sharing within one backward pass is caught without relying on reference counts.
    The gradient always gets the leaf's dtype, whatever its number of dimensions.
    """
    if isinstance(g, Tensor):
        _accumulate_graph_grad(leaf, g, set() if taken is None else taken)
        return
    if type(g) is not backend.ndarray and not backend.is_device_array(g):
        g = backend.get_array_module(leaf.data).asarray(g, dtype=leaf.data.dtype)
    elif g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        # The references a fresh array has here: the `g` of the engine's loop over leaves,
        # _finish_leaf's `g`, this function's `g`, and getrefcount's own argument.
        if (
            g.base is not None
            or not backend.is_writeable(g)
            or (taken is not None and id(g) in taken)
            or sys.getrefcount(g) > 4
        ):
            g = g.copy()
        if taken is not None:
            taken.add(id(g))
        leaf.grad = Tensor(g)
    else:
        leaf.grad = Tensor(leaf.grad.data + g)


def _accumulate_graph_grad(leaf: Tensor, g: Tensor, taken: set[int]) -> None:
    """``create_graph`` form: ``.grad`` becomes a Tensor with a graph (recorded sums)."""
    if g.dtype != leaf.dtype:
        g = g.to(leaf.dtype)
    if leaf.grad is None:
        if id(g) in taken:  # the same Tensor reached another leaf, or is a seed
            g = g.clone()
        taken.add(id(g))
        leaf.grad = g
    else:
        leaf.grad = leaf.grad + g


def check_hook_result(hook: Any, result: Any, g: Any, where: Any, graph: bool) -> Any:
    """What a gradient hook returned, checked: a Tensor or array of the gradient's shape.

    PyTorch raises as well: a hook that changes the shape would otherwise give a leaf a
    ``.grad`` of the wrong shape, or be broadcast-summed silently into the inputs.
    """
    name = getattr(hook, "__qualname__", None) or repr(hook)
    if isinstance(result, Tensor):
        value = result if graph else result.data
    elif isinstance(result, backend.ndarray) or backend.is_device_array(result):
        value = Tensor(result) if graph else result
    else:
        raise TypeError(
            f"gradient hook {name} returned a {type(result).__name__}; a hook must return "
            f"None (keep the gradient) or a Tensor of the gradient's shape {tuple(g.shape)}"
        )
    if tuple(value.shape) != tuple(g.shape):
        what = "leaf" if isinstance(where, Tensor) else where.name()
        raise ShapeError(
            f"gradient hook {name} on a {what} changed the size of the gradient from "
            f"{tuple(g.shape)} to {tuple(value.shape)}; a hook must return a gradient of "
            f"the same shape"
        )
    if not graph and value.dtype != g.dtype and g.dtype.kind == "f":
        value = value.astype(g.dtype)
    return value


def _run_node_hooks(node: Function, grads: tuple[Any, ...], graph: bool) -> tuple[Any, ...]:
    result = list(grads)
    assert node._hooks is not None
    for index, hooks in node._hooks.items():
        for hook in hooks:
            out = hook(_as_tensor(result[index]))
            if out is not None:
                result[index] = check_hook_result(hook, out, result[index], node, graph)
    return tuple(result)


# ------------------------------------------------------------------------------- anomaly
def _check_finite(node: Function, g: Any) -> None:
    values = g.data if isinstance(g, Tensor) else g
    if not backend.is_floating(values.dtype):
        return
    # Reading the answer waits for the GPU: anomaly mode is a debugging tool, asked for.
    if not bool(backend.get_array_module(values).isfinite(values).all()):
        where = ""
        if node._trace:
            frame = user_frame(node._trace)
            where = f"\nThe forward op was created at {frame.filename}:{frame.lineno}: {frame.line}"
        raise AnomalyError(
            f"{node.name()} produced a gradient containing NaN or Inf during backward.{where}"
        )


def user_frame(trace: Any) -> Any:
    """The innermost frame of ``trace`` outside the installed chainrule package.

    Frames are compared with the package's own directory, not by a substring of their
    path: the user's code may well live in a folder named ``chainrule`` (a clone).
    """
    for frame in reversed(trace):
        if not _in_package(frame.filename):
            return frame
    return trace[-1]


def _in_package(filename: str) -> bool:
    try:
        path = os.path.realpath(filename)
    except (OSError, ValueError):
        return False
    return path == _PACKAGE_DIR or path.startswith(_PACKAGE_DIR + os.sep)


# The installed package's directory: chainrule/ (this file is chainrule/autograd/engine.py).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
