"""Optimisers on a device: the same steps as on the CPU, state on the parameter's device,
no host syncs in ``step()``, and state dicts that go through the host and come back.

Runs over the ``device`` fixture (cpu, fake-cuda, and cuda on a machine with a GPU). The
gradients are set directly (``p.grad = ...``), so these tests need no op on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import fake_cupy
from chainrule import backend, optim
from chainrule.errors import DeviceError

STEPS = 5

# One representative setting per rule, each switching on the branches a rule has (L2, L1,
# momentum, Nesterov, AMSGrad, centering, maximize, lr decay).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "l1": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "l1": 0.001}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.01, "l1": 0.001, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "l1": 0.001}),
]
IDS = [f"{name}-{'-'.join(kw)}" for name, kw in CASES]


def _weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((7, 5)), rng.standard_normal(5), rng.standard_normal((3, 2, 4))]


def _grads(step: int) -> list[np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(w.shape) for w in _weights()]


def _params(device: str) -> list[cr.Tensor]:
    return [cr.Tensor(w.copy(), requires_grad=True, device=device) for w in _weights()]


def _step(opt: optim.Optimizer, params: list[cr.Tensor], step: int) -> None:
    for p, g in zip(params, _grads(step), strict=True):
        p.grad = cr.Tensor(g, device=p.device)
    opt.step()


def _run(name: str, kwargs: dict[str, Any], device: str, steps: int = STEPS) -> Any:
    params = _params(device)
    opt = getattr(optim, name)(params, **kwargs)
    for t in range(steps):
        _step(opt, params, t)
    return params, opt


def _host(t: cr.Tensor) -> np.ndarray:
    return backend.to_host(t.data)


def _on_fake() -> bool:
    return isinstance(backend.loaded_accelerator(), fake_cupy.FakeAccelerator)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_step_on_the_device_equals_the_cpu_step(
    device: str, name: str, kwargs: dict[str, Any]
) -> None:
    params, opt = _run(name, kwargs, device)
    with_gpu = device != "cpu"
    # The reference on the CPU, run after the device run (the fixture keeps the fake
    # installed, which leaves NumPy arrays alone).
    reference, _ = _run(name, kwargs, "cpu")
    for p, ref in zip(params, reference, strict=True):
        assert backend.is_device_array(p.data) == with_gpu
        np.testing.assert_allclose(_host(p), _host(ref), rtol=1e-12, atol=1e-12)
    for p in params:
        for key, value in opt.state[p].items():
            if isinstance(value, cr.Tensor):
                assert value.device == p.device, f"{name} state {key!r} on {value.device}"
                assert backend.is_device_array(value.data) == with_gpu


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_step_makes_no_host_sync(fake_cuda: str, name: str, kwargs: dict[str, Any]) -> None:
    params, opt = _run(name, kwargs, fake_cuda, steps=1)  # the state exists now
    for p, g in zip(params, _grads(1), strict=True):
        p.grad = cr.Tensor(g, device=fake_cuda)
    fake_cupy.SYNCS[0] = 0
    opt.step()
    opt.step()
    opt.zero_grad(set_to_none=False)
    assert fake_cupy.SYNCS[0] == 0


ROUND_TRIP = [1, 4, 6, 8]  # a rule with each kind of state: buffers, AMSGrad, centred, sum


@pytest.mark.parametrize(
    ("name", "kwargs"), [CASES[i] for i in ROUND_TRIP], ids=[IDS[i] for i in ROUND_TRIP]
)
def test_state_dict_holds_host_copies_and_loads_back_onto_the_device(
    device: str, name: str, kwargs: dict[str, Any]
) -> None:
    params, opt = _run(name, kwargs, device, steps=2)
    saved = opt.state_dict()
    arrays = [
        v.data
        for entries in saved["state"].values()
        for v in entries.values()
        if isinstance(v, cr.Tensor)
    ]
    assert arrays and all(type(a) is np.ndarray for a in arrays)
    # Through the flat (file) form as well: what a checkpoint writes and reads.
    flat, meta = optim.optimizer_state_to_flat(saved)
    assert all(type(a) is np.ndarray for a in flat.values())
    restored_dict = optim.optimizer_state_from_flat(flat, meta)

    resumed = [cr.Tensor(_host(p).copy(), requires_grad=True, device=device) for p in params]
    opt2 = getattr(optim, name)(resumed, **kwargs)
    opt2.load_state_dict(restored_dict)
    for p in resumed:
        for value in opt2.state[p].values():
            if isinstance(value, cr.Tensor):
                assert value.device == p.device
    for t in range(2, STEPS):
        _step(opt, params, t)
        _step(opt2, resumed, t)
    for a, b in zip(params, resumed, strict=True):
        np.testing.assert_array_equal(_host(a), _host(b))


def test_cpu_state_loads_onto_device_parameters(fake_cuda: str) -> None:
    # A run saved on the CPU resumes on the GPU: the state follows the parameters.
    params, opt = _run("Adam", {"lr": 0.01}, "cpu", steps=2)
    moved = [cr.Tensor(_host(p).copy(), requires_grad=True, device=fake_cuda) for p in params]
    opt2 = optim.Adam(moved, lr=0.01)
    opt2.load_state_dict(opt.state_dict())
    assert all(
        backend.is_device_array(v.data)
        for p in moved
        for v in opt2.state[p].values()
        if isinstance(v, cr.Tensor)
    )
    _step(opt, params, 2)
    _step(opt2, moved, 2)
    for a, b in zip(params, moved, strict=True):
        np.testing.assert_array_equal(_host(a), _host(b))


def test_gradient_on_another_device_is_a_clear_error(fake_cuda: str) -> None:
    w = cr.Tensor(np.ones(3), requires_grad=True, device=fake_cuda)
    opt = optim.SGD([w], lr=0.1)
    w.grad = cr.Tensor(np.ones(3))  # left on the CPU
    with pytest.raises(
        DeviceError, match=r"gradient of parameter 0 is on cpu, the parameter on cuda:0"
    ):
        opt.step()
