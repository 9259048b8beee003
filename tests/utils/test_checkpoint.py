"""``utils.checkpoint``: the gradients through a checkpointed block are the same bits as
without it (dropout included), whatever asks for them (``backward``, ``autograd.grad``,
second order); the forward keeps no graph inside the block; undeclared weights, changed
inputs and bad outputs are errors; ``checkpoint_sequential`` matches the plain chain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck
from chainrule.utils.checkpoint import CheckpointFunction, checkpoint, checkpoint_sequential

F64 = cr.float64


def _block() -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 10, dtype=F64), nn.Tanh(), nn.Dropout(0.3), nn.Linear(10, 6, dtype=F64)
    )


def _grads(model: nn.Module, x: cr.Tensor) -> list[np.ndarray]:
    """x's and every parameter's gradient; zeros for one that got none (a gradient
    penalty does not reach the last layer's bias)."""
    tensors = [x, *model.parameters()]
    return [np.zeros(t.shape) if t.grad is None else t.grad.numpy().copy() for t in tensors]


def _reset(model: nn.Module, x: cr.Tensor) -> None:
    x.grad = None
    for p in model.parameters():
        p.grad = None


def test_gradients_are_the_bits_of_the_plain_block_with_dropout() -> None:
    cr.manual_seed(0)
    model = _block()
    x = cr.randn(5, 6, dtype=F64, requires_grad=True)
    cr.manual_seed(1)
    plain = model(x * 2)
    (plain * plain).sum().backward()
    expected = _grads(model, x)
    _reset(model, x)
    cr.manual_seed(1)
    out = checkpoint(model, x * 2)
    np.testing.assert_array_equal(out.detach().numpy(), plain.detach().numpy())
    (out * out).sum().backward()
    for a, b in zip(_grads(model, x), expected, strict=True):
        np.testing.assert_array_equal(a, b)  # the recomputation drew the same masks
    later = cr.rand(3)  # and the random stream goes on as without the recomputation
    cr.manual_seed(1)
    model(x * 2)
    np.testing.assert_array_equal(later.numpy(), cr.rand(3).numpy())


def test_the_forward_keeps_no_graph_inside_the_block() -> None:
    model = _block()
    x = cr.randn(5, 6, dtype=F64, requires_grad=True)
    out = checkpoint(model, x)
    node = out.grad_fn
    assert isinstance(node, CheckpointFunction)
    inputs = [t for t in node.inputs if isinstance(t, cr.Tensor)]
    assert inputs[0] is x and len(inputs) == 1 + len(list(model.parameters()))
    assert node.saved_tensors[0] is x.data  # only the input is kept


def test_autograd_grad_leaves_every_dot_grad_alone() -> None:
    model = _block().eval()
    x = cr.randn(4, 6, dtype=F64, requires_grad=True)
    w = model[0].weight
    (gx, gw) = cr.autograd.grad(checkpoint(model, x).sum(), [x, w])
    (ex, ew) = cr.autograd.grad(model(x).sum(), [x, w])
    np.testing.assert_array_equal(gx.numpy(), ex.numpy())
    np.testing.assert_array_equal(gw.numpy(), ew.numpy())
    assert x.grad is None and all(p.grad is None for p in model.parameters())


def test_first_and_second_order_gradcheck_through_a_checkpoint() -> None:
    cr.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4, dtype=F64), nn.Tanh(), nn.Linear(4, 2, dtype=F64))
    x = cr.randn(2, 3, dtype=F64, requires_grad=True)
    w = model[0].weight

    def f(x: cr.Tensor, w: cr.Tensor) -> cr.Tensor:
        return checkpoint(model, x).sin()

    assert gradcheck(f, (x, w))
    assert gradgradcheck(f, (x, w))


