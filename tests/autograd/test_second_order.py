"""Gradients of gradients: known answers, PyTorch parity, the functional tools, hooks."""

from __future__ import annotations

import gc
import math
import tracemalloc
from typing import Any

import numpy as np
import pytest

import chainrule as cr

try:
    import torch
except ImportError:  # pragma: no cover - the known answers run without torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed (parity only)")
RNG = np.random.default_rng(0)


def _t(a: Any) -> cr.Tensor:
    return cr.tensor(np.asarray(a, dtype=np.float64))


# -- known answers --------------------------------------------------------------------------
def test_hessian_of_quadratic_form_is_a_plus_a_transpose() -> None:
    a = RNG.standard_normal((4, 4))
    x = _t(RNG.standard_normal(4))
    h = cr.autograd.hessian(lambda v: v @ _t(a) @ v, x)
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h.numpy(), a + a.T, rtol=1e-12, atol=1e-12)


def test_hessian_of_logsumexp_is_diag_p_minus_p_p_transpose() -> None:
    x = RNG.standard_normal(5)
    p = np.exp(x - np.log(np.exp(x).sum()))
    h = cr.autograd.hessian(lambda v: v.logsumexp(0), _t(x))
    np.testing.assert_allclose(h.numpy(), np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-14)


def test_third_derivative_of_tanh() -> None:
    # d³/dx³ tanh x = −2 sech²x (1 − 3 tanh²x) = 6 tanh²x sech²x − 2 sech²x... in closed form:
    x0 = 0.7
    t = math.tanh(x0)
    expected = -2 * (1 - t * t) * (1 - 3 * t * t)
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    (d1,) = cr.autograd.grad(x.tanh(), x, create_graph=True)
    (d2,) = cr.autograd.grad(d1, x, create_graph=True)
    (d3,) = cr.autograd.grad(d2, x)
    assert d1.item() == pytest.approx(1 - t * t, rel=1e-14)
    assert d2.item() == pytest.approx(-2 * t * (1 - t * t), rel=1e-14)
    assert d3.item() == pytest.approx(expected, rel=1e-12)


def test_backward_create_graph_accumulates_a_differentiable_grad() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert x.grad is not None and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 12.0])
    g = x.grad
    x.grad = None
    g.sum().backward()  # d/dx Σ 3x² = 6x
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


def test_hvp_vhp_jvp_known_answers() -> None:
    a = RNG.standard_normal((3, 3))
    sym = a + a.T
    x, v = _t(RNG.standard_normal(3)), _t(RNG.standard_normal(3))
    f = lambda t: 0.5 * (t @ _t(sym) @ t)  # noqa: E731  (H = sym)
    value, hv = cr.autograd.hvp(f, x, v)
    np.testing.assert_allclose(hv.numpy(), sym @ v.numpy(), rtol=1e-12)
    assert value.item() == pytest.approx(0.5 * x.numpy() @ sym @ x.numpy())
    _, vh = cr.autograd.vhp(f, x, v)
    np.testing.assert_allclose(vh.numpy(), v.numpy() @ sym, rtol=1e-12)
    out, jv = cr.autograd.jvp(lambda t: _t(a) @ t, x, v)
    np.testing.assert_allclose(jv.numpy(), a @ v.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), a @ x.numpy(), rtol=1e-12)


def test_jacobian_with_create_graph_is_differentiable() -> None:
    x = cr.tensor([0.3, -0.4], dtype=cr.float64, requires_grad=True)
    jac = cr.autograd.jacobian(lambda t: t.tanh() * t, x, create_graph=True)
    assert jac.requires_grad
    np.testing.assert_allclose(
        cr.autograd.jacobian(lambda t: t.tanh() * t, x).numpy(), jac.detach().numpy()
    )


def test_functional_namespace_matches_pytorch_names() -> None:
    for name in ("jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"):
        assert getattr(cr.autograd.functional, name) is getattr(cr.autograd, name)


# -- parity with PyTorch's double backward ------------------------------------------------
def _random_dag(lib: Any, x: Any, w: Any) -> Any:
    """The same DAG of many ops (fan-out, broadcasting, reductions, indexing) in both
    libraries: ``lib`` is chainrule or torch."""
    h = (x @ w).tanh()
    a = h.sigmoid() * h  # fan-out of h
    b = (h * h + 1.0).log() - a.exp() / 3.0
    c = lib.maximum(a, b) + lib.minimum(a, b).relu() ** 2
    d = c.softmax(-1) * c.log_softmax(-1)
    e = (d[:, 1:] + d[:, :1]).sum(-1) + (c.abs() + 0.5).sqrt().mean(-1)
    return (e * e).sum() + c.logsumexp(-1).sum() + (h[[0, 2, 0]] ** 3).sum()


