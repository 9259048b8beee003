"""Learning-rate schedules: the lr sequence matches torch.optim.lr_scheduler to 1e-12."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler as ls

torch = pytest.importorskip("torch")

LRS = (0.1, 0.03)  # two param groups with different rates


def _cr_optimizer() -> optim.Optimizer:
    params = [{"params": [cr.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    return optim.SGD(params, lr=1.0)


def _torch_optimizer() -> Any:
    params = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in LRS]
    return torch.optim.SGD(params, lr=1.0)


Build = Callable[[Any, Any], Any]  # (scheduler module, optimizer) -> scheduler


def _sequence(module: Any, opt: Any, build: Build, epochs: int) -> list[list[float]]:
    sched = build(module, opt)
    lrs = [list(sched.get_last_lr())]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(list(sched.get_last_lr()))
    return lrs


def _assert_same_sequence(build: Build, epochs: int = 40) -> list[list[float]]:
    ours = _sequence(ls, _cr_optimizer(), build, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes are not under test
        theirs = _sequence(torch.optim.lr_scheduler, _torch_optimizer(), build, epochs)
    assert np.max(np.abs(np.array(ours) - np.array(theirs))) < 1e-12
    return ours


SCHEDULES: dict[str, Build] = {
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[9, 2, 5, 5], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "cosine_no_min": lambda m, o: m.CosineAnnealingLR(o, T_max=7),
    "linear_warmup": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
    "linear_decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12),
    "warmup_then_cosine": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "three_phases": lambda m, o: m.SequentialLR(
        o,
        [
            m.LinearLR(o, start_factor=0.5, total_iters=3),
            m.StepLR(o, step_size=2, gamma=0.7),
            m.ExponentialLR(o, gamma=0.95),
        ],
        milestones=[3, 8],
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_sequence_matches_torch(name: str) -> None:
    lrs = _assert_same_sequence(SCHEDULES[name])
    assert len({round(lr[0], 12) for lr in lrs}) > 2  # the schedule really changes the lr


def test_two_chained_schedulers_match_torch() -> None:
    # Both step the same optimizer: their factors multiply (the recursive form).
    def run(module: Any, opt: Any) -> list[list[float]]:
        a = module.StepLR(opt, step_size=4, gamma=0.5)
        b = module.ExponentialLR(opt, gamma=0.97)
        out = []
        for _ in range(20):
            opt.step()
            a.step()
            b.step()
            out.append(list(b.get_last_lr()))
        return out

    ours = run(ls, _cr_optimizer())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run(torch.optim.lr_scheduler, _torch_optimizer())
    assert np.max(np.abs(np.array(ours) - np.array(theirs))) < 1e-12


# Progress, plateaus, small gains below the threshold, a rise, then a long flat stretch.
METRICS = (
    [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.49, 0.495]
    + [0.6, 0.7, 0.8, 0.9, 1.0]
    + [0.3] * 8
    + [0.2999, 0.29, 0.3, 0.31, 0.32, 0.33]
)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"patience": 2, "factor": 0.5},
        {"patience": 1, "cooldown": 2, "threshold": 0.05, "factor": 0.5},
        {"patience": 0, "threshold_mode": "abs", "threshold": 0.02, "min_lr": 0.01},
        {"patience": 1, "min_lr": [0.05, 0.001], "factor": 0.3, "cooldown": 1},
        {"patience": 0, "factor": 0.5, "eps": 0.02},
    ],
    ids=str,
)
def test_reduce_on_plateau_matches_torch(mode: str, options: dict[str, Any]) -> None:
    def run(module: Any, opt: Any) -> list[list[float]]:
        sched = module.ReduceLROnPlateau(opt, mode=mode, **options)
        out = []
        for metric in METRICS:
            sched.step(metric)
            out.append(list(sched.get_last_lr()))
        return out

    ours = run(ls, _cr_optimizer())
    theirs = run(torch.optim.lr_scheduler, _torch_optimizer())
    assert np.max(np.abs(np.array(ours) - np.array(theirs))) < 1e-12


def test_reduce_on_plateau_reduces_after_patience() -> None:
    opt = _cr_optimizer()
    sched = ls.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    for loss in [1.0, 1.0, 1.0]:
        sched.step(loss)
    assert sched.get_last_lr() == list(LRS)  # two bad epochs: still patient
    sched.step(cr.tensor(1.0))  # a one-element tensor works as the metric
    assert sched.get_last_lr() == [LRS[0] * 0.5, LRS[1] * 0.5]


@pytest.mark.parametrize("name", ["cosine", "warmup_then_cosine", "three_phases", "multistep"])
def test_state_dict_resume_continues_the_sequence(name: str) -> None:
    build = SCHEDULES[name]
    straight = _sequence(ls, _cr_optimizer(), build, 30)

    opt = _cr_optimizer()
    sched = build(ls, opt)
    for _ in range(12):
        opt.step()
        sched.step()
    opt_state = opt.state_dict()
    sched_state = json.loads(json.dumps(sched.state_dict()))  # plain, JSON-able data

    opt2 = _cr_optimizer()
    sched2 = build(ls, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    resumed = []
    for _ in range(18):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == straight[13:]


def test_plateau_state_dict_round_trip() -> None:
    opt = _cr_optimizer()
    sched = ls.ReduceLROnPlateau(opt, mode="max", patience=1, cooldown=1)
    for metric in METRICS[:6]:
        sched.step(metric)
    state = json.loads(json.dumps(sched.state_dict()))
    other = ls.ReduceLROnPlateau(_cr_optimizer())
    other.load_state_dict(state)
    assert (other.mode, other.best, other.num_bad_epochs) == (
        "max",
        sched.best,
        sched.num_bad_epochs,
    )
    assert other.is_better(sched.best * 1.01, sched.best)


def test_scheduler_errors() -> None:
    opt = _cr_optimizer()
    with pytest.raises(TypeError, match="Optimizer"):
        ls.StepLR(object(), step_size=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start_factor"):
        ls.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="factor must be > 0 and < 1"):
        ls.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode must be"):
        ls.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="min_lr has 3 values"):
        ls.ReduceLROnPlateau(opt, min_lr=[0.1, 0.1, 0.1])
    a, b = ls.StepLR(opt, step_size=2), ls.ExponentialLR(opt, gamma=0.9)
    with pytest.raises(ValueError, match="2 schedulers need 1 milestones"):
        ls.SequentialLR(opt, [a, b], milestones=[])
    with pytest.raises(ValueError, match="different optimizer"):
        ls.SequentialLR(opt, [a, ls.StepLR(_cr_optimizer(), step_size=2)], milestones=[3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        ls.SequentialLR(opt, [a, ls.ReduceLROnPlateau(opt)], milestones=[3])
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(_cr_optimizer(), step_size=2, last_epoch=5)
