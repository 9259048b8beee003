"""Every activation's value and gradient in float32 over x ∈ [−100, 100], against a float64
reference computed in NumPy (issue 8: one implementation of each formula, kept exact).

The rule: relative error ≤ 1e-5 wherever the reference is a normal float32 number
(|r| ≥ 1.2e-38), and both |value| ≤ 1e-30 where it underflows. One refinement: where a
derivative is a sum of two terms of opposite signs that cross zero (SiLU′ near x = −1.28,
GELU′ near −0.75, BCEWithLogits′ where (1 − y)σ(x) = yσ(−x)), the error is measured against
|a| + |b|, the sum's own condition. No float32 evaluation of a + b keeps 1e-5 of a
difference smaller than its terms (PyTorch's GELU′ is off by 9.5e-5 at x = −0.75).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32, 1.2e-38
SPECIAL = [-89.0, -88.0, -30.0, -20.0, 20.0, 30.0, 88.0, 89.0]
X32 = np.unique(
    np.concatenate([np.linspace(-100, 100, 20001, dtype=np.float32), np.float32(SPECIAL)])
)
X = X32.astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x])


def normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# name → (chainrule function of a float32 tensor, value, derivative, |terms| of the derivative
# where it is a cancelling sum, else None), all elementwise in x.
Reference = tuple[Callable[[Any], Any], np.ndarray, np.ndarray, np.ndarray | None]


def _gelu_tanh() -> Reference:
    c, k = math.sqrt(2.0 / math.pi), 0.044715
    u = c * (X + k * X**3)
    s, du = sigmoid(2 * u), c * (1 + 3 * k * X * X)
    slope_term = 2 * X * s * sigmoid(-2 * u) * du
    return (lambda t: F.gelu(t, "tanh"), X * s, s + slope_term, s + np.abs(slope_term))


def _softplus_beta(beta: float) -> Reference:
    return (lambda t: F.softplus(t, beta), softplus(beta * X) / beta, sigmoid(beta * X), None)


def references() -> dict[str, Reference]:
    s = sigmoid(X)
    silu_term = X * s * sigmoid(-X)
    cdf, pdf = normal_cdf(X), normal_pdf(X)
    return {
        "sigmoid": (cr.sigmoid, s, s * sigmoid(-X), None),
        "tanh": (cr.tanh, np.tanh(X), 1.0 / np.cosh(X) ** 2, None),
        "softplus": (F.softplus, softplus(X), s, None),
        "softplus-beta2": _softplus_beta(2.0),
        "softplus-beta0.5": _softplus_beta(0.5),
        "softplus-beta3": _softplus_beta(3.0),
        "silu": (F.silu, X * s, s + silu_term, s + np.abs(silu_term)),
        "gelu": (F.gelu, X * cdf, cdf + X * pdf, cdf + np.abs(X) * pdf),
        "gelu-tanh": _gelu_tanh(),
        "elu": (
            F.elu,
            np.where(X > 0, X, np.expm1(np.minimum(X, 0))),
            np.exp(np.minimum(X, 0)),
            None,
        ),
        "elu-alpha0.3": (
            lambda t: F.elu(t, 0.3),
            np.where(X > 0, X, 0.3 * np.expm1(np.minimum(X, 0))),
            np.where(X > 0, 1.0, 0.3 * np.exp(np.minimum(X, 0))),
            None,
        ),
        "leaky_relu": (
            lambda t: F.leaky_relu(t, 0.02),
            np.where(X > 0, X, 0.02 * X),
            np.where(X > 0, 1.0, 0.02),
            None,
        ),
    }


# The core primitives' backwards on arrays (ops/, the lead's part of issue 8) compute the
# derivative from the output: σ′ = y(1 − y), tanh′ = 1 − y², and the softmaxes' g − p Σg.
# Each cancels to 0 where y → ±1 or p → 1 (σ′ at x = 20 is 0 instead of 2.1e-9).
CORE_CANCELS = pytest.mark.xfail(
    strict=True, reason="the core primitive's backward cancels where its output nears 1"
)
CORE_GRADS: set[str] = set()  # sigmoid and tanh were fixed in the core


def check(got: Any, ref: np.ndarray, scale: np.ndarray | None, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    normal = np.abs(ref) >= TINY
    size = np.abs(ref) if scale is None else np.maximum(np.abs(ref), scale)
    rel = np.abs(got - ref) / np.where(normal, size, 1.0)
    bad = normal & (rel > 1e-5)
    assert not bad.any(), f"{what}: relative error up to {rel[bad].max():.2e} at x = {X[bad][:6]}"
    leaked = ~normal & (np.abs(got) > 1e-30)
    assert not leaked.any(), f"{what}: {got[leaked][:4]} where the reference underflows"


REFS = references()
VALUE_CASES = list(REFS)
GRAD_CASES = [
    pytest.param(name, marks=CORE_CANCELS) if name in CORE_GRADS else name for name in REFS
]


@pytest.mark.parametrize("name", VALUE_CASES)
def test_value(name: str) -> None:
    fn, value, _, _ = REFS[name]
    y = fn(cr.tensor(X32))
    assert y.dtype == np.float32
    check(y.numpy(), value, None, f"{name} value")


@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradient(name: str) -> None:
    fn, _, slope, scale = REFS[name]
    x = cr.tensor(X32, requires_grad=True)
    fn(x).sum().backward()
    assert x.grad.dtype == np.float32
    check(x.grad.numpy(), slope, scale, f"{name} gradient")


def _two_class_rows() -> tuple[cr.Tensor, np.ndarray]:
    """Rows (x, 0): softmax is (σ(x), σ(−x)), log_softmax (−softplus(−x), −softplus(x))."""
    rows = np.stack([X32, np.zeros_like(X32)], axis=1)
    return cr.tensor(rows, requires_grad=True), np.stack([X, np.zeros_like(X)], axis=1)


# kernels.log_softmax (ops/, the lead's) rounds log Σ eᶻ = log(1 + e^−x) as a log of a sum
# that includes the 1: the winning class's log p (−e^−x) is 0 from x ≈ 17 on (rel. error
# above 1e-5 from x ≈ 5.3); log1p of the other terms would keep it.
LOG_SUM_ROUNDED = pytest.mark.xfail(
    strict=True, reason="log Σ eᶻ rounded as log(1 + tiny), not log1p(tiny)"
)


@pytest.mark.parametrize("name", ["softmax", pytest.param("log_softmax", marks=LOG_SUM_ROUNDED)])
def test_softmax_values(name: str) -> None:
    rows, _ = _two_class_rows()
    y = getattr(F, name)(rows, 1).detach().numpy()
    expected = {
        "softmax": [sigmoid(X), sigmoid(-X)],
        "log_softmax": [-softplus(-X), -softplus(X)],
    }[name]
    for column in range(2):
        check(y[:, column], expected[column], None, f"{name} value, column {column}")


@pytest.mark.parametrize(
    "name",
    [pytest.param("softmax", marks=CORE_CANCELS), pytest.param("log_softmax", marks=CORE_CANCELS)],
)
def test_softmax_gradients(name: str) -> None:
    # The gradient of the first output with respect to its own logit: σ(x)σ(−x) for
    # softmax, 1 − p = σ(−x) for log_softmax.
    rows, _ = _two_class_rows()
    getattr(F, name)(rows, 1)[:, 0].sum().backward()
    slope = sigmoid(X) * sigmoid(-X) if name == "softmax" else sigmoid(-X)
    check(rows.grad.numpy()[:, 0], slope, None, f"{name} gradient")


@pytest.mark.parametrize("target", [0.0, 1.0, 0.25])
def test_bce_with_logits(target: float) -> None:
    x = cr.tensor(X32, requires_grad=True)
    y = np.full_like(X32, target)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    loss.sum().backward()
    value = (1 - target) * softplus(X) + target * softplus(-X)
    negative, positive = (1 - target) * sigmoid(X), target * sigmoid(-X)
    check(loss.detach().numpy(), value, None, f"BCEWithLogits value, y = {target}")
    check(x.grad.numpy(), negative - positive, negative + positive, f"BCEWithLogits′, y = {target}")
