"""Step hooks (PyTorch's semantics) and the per-parameter loop the rules share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)


def _leaf(*values: float) -> cr.Tensor:
    return cr.tensor(np.array(values), requires_grad=True)


def _stepped(opt: optim.Optimizer, w: cr.Tensor) -> None:
    opt.zero_grad()
    (w * w).sum().backward()
    opt.step()


@pytest.fixture
def calls() -> Iterator[list[Any]]:
    """A log, and global hooks that write to it (removed after the test)."""
    log: list[Any] = []
    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: log.append("global pre")),
        register_optimizer_step_post_hook(lambda o, a, k: log.append("global post")),
    ]
    yield log
    for handle in handles:
        handle.remove()


def test_hooks_run_in_pytorch_order(calls: list[Any]) -> None:
    w = _leaf(1.0)
    opt = optim.SGD([w], lr=0.5)
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre 1"))
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre 2"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post 1"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post 2"))
    _stepped(opt, w)
    assert calls == ["global pre", "pre 1", "pre 2", "post 1", "post 2", "global post"]


def test_hooks_see_the_parameters_before_and_after_the_update() -> None:
    w = _leaf(1.0, -2.0)
    opt = optim.SGD([w], lr=0.25)
    seen: dict[str, Any] = {}
    opt.register_step_pre_hook(lambda o, a, k: seen.update(before=w.data.copy()))
    opt.register_step_post_hook(lambda o, a, k: seen.update(after=w.data.copy()))
    _stepped(opt, w)
    assert np.array_equal(seen["before"], [1.0, -2.0])
    assert np.array_equal(seen["after"], [0.5, -1.0])  # w − 0.25·2w


def test_hooks_get_the_optimizer_and_the_call_arguments() -> None:
    # As in PyTorch, args holds the positional arguments including the optimizer.
    w = _leaf(1.0)
    opt = optim.Adam([w], lr=0.1)
    seen: list[tuple[Any, ...]] = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append(("pre", o, a, dict(k))))
    opt.register_step_post_hook(lambda o, a, k: seen.append(("post", o, a, dict(k))))
    (w * w).sum().backward()
    opt.step()
    opt.step(None)
    opt.step(closure=None)
    assert seen == [
        ("pre", opt, (opt,), {}),
        ("post", opt, (opt,), {}),
        ("pre", opt, (opt, None), {}),
        ("post", opt, (opt, None), {}),
        ("pre", opt, (opt,), {"closure": None}),
        ("post", opt, (opt,), {"closure": None}),
    ]


def test_pre_hook_can_replace_the_arguments() -> None:
    w = _leaf(3.0)
    opt = optim.SGD([w], lr=0.5)

    def closure() -> cr.Tensor:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda o, a, k: ((o,), {"closure": closure}))
    posted: list[dict[str, Any]] = []
    opt.register_step_post_hook(lambda o, a, k: posted.append(k))
    loss = opt.step()  # no closure given: the hook supplies one
    assert loss is not None and loss.item() == 9.0
    assert w.item() == 0.0  # 3 − 0.5·6
    assert posted == [{"closure": closure}]  # post-hooks see what the pre-hook made


def test_pre_hook_returning_something_else_is_an_error() -> None:
    w = _leaf(1.0)
    opt = optim.SGD([w], lr=0.5)
    opt.register_step_pre_hook(lambda o, a, k: "oops")
    with pytest.raises(RuntimeError, match=r"returned str 'oops'.*None or a tuple"):
        opt.step()


def test_removed_hooks_stop_running(calls: list[Any]) -> None:
    w = _leaf(1.0)
    opt = optim.SGD([w], lr=0.5)
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    post = opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    _stepped(opt, w)
    pre.remove()
    _stepped(opt, w)
    post.remove()
    pre.remove()  # a second remove is harmless
    _stepped(opt, w)
    assert calls == [
        *("global pre", "pre", "post", "global post"),
        *("global pre", "post", "global post"),
        *("global pre", "global post"),
    ]


def test_the_same_function_can_be_registered_twice() -> None:
    w = _leaf(1.0)
    opt = optim.SGD([w], lr=0.5)
    log: list[int] = []

    def hook(o: Any, a: Any, k: Any) -> None:
        log.append(1)

    first = opt.register_step_pre_hook(hook)
    opt.register_step_pre_hook(hook)
    opt.step()
    first.remove()
    opt.step()
    assert log == [1, 1, 1]


def test_hooks_are_per_optimizer() -> None:
    a, b = _leaf(1.0), _leaf(1.0)
    opt_a, opt_b = optim.SGD([a], lr=0.5), optim.SGD([b], lr=0.5)
    log: list[str] = []
    opt_a.register_step_pre_hook(lambda o, args, k: log.append("a"))
    opt_b.step()
    opt_a.step()
    assert log == ["a"]


class _SignSGD(optim.Optimizer):
    """A user's rule written the way the built-in ones are: w ← w − η·sign(∂C/∂w)."""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    def _init_state(self, state: dict[str, Any], w: Any, group: dict[str, Any]) -> None:
        state["step"] = 0

    def _update(self, w: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["step"] += 1
        w -= group["lr"] * np.sign(g)


def test_a_rule_is_two_methods_and_the_loop_does_the_rest() -> None:
    used, unused = _leaf(2.0, -3.0), _leaf(5.0)
    opt = _SignSGD([used, unused], lr=0.5)
    loss = (used * used).sum()
    loss.backward(retain_graph=True)
    opt.step()
    opt.step()
    assert np.array_equal(used.data, [1.0, -2.0])
    assert opt.state[used] == {"step": 2}
    assert unused not in opt.state  # no gradient: no state, no change
    with pytest.raises(cr.GraphError, match="modified by an in-place operation"):
        loss.backward()  # the loop recorded the in-place change


class _LoggedSGD(optim.SGD):
    """A subclass with a step of its own that calls the base step."""

    def step(self, closure: Any = None) -> Any:
        self.log.append("step")
        return super().step(closure)


def test_a_subclass_step_runs_the_hooks_once() -> None:
    w = _leaf(1.0)
    opt = _LoggedSGD([w], lr=0.5)
    opt.log = []  # type: ignore[attr-defined]
    opt.register_step_pre_hook(lambda o, a, k: o.log.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: o.log.append("post"))
    _stepped(opt, w)
    assert opt.log == ["pre", "step", "post"]  # type: ignore[attr-defined]
    assert w.item() == 0.0


def _record_hooks(hooks: Any, opt: Any, log: list[str]) -> list[Any]:
    """Register global and per-optimizer hooks that describe what they get in ``log``."""
    opt.register_step_pre_hook(lambda o, a, k: log.append(f"pre {a[0] is o}"))
    opt.register_step_post_hook(lambda o, a, k: log.append(f"post {sorted(k)}"))
    return [
        hooks.register_optimizer_step_pre_hook(lambda o, a, k: log.append("gpre")),
        hooks.register_optimizer_step_post_hook(lambda o, a, k: log.append(f"gpost {len(a)}")),
    ]


def test_hook_order_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    torch_optimizer = pytest.importorskip("torch.optim.optimizer")
    logs: dict[str, list[str]] = {"cr": [], "torch": []}
    for lib, opt, hooks in (
        ("cr", cr.optim.SGD([cr.zeros(2, requires_grad=True)], lr=0.1), cr.optim.optimizer),
        ("torch", torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1), torch_optimizer),
    ):
        handles = _record_hooks(hooks, opt, logs[lib])
        opt.step()
        opt.step(closure=None)
        for handle in handles:
            handle.remove()
    assert logs["cr"] == logs["torch"]
    assert logs["cr"][:4] == ["gpre", "pre True", "post []", "gpost 1"]
