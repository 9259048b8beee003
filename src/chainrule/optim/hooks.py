"""Step hooks: functions run before and after ``Optimizer.step``, with PyTorch's semantics.

A hook is called as ``hook(optimizer, args, kwargs)``, where ``args`` holds the positional
arguments of the ``step`` call *including the optimizer itself* (``(optimizer,)`` or
``(optimizer, closure)``, as in PyTorch) and ``kwargs`` the keyword ones. A pre-hook may
return a new ``(args, kwargs)`` for ``step`` to run with. The order is: global pre-hooks,
the optimizer's pre-hooks, ``step``, the optimizer's post-hooks, global post-hooks; each
list in the order of registration.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from chainrule.nn.module import RemovableHandle

# hook(optimizer, args, kwargs): a pre-hook may return (new_args, new_kwargs).
StepPreHook = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]
StepPostHook = Callable[[Any, tuple[Any, ...], dict[str, Any]], None]

_ids = itertools.count()  # one counter: the same function may be registered twice


class StepHooks:
    """The pre- and post-hooks of one optimizer (or the global ones), and how they run."""

    def __init__(self) -> None:
        self.pre: dict[int, StepPreHook] = {}
        self.post: dict[int, StepPostHook] = {}
        self.running = False

    def add_pre(self, hook: StepPreHook) -> RemovableHandle:
        key = next(_ids)
        self.pre[key] = hook
        return RemovableHandle(self.pre, key)

    def add_post(self, hook: StepPostHook) -> RemovableHandle:
        key = next(_ids)
        self.post[key] = hook
        return RemovableHandle(self.post, key)

    def call(self, step: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``step(*args, **kwargs)`` between the global and these hooks.

        A ``step`` that calls ``super().step()`` comes back here while running: the hooks
        then run only once, around the outer call.
        """
        if self.running:
            return step(*args, **kwargs)
        optimizer = args[0]
        self.running = True
        try:
            for hook in (*GLOBAL.pre.values(), *self.pre.values()):
                result = hook(optimizer, args, kwargs)
                if result is None:
                    continue
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{type(optimizer).__name__}: the step pre-hook {hook!r} returned "
                        f"{type(result).__name__} {result!r}; a pre-hook returns None or a "
                        f"tuple (new_args, new_kwargs)"
                    )
                args, kwargs = result
            loss = step(*args, **kwargs)
            for hook in (*self.post.values(), *GLOBAL.post.values()):
                hook(optimizer, args, kwargs)
        finally:
            self.running = False
        return loss


GLOBAL = StepHooks()


def register_optimizer_step_pre_hook(hook: StepPreHook) -> RemovableHandle:
    """Register a hook run before the ``step()`` of every optimizer (PyTorch's global hook).

    Global pre-hooks run before each optimizer's own pre-hooks; see
    ``Optimizer.register_step_pre_hook`` for the signature.

    Returns:
        A handle whose ``remove()`` unregisters the hook.
    """
    return GLOBAL.add_pre(hook)


def register_optimizer_step_post_hook(hook: StepPostHook) -> RemovableHandle:
    """Register a hook run after the ``step()`` of every optimizer (PyTorch's global hook).

    Global post-hooks run after each optimizer's own post-hooks; see
    ``Optimizer.register_step_post_hook`` for the signature.

    Returns:
        A handle whose ``remove()`` unregisters the hook.
    """
    return GLOBAL.add_post(hook)
