"""Options out of range are rejected with a message naming the option and its value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler as ls


def _leaf() -> cr.Tensor:
    return cr.tensor(np.array([1.0, -2.0]), requires_grad=True)


# Every numeric option of every optimizer that must be finite and >= 0.
NONNEGATIVE = [
    ("SGD", ["lr", "momentum", "weight_decay", "l1"]),
    ("Adam", ["lr", "eps", "weight_decay", "l1"]),
    ("AdamW", ["lr", "eps", "weight_decay", "l1"]),
    ("RMSprop", ["lr", "eps", "weight_decay", "momentum", "l1"]),
    (
        "Adagrad",
        ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "l1"],
    ),
]
CASES = [(name, key) for name, keys in NONNEGATIVE for key in keys]


@pytest.mark.parametrize(("name", "key"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, -math.inf])
def test_options_must_be_finite_and_nonnegative(name: str, key: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{name}: {key} must be >= 0 and finite, got {key}="):
        getattr(optim, name)([_leaf()], **{key: value})


@pytest.mark.parametrize(("name", "key"), CASES, ids=lambda v: str(v))
def test_options_in_param_groups_are_checked_too(name: str, key: str) -> None:
    opt = getattr(optim, name)([_leaf()])
    with pytest.raises(ValueError, match=rf"{key} must be >= 0 and finite, got {key}=nan"):
        opt.add_param_group({"params": [_leaf()], key: math.nan})


def test_an_option_that_is_not_a_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got str '0\.1'"):
        optim.SGD([_leaf()], lr="0.1")  # type: ignore[arg-type]


def test_rmsprop_alpha_above_one_is_rejected() -> None:
    # alpha = 2 made the running mean of squares negative: NaN weights after 3 steps.
    with pytest.raises(ValueError, match=r"RMSprop: alpha must be >= 0 and <= 1, got alpha=2"):
        optim.RMSprop([_leaf()], alpha=2)
    for bad in (-0.5, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="alpha must be"):
            optim.RMSprop([_leaf()], alpha=bad)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize(
    ("betas", "index"),
    [((0.9, 1.0), 1), ((1.0, 0.999), 0), ((-0.1, 0.999), 0), ((0.9, math.nan), 1)],
)
def test_betas_name_the_bad_one(name: str, betas: tuple[float, float], index: int) -> None:
    with pytest.raises(
        ValueError,
        match=rf"{name}: betas\[{index}\] must be >= 0 and < 1, got betas\[{index}\]=.*"
        r"\(betas=.*\); the usual choice is \(0.9, 0.999\)",
    ):
        getattr(optim, name)([_leaf()], betas=betas)


def test_betas_must_be_a_pair() -> None:
    with pytest.raises(ValueError, match=r"Adam: betas must be a pair"):
        optim.Adam([_leaf()], betas=(0.9,))  # type: ignore[arg-type]


def test_sgd_dampening_is_a_share() -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="SGD: dampening must be >= 0 and <= 1"):
            optim.SGD([_leaf()], lr=0.1, momentum=0.9, dampening=bad)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", {"lr": 0.0, "momentum": 0.0, "dampening": 1.0}),
        ("Adam", {"lr": 0.0, "betas": (0.0, 0.0), "eps": 0.0}),
        ("RMSprop", {"alpha": 0.0, "eps": 0.0}),
        ("RMSprop", {"alpha": 1.0}),
        ("Adagrad", {"lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 0.0}),
    ],
)
def test_the_ends_of_the_ranges_are_accepted(name: str, kwargs: dict[str, Any]) -> None:
    getattr(optim, name)([_leaf()], **kwargs)  # PyTorch accepts these too


def test_load_state_dict_checks_the_saved_options() -> None:
    opt = optim.Adam([_leaf()], lr=0.1)
    saved = opt.state_dict()
    saved["param_groups"][0]["betas"] = [0.9, 1.5]
    with pytest.raises(ValueError, match=r"betas\[1\] must be"):
        optim.Adam([_leaf()], lr=0.1).load_state_dict(saved)


# ------------------------------------------------------------------------- schedulers
def _opt() -> optim.Optimizer:
    return optim.SGD([_leaf()], lr=1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda o, g: ls.StepLR(o, step_size=2, gamma=g),
        lambda o, g: ls.MultiStepLR(o, milestones=[1], gamma=g),
        lambda o, g: ls.ExponentialLR(o, gamma=g),
    ],
    ids=["StepLR", "MultiStepLR", "ExponentialLR"],
)
@pytest.mark.parametrize("gamma", [-0.5, 0.0, math.nan, math.inf])
def test_decay_factor_must_be_positive_and_finite(make: Any, gamma: float) -> None:
    # A negative gamma made the learning rate negative (training climbed the loss).
    with pytest.raises(ValueError, match=r"gamma must be > 0 and finite, got gamma="):
        make(_opt(), gamma)


def test_growth_factor_is_allowed() -> None:
    sched = ls.ExponentialLR(_opt(), gamma=1.5)  # PyTorch allows gamma > 1
    sched.step()
    assert sched.get_last_lr() == [1.5]


@pytest.mark.parametrize("factor", [-0.5, 0.0, 1.0, 1.5, math.nan])
def test_plateau_factor_is_in_the_open_unit_interval(factor: float) -> None:
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be > 0 and < 1"):
        ls.ReduceLROnPlateau(_opt(), factor=factor)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": -1e-3}, "min_lr must be >= 0"),
        ({"min_lr": [math.nan]}, r"min_lr\[0\] must be >= 0"),
        ({"patience": -1}, "patience must be >= 0"),
        ({"cooldown": -1}, "cooldown must be >= 0"),
        ({"threshold": -0.1}, "threshold must be >= 0"),
        ({"eps": math.inf}, "eps must be >= 0 and finite"),
    ],
)
def test_plateau_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ls.ReduceLROnPlateau(_opt(), **kwargs)


def test_cosine_eta_min_must_be_nonnegative() -> None:
    with pytest.raises(ValueError, match="CosineAnnealingLR: eta_min must be >= 0"):
        ls.CosineAnnealingLR(_opt(), T_max=10, eta_min=-0.1)
