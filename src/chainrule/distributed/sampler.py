"""Samplers that split each epoch between the ranks.

Every rank draws the *same* epoch order (from the same seed, or a generator in the same
state on every rank) and keeps its own share of it, so no rank needs to tell another
which examples it takes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import numpy

from chainrule.data import Sampler, StratifiedBatchSampler
from chainrule.distributed import world
from chainrule.random import Generator


def _replicas_and_rank(num_replicas: int | None, rank: int | None, owner: str) -> tuple[int, int]:
    size = world.world_size() if num_replicas is None else int(num_replicas)
    me = world.rank() if rank is None else int(rank)
    if size <= 0 or not 0 <= me < size:
        raise ValueError(
            f"{owner}: rank must be in [0, num_replicas), got rank={me}, num_replicas={size}"
        )
    return size, me


class DistributedSampler(Sampler[int]):
    """Each rank's share of an epoch: indices r, r + R, r + 2R, … of a common order.

    The epoch's order is a permutation drawn from ``seed + epoch`` (the same on every
    rank; call ``set_epoch(e)`` before each epoch for a new order). If N is not a
    multiple of R, the order is padded with its first indices so that every rank gets
    ⌈N/R⌉ (or cut to ⌊N/R⌋ each with ``drop_last=True``): all ranks run the same number
    of steps, which collectives need.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas: the number of ranks (default ``world_size()``).
        rank: this rank (default ``rank()``).
        shuffle: a new random order each epoch; otherwise 0..N-1.
        seed: the seed of the shuffle, the same on every rank.
        drop_last: drop the tail instead of padding.

    Example:
        >>> s = DistributedSampler(range(10), num_replicas=2, rank=1, shuffle=False)
        >>> list(s)
        [1, 3, 5, 7, 9]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.num_replicas, self.rank = _replicas_and_rank(num_replicas, rank, "DistributedSampler")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` next (call it on every rank before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def epoch_indices(self) -> numpy.ndarray:
        """This rank's indices for the current epoch."""
        n = len(self.dataset)
        if self.shuffle:
            order = numpy.asarray(Generator(self.seed + self.epoch).permutation(n))
        else:
            order = numpy.arange(n)
        order = order.astype(numpy.int64, copy=False)
        if self.total_size > n:
            order = numpy.resize(order, self.total_size)  # repeat the start as padding
        order = order[: self.total_size]
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())


class DistributedBatchSampler(Sampler[list[int]]):
    """Deal each global batch of ``batch_sampler`` between the ranks.

    ``batch_sampler`` must draw the same batches on every rank (a generator in the same
    state, e.g. ``Generator(seed)`` made on each): rank r keeps positions r, r + R, … of
    each. Given ``labels``, a batch is first sorted by class, so that a class with k
    examples in it has ⌊k/R⌋ or ⌈k/R⌉ in each rank's share. R ranks together then see
    exactly the batches one process would have seen.

    Args:
        batch_sampler: yields the global batches (``batches()`` or lists of indices).
        num_replicas, rank: as for ``DistributedSampler``.
        labels: the class of each example, to deal each class evenly (optional).

    Example:
        >>> from chainrule.data import BatchSampler, SequentialSampler
        >>> whole = BatchSampler(SequentialSampler(range(6)), batch_size=4)
        >>> list(DistributedBatchSampler(whole, num_replicas=2, rank=1))
        [[1, 3], [5]]
    """

    def __init__(
        self,
        batch_sampler: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        labels: Any = None,
    ) -> None:
        self.num_replicas, self.rank = _replicas_and_rank(num_replicas, rank, type(self).__name__)
        self.batch_sampler = batch_sampler
        self._codes = None
        if labels is not None:
            labels = numpy.asarray(getattr(labels, "data", labels))
            self._codes = numpy.unique(labels, return_inverse=True)[1].reshape(-1)
        self.global_batch_sizes: list[int] = []

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def batches(self) -> list[numpy.ndarray]:
        """This rank's batches for the epoch, drawn now.

        ``global_batch_sizes`` then holds the size of each global batch: a rank whose
        share is n of a global batch of G weights its mean loss by n·R/G, and the average
        over ranks is then exactly the mean over the global batch.
        """
        if hasattr(self.batch_sampler, "batches"):
            drawn = self.batch_sampler.batches()
        else:
            drawn = [numpy.asarray(b, dtype=numpy.int64) for b in self.batch_sampler]
        mine = []
        for batch in drawn:
            if self._codes is not None:
                batch = batch[numpy.argsort(self._codes[batch], kind="stable")]
            mine.append(batch[self.rank :: self.num_replicas])
        self.global_batch_sizes = [len(b) for b in drawn]
        return mine

    def __iter__(self) -> Iterator[list[int]]:
        return map(numpy.ndarray.tolist, self.batches())


class DistributedStratifiedBatchSampler(DistributedBatchSampler):
    """Stratified batches split between ranks: every class in every rank's minibatch.

    Each epoch draws the stratified global batches of ``batch_size × R`` examples that a
    ``StratifiedBatchSampler`` would draw in one process and deals them class by class
    (see ``DistributedBatchSampler``): a class with k examples in a global batch has
    ⌊k/R⌋ or ⌈k/R⌉ in each rank's share.

    Randomness: from ``generator`` if given (it must be in the same state on every rank,
    e.g. ``Generator(seed)`` created on each), else from ``seed + epoch`` (``set_epoch``).

    Args:
        labels: the class of each example, shape (N,).
        batch_size: the largest batch *per rank*; the global batch is R times larger.
        num_replicas, rank: as for ``DistributedSampler``.
        shuffle, drop_last, oversample_rare: as for ``StratifiedBatchSampler``.
        seed: the seed when no generator is given.
        generator: a generator in the same state on every rank.

    Example:
        >>> labels = [0, 1] * 8
        >>> s = DistributedStratifiedBatchSampler(labels, 4, num_replicas=2, rank=0)
        >>> [sorted(labels[i] for i in b) for b in s]
        [[0, 0, 1, 1], [0, 0, 1, 1]]
    """

    def __init__(
        self,
        labels: Any,
        batch_size: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        oversample_rare: bool = False,
        seed: int = 0,
        generator: Generator | None = None,
    ) -> None:
        replicas, _ = _replicas_and_rank(num_replicas, rank, type(self).__name__)
        whole = StratifiedBatchSampler(
            labels,
            batch_size * replicas,
            shuffle=shuffle,
            drop_last=drop_last,
            oversample_rare=oversample_rare,
            generator=generator,
        )
        super().__init__(whole, num_replicas, rank, labels=labels)
        self.seed = int(seed)
        self.epoch = 0
        self.generator = generator

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` next (when no generator was given)."""
        self.epoch = int(epoch)

    def batches(self) -> list[numpy.ndarray]:
        if self.generator is None:
            self.batch_sampler.generator = Generator(self.seed + self.epoch)
        return super().batches()
