"""Parity with ``torch.nn``: same weights and inputs, same forward values and the same
gradients for the input and every parameter, in float32 and float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

DTYPES = [np.float32, np.float64]
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def copy_weights(ours: nn.Module, theirs: Any, dtype: Any) -> None:
    """Give the torch module our parameters (the keys match by design)."""
    ours.to(dtype)
    theirs.to(torch.float32 if dtype == np.float32 else torch.float64)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


def check_module(
    ours: nn.Module, theirs: Any, x: np.ndarray, dtype: Any, upstream_seed: int = 1
) -> None:
    copy_weights(ours, theirs, dtype)
    x = x.astype(dtype)
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    tol = TOL[dtype]
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), **tol)
    g = np.random.default_rng(upstream_seed).standard_normal(yt.shape).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **tol)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), theirs_params[name].grad.numpy(), err_msg=name, **tol
        )


MODULES: list[tuple[str, Callable[[], Any], Callable[[], Any], tuple[int, ...]]] = [
    ("Linear", lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    ("Linear-3d", lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (2, 4, 5)),
    (
        "Linear-nobias",
        lambda: nn.Linear(5, 3, bias=False),
        lambda: tnn.Linear(5, 3, bias=False),
        (4, 5),
    ),
    ("ReLU", nn.ReLU, tnn.ReLU, (4, 6)),
    ("Sigmoid", nn.Sigmoid, tnn.Sigmoid, (4, 6)),
    ("Tanh", nn.Tanh, tnn.Tanh, (4, 6)),
    ("Softmax", lambda: nn.Softmax(dim=1), lambda: tnn.Softmax(dim=1), (4, 6)),
    ("Softmax0", lambda: nn.Softmax(dim=0), lambda: tnn.Softmax(dim=0), (4, 6)),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), lambda: tnn.LogSoftmax(dim=1), (4, 6)),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), (4, 6)),
    ("ELU", lambda: nn.ELU(0.7), lambda: tnn.ELU(0.7), (4, 6)),
    ("GELU", nn.GELU, tnn.GELU, (4, 6)),
    ("GELU-tanh", lambda: nn.GELU("tanh"), lambda: tnn.GELU("tanh"), (4, 6)),
    ("SiLU", nn.SiLU, tnn.SiLU, (4, 6)),
    ("Softplus", nn.Softplus, tnn.Softplus, (4, 6)),
    ("Softplus-beta", lambda: nn.Softplus(beta=2.0), lambda: tnn.Softplus(beta=2.0), (4, 6)),
    ("LayerNorm", lambda: nn.LayerNorm(6), lambda: tnn.LayerNorm(6), (4, 6)),
    ("LayerNorm-2dims", lambda: nn.LayerNorm((3, 4)), lambda: tnn.LayerNorm((3, 4)), (2, 5, 3, 4)),
    (
        "LayerNorm-no-affine",
        lambda: nn.LayerNorm(6, elementwise_affine=False),
        lambda: tnn.LayerNorm(6, elementwise_affine=False),
        (4, 6),
    ),
    (
        "LayerNorm-no-bias",
        lambda: nn.LayerNorm(6, bias=False),
        lambda: tnn.LayerNorm(6, bias=False),
        (3, 4, 6),
    ),
    ("Identity", nn.Identity, tnn.Identity, (4, 6)),
    ("Flatten", nn.Flatten, tnn.Flatten, (2, 3, 4)),
    (
        "Sequential",
        lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3), nn.LogSoftmax(1)),
        lambda: tnn.Sequential(tnn.Linear(6, 8), tnn.Tanh(), tnn.Linear(8, 3), tnn.LogSoftmax(1)),
        (5, 6),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "make_ours", "make_theirs", "shape"), MODULES, ids=[m[0] for m in MODULES]
)
def test_module_parity(name: str, make_ours, make_theirs, shape, dtype) -> None:
    x = np.random.default_rng(0).standard_normal(shape) * 2
    check_module(make_ours(), make_theirs(), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_embedding_parity(dtype) -> None:
    ours, theirs = nn.Embedding(6, 3), tnn.Embedding(6, 3)
    copy_weights(ours, theirs, dtype)
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    yc, yt = ours(cr.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy())
    g = np.random.default_rng(0).standard_normal(yt.shape).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype])


# -- losses ---------------------------------------------------------------------------------
def check_loss(
    ours: nn.Module,
    theirs: Any,
    x: np.ndarray,
    target: np.ndarray,
    dtype: Any,
    target_grad: bool = False,
) -> None:
    x = x.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    tc = cr.tensor(target, requires_grad=target_grad)
    tt = torch.tensor(target, requires_grad=target_grad)
    lc, lt = ours(xc, tc), theirs(xt, tt)
    tol = TOL[dtype]
    np.testing.assert_allclose(lc.detach().numpy(), lt.detach().numpy(), **tol)
    g = np.random.default_rng(5).standard_normal(lt.shape).astype(dtype)
    lc.backward(cr.tensor(g))
    lt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **tol)
    if target_grad:
        np.testing.assert_allclose(tc.grad.numpy(), tt.grad.numpy(), **tol)


RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((6, 4)) * 3
LABELS = np.array([0, 3, 1, 1, 2, 0])
LABELS_IGNORED = np.array([0, 3, -100, 1, 2, 7])
W4 = np.array([0.3, 1.0, 2.0, 0.5])


def _w(dtype: Any, values: np.ndarray = W4) -> tuple[Any, Any]:
    return cr.tensor(values.astype(dtype)), torch.tensor(values.astype(dtype))


def loss_cases(dtype: Any) -> list[tuple[str, Any, Any, np.ndarray, np.ndarray, bool]]:
    wc, wt = _w(dtype)
    probs = RNG.dirichlet(np.ones(4), size=6)
    x3 = RNG.standard_normal((2, 4, 3))
    t3 = np.array([[0, 1, 3], [2, 2, 0]])
    pw_c, pw_t = _w(dtype, np.array([2.0, 0.5, 1.0, 3.0]))
    return [
        ("ce", nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), LOGITS, LABELS, False),
        (
            "ce-sum",
            nn.CrossEntropyLoss(reduction="sum"),
            tnn.CrossEntropyLoss(reduction="sum"),
            LOGITS,
            LABELS,
            False,
        ),
        (
            "ce-none",
            nn.CrossEntropyLoss(reduction="none"),
            tnn.CrossEntropyLoss(reduction="none"),
            LOGITS,
            LABELS,
            False,
        ),
        (
            "ce-weight-ignore-smooth",
            nn.CrossEntropyLoss(weight=wc, ignore_index=7, label_smoothing=0.15),
            tnn.CrossEntropyLoss(weight=wt, ignore_index=7, label_smoothing=0.15),
            LOGITS,
            np.where(LABELS_IGNORED == -100, 2, LABELS_IGNORED),
            False,
        ),
        (
            "ce-ignore-none-smooth",
            nn.CrossEntropyLoss(reduction="none", label_smoothing=0.3),
            tnn.CrossEntropyLoss(reduction="none", label_smoothing=0.3),
            LOGITS,
            np.where(LABELS_IGNORED == 7, 1, LABELS_IGNORED),
            False,
        ),
        ("ce-3d", nn.CrossEntropyLoss(weight=wc), tnn.CrossEntropyLoss(weight=wt), x3, t3, False),
        (
            "ce-probs",
            nn.CrossEntropyLoss(weight=wc, label_smoothing=0.1),
            tnn.CrossEntropyLoss(weight=wt, label_smoothing=0.1),
            LOGITS,
            probs,
            True,
        ),
        ("nll", nn.NLLLoss(weight=wc), tnn.NLLLoss(weight=wt), LOGITS, LABELS, False),
        (
            "nll-ignore-none",
            nn.NLLLoss(reduction="none", ignore_index=7),
            tnn.NLLLoss(reduction="none", ignore_index=7),
            LOGITS,
            np.where(LABELS_IGNORED == -100, 2, LABELS_IGNORED),
            False,
        ),
        ("mse", nn.MSELoss(), tnn.MSELoss(), LOGITS, RNG.standard_normal((6, 4)), True),
        (
            "mse-none",
            nn.MSELoss("none"),
            tnn.MSELoss(reduction="none"),
            LOGITS,
            RNG.standard_normal((6, 4)),
            False,
        ),
        ("l1", nn.L1Loss(), tnn.L1Loss(), LOGITS, RNG.standard_normal((6, 4)), True),
        (
            "huber",
            nn.HuberLoss(delta=0.8),
            tnn.HuberLoss(delta=0.8),
            LOGITS,
            RNG.standard_normal((6, 4)),
            True,
        ),
        (
            "smoothl1",
            nn.SmoothL1Loss(beta=0.5),
            tnn.SmoothL1Loss(beta=0.5),
            LOGITS,
            RNG.standard_normal((6, 4)),
            False,
        ),
        (
            "bce-logits",
            nn.BCEWithLogitsLoss(pos_weight=pw_c),
            tnn.BCEWithLogitsLoss(pos_weight=pw_t),
            LOGITS * 10,
            RNG.random((6, 4)),
            True,
        ),
        (
            "bce-logits-weight-sum",
            nn.BCEWithLogitsLoss(weight=wc, reduction="sum"),
            tnn.BCEWithLogitsLoss(weight=wt, reduction="sum"),
            LOGITS,
            RNG.random((6, 4)),
            True,
        ),
        (
            "bce",
            nn.BCELoss(weight=wc),
            tnn.BCELoss(weight=wt),
            RNG.uniform(0.05, 0.95, (6, 4)),
            RNG.random((6, 4)),
            True,
        ),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("index", range(17))
def test_loss_parity(index: int, dtype) -> None:
    _, ours, theirs, x, target, target_grad = loss_cases(dtype)[index]
    check_loss(ours, theirs, x, target, dtype, target_grad)


def test_loss_case_count() -> None:
    assert len(loss_cases(np.float64)) == 17


def test_cross_entropy_stable_at_huge_logits() -> None:
    x = np.array([[1000.0, -1000.0, 0.0], [-500.0, 500.0, 499.0]], dtype=np.float32)
    check_loss(nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), x, np.array([0, 2]), np.float32)
    xc = cr.tensor(x, requires_grad=True)
    loss = nn.CrossEntropyLoss()(xc, cr.tensor(np.array([1, 2])))
    loss.backward()
    assert np.isfinite(loss.item())
    # Row 0 puts all mass on class 0 but the label is 1: loss 2000/2, gradient ±1/2.
    np.testing.assert_allclose(loss.item(), (2000.0 + 1.0 + np.log1p(np.exp(-1.0))) / 2, rtol=1e-6)
    np.testing.assert_allclose(xc.grad.numpy()[0], [0.5, -0.5, 0.0], atol=1e-7)


def test_bce_with_logits_stable_at_huge_logits() -> None:
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    check_loss(nn.BCEWithLogitsLoss(), tnn.BCEWithLogitsLoss(), x, y, np.float32)


def test_linear_on_a_transposed_stack_matches_torch() -> None:
    # A (S, N, E) stack seen as (N, S, E): its rows are not a view, so Linear copies them
    # into one product; the input gradient goes back in the input's own shape.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 4)).transpose(1, 0, 2)
    ours = nn.Linear(4, 6, dtype=cr.float64)
    theirs = torch.nn.Linear(4, 6).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g = rng.standard_normal((3, 5, 6))
    ours(xc).backward(cr.tensor(g))
    theirs(xt).backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-12)
