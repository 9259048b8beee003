"""StratifiedBatchSampler: its guarantees on random label distributions (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.data import DataLoader, StratifiedBatchSampler, TensorDataset
from chainrule.random import Generator


@st.composite
def labelled(draw: st.DrawFn, room_for_all_classes: bool = False) -> tuple[np.ndarray, int, int]:
    """Shuffled labels with a random class distribution, a batch size and a seed."""
    counts = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    if draw(st.booleans()):
        counts[0] = draw(st.integers(41, 200))  # a dominant class: imbalanced data
    seed = draw(st.integers(0, 2**32 - 1))
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    batch_size = draw(st.integers(len(counts) if room_for_all_classes else 1, 48))
    return labels, batch_size, seed


def class_counts(labels: np.ndarray, batch: np.ndarray) -> np.ndarray:
    return np.bincount(labels[batch], minlength=int(labels.max()) + 1)


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_every_index_once_and_classes_spread_evenly(case: tuple[np.ndarray, int, int]) -> None:
    labels, batch_size, seed = case
    n = len(labels)
    sampler = StratifiedBatchSampler(labels, batch_size, generator=Generator(seed))
    batches = sampler.batches()
    nb = -(-n // batch_size)
    assert len(batches) == len(sampler) == nb
    # Every example exactly once.
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(n))
    sizes = [len(b) for b in batches]
    assert max(sizes) <= batch_size
    assert max(sizes) - min(sizes) <= 1
    totals = np.bincount(labels)
    for batch in batches:
        counts = class_counts(labels, batch)
        # Each class gets floor or ceil of its even share n_c / nb ...
        assert np.all(counts >= totals // nb)
        assert np.all(counts <= -(-totals // nb))
        assert np.all(np.abs(counts - totals / nb) < 1)
        # ... so a class with at least nb examples is in every batch.
        assert np.all(counts[totals >= nb] >= 1)


@settings(max_examples=60, deadline=None)
@given(labelled(room_for_all_classes=True))
def test_oversampling_puts_every_class_in_every_batch(case: tuple[np.ndarray, int, int]) -> None:
    labels, batch_size, seed = case
    sampler = StratifiedBatchSampler(
        labels, batch_size, oversample_rare=True, generator=Generator(seed)
    )
    batches = sampler.batches()
    nb = len(batches)
    assert nb == len(sampler) >= -(-len(labels) // batch_size)
    totals = np.bincount(labels)
    everything = np.concatenate(batches)
    # Nothing is lost; only the classes smaller than nb are repeated.
    assert np.array_equal(np.unique(everything), np.arange(len(labels)))
    uses = np.bincount(everything, minlength=len(labels))
    assert np.all(uses[totals[labels] >= nb] == 1)
    for batch in batches:
        assert len(batch) <= batch_size
        assert len(np.unique(batch)) == len(batch)  # a copy never shares a batch
        assert np.all(class_counts(labels, batch) >= 1)
    # nb is the fewest batches that can hold every class padded to nb examples.
    if nb > -(-len(labels) // batch_size):
        assert np.maximum(totals, nb - 1).sum() > (nb - 1) * batch_size


@settings(max_examples=40, deadline=None)
@given(labelled())
def test_drop_last_gives_full_batches_with_class_shares(case: tuple[np.ndarray, int, int]) -> None:
    labels, batch_size, seed = case
    n = len(labels)
    sampler = StratifiedBatchSampler(labels, batch_size, drop_last=True, generator=Generator(seed))
    batches = sampler.batches()
    assert len(batches) == len(sampler) == n // batch_size
    if not batches:
        return
    assert all(len(b) == batch_size for b in batches)
    kept = np.concatenate(batches)
    assert len(np.unique(kept)) == len(kept)
    share = np.bincount(labels) * len(kept) / n
    kept_counts = np.bincount(labels[kept], minlength=len(share))
    assert np.all(np.abs(kept_counts - share) <= 1)


def test_epochs_differ_and_repeat_from_the_seed() -> None:
    labels = np.repeat(np.arange(3), [30, 20, 10])
    sampler = StratifiedBatchSampler(labels, 8, generator=Generator(5))
    first, second = list(sampler), list(sampler)
    assert first != second
    again = StratifiedBatchSampler(labels, 8, generator=Generator(5))
    assert list(again) == first and list(again) == second


def test_default_generator_follows_manual_seed() -> None:
    labels = np.repeat(np.arange(4), 10)
    sampler = StratifiedBatchSampler(labels, 6)
    cr.manual_seed(11)
    a = list(sampler)
    cr.manual_seed(11)
    assert list(sampler) == a


def test_no_shuffle_is_deterministic_and_ordered() -> None:
    labels = ["b", "a", "b", "b", "a", "c"]
    sampler = StratifiedBatchSampler(labels, batch_size=3, shuffle=False)
    assert list(sampler) == list(sampler)
    # Classes sorted (a, b, c), examples ascending, dealt over 2 batches.
    assert list(sampler) == [[1, 0, 3], [4, 2, 5]]


def test_docstring_example_every_batch_has_both_classes() -> None:
    labels = [0] * 6 + [1] * 3
    batches = list(StratifiedBatchSampler(labels, batch_size=3, generator=Generator(0)))
    assert [sorted(labels[i] for i in b) for b in batches] == [[0, 0, 1]] * 3


def test_labels_may_be_a_tensor_and_feed_a_dataloader() -> None:
    y = cr.tensor(np.repeat(np.arange(3), [12, 6, 3]))
    x = cr.arange(21).reshape(21, 1)
    sampler = StratifiedBatchSampler(y, batch_size=7, generator=Generator(1))
    loader = DataLoader(TensorDataset(x, y), batch_sampler=sampler)
    assert len(loader) == 3
    for xb, yb in loader:
        assert np.bincount(yb.numpy(), minlength=3).tolist() == [4, 2, 1]
        assert np.array_equal(y.numpy()[xb.numpy()[:, 0]], yb.numpy())


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        StratifiedBatchSampler(np.zeros((4, 2)), 2)
    with pytest.raises(ValueError, match="batch_size >= 3"):
        StratifiedBatchSampler([0, 1, 2], 2, oversample_rare=True)
    with pytest.raises(ValueError, match="drop_last"):
        StratifiedBatchSampler([0, 1], 2, oversample_rare=True, drop_last=True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        StratifiedBatchSampler([0, 1], 0)


def test_empty_labels_give_no_batches() -> None:
    assert list(StratifiedBatchSampler(np.zeros(0, dtype=np.int64), 4)) == []
