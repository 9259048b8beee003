"""Samplers that split each epoch between ranks (checked for all ranks in one process)."""

from __future__ import annotations

from collections import Counter

import numpy
import pytest

import chainrule as cr
from chainrule import distributed as dist
from chainrule.data import StratifiedBatchSampler


@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
def test_every_sample_exactly_once_per_epoch_across_ranks(replicas: int) -> None:
    n = 24
    for epoch in range(3):
        shares = []
        for rank in range(replicas):
            s = dist.DistributedSampler(range(n), num_replicas=replicas, rank=rank, seed=7)
            s.set_epoch(epoch)
            shares.append(list(s))
            assert len(shares[-1]) == len(s) == n // replicas
        assert sorted(i for share in shares for i in share) == list(range(n))


def test_same_order_on_every_rank_new_order_each_epoch() -> None:
    ranks = [dist.DistributedSampler(range(10), num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    epoch0 = [list(s) for s in ranks]
    for s in ranks:
        s.set_epoch(1)
    epoch1 = [list(s) for s in ranks]
    # Rank r takes positions r, r+2, ... of the common permutation of seed + epoch.
    common = numpy.asarray(cr.Generator(3).permutation(10)).tolist()
    assert epoch0 == [common[0::2], common[1::2]]
    assert epoch1 != epoch0
    assert [list(s) for s in ranks] == epoch1  # the same epoch drawn twice is the same


def test_uneven_dataset_pads_or_drops() -> None:
    padded = [list(dist.DistributedSampler(range(10), 4, r, shuffle=False)) for r in range(4)]
    assert padded == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    dropped = [
        list(dist.DistributedSampler(range(10), 4, r, shuffle=False, drop_last=True))
        for r in range(4)
    ]
    assert dropped == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank must be in \\[0, num_replicas\\), got rank=2"):
        dist.DistributedSampler(range(4), num_replicas=2, rank=2)


def test_stratified_every_class_in_every_rank_batch() -> None:
    labels = numpy.repeat(numpy.arange(5), [40, 30, 20, 18, 12])  # the rarest: 2 per global batch
    replicas = 2
    per_rank = [
        dist.DistributedStratifiedBatchSampler(labels, 10, num_replicas=replicas, rank=r, seed=1)
        for r in range(replicas)
    ]
    epochs = [s.batches() for s in per_rank]
    assert len(epochs[0]) == len(epochs[1]) == 6  # 120 examples, global batches of 20
    seen: Counter[int] = Counter()
    for batches in epochs:
        for b in batches:
            assert set(labels[b]) == set(range(5))  # every class, even the rarest
            seen.update(b.tolist())
    assert sorted(seen) == list(range(120)) and set(seen.values()) == {1}


def test_stratified_ranks_together_see_the_one_process_batches() -> None:
    labels = numpy.arange(50) % 3
    one = StratifiedBatchSampler(labels, 12, generator=cr.Generator(9)).batches()
    shares = [
        dist.DistributedStratifiedBatchSampler(
            labels, 4, num_replicas=3, rank=r, generator=cr.Generator(9)
        )
        for r in range(3)
    ]
    drawn = [s.batches() for s in shares]
    for i, batch in enumerate(one):
        together = numpy.concatenate([d[i] for d in drawn])
        assert sorted(together.tolist()) == sorted(batch.tolist())
    assert shares[0].global_batch_sizes == [len(b) for b in one]


def test_batch_sampler_deals_any_global_batches() -> None:
    from chainrule.data import BatchSampler, RandomSampler

    def whole() -> BatchSampler:
        return BatchSampler(RandomSampler(range(11), generator=cr.Generator(4)), batch_size=4)

    one = whole().batches()
    shares = [dist.DistributedBatchSampler(whole(), num_replicas=2, rank=r) for r in (0, 1)]
    drawn = [s.batches() for s in shares]
    assert [b.tolist() for b in drawn[0]] == [b[0::2].tolist() for b in one]
    assert [b.tolist() for b in drawn[1]] == [b[1::2].tolist() for b in one]
    assert shares[1].global_batch_sizes == [4, 4, 3]
