"""Data on a device: batches gathered where the dataset lives, the epoch's order moved
once, and ``Normalize`` / ``RandomShiftFlip`` on GPU arrays giving the CPU's values.

Runs over the ``device`` fixture (cpu, fake-cuda, and cuda on a machine with a GPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import fake_cupy
from chainrule import backend
from chainrule.data import (
    DataLoader,
    Normalize,
    StratifiedBatchSampler,
    Subset,
    TensorDataset,
    default_collate,
)
from chainrule.data.augment import RandomShiftFlip
from chainrule.errors import DeviceError
from chainrule.random import Generator

N = 23


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    y = np.arange(N, dtype=np.int64) % 3
    return x, y


def _dataset(device: str) -> TensorDataset:
    x, y = _arrays()
    return TensorDataset(cr.Tensor(x, device=device), cr.Tensor(y, device=device))


def _host(t: cr.Tensor) -> np.ndarray:
    return backend.to_host(t.data)


def _on_gpu(t: cr.Tensor, device: str) -> bool:
    return backend.is_device_array(t.data) == (device != "cpu")


def _epochs(loader: DataLoader, count: int = 2) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    return [[(_host(x), _host(y)) for x, y in loader] for _ in range(count)]


@pytest.mark.parametrize("stratified", [False, True], ids=["shuffle", "stratified"])
def test_loader_over_a_device_dataset_gives_device_batches(device: str, stratified: bool) -> None:
    ds = _dataset(device)
    assert ds.device.type == device

    def loader(dataset: Any) -> DataLoader:
        gen = Generator(5)
        if stratified:
            _, y = _arrays()
            return DataLoader(dataset, batch_sampler=StratifiedBatchSampler(y, 6, generator=gen))
        return DataLoader(dataset, batch_size=5, shuffle=True, generator=gen)

    for x, y in loader(ds):
        assert _on_gpu(x, device) and _on_gpu(y, device)
    got = _epochs(loader(ds))
    want = _epochs(loader(_dataset("cpu")))
    assert [len(e) for e in got] == [len(e) for e in want]
    for epoch_got, epoch_want in zip(got, want, strict=True):
        for (xg, yg), (xw, yw) in zip(epoch_got, epoch_want, strict=True):
            np.testing.assert_array_equal(xg, xw)
            np.testing.assert_array_equal(yg, yw)
    assert not np.array_equal(got[0][0][1], got[1][0][1])  # reshuffled each epoch


def test_epoch_order_moves_to_the_device_once_and_nothing_comes_back(
    fake_cuda: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _dataset(fake_cuda)
    acc = backend.loaded_accelerator()
    copies = [0]
    real_from_host = acc.from_host  # type: ignore[union-attr]

    def counting_from_host(array: Any, index: int) -> Any:
        copies[0] += 1
        return real_from_host(array, index)

    monkeypatch.setattr(acc, "from_host", counting_from_host)
    loader = DataLoader(ds, batch_size=4, shuffle=True)
    fake_cupy.SYNCS[0] = 0
    batches = list(loader)
    assert len(batches) == 6
    assert copies[0] == 1  # the epoch's order, not one copy per batch
    assert fake_cupy.SYNCS[0] == 0


def test_subset_of_a_device_dataset_gathers_on_the_device(device: str) -> None:
    sub = Subset(_dataset(device), [7, 3, 11, 0])
    assert sub.device.type == device
    (x, y), *_ = DataLoader(sub, batch_size=3)
    assert _on_gpu(x, device)
    np.testing.assert_array_equal(_host(y), _arrays()[1][[7, 3, 11]])
    assert int(sub[1][1].item()) == 0  # 3 % 3


def test_per_example_path_collates_device_tensors_on_the_device(device: str) -> None:
    ds = _dataset(device)
    batch = default_collate([ds[2], ds[5]])
    assert _on_gpu(batch[0], device)
    np.testing.assert_array_equal(_host(batch[0]), _arrays()[0][[2, 5]])
    # A collate_fn of its own switches the loader to the per-example path.
    (x, _), *_ = DataLoader(ds, batch_size=4, collate_fn=default_collate)
    assert _on_gpu(x, device)


def test_tensors_on_different_devices_are_refused(fake_cuda: str) -> None:
    x, y = _arrays()
    with pytest.raises(DeviceError, match="different devices"):
        TensorDataset(cr.Tensor(x, device=fake_cuda), cr.Tensor(y))


def test_normalize_fits_and_applies_on_the_device(device: str) -> None:
    rng = np.random.default_rng(0)
    images = (rng.random((6, 2, 4, 4)) * 255).astype(np.float32)
    on_device = Normalize(channel_axis=1).fit(cr.Tensor(images, device=device))
    on_cpu = Normalize(channel_axis=1).fit(images)
    assert _on_gpu(on_device.mean, device)
    np.testing.assert_allclose(_host(on_device.mean), _host(on_cpu.mean), rtol=1e-6)
    np.testing.assert_allclose(_host(on_device.std), _host(on_cpu.std), rtol=1e-6)
    # Statistics fitted on the CPU (or loaded from a checkpoint) apply to GPU batches.
    out = on_cpu(cr.Tensor(images, device=device))
    assert _on_gpu(out, device)
    np.testing.assert_allclose(_host(out), _host(on_cpu(cr.Tensor(images))), rtol=1e-6)


def test_normalize_reports_nan_in_device_data(fake_cuda: str) -> None:
    data = np.ones((4, 3), dtype=np.float32)
    data[1, 2] = np.nan
    with pytest.raises(ValueError, match="channel 2: 1 NaN"):
        Normalize().fit(cr.Tensor(data, device=fake_cuda))


@pytest.mark.parametrize("flip", [0.0, 0.5])
def test_random_shift_flip_on_the_device_equals_the_cpu(device: str, flip: float) -> None:
    images = np.random.default_rng(1).standard_normal((5, 2, 6, 6)).astype(np.float32)
    on_device = RandomShiftFlip(2, flip=flip, generator=Generator(3))
    on_cpu = RandomShiftFlip(2, flip=flip, generator=Generator(3))
    fake_cupy.SYNCS[0] = 0
    out = on_device(cr.Tensor(images, device=device))
    assert fake_cupy.SYNCS[0] == 0
    assert _on_gpu(out, device)
    np.testing.assert_array_equal(_host(out), _host(on_cpu(cr.Tensor(images))))