@needs_torch
def test_hessian_of_a_random_dag_matches_pytorch() -> None:
    x0 = RNG.standard_normal((3, 4))
    w0 = RNG.standard_normal((4, 5)) * 0.7
    ours = cr.autograd.hessian(lambda x, w: _random_dag(cr, x, w), (_t(x0), _t(w0)))
    theirs = torch.autograd.functional.hessian(
        lambda x, w: _random_dag(torch, x, w), (torch.tensor(x0), torch.tensor(w0))
    )
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(
                ours[i][j].numpy(), theirs[i][j].numpy(), rtol=1e-10, atol=1e-10
            )


@needs_torch
def test_hvp_vhp_jvp_match_torch_autograd_functional() -> None:
    x0, w0 = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 5)) * 0.7
    v0 = RNG.standard_normal((3, 4))
    tf = torch.autograd.functional
    w_cr, w_t = _t(w0), torch.tensor(w0)
    for ours, theirs in ((cr.autograd.hvp, tf.hvp), (cr.autograd.vhp, tf.vhp)):
        value, prod = ours(lambda x: _random_dag(cr, x, w_cr), _t(x0), _t(v0))
        t_value, t_prod = theirs(
            lambda x: _random_dag(torch, x, w_t), torch.tensor(x0), torch.tensor(v0)
        )
        assert value.item() == pytest.approx(t_value.item(), rel=1e-12)
        np.testing.assert_allclose(prod.numpy(), t_prod.numpy(), rtol=1e-10, atol=1e-10)
    out, jv = cr.autograd.jvp(lambda x: (x @ w_cr).tanh().softmax(-1), _t(x0), _t(v0))
    t_out, t_jv = tf.jvp(lambda x: (x @ w_t).tanh().softmax(-1), torch.tensor(x0), torch.tensor(v0))
    np.testing.assert_allclose(out.numpy(), t_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jv.numpy(), t_jv.numpy(), rtol=1e-10, atol=1e-12)


# -- gradients announced as they become ready ---------------------------------------------
def test_post_accumulate_hooks_fire_last_layer_first_during_backward() -> None:
    model = cr.nn.Sequential(
        cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 8), cr.nn.ReLU(), cr.nn.Linear(8, 3)
    )
    first_weight = model[0].weight
    events: list[tuple[str, bool]] = []
    handles = []
    for name, p in model.named_parameters():

        def hook(param: cr.Tensor, name: str = name) -> None:
            assert param.grad is not None  # .grad is final when the hook runs
            events.append((name, first_weight.grad is not None))

        handles.append(p.register_post_accumulate_grad_hook(hook))
    loss = cr.nn.functional.cross_entropy(model(cr.randn(5, 4)), cr.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    names = [n for n, _ in events]
    assert set(names) == {n for n, _ in model.named_parameters()}
    assert names.index("4.weight") < names.index("2.weight") < names.index("0.weight")
    # When the last layer's hook fired, backward had not reached the first layer yet.
    assert dict(events)["4.weight"] is False and dict(events)["4.bias"] is False
    for h in handles:
        h.remove()
    events.clear()
    model.zero_grad()
    model(cr.randn(2, 4)).sum().backward()
    assert events == []


def test_post_accumulate_hook_sees_the_sum_of_all_uses() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    seen: list[Any] = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    ((w * 3).sum() + (w * w).sum()).backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 7.0])


def test_post_accumulate_hook_only_on_leaves() -> None:
    w = cr.ones(2, requires_grad=True)
    with pytest.raises(cr.GraphError, match="leaf tensors only"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)


# -- memory ----------------------------------------------------------------------------------
def test_gradient_penalty_training_step_memory_is_flat() -> None:
    """2,000 steps of a WGAN-GP-style penalty ‖∇ₓ D(x)‖² (second order each step)."""
    gen = cr.Generator(0)
    d = cr.nn.Sequential(
        cr.nn.Linear(8, 16, generator=gen), cr.nn.Tanh(), cr.nn.Linear(16, 1, generator=gen)
    )
    opt = cr.optim.SGD(d.parameters(), lr=1e-3)
    x = cr.randn(16, 8)

    def step() -> None:
        xi = x.detach().requires_grad_(True)
        out = d(xi).sum()
        (gx,) = cr.autograd.grad(out, xi, create_graph=True)
        penalty = ((gx * gx).sum(-1) - 1.0) ** 2
        loss = out + 10.0 * penalty.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    peaks = []
    for i in range(2000):
        step()
        if i % 500 == 499:
            peaks.append(tracemalloc.get_traced_memory()[0] - base)
    tracemalloc.stop()
    assert max(peaks) < 1_000_000, f"memory grew: {peaks}"
    assert peaks[-1] <= peaks[0] + 200_000, f"memory grew: {peaks}"
