"""The 8x8 handwritten digits bundled with scikit-learn: real data, offline, tiny."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy

from chainrule.data.datasets.image import ImageArrayDataset


def stratified_split(
    labels: numpy.ndarray, test_fraction: float, seed: int
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Indices of a train/test split that keeps every class's proportion.

    Each class's examples are shuffled with their own fixed stream (NumPy's PCG64 seeded
    with ``seed``, independent of chainrule's default generator, so the split never moves
    with ``cr.manual_seed``) and round(n_c · test_fraction) of them go to the test set.

    Returns:
        ``(train_indices, test_indices)``, each sorted ascending.
    """
    rng = numpy.random.Generator(numpy.random.PCG64(seed))
    test_parts = []
    for label in numpy.unique(labels):
        members = numpy.flatnonzero(labels == label)
        n_test = round(len(members) * test_fraction)
        test_parts.append(rng.permutation(members)[:n_test])
    test = numpy.sort(numpy.concatenate(test_parts))
    train = numpy.setdiff1d(numpy.arange(len(labels)), test, assume_unique=True)
    return train, test


@lru_cache(maxsize=1)
def _load_digits() -> tuple[numpy.ndarray, numpy.ndarray]:
    """scikit-learn's digits as uint8 images and int64 labels, parsed once per process."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "Digits needs scikit-learn, which ships the 8x8 digits: "
            "pip install scikit-learn (or pip install 'chainrule[train]')"
        ) from err
    bunch = load_digits()
    images = numpy.asarray(bunch.images).astype(numpy.uint8)
    labels = numpy.asarray(bunch.target).astype(numpy.int64)
    # Shared by every Digits instance, which only ever takes copies (fancy indexing).
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


class Digits(ImageArrayDataset):
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels with values 0..16.

    Available as soon as scikit-learn is installed (``pip install chainrule[train]``), with
    no download, which makes it the default real dataset for quick runs. The set has no
    official test split, so a fixed stratified one is made: the same ``split_seed`` gives
    the same split on every machine, each class keeping its proportion in both parts.

    Args:
        train: the training part or the test part.
        test_fraction: the share of each class held out for testing.
        split_seed: the seed of the split (not affected by ``cr.manual_seed``).
        transform: applied to each example's x (1, 8, 8).
        target_transform: applied to each label.
        batch_transform: applied to a batch's x (B, 1, 8, 8), keeping the fast path.

    Shape:
        - an example: x float32 (1, 8, 8) in [0, 1] (the pixel values divided by 16), y an
          int in 0..9.
        - ``data``: uint8 (N, 8, 8); ``targets``: int64 (N,); ``indices``: the positions
          of these examples in scikit-learn's ordering.

    Example:
        >>> train, test = Digits(train=True), Digits(train=False)
        >>> len(train) + len(test), train[0][0].shape
        (1797, (1, 8, 8))
    """

    def __init__(
        self,
        train: bool = True,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"Digits: test_fraction must be in (0, 1), got {test_fraction!r}")
        images, labels = _load_digits()
        train_idx, test_idx = stratified_split(labels, test_fraction, split_seed)
        self.train = bool(train)
        self.indices = train_idx if train else test_idx
        super().__init__(
            images[self.indices],
            labels[self.indices],
            [str(d) for d in range(10)],
            16.0,
            transform,
            target_transform,
            batch_transform,
        )
