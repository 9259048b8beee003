"""Parity with torch.optim: 100 steps on the same small network, float64, to 1e-10."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Any:
    # Tiny tensors: torch's thread pool only adds overhead, most of all on a busy CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


STEPS = 100


def _problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """A two-layer classifier: inputs, labels, and initial weights W1, b1, W2."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 5))
    y = rng.integers(0, 3, 16)
    weights = [
        rng.standard_normal((5, 8)) * 0.5,
        rng.standard_normal(8) * 0.1,
        rng.standard_normal((8, 3)) * 0.5,
    ]
    return x, y, weights


def _cr_loss(params: list[cr.Tensor], x: np.ndarray, y: np.ndarray) -> cr.Tensor:
    w1, b1, w2 = params
    h = (cr.tensor(x) @ w1 + b1).relu()
    return -(h @ w2).log_softmax(1)[np.arange(len(y)), y].mean()


def _torch_loss(params: list[Any], x: np.ndarray, y: np.ndarray) -> Any:
    w1, b1, w2 = params
    h = (torch.from_numpy(x) @ w1 + b1).relu()
    return -(h @ w2).log_softmax(1)[torch.arange(len(y)), torch.from_numpy(y)].mean()


def _groups(params: list[Any], groups: list[dict[str, Any]] | None) -> Any:
    if groups is None:
        return params
    return [{**g, "params": [params[i] for i in g["params"]]} for g in groups]


def _train_both(
    name: str,
    kwargs: dict[str, Any],
    groups: list[dict[str, Any]] | None = None,
    sign: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    x, y, weights = _problem()
    cr_params = [cr.tensor(w.copy(), requires_grad=True) for w in weights]
    th_params = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    cr_opt = getattr(optim, name)(_groups(cr_params, groups), **kwargs)
    th_opt = getattr(torch.optim, name)(_groups(th_params, groups), **kwargs)
    for _ in range(STEPS):
        cr_opt.zero_grad()
        (sign * _cr_loss(cr_params, x, y)).backward()
        cr_opt.step()
        th_opt.zero_grad()
        (sign * _torch_loss(th_params, x, y)).backward()
        th_opt.step()
    return [p.data for p in cr_params], [p.detach().numpy() for p in th_params]


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.05, "nesterov": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.005, "centered": True}),
    ("RMSprop", {"lr": 0.005, "centered": True, "momentum": 0.7, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    (
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.01,
            "initial_accumulator_value": 0.1,
            "weight_decay": 0.01,
            "eps": 1e-8,
        },
    ),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda v: str(v))
def test_parity_with_torch(name: str, kwargs: dict[str, Any]) -> None:
    ours, theirs = _train_both(name, kwargs)
    for a, b in zip(ours, theirs):
        assert np.max(np.abs(a - b)) < 1e-10
    # The run must actually have moved the weights, or parity would prove nothing.
    _, _, start = _problem()
    assert all(np.max(np.abs(a - w)) > 1e-3 for a, w in zip(ours, start))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_parity_maximize(name: str) -> None:
    # Maximising −loss must follow the same path as minimising the loss in torch.
    ours, theirs = _train_both(name, {"lr": 0.01, "maximize": True}, sign=-1.0)
    for a, b in zip(ours, theirs):
        assert np.max(np.abs(a - b)) < 1e-10


def test_parity_param_groups_with_own_options() -> None:
    groups = [
        {"params": [0, 1], "lr": 0.1},
        {"params": [2], "lr": 0.01, "momentum": 0.5},
    ]
    ours, theirs = _train_both("SGD", {"lr": 0.05, "momentum": 0.9}, groups)
    for a, b in zip(ours, theirs):
        assert np.max(np.abs(a - b)) < 1e-10


def test_parity_adam_param_groups() -> None:
    groups = [{"params": [0], "lr": 0.03, "betas": (0.5, 0.9)}, {"params": [1, 2]}]
    ours, theirs = _train_both("Adam", {"lr": 0.01, "weight_decay": 0.01}, groups)
    for a, b in zip(ours, theirs):
        assert np.max(np.abs(a - b)) < 1e-10
