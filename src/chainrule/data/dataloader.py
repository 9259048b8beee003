"""``DataLoader``: a dataset served as minibatches of Tensors, reshuffled every epoch.

The order of the examples is drawn on the host (samplers are host code); a batch is
gathered where the dataset lives. For a dataset on a GPU the epoch's whole order is copied
there once, when the epoch starts, and each batch is a slice of it: one small transfer
per epoch, none per batch, and no read back to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from chainrule import backend
from chainrule.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    positive_int,
)
from chainrule.device import Device
from chainrule.ops import stack
from chainrule.random import Generator
from chainrule.tensor import Tensor

# Host data (Python lists, NumPy arrays, index lists from samplers) is read with NumPy.
numpy = backend.xp


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of examples into one batch, field by field.

    Tensors and arrays are stacked along a new first dimension; Python ints, floats and
    bools become int64, float32 (the default float) and bool tensors of shape (B,);
    tuples, lists and dicts are collated per field, keeping their structure.

    Args:
        samples: the examples of one batch, all with the same structure.

    Returns:
        The batch: a Tensor, or a tuple / list / dict of them.

    Example:
        >>> import chainrule as cr
        >>> x, y = default_collate([(cr.zeros(3), 1), (cr.ones(3), 0)])
        >>> x.shape, y.tolist()
        ((2, 3), [1, 0])
    """
    if len(samples) == 0:
        raise ValueError("default_collate: cannot collate an empty batch")
    first = samples[0]
    if isinstance(first, Tensor):
        if any(isinstance(s, Tensor) and s.requires_grad for s in samples):
            return stack(samples)
        arrays = [_array(s) for s in samples]
        # Stacked by the examples' own array module: GPU examples give a GPU batch.
        return Tensor(backend.array_module(*arrays).stack(arrays))
    if isinstance(first, (numpy.ndarray, numpy.generic)) or backend.is_device_array(first):
        arrays = [_array(s) for s in samples]
        return Tensor(backend.array_module(*arrays).stack(arrays))
    # Python numbers: host data.
    if isinstance(first, bool):
        return Tensor(numpy.asarray(samples, dtype=backend.bool_))
    if isinstance(first, int):
        return Tensor(numpy.asarray(samples, dtype=backend.int64))
    if isinstance(first, float):
        return Tensor(numpy.asarray(samples, dtype=backend.default_float))
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError(
                f"default_collate: examples have different numbers of fields "
                f"({sorted({len(s) for s in samples})}); every example must have the same "
                f"structure"
            )
        fields = [default_collate(list(field)) for field in zip(*samples, strict=True)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(
        f"default_collate: cannot batch examples of type {type(first).__name__}; return "
        f"Tensors, arrays, numbers or tuples/dicts of them, or pass collate_fn="
    )


def _array(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.data
    return x if backend.is_device_array(x) else numpy.asarray(x)


class DataLoader:
    """Serves a dataset as minibatches of Tensors, in a new order every epoch.

    Each ``for batch in loader`` is one epoch. With ``shuffle=True`` the examples are
    reshuffled at the start of every epoch, differently each time, drawing from
    ``generator`` (chainrule's default generator unless given). The order of an epoch
    depends only on the generator's state when the epoch starts (``iter(loader)``): after
    ``cr.manual_seed(s)`` the epochs repeat bit for bit, and saving
    ``generator.get_state()`` at an epoch boundary lets a resumed run replay the next
    epochs exactly.

    When the dataset defines ``get_batch(indices)`` (``TensorDataset``, the array-backed
    datasets in ``chainrule.data.datasets``) and no ``collate_fn`` is given, each batch is
    taken with one fancy-index per field; otherwise examples are fetched one by one and
    combined by ``collate_fn`` (default ``default_collate``).

    A dataset on a GPU (a ``TensorDataset`` of GPU tensors) gives GPU batches: the epoch's
    order, drawn on the host, is copied to the GPU once per epoch and each batch is
    gathered there with a slice of it (no transfer per batch).

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``).
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (a ``RandomSampler``).
        sampler: the order of the indices (excludes ``shuffle``).
        batch_sampler: yields whole batches of indices, e.g. a
            ``StratifiedBatchSampler`` (excludes ``batch_size``, ``shuffle``, ``sampler``
            and ``drop_last``).
        drop_last: drop the last, smaller batch.
        generator: the randomness for ``shuffle=True``.
        collate_fn: turns a list of examples into a batch.

    Shape:
        - a ``TensorDataset(x, y)`` with x (N, D) and y (N,) gives batches
          ``(x_b, y_b)`` of shapes (B, D) and (B,); B = ``batch_size`` except perhaps for
          the last batch.

    Example:
        >>> import chainrule as cr
        >>> from chainrule.data import TensorDataset
        >>> ds = TensorDataset(cr.randn(10, 3), cr.arange(10))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True)
        >>> [tuple(x.shape) for x, y in loader]
        [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        sampler: Sampler[int] | Any | None = None,
        batch_sampler: Any | None = None,
        drop_last: bool = False,
        generator: Generator | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        if batch_sampler is not None:
            if batch_size not in (1, None) or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "DataLoader: batch_sampler decides the batches itself, so it cannot be "
                    "combined with batch_size, shuffle, sampler or drop_last; set those on "
                    "the batch sampler"
                )
            batch_size = None
        else:
            if batch_size is None:
                raise ValueError(
                    "DataLoader: batch_size=None (unbatched loading) is not supported; give "
                    "a positive batch_size"
                )
            batch_size = positive_int(batch_size, "batch_size", "DataLoader")
            if sampler is not None and shuffle:
                raise ValueError(
                    "DataLoader: shuffle=True makes its own RandomSampler; pass either "
                    "shuffle=True or sampler=, not both"
                )
            if sampler is None:
                sampler = (
                    RandomSampler(dataset, generator=generator)
                    if shuffle
                    else SequentialSampler(dataset)
                )
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self._get_batch = getattr(dataset, "get_batch", None) if collate_fn is None else None

    def __len__(self) -> int:
        """The number of batches per epoch."""
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[Any]:
        # The epoch's order is drawn here, eagerly, so it depends only on the generator's
        # state at the start of the epoch (not on when the first batch is requested).
        if hasattr(self.batch_sampler, "batches"):
            index_batches: Any = self.batch_sampler.batches()
        else:
            index_batches = iter(self.batch_sampler)
        return self._load(index_batches)

    def _load(self, index_batches: Any) -> Iterator[Any]:
        get_batch = self._get_batch
        if get_batch is None:
            for indices in index_batches:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])
            return
        device = getattr(self.dataset, "device", None)
        if isinstance(device, Device) and device.type != "cpu" and isinstance(index_batches, list):
            yield from _device_batches(get_batch, index_batches, device)
            return
        for indices in index_batches:
            yield get_batch(numpy.asarray(indices, dtype=numpy.int64))


def _device_batches(
    get_batch: Callable[[Any], Any], batches: list[Any], device: Device
) -> Iterator[Any]:
    """The batches of one epoch, gathered on ``device`` with index arrays that live there:
    the whole epoch's order is copied once, then each batch takes a slice (a view)."""
    sizes = [len(b) for b in batches]
    if not sizes:
        return
    host = numpy.concatenate([numpy.asarray(b, dtype=numpy.int64) for b in batches])
    order = backend.to_device(host, device)
    start = 0
    for size in sizes:
        yield get_batch(order[start : start + size])
        start += size
