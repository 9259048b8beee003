"""``OneCycleLR``: the learning-rate and momentum sequences of torch's OneCycleLR to
1e-12 (two-phase cos and linear, three-phase, per-group peaks, SGD's momentum and Adam's
β₁), resuming from a state_dict, and the errors."""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim.lr_scheduler import OneCycleLR

torch = pytest.importorskip("torch")

STEPS = 23


def _optimizers(kind: str) -> tuple[Any, Any]:
    ours_params = [{"params": [cr.zeros(2, requires_grad=True)]} for _ in range(2)]
    theirs_params = [{"params": [torch.zeros(2, requires_grad=True)]} for _ in range(2)]
    if kind == "sgd":
        return optim.SGD(ours_params, lr=0.1, momentum=0.9), torch.optim.SGD(
            theirs_params, lr=0.1, momentum=0.9
        )
    return optim.Adam(ours_params, lr=0.1), torch.optim.Adam(theirs_params, lr=0.1)


def _momenta(opt: Any, kind: str) -> list[float]:
    return [g["momentum"] if kind == "sgd" else g["betas"][0] for g in opt.param_groups]


def _run(sched: Any, opt: Any, kind: str, steps: int) -> list[list[float]]:
    rows = [list(sched.get_last_lr()) + _momenta(opt, kind)]
    for _ in range(steps):
        opt.step()
        sched.step()
        rows.append(list(sched.get_last_lr()) + _momenta(opt, kind))
    return rows


CASES = {
    "cos": dict(max_lr=[1.0, 0.5], total_steps=STEPS),
    "linear": dict(max_lr=0.3, total_steps=STEPS, anneal_strategy="linear", pct_start=0.4),
    "three_phase": dict(max_lr=0.2, epochs=23, steps_per_epoch=1, three_phase=True),
    "factors": dict(max_lr=2.0, total_steps=STEPS, div_factor=10, final_div_factor=100),
    "momenta": dict(max_lr=1.0, total_steps=STEPS, base_momentum=0.8, max_momentum=[0.9, 0.99]),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rates_and_momenta_match_torch(name: str, kind: str) -> None:
    ours_opt, theirs_opt = _optimizers(kind)
    ours = _run(OneCycleLR(ours_opt, **CASES[name]), ours_opt, kind, STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_sched = torch.optim.lr_scheduler.OneCycleLR(theirs_opt, **CASES[name])
        theirs = _run(theirs_sched, theirs_opt, kind, STEPS)
    assert np.max(np.abs(np.array(ours) - np.array(theirs))) < 1e-12
    assert ours[0][0] == pytest.approx(
        CASES[name]["max_lr"][0] / 25 if name == "cos" else ours[0][0]
    )


def test_without_cycling_momentum_and_stepping_past_the_cycle() -> None:
    opt = optim.Adagrad([cr.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="needs an optimizer with momentum or betas"):
        OneCycleLR(opt, max_lr=1.0, total_steps=5)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match=r"stepped 4 times, but the cycle has total_steps=3"):
        sched.step()


def test_state_dict_resumes_the_cycle() -> None:
    opt, _ = _optimizers("sgd")
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=STEPS)
    expected = _run(sched, opt, "sgd", STEPS)
    opt2, _ = _optimizers("sgd")
    first = OneCycleLR(opt2, max_lr=1.0, total_steps=STEPS)
    for _ in range(9):
        opt2.step()
        first.step()
    saved = json.loads(json.dumps(first.state_dict()))  # plain numbers: JSON round-trips
    opt3, _ = _optimizers("sgd")
    resumed = OneCycleLR(opt3, max_lr=1.0, total_steps=STEPS)  # PyTorch's order: make
    opt3.load_state_dict(opt2.state_dict())  # both, then load the optimizer (its rates and
    resumed.load_state_dict(saved)  # momenta) and the scheduler
    rows = [list(resumed.get_last_lr()) + _momenta(opt3, "sgd")]
    for _ in range(STEPS - 9):
        opt3.step()
        resumed.step()
        rows.append(list(resumed.get_last_lr()) + _momenta(opt3, "sgd"))
    assert np.max(np.abs(np.array(rows) - np.array(expected[9:]))) < 1e-12


def test_argument_errors() -> None:
    opt, _ = _optimizers("sgd")
    with pytest.raises(ValueError, match="give total_steps, or both epochs and steps_per_epoch"):
        OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="total_steps must be a positive int"):
        OneCycleLR(opt, max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="max_lr has 3 values but the optimizer has 2"):
        OneCycleLR(opt, max_lr=[1.0, 1.0, 1.0], total_steps=5)
    with pytest.raises(ValueError, match="anneal_strategy must be 'cos' or 'linear'"):
        OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="exp")