def test_a_gradient_penalty_through_a_checkpoint_matches_the_plain_one() -> None:
    cr.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 5, dtype=F64), nn.Tanh(), nn.Linear(5, 1, dtype=F64))
    x = cr.randn(4, 3, dtype=F64, requires_grad=True)
    results = []
    for wrap in (False, True):
        _reset(model, x)
        y = checkpoint(model, x) if wrap else model(x)
        (g,) = cr.autograd.grad(y.sum(), [x], create_graph=True)
        (g * g).sum().backward()
        results.append(_grads(model, x))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_a_plain_function_names_its_weights_or_is_stopped() -> None:
    w = cr.randn(6, 6, dtype=F64, requires_grad=True)
    x = cr.randn(2, 6, dtype=F64, requires_grad=True)

    def f(x: cr.Tensor) -> cr.Tensor:
        return (x @ w).tanh()

    with pytest.raises(cr.GraphError, match=r"reads 1 tensor\(s\) that need gradients.*params"):
        checkpoint(f, x).sum().backward()
    x.grad = None
    checkpoint(f, x, params=[w]).sum().backward()
    (ex, ew) = cr.autograd.grad(f(x).sum(), [x, w])
    np.testing.assert_allclose(x.grad.numpy(), ex.numpy(), rtol=1e-14)
    np.testing.assert_allclose(w.grad.numpy(), ew.numpy(), rtol=1e-14)


def test_several_outputs_keyword_arguments_and_a_bound_method() -> None:
    model = _block().eval()
    x = cr.randn(3, 6, dtype=F64, requires_grad=True)

    def two(x: cr.Tensor, scale: float = 1.0) -> tuple[cr.Tensor, cr.Tensor]:
        return model(x) * scale, x.exp()

    a, b = checkpoint(two, x, params=model.parameters(), scale=3.0)
    (a.sum() + b.sum()).backward()
    got = _grads(model, x)
    _reset(model, x)
    a, b = two(x, scale=3.0)
    (a.sum() + b.sum()).backward()
    for u, v in zip(got, _grads(model, x), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-14)
    _reset(model, x)
    checkpoint(model.forward, x).sum().backward()  # the method's Module gives the params
    assert all(p.grad is not None for p in model.parameters())


def test_errors_and_the_path_without_gradients() -> None:
    x = cr.randn(2, 3, requires_grad=True)
    with pytest.raises(TypeError, match="must return a Tensor or a tuple of Tensors"):
        checkpoint(lambda t: [t * 2], x)
    y = checkpoint(lambda t: t * 2, x)
    with cr.no_grad():
        x.add_(1)  # changed in place before the backward: the recomputation would lie
    with pytest.raises(cr.GraphError):
        y.sum().backward()
    with cr.no_grad():
        assert checkpoint(lambda t: t * 2, x).grad_fn is None
    with pytest.raises(ValueError, match="segments must be between 1 and the 2 modules"):
        checkpoint_sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 3, cr.randn(1, 2))


@pytest.mark.parametrize("segments", [1, 2, 3])
def test_checkpoint_sequential_matches_the_plain_chain(segments: int) -> None:
    cr.manual_seed(4)
    model = nn.Sequential(*[nn.Linear(5, 5, dtype=F64) for _ in range(3)], nn.Tanh())
    x = cr.randn(2, 5, dtype=F64, requires_grad=True)
    (model(x) ** 2).sum().backward()
    expected = _grads(model, x)
    _reset(model, x)
    (checkpoint_sequential(model, segments, x) ** 2).sum().backward()
    for a, b in zip(_grads(model, x), expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def _nodes_between(y: Any) -> int:
    seen, stack = set(), [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(t.grad_fn for t in node.inputs if isinstance(t, cr.Tensor))
    return len(seen)


def test_a_checkpointed_stack_records_one_node_per_block() -> None:
    blocks = [_block().eval() for _ in range(4)]
    x = cr.randn(2, 6, dtype=F64, requires_grad=True)
    plain = x
    for b in blocks:
        plain = b(plain)
    kept = x
    for b in blocks:
        kept = checkpoint(b, kept)
    assert _nodes_between(kept) == 4 < _nodes_between(plain)
