"""Hooks on gradients: the ``register_hook`` family of ``Tensor``.

- ``register_hook(fn)``: ``fn(grad)`` sees (and may replace) the gradient flowing into a
  tensor during backward; the engine checks that a replacement keeps the shape.
- ``register_post_accumulate_grad_hook(fn)``: ``fn(leaf)`` runs as soon as a leaf's
  ``.grad`` is final, while backward still runs (what data-parallel training overlaps
  its communication with).
- ``retain_grad()``: keep a computed tensor's gradient in its ``.grad``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from chainrule.errors import GraphError


class HookMethods:
    """Mixed into ``Tensor``, whose instances keep these rarely set fields in their
    ``__dict__`` (the ignores below: mypy sees only this class's empty slots)."""

    __slots__ = ()
    requires_grad: bool
    _node: Any
    _out_index: int
    _hooks: list[Callable[[Any], Any]] | None = None
    _post_accumulate_hooks: list[Callable[[Any], Any]] | None = None
    _retains_grad: bool = False
    grad: Any

    def register_hook(self, hook: Callable[[Any], Any]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook may return a tensor to use instead of the gradient. Returns a handle
        whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise GraphError("cannot register a hook on a tensor that does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []  # type: ignore[misc]
            hooks = self._hooks
            hooks.append(hook)
        else:
            self._node.register_hook(self._out_index, hook)
            assert self._node._hooks is not None
            hooks = self._node._hooks[self._out_index]
        return HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Any], None]) -> Any:
        """Call ``hook(self)`` as soon as this leaf's ``.grad`` is final during backward.

        PyTorch's hook of the same name: it runs while the backward pass is still
        computing the gradients of earlier layers, which is when data-parallel training
        starts sending this gradient to the other processes, and where a per-parameter
        clipping or logging step can act. The hook sees the accumulated ``.grad``; its
        return value is ignored. Returns a handle whose ``remove()`` unregisters it.

        Example:
            >>> import chainrule as cr
            >>> w = cr.ones(3, requires_grad=True)
            >>> handle = w.register_post_accumulate_grad_hook(lambda p: print(p.grad))
            >>> (w * 2).sum().backward()
            tensor([2., 2., 2.])
        """
        if self._node is not None:
            raise GraphError(
                "register_post_accumulate_grad_hook works on leaf tensors only (those with "
                "no grad_fn, such as parameters); use register_hook on computed tensors"
            )
        if not self.requires_grad:
            raise GraphError(
                "cannot register a post-accumulate hook on a tensor that does not require grad"
            )
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []  # type: ignore[misc]
        self._post_accumulate_hooks.append(hook)
        _POST_ACCUMULATE_HOOKS[0] += 1
        return HookHandle(self._post_accumulate_hooks, hook, _POST_ACCUMULATE_HOOKS)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward (once:
        calling it again changes nothing)."""
        if self._node is None or self.retains_grad:
            return
        self._retains_grad = True  # type: ignore[misc]
        # The hook lives on the node that made this tensor; a strong reference back to the
        # tensor would make a cycle (tensor -> node -> hook -> tensor) that keeps the whole
        # graph alive until the cyclic garbage collector happens to run.
        ref = weakref.ref(self)

        def keep(g: Any) -> None:
            t = ref()
            if t is not None:
                t.grad = g if t.grad is None else type(g)(t.grad.data + g.data)

        self.register_hook(keep)

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf tensor (PyTorch's name)."""
        return self._retains_grad


class HookHandle:
    """Returned by the ``register_*hook`` methods; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list[Any], hook: Any, counter: list[int] | None = None) -> None:
        self._hooks = hooks
        self._hook = hook
        self._counter = counter

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
            if self._counter is not None:
                self._counter[0] -= 1


# How many post-accumulate hooks exist, over all tensors: the engine counts each leaf's
# consumers (a pass over the graph) only while some exist, so they cost nothing otherwise.
_POST_ACCUMULATE_HOOKS = [0]


def post_accumulate_hook_count() -> int:
    """How many post-accumulate-grad hooks are registered on any tensor."""
    return _POST_ACCUMULATE_HOOKS[0]
