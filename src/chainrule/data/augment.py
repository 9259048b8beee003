"""Data augmentation for image batches: random shifts and horizontal flips.

A new view of each training image every epoch, so a convolutional network sees the same
garment a few pixels off or mirrored and learns what does not depend on the position.
Everything is drawn from a seeded ``chainrule.Generator``: the same seed gives the same
augmented batches, and a checkpoint that saves the generator resumes them bit-identically.

Batches on a GPU are augmented there (with the batch's array module). The random offsets
are drawn on the host from the same stream as on the CPU, so a seed gives the same
augmented images on either device; they reach the GPU as one small copy (3 numbers per
image) per batch, and nothing is read back.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.errors import ShapeError
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor


class RandomShiftFlip:
    """Shift each image by up to ``max_shift`` pixels in each direction (the border filled
    with zeros, the mean after normalisation) and mirror it left-right with probability
    ``flip``.

    Args:
        max_shift: the largest shift in pixels, per axis.
        flip: the probability of a left-right mirror (0 for digits, whose mirror images
            are other symbols; 0.5 suits clothes).
        generator: where the shifts are drawn from (the seeded default when None).

    Shape:
        a batch (N, C, H, W) → the same shape.

    Example:
        >>> import chainrule as cr
        >>> from chainrule.data.augment import RandomShiftFlip
        >>> RandomShiftFlip(2, flip=0.5)(cr.ones(4, 1, 8, 8)).shape
        (4, 1, 8, 8)
    """

    def __init__(self, max_shift: int = 2, flip: float = 0.5, generator: Generator | None = None):
        if int(max_shift) != max_shift or max_shift < 0:
            raise ValueError(f"RandomShiftFlip: max_shift must be an integer >= 0, got {max_shift}")
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"RandomShiftFlip: flip must be a probability, got {flip}")
        self.max_shift = int(max_shift)
        self.flip = float(flip)
        self.generator = generator

    def __call__(self, batch: Tensor) -> Tensor:
        x = batch.data
        if x.ndim != 4:
            raise ShapeError(
                f"RandomShiftFlip: expected images (N, C, H, W), got shape {tuple(x.shape)}; "
                f"augment image data (the cnn model), not flattened vectors"
            )
        n, _, h, w = x.shape
        s = self.max_shift
        gen = resolve(self.generator)
        host = backend.xp  # the draws: NumPy, then one copy to the batch's device
        # Offsets in [0, 2s] into the zero-padded images: every image its own window; a
        # third row of draws decides the mirrors (one (3, N) draw is the same stream as
        # the (2, N) and (N,) draws of earlier releases: the same images for a seed).
        draws = backend.to_host(gen.random((3 if self.flip else 2, n), backend.float64))
        offsets = host.minimum((draws[:2] * (2 * s + 1)).astype(backend.int64), 2 * s)
        if self.flip:
            flips = (draws[2] < self.flip).astype(backend.int64)
            offsets = host.concatenate([offsets, flips[None, :]])
        offsets = backend.to_device(offsets, backend.device_of(x))
        xp = backend.get_array_module(x)
        padded = xp.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
        rows = offsets[0][:, None] + xp.arange(h)[None, :]  # (N, H)
        cols = offsets[1][:, None] + xp.arange(w)[None, :]  # (N, W)
        if self.flip:
            mirrored = offsets[2] == 1
            cols = xp.where(mirrored[:, None], cols[:, ::-1], cols)
        batch_index = xp.arange(n)[:, None, None, None]
        channel_index = xp.arange(x.shape[1])[None, :, None, None]
        out: Any = padded[
            batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]
        ]
        return Tensor(xp.ascontiguousarray(out))
