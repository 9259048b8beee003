"""Datasets: indexable collections of examples (PyTorch's ``Dataset`` protocol).

A dataset answers ``len(dataset)`` and ``dataset[i]`` (one example, usually a tuple such
as ``(x, y)``). A dataset whose examples live in arrays may also define
``get_batch(indices)``: given an integer index array, it returns the whole batch at once
(one fancy-index per array), already collated. ``DataLoader`` uses it when present instead
of fetching examples one by one, which removes a Python loop per example.

Devices: a ``TensorDataset`` lives where its tensors live. Put the whole dataset on a GPU
(``TensorDataset(x.to("cuda"), y.to("cuda"))``) and every batch is gathered there, with
index arrays on the same GPU (``DataLoader`` moves each epoch's order there once), so no
example crosses between host and device during training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrule import backend
from chainrule.device import CPU, Device
from chainrule.errors import DeviceError, ShapeError
from chainrule.tensor import Tensor


class Dataset:
    """The base class of map-style datasets: subclass it and define two methods.

    ``__getitem__(index)`` returns one example and ``__len__()`` the number of examples.
    Optionally ``get_batch(indices)`` returns a collated batch for an integer array of
    indices (the fast path ``DataLoader`` takes).

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self) -> int:
        ...         return 4
        ...     def __getitem__(self, i: int) -> tuple[float, float]:
        ...         return float(i), float(i * i)
        >>> len(Squares()), Squares()[3]
        (4, (3.0, 9.0))
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


def _take(t: Tensor, index: Any) -> Tensor:
    """Rows ``index`` of ``t``; recorded in the graph only when ``t`` requires grad."""
    if t.requires_grad:
        return t[index]
    # A scalar index on a 1-d array gives a NumPy scalar; keep it a 0-d array.
    return Tensor(backend.get_array_module(t.data).asarray(t.data[index]))


class TensorDataset(Dataset):
    """Examples made of the rows of tensors that share their first dimension.

    ``dataset[i]`` is ``(tensors[0][i], tensors[1][i], ...)``, and a batch of indices is
    taken with one fancy-index per tensor.

    Args:
        *tensors: Tensors (or arrays, wrapped without a copy) with the same size along
            dimension 0, e.g. inputs ``x`` of shape (N, D) and labels ``y`` of shape (N,),
            all on one device (the dataset's ``device``).

    Shape:
        - each tensor: (N, ...); an example: a tuple of (...)-shaped tensors.

    Example:
        >>> import chainrule as cr
        >>> ds = TensorDataset(cr.zeros(5, 3), cr.arange(5))
        >>> len(ds), ds[2][0].shape, int(ds[2][1])
        (5, (3,), 2)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor, e.g. TensorDataset(x, y)")
        self.tensors: tuple[Tensor, ...] = tuple(
            t if isinstance(t, Tensor) else Tensor(t) for t in tensors
        )
        shapes = [t.shape for t in self.tensors]
        if any(len(s) == 0 for s in shapes):
            raise ShapeError(
                f"TensorDataset: every tensor needs a first (example) dimension, got shapes "
                f"{shapes}; reshape 0-d tensors to (1,)"
            )
        if any(s[0] != shapes[0][0] for s in shapes):
            raise ShapeError(
                f"TensorDataset: all tensors must have the same size along dimension 0 (one "
                f"row per example), got shapes {shapes}"
            )
        devices = [t.device for t in self.tensors]
        if any(d != devices[0] for d in devices):
            raise DeviceError(
                f"TensorDataset: the tensors are on different devices "
                f"({', '.join(map(str, devices))}); put them on one device, e.g. "
                f"TensorDataset(x.to({str(devices[0])!r}), y.to({str(devices[0])!r}))"
            )

    @property
    def device(self) -> Device:
        """Where the examples live (and so where batches are gathered)."""
        return self.tensors[0].device

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(_take(t, index) for t in self.tensors)

    def get_batch(self, indices: Any) -> tuple[Tensor, ...]:
        """The examples at ``indices`` (an integer array), stacked: one tensor per field.

        For a dataset on a GPU, give ``indices`` on that GPU (host indices are copied
        there first, one transfer per call).
        """
        data = self.tensors[0].data
        if backend.is_device_array(data) and not backend.is_device_array(indices):
            indices = backend.to_device(indices, backend.device_of(data))
        return tuple(_take(t, indices) for t in self.tensors)


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: the full dataset.
        indices: which of its examples to keep (a sequence or an integer array).

    Example:
        >>> import chainrule as cr
        >>> ds = Subset(TensorDataset(cr.arange(10)), [7, 3])
        >>> len(ds), int(ds[0][0])
        (2, 7)
    """

    def __init__(self, dataset: Any, indices: Sequence[int] | Any) -> None:
        self.dataset = dataset
        # On the host: they are read one by one by __getitem__ (a GPU copy for get_batch
        # is made once, when first needed).
        self.indices = backend.to_host(indices).astype(backend.int64).reshape(-1)
        self._device_indices: dict[Device, Any] = {}

    @property
    def device(self) -> Device:
        """The wrapped dataset's device (the CPU for a dataset that does not say)."""
        device = getattr(self.dataset, "device", CPU)
        return device if isinstance(device, Device) else CPU

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __getattr__(self, name: str) -> Any:
        # Offer the fast batch path exactly when the wrapped dataset has one.
        if name == "get_batch" and hasattr(self.dataset, "get_batch"):
            return lambda indices: self.dataset.get_batch(self._table(indices)[indices])
        raise AttributeError(name)

    def _table(self, indices: Any) -> Any:
        """``self.indices`` on the device of ``indices`` (so a GPU batch stays there)."""
        if not backend.is_device_array(indices):
            return self.indices
        device = backend.device_of(indices)
        table = self._device_indices.get(device)
        if table is None:
            table = self._device_indices[device] = backend.to_device(self.indices, device)
        return table
