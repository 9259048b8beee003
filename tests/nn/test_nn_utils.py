"""Gradient clipping: parity with torch.nn.utils, the inf norm, non-finite norms, inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

SHAPES = [(64, 32), (32,), (10, 64), (10,), (3, 4, 5)]


def _grads(dtype: Any, scale: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]


def _cr_params(grads: list[np.ndarray]) -> list[cr.Tensor]:
    params = []
    for g in grads:
        p = cr.zeros(*g.shape, dtype=g.dtype, requires_grad=True)
        p.grad = cr.tensor(g.copy())
        params.append(p)
    return params


def _torch_params(torch: Any, grads: list[np.ndarray]) -> list[Any]:
    params = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    return params


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5, "inf"])
@pytest.mark.parametrize("scale", [1.0, 1e-4], ids=["clipped", "unclipped"])
def test_clip_grad_norm_matches_torch(
    dtype: Any, rtol: float, norm_type: float | str, scale: float
) -> None:
    torch = pytest.importorskip("torch")
    grads = _grads(dtype, scale)
    ours, theirs = _cr_params(grads), _torch_params(torch, grads)
    total = nn.utils.clip_grad_norm_(ours, max_norm=1.5, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.5, norm_type=norm_type)
    assert isinstance(total, cr.Tensor) and total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(total.item(), expected.item(), rtol=rtol, atol=0)
    clipped = scale == 1.0
    assert (total.item() > 1.5) == clipped  # both branches of the coefficient are tested
    for p, q, g in zip(ours, theirs, grads):
        assert p.grad is not None and p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=rtol, atol=0)
        if not clipped:  # scaled by exactly 1: unchanged bits
            assert np.array_equal(p.grad.data, g)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5])
def test_float32_norm_of_a_large_gradient_is_accurate(norm_type: float) -> None:
    # On 10⁶ float32 values PyTorch's own norm drifts by up to ~1e-4 (p = 3.5) from the
    # exact value, so parity is tested above on small gradients and accuracy here.
    g = np.random.default_rng(2).standard_normal(1_000_000).astype(np.float32)
    exact = np.sum(np.abs(g.astype(np.float64)) ** norm_type) ** (1 / norm_type)
    total = nn.utils.get_total_norm([cr.tensor(g)], norm_type)
    np.testing.assert_allclose(total.item(), exact, rtol=2e-6, atol=0)


def test_known_answers() -> None:
    w = cr.tensor([1.0, 1.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([0.0], dtype=cr.float64, requires_grad=True)
    w.grad = cr.tensor(np.array([3.0, -4.0]))
    b.grad = cr.tensor(np.array([12.0]))
    total = nn.utils.clip_grad_norm_([w, b], max_norm=1.0)
    assert total.item() == 13.0  # √(3² + 4² + 12²)
    coef = 1.0 / (13.0 + 1e-6)
    assert np.allclose(w.grad.data, [3 * coef, -4 * coef], rtol=1e-15, atol=0)

    w.grad = cr.tensor(np.array([3.0, -4.0]))
    b.grad = cr.tensor(np.array([-12.0]))
    total = nn.utils.clip_grad_norm_([w, b], max_norm=6.0, norm_type=math.inf)
    assert total.item() == 12.0  # the largest magnitude
    assert np.allclose(b.grad.data, [-12.0 * 6.0 / (12.0 + 1e-6)], rtol=1e-15, atol=0)


def test_parameters_without_grad_are_skipped() -> None:
    a, frozen, b = (cr.ones(2, requires_grad=True) for _ in range(3))
    a.grad, b.grad = cr.tensor([3.0, 0.0]), cr.tensor([0.0, 4.0])
    total = nn.utils.clip_grad_norm_([a, frozen, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0, rel=1e-7)
    assert frozen.grad is None


def test_a_single_tensor_and_a_generator_are_accepted() -> None:
    w = cr.ones(3, requires_grad=True)
    w.grad = cr.tensor([2.0, 0.0, 0.0])
    assert nn.utils.clip_grad_norm_(w, max_norm=1.0).item() == 2.0
    assert w.grad.tolist() == pytest.approx([1.0, 0.0, 0.0], rel=1e-6)

    model = nn.Linear(3, 2)
    model(cr.ones(4, 3)).sum().backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    assert total.item() > 0.5
    after = nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert after.item() == pytest.approx(0.5, rel=1e-5)


def test_no_gradients_gives_zero() -> None:
    total = nn.utils.clip_grad_norm_([cr.ones(2, requires_grad=True)], max_norm=1.0)
    assert total.item() == 0.0 and total.dtype == cr.float32


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_norm_raises_naming_the_parameter(bad: float) -> None:
    a, b = cr.ones(2, requires_grad=True), cr.ones(2, requires_grad=True)
    a.grad, b.grad = cr.tensor([1.0, 2.0]), cr.tensor([bad, 1.0])
    before = b.grad.data.copy()
    with pytest.raises(
        RuntimeError,
        match=r"clip_grad_norm_: the total norm of order 2.0 of the gradients is (nan|inf), "
        r"so they cannot be clipped; the gradients of parameters \[1\] .* NaN or inf.*"
        r"error_if_nonfinite=False",
    ):
        nn.utils.clip_grad_norm_([a, b], max_norm=1.0, error_if_nonfinite=True)
    assert np.array_equal(b.grad.data, before, equal_nan=True)  # nothing was scaled


def test_overflowing_norm_is_reported_as_overflow() -> None:
    w = cr.ones(2, requires_grad=True)
    w.grad = cr.tensor([3e38, 3e38])  # finite float32 values whose squares overflow
    with pytest.raises(RuntimeError, match="every gradient is finite but the norm overflowed"):
        nn.utils.clip_grad_norm_([w], max_norm=1.0, error_if_nonfinite=True)


def test_nonfinite_norm_without_the_error_scales_like_torch() -> None:
    torch = pytest.importorskip("torch")
    grads = [np.array([1.0, np.nan]), np.array([2.0])]
    ours, theirs = _cr_params(grads), _torch_params(torch, grads)
    total = nn.utils.clip_grad_norm_(ours, max_norm=1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm=1.0)
    assert math.isnan(total.item()) and math.isnan(expected.item())
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype: Any) -> None:
    torch = pytest.importorskip("torch")
    grads = _grads(dtype, 1.0, seed=1)
    ours, theirs = _cr_params(grads), _torch_params(torch, grads)
    assert nn.utils.clip_grad_value_(ours, clip_value=0.5) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value=0.5)
    for p, q in zip(ours, theirs):
        assert np.array_equal(p.grad.data, q.grad.numpy())
        assert np.abs(p.grad.data).max() == dtype(0.5)


def test_clipping_records_the_in_place_change() -> None:
    w = cr.ones(2, requires_grad=True)
    w.grad = cr.tensor([3.0, 4.0])
    stamp = w.grad._version[0]
    nn.utils.clip_grad_norm_(w, max_norm=1.0)
    second = w.grad._version[0]
    nn.utils.clip_grad_value_(w, clip_value=0.1)
    assert stamp < second < w.grad._version[0]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda w: nn.utils.clip_grad_norm_(w, max_norm=-1.0), "max_norm must be >= 0"),
        (lambda w: nn.utils.clip_grad_norm_(w, max_norm=math.nan), "max_norm must be >= 0"),
        (lambda w: nn.utils.clip_grad_norm_(w, 1.0, norm_type=-2), "norm_type must be"),
        (lambda w: nn.utils.clip_grad_value_(w, clip_value=-0.5), "clip_value must be >= 0"),
    ],
)
def test_bad_arguments(call: Any, match: str) -> None:
    w = cr.ones(2, requires_grad=True)
    w.grad = cr.tensor([3.0, 4.0])
    with pytest.raises(ValueError, match=match):
        call(w)
