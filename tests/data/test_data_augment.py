"""Random shifts and flips of image batches (data.augment)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.data.augment import RandomShiftFlip
from chainrule.training import TrainConfig


def _dots(n: int) -> np.ndarray:
    """n images 1×9×9, each with one bright pixel at the centre (4, 4)."""
    x = np.zeros((n, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0
    return x


def test_each_image_moves_by_at_most_max_shift_and_keeps_its_pixel() -> None:
    out = RandomShiftFlip(2, flip=0.0, generator=cr.Generator(0))(cr.tensor(_dots(200))).numpy()
    assert out.shape == (200, 1, 9, 9) and out.dtype == np.float32
    assert (out.reshape(200, -1).sum(1) == 1.0).all()  # the pixel is moved, never lost
    positions = np.array([np.unravel_index(np.argmax(o[0]), (9, 9)) for o in out])
    assert np.abs(positions - 4).max() == 2  # every offset in [-2, 2] is drawn...
    assert len({tuple(p) for p in positions}) == 25  # ...each of the 5 × 5 of them


def test_shifted_in_pixels_are_zero() -> None:
    x = np.ones((50, 2, 6, 6), np.float32)
    out = RandomShiftFlip(1, flip=0.0, generator=cr.Generator(1))(cr.tensor(x)).numpy()
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert (out == 0).any() and (out.sum(axis=(1, 2, 3)) >= 2 * 5 * 5).all()


def test_flip_mirrors_left_right_with_its_probability() -> None:
    x = np.zeros((400, 1, 4, 4), np.float32)
    x[:, 0, :, 0] = 1.0  # a bright left column
    out = RandomShiftFlip(0, flip=0.5, generator=cr.Generator(2))(cr.tensor(x)).numpy()
    mirrored = out[:, 0, :, 3].sum(1) == 4
    assert ((out[:, 0, :, 0].sum(1) == 4) ^ mirrored).all()
    assert 0.4 < mirrored.mean() < 0.6


def test_same_seed_same_batches() -> None:
    x = cr.tensor(np.random.default_rng(0).standard_normal((8, 1, 7, 7)).astype(np.float32))
    a = RandomShiftFlip(2, generator=cr.Generator(5))(x).numpy()
    b = RandomShiftFlip(2, generator=cr.Generator(5))(x).numpy()
    np.testing.assert_array_equal(a, b)


def test_bad_input_and_options_are_clear_errors() -> None:
    with pytest.raises(cr.ShapeError, match=r"expected images \(N, C, H, W\)"):
        RandomShiftFlip(2)(cr.ones(4, 64))
    with pytest.raises(ValueError, match="max_shift"):
        RandomShiftFlip(-1)
    with pytest.raises(ValueError, match="flip"):
        RandomShiftFlip(1, flip=2.0)
    with pytest.raises(ValueError, match=r"--augment .* --model cnn"):
        TrainConfig(augment=True).validate()
    with pytest.raises(ValueError, match="--augment-flip"):
        TrainConfig(model="cnn", augment=True, augment_flip=2.0).validate()
    with pytest.raises(ValueError, match="--augment-shift"):
        TrainConfig(model="cnn", augment=True, augment_shift=-1).validate()
