"""Normalize: (x - m) / max(sigma, eps) with training statistics."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import Normalize


def reference(
    train: np.ndarray, x: np.ndarray, axes: tuple[int, ...] | None, eps: float
) -> np.ndarray:
    m = train.mean(axis=axes, keepdims=True, dtype=np.float64)
    s = train.std(axis=axes, keepdims=True, dtype=np.float64)
    return (x - m) / np.maximum(s, eps)


@pytest.mark.parametrize(
    ("shape", "channel_axis", "reduced"),
    [
        ((20, 3, 4, 5), 1, (0, 2, 3)),  # images: per channel
        ((20, 6), 1, (0,)),  # flat data: per feature
        ((20, 2, 3), (1, 2), (0,)),  # per position
        ((20, 3, 4), -1, (0, 1)),
        ((20, 3, 4), None, None),  # one global mean and sigma
    ],
)
def test_matches_the_formula(
    shape: tuple[int, ...],
    channel_axis: int | tuple[int, ...] | None,
    reduced: tuple[int, ...] | None,
) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(2.0, 3.0, shape)
    test = rng.normal(2.0, 3.0, (7, *shape[1:]))
    norm = Normalize(eps=1e-6, channel_axis=channel_axis).fit(train)
    out = norm(test)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, reference(train, test, reduced, 1e-6), rtol=1e-12)
    # On the training set itself every channel ends up with mean 0 and sigma 1.
    z = norm(train)
    np.testing.assert_allclose(z.mean(axis=reduced), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=reduced), 1.0, rtol=1e-12)


def test_constant_channel_does_not_divide_by_zero() -> None:
    train = np.stack([np.arange(6.0), np.full(6, 4.0)], axis=1)  # feature 1 is constant
    norm = Normalize(eps=0.5).fit(train)
    assert norm.std is not None and norm.std.tolist() == [
        [pytest.approx(np.std(np.arange(6.0))), 0.0]
    ]
    z = norm(train)
    assert np.all(np.isfinite(z)) and np.all(z[:, 1] == 0.0)
    # Away from the training value, the constant channel is divided by eps.
    assert norm(np.array([[0.0, 5.0]]))[0, 1] == pytest.approx(2.0)


def test_eps_floors_small_sigma_only() -> None:
    train = np.array([[0.0, 0.0], [0.2, 20.0]])  # sigmas 0.1 and 10
    z = Normalize(eps=1.0).fit(train)(np.array([[0.1, 10.0]]) + 1.0)
    np.testing.assert_allclose(z, [[1.0 / 1.0, 1.0 / 10.0]])


def test_tensors_in_tensors_out_and_dtypes() -> None:
    images = np.random.default_rng(1).integers(0, 256, (10, 1, 4, 4)).astype(np.uint8)
    norm = Normalize().fit(images)
    out = norm(cr.tensor(images))
    assert isinstance(out, cr.Tensor) and out.dtype == np.float32
    assert norm.mean is not None and norm.mean.shape == (1, 1, 1, 1)
    assert norm.mean.dtype == np.float32
    np.testing.assert_allclose(
        out.numpy(),
        reference(images.astype(np.float64), images, (0, 2, 3), 1e-6),
        rtol=1e-5,
        atol=1e-5,
    )
    f32 = norm(np.ones((2, 1, 4, 4), dtype=np.float32))
    assert f32.dtype == np.float32


def test_single_example_without_the_batch_axis() -> None:
    train = np.random.default_rng(2).normal(size=(30, 3, 2, 2))
    norm = Normalize().fit(cr.tensor(train))
    np.testing.assert_allclose(norm(train[4]), norm(train[4:5])[0])


def test_gradient_is_one_over_the_floored_sigma() -> None:
    train = np.array([[1.0, 3.0], [3.0, 3.0]])  # sigmas 1 and 0
    norm = Normalize(eps=0.25).fit(train)
    x = cr.tensor(np.zeros((3, 2)), requires_grad=True)
    norm(x).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.tile([1.0, 4.0], (3, 1)))


def test_state_dict_round_trip() -> None:
    train = np.random.default_rng(3).normal(5.0, 2.0, (50, 4))
    norm = Normalize(eps=1e-3).fit(train)
    state = norm.state_dict()
    assert set(state) == {"mean", "std", "eps"} and isinstance(state["mean"], cr.Tensor)
    restored = Normalize(eps=7.0)
    restored.load_state_dict(
        {k: v.numpy() if isinstance(v, cr.Tensor) else v for k, v in state.items()}
    )
    assert restored.eps == 1e-3
    x = np.random.default_rng(4).normal(size=(3, 4))
    np.testing.assert_array_equal(restored(x), norm(x))


def test_misuse_gives_clear_errors() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        Normalize()(np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="before fit"):
        Normalize().state_dict()
    with pytest.raises(ValueError, match="eps must be positive"):
        Normalize(eps=0.0)
    with pytest.raises(cr.ShapeError, match="axis 0 holds the examples"):
        Normalize(channel_axis=0).fit(np.zeros((3, 2)))
    with pytest.raises(cr.ShapeError, match="axis 0 holds the examples"):
        Normalize().fit(np.zeros(3))
    norm = Normalize().fit(np.zeros((4, 3, 2, 2)))
    with pytest.raises(cr.ShapeError, match=r"\(5, 1, 2, 2\)"):
        norm(np.zeros((5, 1, 2, 2)))  # one channel where three were fitted
    with pytest.raises(cr.ShapeError, match="channel_axis"):
        Normalize(channel_axis=None).load_state_dict(norm.state_dict())
    with pytest.raises(KeyError, match="std"):
        Normalize().load_state_dict({"mean": np.zeros(2)})


def test_fit_rejects_nan_and_inf_naming_the_channels() -> None:
    # Issue 7, item 12: one NaN made its whole channel's mean NaN, silently.
    x = np.random.default_rng(0).random((20, 3, 4, 4))
    x[0, 1, 0, 0] = np.nan
    x[3, 1, 2, 2] = np.inf
    x[5, 2, 0, 0] = np.nan
    norm = Normalize()
    with pytest.raises(ValueError) as info:
        norm.fit(x)
    message = str(info.value)
    assert "2 NaN and 1 Inf" in message
    assert "channel 1: 1 NaN, 1 Inf; channel 2: 1 NaN, 0 Inf" in message
    assert "channel 0" not in message and "nan_to_num" in message
    assert not norm.fitted  # nothing half-measured is kept
    with pytest.raises(ValueError, match=r"channel \(1, 0\): 1 NaN"):
        Normalize(channel_axis=(1, 2)).fit(x)
    with pytest.raises(ValueError, match="channel_axis=None"):
        Normalize(channel_axis=None).fit(cr.tensor(x))


def test_fit_on_finite_data_with_a_huge_value_still_works() -> None:
    x = np.array([[0.0, 1e300], [2.0, -1e300]])
    norm = Normalize().fit(x)
    np.testing.assert_allclose(norm.mean.numpy(), [[1.0, 0.0]])
