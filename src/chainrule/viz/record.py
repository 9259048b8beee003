"""``record``: which module created each node of a graph, for drawings grouped by module.

The autograd core keeps no trace of modules: a node knows its op and its inputs, not the
``nn.Linear`` whose ``forward`` called it. ``record`` recovers that attribution from the
outside, with forward hooks only::

    with viz.record(model) as trace:
        loss = loss_fn(model(x), y)
    viz.draw(loss, trace=trace).render("mlp.svg")

How: while the context is open, every module of the tree carries a forward pre-hook and a
forward hook. The pre-hook notes the nodes that made the module's input tensors (the
boundary). The forward hook walks back from the module's outputs along
``next_functions`` and tags every node it meets with the module's dotted path, stopping
at the boundary and at leaves. Hooks fire innermost module first, so a node created by
``model.0`` is tagged ``model.0`` before ``model`` (the Sequential) finishes; the outer
module walks *through* its children's nodes without retagging them and tags only the
nodes its own ``forward`` created between its children (a residual ``+``, a
``flatten``). A node already tagged by a module outside the current one (a sibling that
ran earlier) ends the walk, so an op is never claimed by two siblings.

Nothing is recorded outside the context, and the hooks are removed on exit, so a model
costs nothing when it is not being drawn.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from chainrule.nn.module import Module, RemovableHandle
from chainrule.tensor import Tensor


def _tensors(value: Any) -> Iterator[Tensor]:
    """The tensors in a module's arguments or output (tensors, tuples, lists, dicts)."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class record:
    """Tag the autograd nodes created inside each module's forward with its dotted path.

    Args:
        modules: a module (named ``name``), or a mapping ``{"model": model, "loss":
            loss_fn}`` to attribute the nodes of several top-level modules.
        name: the name of a single module (the first part of every path and parameter
            name, e.g. ``model.0.weight``).

    Attributes (after the context):
        modules: dotted path → module, for every module of the tree.
        param_names: ``id(parameter)`` → its dotted name (``model.0.weight``).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn, viz
        >>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
        >>> with viz.record(model) as trace:
        ...     y = model(cr.randn(4, 3))
        >>> trace.module_of(y.grad_fn)
        'model.1'
    """

    def __init__(self, modules: Module | Mapping[str, Module], name: str = "model") -> None:
        roots = {name: modules} if isinstance(modules, Module) else dict(modules)
        for key, module in roots.items():
            if not isinstance(module, Module):
                raise TypeError(
                    f"viz.record: {key!r} is a {type(module).__name__}, not an nn.Module; "
                    f"pass a module or a mapping of names to modules"
                )
        self.modules: dict[str, Module] = {}
        self.param_names: dict[int, str] = {}
        self._params: list[Any] = []  # keeps the parameters alive while ids are keys
        for root_name, root in roots.items():
            for path, module in root.named_modules(root_name):
                self.modules.setdefault(path, module)
            for pname, param in root.named_parameters(root_name):
                self.param_names.setdefault(id(param), pname)
                self._params.append(param)
        self._paths: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._stack: list[tuple[str, set[int]]] = []
        self._handles: list[RemovableHandle] = []

    # ------------------------------------------------------------------------- context
    def __enter__(self) -> record:
        for path, module in self.modules.items():
            self._handles.append(module.register_forward_pre_hook(self._pre_hook(path)))
            self._handles.append(module.register_forward_hook(self._post_hook(path)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stack.clear()

    # --------------------------------------------------------------------------- query
    def module_of(self, node: Any) -> str | None:
        """The dotted path of the innermost module that created ``node`` (None: outside)."""
        return self._paths.get(node)

    def module_type(self, path: str) -> str:
        """The class name of the module at ``path`` (``"Linear"``)."""
        return type(self.modules[path]).__name__

    # --------------------------------------------------------------------------- hooks
    def _pre_hook(self, path: str) -> Any:
        def hook(module: Module, args: tuple[Any, ...]) -> None:
            boundary = {id(t.grad_fn) for t in _tensors(args) if t.grad_fn is not None}
            self._stack.append((path, boundary))

        return hook

    def _post_hook(self, path: str) -> Any:
        def hook(module: Module, args: tuple[Any, ...], output: Any) -> None:
            # Pop our own frame (the matching pre-hook pushed it; frames nest like calls).
            _, boundary = self._stack.pop()
            self._claim(path, boundary, output)

        return hook

    def _claim(self, path: str, boundary: set[int], output: Any) -> None:
        inside = path + "."
        stack = [t.grad_fn for t in _tensors(output) if t.grad_fn is not None]
        visited: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in visited or id(node) in boundary:
                continue
            visited.add(id(node))
            owner = self._paths.get(node)
            if owner is None:
                self._paths[node] = path
            elif owner != path and not owner.startswith(inside):
                continue  # made by a module that ran before this one: not ours
            for parent, index in node.next_functions:
                if parent is not None and index >= 0:
                    stack.append(parent)
