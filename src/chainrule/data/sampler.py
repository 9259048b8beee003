"""Samplers: the order in which a ``DataLoader`` visits a dataset's examples.

A sampler yields example indices; a batch sampler yields lists of indices, one list per
batch (PyTorch's protocol). Every random order is drawn from a
``chainrule.random.Generator`` (the default one unless given) *all at once when an epoch
starts*, i.e. when ``iter()`` is called: the order of an epoch depends only on the
generator's state at that moment. So ``cr.manual_seed(s)`` reproduces every epoch bit for
bit, successive epochs differ, and a run resumed from ``generator.get_state()`` saved at an
epoch boundary replays the following epochs exactly.

The built-in samplers also offer the epoch as arrays (``epoch_indices()`` for samplers,
``batches()`` for batch samplers), which ``DataLoader`` uses to avoid a Python step per
example.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, Generic, TypeVar

import numpy

from chainrule.random import Generator, resolve


def positive_int(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value <= 0:
        raise ValueError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """The base class of samplers: ``__iter__`` yields indices, ``__len__`` counts them.

    ``Sampler[int]`` yields single indices, ``Sampler[list[int]]`` (a batch sampler)
    yields one list of indices per batch.

    A subclass may also define ``epoch_indices()`` returning the whole epoch's indices as
    an integer array, drawn when called.
    """

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__()")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


class _ArraySampler(Sampler[int]):
    """A sampler whose epoch is one array, drawn eagerly in ``__iter__``."""

    def epoch_indices(self) -> numpy.ndarray:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        # Draw now, not on the first next(), so the epoch's order is fixed by the
        # generator's state at the moment the epoch starts.
        return iter(self.epoch_indices().tolist())


class SequentialSampler(_ArraySampler):
    """Indices 0, 1, ..., N-1 in order, every epoch.

    Args:
        data_source: the dataset (only its length is used).

    Example:
        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __len__(self) -> int:
        return len(self.data_source)

    def epoch_indices(self) -> numpy.ndarray:
        """The epoch's indices: ``arange(N)``."""
        return numpy.arange(len(self.data_source), dtype=numpy.int64)


class RandomSampler(_ArraySampler):
    """A fresh random order of the indices every epoch.

    Without replacement each epoch is a permutation of 0..N-1 (every example exactly
    once). With ``replacement=True``, ``num_samples`` indices are drawn uniformly.

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw with replacement.
        num_samples: how many indices per epoch (default N). Without replacement, a
            value above N concatenates several permutations.
        generator: where the randomness comes from (default: chainrule's default
            generator, so ``cr.manual_seed`` reproduces the order).

    Example:
        >>> g = Generator(0)
        >>> sorted(RandomSampler(range(5), generator=g))
        [0, 1, 2, 3, 4]
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = (
            None
            if num_samples is None
            else positive_int(num_samples, "num_samples", "RandomSampler")
        )
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self) -> int:
        return self.num_samples

    def epoch_indices(self) -> numpy.ndarray:
        """Draw this epoch's order now (advances the generator)."""
        n = len(self.data_source)
        gen = resolve(self.generator)
        count = self.num_samples
        if n == 0:
            return numpy.zeros(0, dtype=numpy.int64)
        if self.replacement:
            return numpy.asarray(gen.integers(0, n, count), dtype=numpy.int64)
        perms = [gen.permutation(n) for _ in range(-(-count // n))]
        return numpy.concatenate(perms)[:count].astype(numpy.int64, copy=False)


class BatchSampler(Sampler[list[int]]):
    """Groups a sampler's indices into lists of ``batch_size``.

    Args:
        sampler: the order of the indices (any iterable of ints).
        batch_size: indices per batch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool = False) -> None:
        self.sampler = sampler
        self.batch_size = positive_int(batch_size, "batch_size", "BatchSampler")
        self.drop_last = bool(drop_last)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self) -> list[numpy.ndarray]:
        """The epoch's batches as integer arrays, drawn now."""
        if hasattr(self.sampler, "epoch_indices"):
            order = numpy.asarray(self.sampler.epoch_indices(), dtype=numpy.int64)
        else:
            order = numpy.fromiter(iter(self.sampler), dtype=numpy.int64)
        size = self.batch_size
        stop = len(order) - len(order) % size if self.drop_last else len(order)
        return [order[i : i + size] for i in range(0, stop, size)]

    def __iter__(self) -> Iterator[list[int]]:
        return map(numpy.ndarray.tolist, self.batches())
