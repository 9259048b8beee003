"""Regression tests for the core defects found by the differential fuzzer and the fault
campaign (issue "Reliability"): each failed before its fix."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from typing import Any

import numpy as np
import pytest

import chainrule as cr


# -- wrong numbers --------------------------------------------------------------------------
def test_pow_zero_at_zero_has_zero_gradient() -> None:
    x = cr.tensor([0.0, 2.0], requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    v = cr.tensor([-1.0, 3.0], requires_grad=True)
    (v.relu() ** 0).sum().backward()  # relu(v) is 0 at v = -1
    np.testing.assert_array_equal(v.grad.numpy(), [0.0, 0.0])


def test_pow_zero_at_zero_second_order_is_finite() -> None:
    x = cr.tensor([0.0, 2.0], dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad((x**0).sum(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x, allow_unused=True)
    assert h is None or np.isfinite(h.numpy()).all()


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: cr.maximum(a, b),
        lambda a, b: cr.minimum(a, b),
        lambda a, b: cr.amax(a + b),
        lambda a, b: cr.amin(a + b, dim=0),
        lambda a, b: (a * b).max(),
    ],
)
def test_float32_leaves_get_float32_gradients(fn: Any) -> None:
    a = cr.tensor([1.0, 2.0, 2.0], requires_grad=True)
    b = cr.tensor([1.0, 0.0, 2.0], requires_grad=True)
    out = fn(a, b).sum()
    ga, gb = cr.autograd.grad(out, [a, b], retain_graph=True)
    assert ga.dtype == cr.float32 and gb.dtype == cr.float32
    out.backward()
    assert a.grad.dtype == cr.float32 and b.grad.dtype == cr.float32


def test_zero_dim_leaf_gradient_keeps_its_dtype() -> None:
    s = cr.tensor(2.0, requires_grad=True)
    (cr.maximum(s, s) * 3).backward()
    assert s.grad.dtype == cr.float32 and s.grad.shape == ()


@pytest.mark.parametrize("method", ["exp", "sqrt", "sigmoid", "tanh", "log", "softplus"])
def test_integer_tensors_give_the_default_float(method: str) -> None:
    out = getattr(cr.tensor([1, 2, 3]), method)()
    assert out.dtype == cr.float32


def test_hook_changing_the_shape_is_refused_on_a_leaf() -> None:
    w = cr.ones(3, requires_grad=True)
    w.register_hook(lambda g: g.sum())
    with pytest.raises(
        cr.ShapeError, match=r"changed the size of the gradient from \(3,\) to \(\)"
    ):
        (w * 2).sum().backward()


def test_hook_changing_the_shape_is_refused_on_an_intermediate() -> None:
    w = cr.ones(3, requires_grad=True)
    h = w * 2
    h.register_hook(lambda g: cr.ones(1))
    with pytest.raises(cr.ShapeError, match="changed the size"):
        h.sum().backward()


def test_hook_returning_a_string_says_what_a_hook_must_return() -> None:
    w = cr.ones(3, requires_grad=True)
    w.register_hook(lambda g: "oops")
    with pytest.raises(TypeError, match="returned a str; a hook must return None"):
        (w * 2).sum().backward()


# -- threads and memory ---------------------------------------------------------------------
def test_no_grad_in_one_thread_does_not_stop_recording_in_another() -> None:
    stop = threading.Event()

    def loop_in_no_grad() -> None:
        while not stop.is_set():
            with cr.no_grad():
                pass

    t = threading.Thread(target=loop_in_no_grad)
    t.start()
    try:
        x = cr.ones(2, requires_grad=True)
        recorded = sum((x * 2).requires_grad for _ in range(2000))
    finally:
        stop.set()
        t.join()
    assert recorded == 2000
    assert cr.is_grad_enabled()


def _train(seed: int, steps: int) -> np.ndarray:
    cr.manual_seed(seed)
    gen = cr.Generator(seed)
    model = cr.nn.Sequential(
        cr.nn.Linear(8, 16, generator=gen), cr.nn.Tanh(), cr.nn.Linear(16, 3, generator=gen)
    )
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    data = np.random.default_rng(seed)
    x = cr.tensor(data.standard_normal((32, 8)).astype(np.float32))
    y = cr.tensor(data.integers(0, 3, 32))
    for _ in range(steps):
        opt.zero_grad()
        cr.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        with cr.no_grad():  # another thread's no_grad must not leak into this one
            model(x)
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def test_two_threads_train_two_models_to_the_sequential_weights() -> None:
    expected = {seed: _train(seed, 30) for seed in (1, 2)}
    results: dict[int, Any] = {}

    def run(seed: int) -> None:
        try:
            results[seed] = _train(seed, 30)
        except BaseException as exc:
            results[seed] = exc

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        assert not isinstance(results[seed], BaseException), results[seed]
        np.testing.assert_array_equal(results[seed], expected[seed])


def test_retain_grad_makes_no_reference_cycle() -> None:
    x = cr.randn(4, requires_grad=True)
    h = x * 2
    h.retain_grad()
    node = weakref.ref(h.grad_fn)
    h.sum().backward()
    assert h.grad is not None
    gc.disable()
    try:
        del h
        assert node() is None, "the graph outlived its last tensor: a reference cycle"
    finally:
        gc.enable()


def test_retain_grad_loop_memory_stays_flat() -> None:
    w = cr.randn(256, 256, requires_grad=True)

    def step() -> None:
        h = (w @ w).tanh()
        h.retain_grad()
        h.sum().backward()
        w.grad = None

    gc.disable()
    try:
        for _ in range(5):
            step()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            step()
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
    finally:
        gc.enable()
    assert grown < 2_000_000, f"memory grew by {grown} bytes over 50 steps"


# -- bad input --------------------------------------------------------------------------------
def test_string_tensor_is_refused() -> None:
    with pytest.raises(cr.DTypeError, match="holding strings"):
        cr.tensor("abc")


def test_integer_too_large_for_int64_is_a_clear_error() -> None:
    with pytest.raises(cr.DTypeError, match=r"does not fit in int64.*float"):
        cr.tensor(2**70)
    with pytest.raises(cr.DTypeError, match=r"integer 1180591620717411303424: .*int64"):
        cr.tensor([1, 2**70])


def test_inplace_change_of_an_expand_view_names_the_view() -> None:
    x = cr.ones(3, 1).expand(3, 4)
    with cr.no_grad(), pytest.raises(cr.GraphError, match=r"expand\(\).*clone\(\)"):
        x += 1
