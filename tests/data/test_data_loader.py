"""DataLoader, samplers and collation: batch shapes, reshuffling and reproducibility."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
)
from chainrule.random import Generator


def make_dataset(n: int = 10) -> TensorDataset:
    x = cr.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    return TensorDataset(x, cr.arange(n))


def epoch_order(loader: DataLoader) -> list[int]:
    return [i for _, y in loader for i in y.tolist()]


class PerItem(Dataset):
    """The same examples as make_dataset, but without the batched fast path."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return np.arange(3 * i, 3 * i + 3, dtype=np.float32), i


def test_batch_sizes_and_drop_last() -> None:
    ds = make_dataset(10)
    loader = DataLoader(ds, batch_size=4)
    assert [tuple(x.shape) for x, _ in loader] == [(4, 3), (4, 3), (2, 3)]
    assert len(loader) == 3
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert [tuple(x.shape) for x, _ in dropped] == [(4, 3), (4, 3)]
    assert len(dropped) == 2


def test_sequential_batches_hold_the_right_rows() -> None:
    ds = make_dataset(7)
    batches = list(DataLoader(ds, batch_size=3))
    assert batches[2][1].tolist() == [6]
    np.testing.assert_array_equal(batches[1][0].numpy(), ds.tensors[0].numpy()[3:6])
    assert batches[0][1].dtype == np.int64 and batches[0][0].dtype == np.float32


def test_shuffle_is_a_new_permutation_every_epoch() -> None:
    loader = DataLoader(make_dataset(50), batch_size=8, shuffle=True, generator=Generator(3))
    epochs = [epoch_order(loader) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(50))
    assert epochs[0] != epochs[1] != epochs[2] != epochs[0]


def test_manual_seed_reproduces_every_epoch() -> None:
    loader = DataLoader(make_dataset(30), batch_size=4, shuffle=True)
    cr.manual_seed(123)
    first = [epoch_order(loader) for _ in range(2)]
    cr.manual_seed(123)
    assert [epoch_order(loader) for _ in range(2)] == first


def test_generator_state_at_epoch_start_fixes_the_epoch() -> None:
    g = Generator(9)
    loader = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=g)
    epoch_order(loader)
    saved = g.get_state()  # what a checkpoint stores at an epoch boundary
    expected = epoch_order(loader)
    resumed = Generator(0)
    resumed.set_state(saved)
    fresh = DataLoader(make_dataset(30), batch_size=4, shuffle=True, generator=resumed)
    assert epoch_order(fresh) == expected


def test_the_order_is_drawn_when_the_epoch_starts() -> None:
    g = Generator(4)
    loader = DataLoader(make_dataset(20), batch_size=5, shuffle=True, generator=g)
    state = g.get_state()
    expected = epoch_order(loader)
    g.set_state(state)
    it = iter(loader)
    g.standard_normal((100,))  # e.g. dropout drawing between iter() and the first batch
    assert [i for _, y in it for i in y.tolist()] == expected


def test_fast_path_and_per_item_collation_agree() -> None:
    fast = DataLoader(make_dataset(11), batch_size=4, shuffle=True, generator=Generator(2))
    slow = DataLoader(PerItem(11), batch_size=4, shuffle=True, generator=Generator(2))
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        assert yf.tolist() == ys.tolist()
        assert isinstance(xs, cr.Tensor) and ys.dtype == np.int64


def test_collate_fn_replaces_the_fast_path() -> None:
    loader = DataLoader(make_dataset(4), batch_size=2, collate_fn=lambda items: len(items))
    assert list(loader) == [2, 2]


def test_custom_sampler_and_batch_sampler() -> None:
    ds = make_dataset(6)
    loader = DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])
    assert epoch_order(loader) == [5, 4, 3, 2, 1, 0]
    loader = DataLoader(ds, batch_sampler=[[0, 5], [2]])
    assert [y.tolist() for _, y in loader] == [[0, 5], [2]]
    assert loader.batch_size is None


def test_conflicting_arguments_are_refused() -> None:
    ds = make_dataset(4)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="shuffle=True or sampler="):
        DataLoader(ds, shuffle=True, sampler=[0, 1])
    with pytest.raises(ValueError, match="positive integer"):
        DataLoader(ds, batch_size=0)


def test_samplers() -> None:
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = Generator(0)
    order = list(RandomSampler(range(6), generator=g))
    assert sorted(order) == list(range(6))
    with_replacement = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(with_replacement) == 50 and set(with_replacement) <= {0, 1, 2}
    longer = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(longer) == 10 and sorted(longer[:4]) == [0, 1, 2, 3]
    batches = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    assert list(batches) == [[0, 1], [2, 3], [4]] and len(batches) == 3
    generic = BatchSampler(iter([3, 1, 2]), 2, drop_last=True)
    assert list(generic) == [[3, 1]]


def test_tensor_dataset_checks_and_items() -> None:
    with pytest.raises(cr.ShapeError, match=r"\(5, 2\).*\(4,\)"):
        TensorDataset(cr.zeros(5, 2), cr.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    ds = TensorDataset(np.arange(6.0).reshape(3, 2), np.array([7, 8, 9]))
    x, y = ds[1]
    assert x.tolist() == [2.0, 3.0] and y.shape == () and int(y) == 8
    xb, yb = ds.get_batch(np.array([2, 0]))
    assert xb.tolist() == [[4.0, 5.0], [0.0, 1.0]] and yb.tolist() == [9, 7]


def test_tensor_dataset_keeps_the_graph_for_tensors_that_require_grad() -> None:
    w = cr.ones(4, 2, requires_grad=True)
    (xb,) = TensorDataset(w).get_batch(np.array([1, 1, 3]))
    xb.sum().backward()
    assert w.grad is not None
    assert w.grad.tolist() == [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]


def test_subset_keeps_the_fast_path() -> None:
    from chainrule.data import Subset

    sub = Subset(make_dataset(10), [9, 2, 5])
    assert len(sub) == 3 and int(sub[0][1]) == 9
    assert [y.tolist() for _, y in DataLoader(sub, batch_size=2)] == [[9, 2], [5]]
    assert not hasattr(Subset(PerItem(3), [0]), "get_batch")


def test_default_collate_structures_and_dtypes() -> None:
    batch = default_collate([{"a": 1, "b": [1.5, True]}, {"a": 2, "b": [2.5, False]}])
    assert batch["a"].dtype == np.int64 and batch["a"].tolist() == [1, 2]
    assert batch["b"][0].dtype == np.float32 and batch["b"][1].dtype == np.bool_
    assert isinstance(batch["b"], list)
    stacked = default_collate([np.zeros((2, 2)), np.ones((2, 2))])
    assert stacked.shape == (2, 2, 2) and stacked.dtype == np.float64
    with pytest.raises(ValueError, match="different numbers of fields"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object()])


def test_default_collate_keeps_the_graph() -> None:
    a = cr.ones(2, requires_grad=True)
    stacked = default_collate([a, a * 2])
    stacked.sum().backward()
    assert a.grad is not None and a.grad.tolist() == [3.0, 3.0]
