"""``StratifiedBatchSampler``: minibatches that each look like the whole dataset.

The lecture's advice is to shuffle the examples and, ideally, to have instances of every
class in each minibatch. A plain shuffle leaves that to chance: with 10 classes and
batches of 16, most batches miss a class. This sampler deals each class's examples evenly
over the epoch's batches instead.

How an epoch is built (n = number of batches):

1. shuffle the examples inside each class and shuffle the order of the classes;
2. lay the classes end to end in one sequence and deal it round-robin: position p goes
   to batch p mod n. A class's n_c examples form a contiguous run, so each batch
   receives ⌊n_c/n⌋ or ⌈n_c/n⌉ of them, and the batch sizes are ⌊N/n⌋ or ⌈N/n⌉;
3. shuffle the examples inside each batch and the order of the batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy

from chainrule import backend
from chainrule.data.sampler import Sampler, positive_int
from chainrule.random import Generator, resolve


class StratifiedBatchSampler(Sampler[list[int]]):
    """Batches of indices in which every class keeps its share of the dataset.

    With n = ⌈N / batch_size⌉ batches per epoch, the guarantees are:

    - every example appears exactly once per epoch;
    - batch sizes are ⌊N/n⌋ or ⌈N/n⌉, so at most ``batch_size`` and within one of each
      other (unlike ``BatchSampler``, whose last batch holds the remainder: evening out
      the sizes is what lets every batch hold every common class);
    - a class with n_c examples has ⌊n_c/n⌋ or ⌈n_c/n⌉ of them in each batch: less than
      one example away from its even share n_c/n, so each batch keeps the dataset's
      class proportions, and every class with at least n examples appears in every
      batch.

    With ``oversample_rare=True`` a class with fewer than n examples has its examples
    repeated (each ⌊n/n_c⌋ or ⌈n/n_c⌉ times, never twice in one batch) so that it too
    appears in every batch; n is then the smallest number of batches of at most
    ``batch_size`` that holds the padded epoch, and examples of the rare classes appear
    more than once per epoch. This needs no more classes than ``batch_size``.

    With ``drop_last=True`` there are n = ⌊N / batch_size⌋ batches of exactly
    ``batch_size``; the N - n·batch_size examples left out are chosen with the classes'
    proportions (each class keeps its share, rounded up or down) and differ from epoch to epoch. The
    per-batch guarantees then hold for the examples kept.

    Randomness is drawn from ``generator`` when the epoch starts (``iter()``), so the
    order of an epoch depends only on the generator's state at that moment.

    Args:
        labels: the class of each example, shape (N,): a Tensor, an array or a list
            (any values NumPy can sort: ints, strings).
        batch_size: the largest batch size.
        shuffle: draw a new order each epoch; ``False`` gives a fixed, deterministic
            stratified order (classes in sorted order, examples ascending).
        drop_last: keep only full batches (see above).
        oversample_rare: repeat the examples of classes smaller than the number of
            batches so that every class is in every batch (for imbalanced data).
        generator: source of the randomness (default: chainrule's default generator).

    Example:
        >>> labels = [0] * 6 + [1] * 3
        >>> batches = list(StratifiedBatchSampler(labels, batch_size=3, generator=Generator(0)))
        >>> [sorted(labels[i] for i in b) for b in batches]
        [[0, 0, 1], [0, 0, 1], [0, 0, 1]]
    """

    def __init__(
        self,
        labels: Any,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        oversample_rare: bool = False,
        generator: Generator | None = None,
    ) -> None:
        name = "StratifiedBatchSampler"
        self.batch_size = positive_int(batch_size, "batch_size", name)
        # The batches are drawn on the host: labels on a GPU are copied once, here.
        labels = backend.to_host(getattr(labels, "data", labels))
        if labels.ndim != 1:
            raise ValueError(
                f"{name}: labels must be one class per example, shape (N,), got shape "
                f"{labels.shape}; pass class indices, not one-hot rows (use argmax(1))"
            )
        if oversample_rare and drop_last:
            raise ValueError(
                f"{name}: oversample_rare=True already fills every batch; it cannot be "
                f"combined with drop_last=True"
            )
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.oversample_rare = bool(oversample_rare)
        self.generator = generator
        self.classes, codes, counts = numpy.unique(labels, return_inverse=True, return_counts=True)
        self.class_counts: numpy.ndarray = counts
        # Examples grouped by class (ascending inside each class): the starting point
        # of every epoch's order.
        self._by_class = numpy.argsort(codes, kind="stable")
        self._codes = codes.reshape(-1)
        n = len(labels)
        if n == 0:
            self.num_batches = 0
        elif oversample_rare:
            if len(counts) > self.batch_size:
                raise ValueError(
                    f"{name}: oversample_rare=True puts all {len(counts)} classes in every "
                    f"batch, which needs batch_size >= {len(counts)}, got {self.batch_size}"
                )
            self.num_batches = _batches_with_oversampling(counts, self.batch_size)
        elif drop_last:
            self.num_batches = n // self.batch_size
        else:
            self.num_batches = -(-n // self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def batches(self) -> list[numpy.ndarray]:
        """The epoch's batches as integer arrays, drawn now (advances the generator)."""
        nb = self.num_batches
        if nb == 0:
            return []
        gen = resolve(self.generator) if self.shuffle else None
        blocks = self._class_blocks(gen)
        if self.oversample_rare:
            # Repeating a class cyclically to exactly nb examples deals one to each batch.
            blocks = [b if len(b) >= nb else numpy.resize(b, nb) for b in blocks]
        sequence = numpy.concatenate(blocks)
        if self.drop_last:
            keep = nb * self.batch_size
            # Evenly spaced positions over the class-sorted sequence keep each class's share.
            sequence = sequence[(numpy.arange(keep) * len(sequence)) // keep]
        position = numpy.arange(len(sequence))
        batch_of = position % nb
        within = position if gen is None else gen.permutation(len(sequence))
        sequence = sequence[numpy.lexsort((within, batch_of))]
        sizes = numpy.bincount(batch_of, minlength=nb)
        batches = numpy.split(sequence, numpy.cumsum(sizes)[:-1])
        if gen is not None:
            batches = [batches[i] for i in gen.permutation(nb)]
        return batches

    def _class_blocks(self, gen: Generator | None) -> list[numpy.ndarray]:
        """Each class's example indices (shuffled if ``gen``), classes in epoch order."""
        by_class = self._by_class
        if gen is not None:
            # A random order, then a stable sort by class: random order inside each class.
            order = gen.permutation(len(self._codes))
            by_class = order[numpy.argsort(self._codes[order], kind="stable")]
        blocks = numpy.split(by_class, numpy.cumsum(self.class_counts)[:-1])
        if gen is not None:
            blocks = [blocks[c] for c in gen.permutation(len(blocks))]
        return blocks

    def __iter__(self) -> Iterator[list[int]]:
        return map(numpy.ndarray.tolist, self.batches())


def _batches_with_oversampling(counts: numpy.ndarray, batch_size: int) -> int:
    """The fewest batches n such that every class padded to n examples fits in n batches.

    The padded epoch holds Σ_c max(n_c, n) examples and must fit n·batch_size. The slack
    n·batch_size - Σ_c max(n_c, n) never decreases as n grows (while there are at most
    batch_size classes), so a bisection finds the smallest n.
    """
    counts = counts.astype(numpy.int64)

    def fits(n: int) -> bool:
        return int(numpy.maximum(counts, n).sum()) <= n * batch_size

    low = max(1, -(-int(counts.sum()) // batch_size))
    high = max(low, int(counts.max()))
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low
