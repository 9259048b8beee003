"""``FlatParams`` and the fused optimiser steps' bookkeeping, on the CPU.

The views and the gather run on NumPy; ``FusedAdam``/``FusedSGD`` run on the fake-cuda
device (``tests/fake_cupy.py``) with the kernels replaced by their NumPy references, and
must then follow ``optim.Adam``/``optim.SGD`` step for step, state entries included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend, cuda_flat, cuda_optim
from chainrule.cuda_flat import FlatParams, FusedAdam, FusedSGD


def test_flat_params_views_and_gather_on_the_cpu() -> None:
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))
    before = [p.data.copy() for p in model.parameters()]
    flat = FlatParams(model.parameters())
    (buf,) = flat.buffers
    assert buf.data.size == sum(p.numel() for p in model.parameters())
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
        assert np.shares_memory(p.data, buf.data)
    model(cr.randn(5, 3)).sum().backward()  # the engine may replace .grad
    grads = [p.grad.data.copy() for p in model.parameters()]
    flat.gather_grads()
    offsets = np.cumsum([0] + [g.size for g in grads])
    for g, start, stop in zip(grads, offsets[:-1], offsets[1:]):
        np.testing.assert_array_equal(buf.grad[start:stop], g.ravel())
    buf.data -= 0.5 * buf.grad  # one update over the buffer reaches every parameter
    for p, old, g in zip(model.parameters(), before, grads):
        np.testing.assert_allclose(p.data, old - 0.5 * g)
    flat.zero_grad()
    assert not buf.grad.any() and all(not p.grad.data.any() for p in model.parameters())
    flat.check_data()
    next(iter(model.parameters())).data = np.zeros((4, 3), np.float32)
    with pytest.raises(RuntimeError, match="no longer views the flat buffer"):
        flat.check_data()


def _host_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The update kernels as their NumPy references on the fake device's arrays."""

    def host(a: Any) -> Any:
        return a.view(np.ndarray)

    # The fused path is for CuPy arrays only (cuda_kernels.on_cupy); here the fake's count.
    monkeypatch.setattr(cuda_flat, "on_cupy", backend.is_device_array)

    monkeypatch.setattr(
        cuda_flat,
        "adam_update",
        lambda p, g, m, v, **kw: cuda_optim.adam_update_reference(
            host(p), host(g), host(m), host(v), **kw
        ),
    )
    monkeypatch.setattr(
        cuda_flat,
        "sgd_update",
        lambda p, g, b, **kw: cuda_optim.sgd_update_reference(host(p), host(g), host(b), **kw),
    )


def _model() -> Any:
    cr.manual_seed(0)
    return cr.nn.Sequential(cr.nn.Linear(4, 5), cr.nn.ReLU(), cr.nn.Linear(5, 3))


@pytest.mark.parametrize("rule", ["adam", "adamw", "sgd"])
def test_fused_steps_follow_the_optimisers(
    rule: str, fake_cuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host_kernels(monkeypatch)
    make = {
        "adam": lambda ps: cr.optim.Adam(ps, lr=0.05, weight_decay=0.01),
        "adamw": lambda ps: cr.optim.AdamW(ps, lr=0.05, weight_decay=0.1),
        "sgd": lambda ps: cr.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    }[rule]
    ref_model, fused_model = _model(), _model()
    ref_opt, fused_opt = make(list(ref_model.parameters())), make(list(fused_model.parameters()))
    fused_params = list(fused_model.parameters())
    for p in fused_params:
        p.data = cr.Tensor(p.data, device=fake_cuda).data
    group = fused_opt.param_groups[0]
    kind = FusedSGD if rule == "sgd" else FusedAdam
    rng = np.random.default_rng(0)
    fused = None
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in fused_params]
        for p, q, g in zip(ref_model.parameters(), fused_params, grads):
            p.grad = cr.tensor(g)
            q.grad = cr.Tensor(g, device=fake_cuda)
        ref_opt.step()
        assert kind.applies(group, fused_opt.state)
        fused = fused or kind(fused_params, fused_opt.state)
        if rule == "sgd":
            fused.step(group, fused_opt.state)
        else:
            fused.step(group, fused_opt.state, decoupled=rule == "adamw")
    for p, q in zip(ref_model.parameters(), fused_params):
        assert q.is_cuda
        np.testing.assert_allclose(q.data.view(np.ndarray), p.data, rtol=1e-5, atol=1e-7)
        for name, value in ref_opt.state[p].items():
            ours = fused_opt.state[q][name]
            if name == "step":
                assert ours == value
            else:
                np.testing.assert_allclose(
                    ours.data.view(np.ndarray), value.data, rtol=1e-5, atol=1e-7
                )


def test_fused_adam_declines_and_adopts_loaded_state(
    fake_cuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host_kernels(monkeypatch)
    model = _model()
    params = list(model.parameters())
    for p in params:
        p.data = cr.Tensor(p.data, device=fake_cuda).data
    opt = cr.optim.Adam(params, lr=0.1)
    group = opt.param_groups[0]
    assert not FusedAdam.applies(group, opt.state)  # no gradients yet
    for p in params:
        p.grad = cr.Tensor(np.ones(p.shape, np.float32), device=fake_cuda)
    assert FusedAdam.applies(group, opt.state)
    assert not FusedAdam.applies({**group, "amsgrad": True}, opt.state)
    fused = FusedAdam(params, opt.state)
    fused.step(group, opt.state, decoupled=False)
    # A checkpoint replaces the state entries: the next step copies them into the buffer.
    first = params[0]
    opt.state[first]["exp_avg"] = cr.Tensor(np.full(first.shape, 7.0, np.float32), device=fake_cuda)
    fused.step(group, opt.state, decoupled=False)
    m = opt.state[first]["exp_avg"].data.view(np.ndarray)
    np.testing.assert_allclose(m, 0.9 * 7.0 + 0.1 * 1.0, rtol=1e-6)
    assert np.shares_memory(m, fused.slot_arrays["exp_avg"][0].view(np.ndarray))
    assert opt.state[first]["step"] == 2
