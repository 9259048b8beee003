"""Checkpoints: state_dict format, flat (safetensors) form, bit-identical resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import ShapeError
from chainrule.optim import lr_scheduler


def _problem() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 4))
    y = rng.integers(0, 3, 12)
    return x, y, [rng.standard_normal((4, 6)) * 0.5, rng.standard_normal((6, 3)) * 0.5]


def _loss(params: list[cr.Tensor], x: np.ndarray, y: np.ndarray) -> cr.Tensor:
    w1, w2 = params
    return -((cr.tensor(x) @ w1).relu() @ w2).log_softmax(1)[np.arange(len(y)), y].mean()


def _train(opt: optim.Optimizer, params: list[cr.Tensor], steps: int, sched: Any = None) -> None:
    x, y, _ = _problem()
    for _ in range(steps):
        opt.zero_grad()
        _loss(params, x, y).backward()
        opt.step()
        if sched is not None:
            sched.step()


def _fresh(weights: list[np.ndarray]) -> list[cr.Tensor]:
    return [cr.tensor(w.copy(), requires_grad=True) for w in weights]


OPTIMIZERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "l1": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01, "l1": 0.001}),
    ("AdamW", {"lr": 0.01, "betas": (0.8, 0.99)}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
]


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=lambda v: str(v))
def test_resume_from_safetensors_is_bit_identical(
    name: str, kwargs: dict[str, Any], tmp_path: Path
) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    _, _, weights = _problem()
    make = getattr(optim, name)

    straight = _fresh(weights)
    _train(make(straight, **kwargs), straight, 100)

    first = _fresh(weights)
    opt = make(first, **kwargs)
    _train(opt, first, 50)
    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict())
    for i, p in enumerate(first):
        arrays[f"model.{i}"] = p.data
    path = tmp_path / "ckpt.safetensors"
    safetensors_numpy.save_file(arrays, str(path), metadata=meta)

    loaded = safetensors_numpy.load_file(str(path))
    with open(path, "rb") as f:  # the metadata lives in the file's JSON header
        header_len = int.from_bytes(f.read(8), "little")
        metadata = json.loads(f.read(header_len))["__metadata__"]
    resumed = [cr.tensor(loaded[f"model.{i}"], requires_grad=True) for i in range(2)]
    opt2 = make(resumed, lr=123.0)  # options come back from the checkpoint
    opt2.load_state_dict(optim.optimizer_state_from_flat(loaded, metadata))
    _train(opt2, resumed, 50)

    for a, b in zip(straight, resumed):
        assert np.array_equal(a.data, b.data)


def test_resume_with_scheduler_is_bit_identical() -> None:
    _, _, weights = _problem()

    def build(params: list[cr.Tensor]) -> tuple[optim.Optimizer, Any]:
        opt = optim.Adam(params, lr=0.02)
        warm = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10)
        cos = lr_scheduler.CosineAnnealingLR(opt, T_max=90, eta_min=1e-4)
        return opt, lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[10])

    straight = _fresh(weights)
    opt, straight_sched = build(straight)
    _train(opt, straight, 60, straight_sched)

    first = _fresh(weights)
    opt, sched = build(first)
    _train(opt, first, 30, sched)
    opt_state = optim.optimizer_state_to_flat(opt.state_dict())
    sched_state = json.dumps(sched.state_dict())

    resumed = [cr.tensor(p.data.copy(), requires_grad=True) for p in first]
    opt2, sched2 = build(resumed)  # schedulers first: making them resets the lrs
    opt2.load_state_dict(optim.optimizer_state_from_flat(*opt_state))
    sched2.load_state_dict(json.loads(sched_state))
    _train(opt2, resumed, 30, sched2)

    assert sched2.last_epoch == straight_sched.last_epoch == 60
    assert sched2.get_last_lr() == straight_sched.get_last_lr()
    for a, b in zip(straight, resumed):
        assert np.array_equal(a.data, b.data)


def test_state_dict_format() -> None:
    _, _, weights = _problem()
    params = _fresh(weights)
    extra = cr.zeros(3, dtype=cr.float64, requires_grad=True)  # never gets a gradient
    opt = optim.Adam([{"params": params}, {"params": [extra], "lr": 0.5}], lr=0.01)
    _train(opt, params, 3)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"]) == {0, 1}  # no state for a parameter that never stepped
    assert sd["state"][0]["step"] == 3
    assert isinstance(sd["state"][0]["exp_avg"], cr.Tensor)
    assert sd["state"][0]["exp_avg"].shape == (4, 6)


def test_state_dict_holds_copies() -> None:
    w = cr.tensor(np.array([1.0, -1.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    saved = opt.state_dict()
    before = saved["state"][0]["momentum_buffer"].data.copy()
    opt.step()
    assert np.array_equal(saved["state"][0]["momentum_buffer"].data, before)


def test_flat_form_round_trip() -> None:
    _, _, weights = _problem()
    params = _fresh(weights)
    opt = optim.RMSprop(params, lr=0.01, momentum=0.3)
    _train(opt, params, 2)
    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict(), prefix="opt/")
    assert set(arrays) == {
        f"opt/state.{i}.{n}" for i in (0, 1) for n in ("square_avg", "momentum_buffer")
    }
    assert all(isinstance(v, str) for v in meta.values())
    back = optim.optimizer_state_from_flat(arrays, meta, prefix="opt/")
    assert back["state"][1]["step"] == 2
    assert np.array_equal(
        back["state"][0]["square_avg"].data, opt.state[params[0]]["square_avg"].data
    )
    with pytest.raises(KeyError, match="prefix"):
        optim.optimizer_state_from_flat(arrays, meta)


def test_load_casts_state_to_param_dtype() -> None:
    w64 = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    opt = optim.Adam([w64], lr=0.1)
    (w64 * w64).sum().backward()
    opt.step()
    w32 = cr.tensor([1.0, 2.0], requires_grad=True)
    opt32 = optim.Adam([w32], lr=0.1)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[w32]["exp_avg"].dtype == cr.float32


def test_load_state_dict_errors() -> None:
    a = cr.zeros(2, 2, dtype=cr.float64, requires_grad=True)
    b = cr.zeros(3, dtype=cr.float64, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    (a.sum() + b.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="param groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    c = cr.zeros(4, dtype=cr.float64, requires_grad=True)
    with pytest.raises(ShapeError, match=r"shape \(3,\).*shape \(4,\)"):
        optim.SGD([a, c], lr=0.1).load_state_dict(sd)
