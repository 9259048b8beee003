"""L1 by soft-thresholding: useless weights reach exactly zero; the lasso solution."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim.kernels import soft_threshold_

RELEVANT = [2, 7, 13]


def _regression(n: int = 200, d: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """y depends on 3 of the 20 inputs; the other 17 are irrelevant."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    w_true = np.zeros(d)
    w_true[RELEVANT] = [2.0, -3.0, 1.5]
    return x, x @ w_true + 0.1 * rng.standard_normal(n)


def _fit(make: Any, steps: int, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Minimise (1/2n)‖Xw − y‖² (+ the optimizer's penalties) from w = 0."""
    w = cr.zeros(x.shape[1], dtype=cr.float64, requires_grad=True)
    opt = make([w], **kwargs)
    xt, yt = cr.tensor(x), cr.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        r = xt @ w - yt
        ((r * r).sum() * (0.5 / len(y))).backward()
        opt.step()
    return w.data.copy()


def test_soft_threshold_known_values() -> None:
    w = np.array([3.0, -0.5, 0.2, -2.0, 1.0])
    soft_threshold_(w, 1.0, np.empty_like(w))
    assert np.array_equal(w, [2.0, 0.0, 0.0, -1.0, 0.0])
    w = np.array([1.0, -1.0])
    soft_threshold_(w, np.array([0.5, 2.0]), np.empty_like(w))
    assert np.array_equal(w, [0.5, 0.0])


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (optim.SGD, {"lr": 0.1}),
        (optim.SGD, {"lr": 0.05, "momentum": 0.5}),
        (optim.Adam, {"lr": 0.05}),
        (optim.RMSprop, {"lr": 0.01}),
        (optim.Adagrad, {"lr": 0.5}),
    ],
)
def test_l1_gives_exact_zeros_on_irrelevant_inputs(make: Any, kwargs: dict[str, Any]) -> None:
    x, y = _regression()
    sparse = _fit(make, 300, x, y, l1=0.1, **kwargs)
    dense = _fit(make, 300, x, y, **kwargs)
    irrelevant = np.setdiff1d(np.arange(20), RELEVANT)
    assert np.count_nonzero(sparse[irrelevant]) == 0  # all 17 exactly 0.0
    assert np.all(np.abs(sparse[RELEVANT]) > 1.0)
    assert np.count_nonzero(dense == 0.0) == 0


def test_l1_through_the_gradient_never_reaches_zero() -> None:
    # The naive way, λ₁·sign(w) added to the gradient, oscillates around 0 instead.
    x, y = _regression()
    w = cr.zeros(20, dtype=cr.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    xt, yt = cr.tensor(x), cr.tensor(y)
    for _ in range(300):
        opt.zero_grad()
        r = xt @ w - yt
        ((r * r).sum() * (0.5 / len(y)) + 0.1 * abs(w).sum()).backward()
        opt.step()
    assert np.count_nonzero(w.data == 0.0) <= 1


def test_proximal_sgd_reaches_the_lasso_solution() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = _regression(n=60, d=20)
    alpha = 0.2
    ours = _fit(optim.SGD, 1500, x, y, lr=0.3, l1=alpha)
    lasso = linear_model.Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000)
    expected = lasso.fit(x, y).coef_
    assert np.array_equal(ours == 0.0, expected == 0.0)
    assert np.max(np.abs(ours - expected)) < 1e-8
