"""The engine: order, fan-out sums, un-broadcasting, freeing, hooks, errors."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd.engine import topological_order, unbroadcast


def test_chain_of_100k_ops_backpropagates_without_recursion() -> None:
    x = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), [1.0000001**100_000], rtol=1e-9)


def test_topological_order_handles_100k_nodes() -> None:
    x = cr.ones(1, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    order = topological_order([y.grad_fn])
    assert len(order) == 100_000
    assert order[0] is y.grad_fn


def test_fan_out_gradients_add_duplicate() -> None:
    # The lecture's Duplicate: x feeds two branches, its gradient is the sum of both.
    x = cr.tensor([2.0, -3.0], dtype=cr.float64, requires_grad=True)
    y = x * 3.0 + x.exp()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 + np.exp([2.0, -3.0]))


def test_diamond_graph() -> None:
    #      a
    #    /   \
    #   b     c        b = a², c = sin-like (tanh), d = b * c
    #    \   /
    #      d
    a = cr.tensor([0.3, -1.2, 2.0], dtype=cr.float64, requires_grad=True)
    b = a * a
    c = a.tanh()
    d = (b * c).sum()
    d.backward()
    av = np.array([0.3, -1.2, 2.0])
    expected = 2 * av * np.tanh(av) + av**2 * (1 - np.tanh(av) ** 2)
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-12)


def test_nested_diamonds_each_node_runs_once() -> None:
    x = cr.tensor([1.5], dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(30):  # 2^30 paths: a walk per path would never finish
        y = y * 0.5 + y * 0.5
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_gradients_accumulate_across_backward_calls() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


def test_grad_is_a_tensor_that_owns_its_memory() -> None:
    # Add passes its upstream gradient to both inputs: the two .grad must not alias.
    a = cr.zeros(3, requires_grad=True)
    b = cr.zeros(3, requires_grad=True)
    (a + b).sum().backward()
    assert isinstance(a.grad, cr.Tensor)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] = 7
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0, 1.0])


def test_user_gradient_is_not_aliased() -> None:
    x = cr.zeros(2, requires_grad=True)
    g = np.ones(2, dtype=np.float32)
    (x + 0.0).backward(gradient=g)
    x.grad.data[...] = 5
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_broadcast_gradients_are_summed_back() -> None:
    x = cr.ones(4, 3, requires_grad=True)
    b = cr.ones(3, requires_grad=True)
    c = cr.ones(4, 1, requires_grad=True)
    (x * b + c).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [4.0, 4.0, 4.0])
    np.testing.assert_allclose(c.grad.numpy(), [[3.0]] * 4)
    assert b.grad.shape == (3,) and c.grad.shape == (4, 1)


def test_unbroadcast_rejects_incompatible_shape() -> None:
    with pytest.raises(cr.ShapeError, match=r"\(2, 3\).*\(4,\)"):
        unbroadcast(np.ones((2, 3)), (4,), "Op")


def test_graph_is_freed_and_second_backward_raises() -> None:
    x = cr.ones(2, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(cr.GraphError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_of_non_scalar_needs_gradient() -> None:
    x = cr.ones(2, 3, requires_grad=True)
    with pytest.raises(cr.GraphError, match=r"scalar.*\(2, 3\).*gradient="):
        (x * 2).backward()
    (x * 2).backward(gradient=cr.ones(2, 3))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_gradient_shape_is_checked() -> None:
    x = cr.ones(2, 3, requires_grad=True)
    with pytest.raises(cr.ShapeError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(gradient=cr.ones(3))


def test_backward_on_tensor_without_graph_raises() -> None:
    with pytest.raises(cr.GraphError, match="does not require grad"):
        cr.ones(2).sum().backward()


def test_no_grad_context_and_decorator() -> None:
    x = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @cr.no_grad()
    def f(t: cr.Tensor) -> cr.Tensor:
        return t * 2

    assert not f(x).requires_grad
    assert cr.is_grad_enabled()
    with cr.no_grad(), cr.enable_grad():
        assert (x * 2).requires_grad


def test_set_grad_enabled() -> None:
    x = cr.ones(2, requires_grad=True)
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cr.is_grad_enabled()


def test_leaf_hook_sees_and_replaces_gradient() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_non_leaf_hook_sees_total_gradient_and_can_replace_it() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h * 3 + h).sum().backward()  # h fans out: its hook sees the sum, 3 + 1
    np.testing.assert_allclose(seen[0], [4.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 8.0])

    x.grad = None
    h = x * 2
    h.register_hook(lambda g: g * 0)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])


def test_retain_grad_on_intermediate() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [4.0, 8.0])


def test_inplace_change_of_saved_tensor_is_detected() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with cr.no_grad():
        y += 1  # Exp saved y for its backward
    with pytest.raises(cr.GraphError, match="in-place"):
        y.sum().backward()


def test_inplace_change_of_saved_input_is_detected() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    a = cr.tensor([3.0, 4.0])
    y = w * a  # Mul saved a
    a.mul_(2)
    with pytest.raises(cr.GraphError, match="MulBackward"):
        y.sum().backward()


def test_inplace_change_through_a_view_is_detected() -> None:
    w = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = cr.tensor([3.0, 4.0, 5.0])
    y = w * a
    a[1:].mul_(2)  # a view shares memory and the version counter with a
    with pytest.raises(cr.GraphError):
        y.sum().backward()


def test_inplace_change_of_unsaved_tensor_is_fine() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    a = cr.tensor([3.0, 4.0])
    y = w + a  # Add saves nothing
    a.mul_(2)
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0])


def test_inplace_on_tensor_requiring_grad_is_refused() -> None:
    w = cr.ones(2, requires_grad=True)
    with pytest.raises(cr.GraphError, match="no_grad"):
        w += 1
    with cr.no_grad():
        w -= 0.5
    np.testing.assert_allclose(w.numpy() if not w.requires_grad else w.detach().numpy(), [0.5, 0.5])


def test_define_by_run_loop_over_variable_length_sequence() -> None:
    # A tiny recurrent net: the graph's depth is the sequence's length, chosen by the data.
    w = cr.tensor([[0.5, -0.3], [0.2, 0.8]], dtype=cr.float64, requires_grad=True)
    u = cr.tensor([0.7, -0.4], dtype=cr.float64, requires_grad=True)

    def run(seq: list[float]) -> cr.Tensor:
        h = cr.zeros(2, dtype=cr.float64)
        for value in seq:
            h = (h @ w + u * value).tanh()
        return h.sum()

    for length in (1, 3, 6):
        seq = [0.1 * (i + 1) for i in range(length)]
        assert cr.autograd.gradcheck(lambda ww, uu, s=seq: _rnn(ww, uu, s), (w, u))
        w.grad = u.grad = None
        run(seq).backward()
        assert w.grad is not None and w.grad.shape == (2, 2)


def _rnn(w: cr.Tensor, u: cr.Tensor, seq: list[float]) -> cr.Tensor:
    h = cr.zeros(2, dtype=cr.float64)
    for value in seq:
        h = (h @ w + u * value).tanh()
    return h.sum()


def test_data_dependent_branch() -> None:
    x = cr.tensor([3.0], dtype=cr.float64, requires_grad=True)
    y = x * x if x.item() > 0 else -x
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_memory_does_not_grow_over_2000_iterations() -> None:
    w1 = cr.randn(64, 32, requires_grad=True)
    w2 = cr.randn(32, 10, requires_grad=True)
    x = cr.randn(16, 64)

    def step() -> None:
        loss = ((x @ w1).relu() @ w2).log_softmax(1).mean()
        loss.backward()
        with cr.no_grad():
            w1.sub_(1e-4 * w1.grad)
            w2.sub_(1e-4 * w2.grad)
        w1.grad = w2.grad = None

    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    for _ in range(200):
        step()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(1800):
        step()
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current - base < 256 * 1024, f"memory grew by {current - base} bytes"


def test_no_reference_cycles_keep_graphs_alive() -> None:
    import weakref

    x = cr.randn(8, requires_grad=True)
    y = (x.exp() * 2).sum()
    node = weakref.ref(y.grad_fn)
    del y
    assert node() is None  # freed by reference counting alone, without the cycle collector


def test_fresh_gradient_array_is_adopted_without_a_copy() -> None:

    made: list[Any] = []

    class Twice(cr.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            made.append(g * 2)
            return made[-1]

    x = cr.ones(3, requires_grad=True)
    Twice.apply(x).sum().backward()
    # The engine holds the only other reference, yet `made` holds one too: copied.
    assert x.grad.data is not made[0]
    x.grad = None
    made.clear()

    class TwiceFresh(Twice):
        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            out = g * 2
            made.append(id(out))
            return out

    TwiceFresh.apply(x).sum().backward()
    assert id(x.grad.data) == made[0]  # nobody else holds it: adopted as it is


def test_zero_dim_results_are_arrays() -> None:
    y = cr.tensor(1.0, requires_grad=True).exp()
    assert isinstance(y.data, np.ndarray) and y.data.shape == ()


def test_backward_with_inputs_does_not_alias_the_seed() -> None:
    x = cr.zeros(2, requires_grad=True)
    z = cr.zeros(2, requires_grad=True)
    g = np.ones(2, dtype=np.float32)
    (x + z).backward(gradient=g, inputs=[x, z])
    assert not np.shares_memory(x.grad.data, g) and not np.shares_memory(x.grad.data, z.grad.data)
    np.testing.assert_array_equal(z.grad.numpy(), [1.0, 1.0])


class _Counted(cr.autograd.Function):
    """y = 2x, counting its backward calls."""

    calls = 0

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * 2

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        _Counted.calls += 1
        return g * 2


def test_grad_runs_only_the_nodes_between_the_outputs_and_the_inputs() -> None:
    # PyTorch's rule: autograd.grad(y, [h]) for h in the middle of the graph does not run
    # the nodes that made h (their work, their tensors' hooks), nor branches that lead to
    # no input; the gradients it returns are unchanged.
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    fired: list[str] = []
    a.register_hook(lambda g: fired.append("a") or g)
    _Counted.calls = 0
    h = _Counted.apply(a) * 3
    other = cr.tensor([0.5, 0.5], requires_grad=True)
    y = (h * h).sum() + _Counted.apply(other).sum()
    (gh,) = cr.autograd.grad(y, [h], retain_graph=True)
    np.testing.assert_array_equal(gh.numpy(), 2 * h.detach().numpy())
    assert fired == [] and _Counted.calls == 0
    y.backward()  # the nodes grad() left alone still have what their backward needs
    assert fired == ["a"] and _Counted.calls == 2
    np.testing.assert_array_equal(a.grad.numpy(), 2 * h.detach().numpy() * 3 * 2)


def test_backward_with_inputs_also_stops_at_them() -> None:
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    _Counted.calls = 0
    h = _Counted.apply(a)
    h.retain_grad()
    h.retain_grad()  # twice: still one gradient (it was added twice before)
    assert h.retains_grad and not a.retains_grad
    y = (h * h).sum()
    y.backward(inputs=[h])  # the retain_grad hook and the inputs' capture: counted once
    np.testing.assert_array_equal(h.grad.numpy(), 2 * h.detach().numpy())
    assert a.grad is None and _Counted.calls == 0
