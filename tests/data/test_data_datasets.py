"""MNIST-family datasets (on small files written here and on the real Fashion-MNIST when
installed) and scikit-learn's 8x8 digits."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import DataLoader, Normalize
from chainrule.data.datasets import (
    DATASETS,
    FASHION_MNIST_ROOT,
    MNIST,
    Digits,
    FashionMNIST,
    IDXFormatError,
)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", s) for s in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_mnist(folder: Path, n: int = 6, labels: np.ndarray | None = None) -> np.ndarray:
    """Write train/t10k files with n images of 28x28; returns the training images."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = np.arange(n) % 10 if labels is None else labels
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images


def test_mnist_examples_batches_and_arrays(tmp_path: Path) -> None:
    images = fake_mnist(tmp_path)
    ds = MNIST(root=tmp_path)
    assert len(ds) == 6 and ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    x, y = ds[4]
    assert isinstance(x, cr.Tensor) and x.shape == (1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy()[0], images[4] / np.float32(255))
    assert y == 4 and isinstance(y, int)
    xb, yb = ds.get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(xb.numpy()[0], x.numpy())
    assert yb.tolist() == [4, 1] and yb.dtype == np.int64
    xa, ya = ds.arrays()
    assert xa.shape == (6, 1, 28, 28) and xa.dtype == np.float32 and ya.dtype == np.int64
    assert xa.min() >= 0.0 and xa.max() <= 1.0


def test_torchvision_layout_is_found(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "MNIST" / "raw")
    assert len(MNIST(root=tmp_path, train=False)) == 6


def test_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST(root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*ossci-datasets"):
        MNIST(root=tmp_path)


def test_inconsistent_files_are_refused(tmp_path: Path) -> None:
    fake_mnist(tmp_path / "a", labels=np.array([0, 1, 2, 3, 4, 10]))
    with pytest.raises(IDXFormatError, match="label 10"):
        MNIST(root=tmp_path / "a")
    fake_mnist(tmp_path / "b")
    write_idx(tmp_path / "b" / "train-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(IDXFormatError, match=r"\(6, 28, 28\).*\(5,\)"):
        MNIST(root=tmp_path / "b")


def test_transforms(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    plain = MNIST(root=tmp_path)
    norm = Normalize().fit(plain.arrays()[0])
    batched = MNIST(root=tmp_path, batch_transform=norm)
    xb, _ = batched.get_batch(np.arange(6))
    np.testing.assert_allclose(xb.numpy(), norm(plain.arrays()[0]))
    np.testing.assert_allclose(batched[2][0].numpy(), xb.numpy()[2])
    per_item = MNIST(root=tmp_path, transform=lambda x: x * 2, target_transform=lambda y: y + 1)
    x2, y2 = per_item.get_batch(np.array([3, 0]))
    np.testing.assert_allclose(x2.numpy(), 2 * plain.get_batch(np.array([3, 0]))[0].numpy())
    assert y2.tolist() == [4, 1]


@pytest.mark.skipif(not Path(FASHION_MNIST_ROOT).is_dir(), reason="dataset-fashion-mnist absent")
def test_real_fashion_mnist() -> None:
    train, test = FashionMNIST(), FashionMNIST(train=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert train.classes[int(train.targets[0])] == "Ankle boot"
    assert train.data.max() == 255


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    train, test = Digits(), Digits(train=False)
    assert len(train) + len(test) == 1797
    assert abs(len(test) - 0.2 * 1797) <= 10
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    all_counts = np.bincount(np.concatenate([train.targets, test.targets]))
    np.testing.assert_allclose(np.bincount(test.targets), 0.2 * all_counts, atol=0.5)
    cr.manual_seed(99)  # the split must not follow the default generator
    assert np.array_equal(Digits(train=False).indices, test.indices)
    assert not np.array_equal(Digits(train=False, split_seed=1).indices, test.indices)


def test_digits_values_match_scikit_learn() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_digits()
    test = Digits(train=False, test_fraction=0.3)
    x, y = test[5]
    i = int(test.indices[5])
    assert x.shape == (1, 8, 8) and y == int(bunch.target[i])
    np.testing.assert_allclose(x.numpy()[0], bunch.images[i] / 16.0, rtol=1e-6)


def test_digits_through_a_dataloader() -> None:
    ds = Digits()
    loader = DataLoader(ds, batch_size=100, shuffle=True, generator=cr.Generator(0))
    seen = np.concatenate([y.numpy() for _, y in loader])
    assert sorted(seen.tolist()) == sorted(ds.targets.tolist())
    assert DATASETS["digits"] is Digits and DATASETS["fashion-mnist"] is FashionMNIST
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=1.0)
