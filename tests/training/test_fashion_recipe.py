"""The Fashion-MNIST recipe (issue 4, point 7), reduced to fit CI time.

The full recipe,

    chainrule train --dataset fashion-mnist --epochs 20 --hidden 1024,512 --dropout 0.3 \\
        --optimizer adam --lr 1e-3 --schedule cosine --batch-size 128

ends at 90.42% (seed 0) and 90.57% (seed 1) test accuracy. Here the same options train
on a class-balanced 10,000 example subset of the training split for 3 epochs (the subset
is written as IDX files into a temporary folder, so the run goes through ``train`` and the
dataset reader exactly as ``chainrule train`` does) and are tested on the full 10,000
test images.

Thresholds, measured on the 2-core machine this was written on: the reduced recipe ends
at 84.7-85.0% test accuracy (test loss 0.42-0.43) with seeds 0, 1 and 2. A multinomial
logistic regression (``hidden=()``, no hidden layer) trained on the same subset the same
way ends at 79.9-80.3% (82.6% with lr 1e-2; test loss 0.52-0.57), and a trainer that does
not learn stays near 10%. Asserting >= 83.5% and a test loss below 0.48 therefore fails a
trainer that learns only a linear model, or nothing, while leaving the recipe a margin of
more than a point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainrule.data.datasets.mnist import FASHION_MNIST_ROOT
from chainrule.training import TrainConfig, train

pytest.importorskip("safetensors")

FILES = {
    "train-images-idx3-ubyte": "images",
    "train-labels-idx1-ubyte": "labels",
    "t10k-images-idx3-ubyte": "images",
    "t10k-labels-idx1-ubyte": "labels",
}
SUBSET = 10_000
MIN_ACCURACY = 0.835
MAX_LOSS = 0.48

RECIPE = {
    "dataset": "fashion-mnist",
    "hidden": (1024, 512),
    "dropout": 0.3,
    "init": "kaiming",
    "activation": "relu",
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "cosine",
    "batch_size": 128,
    "stratified": True,
    "normalize": True,
}

pytestmark = pytest.mark.skipif(
    not all((Path(FASHION_MNIST_ROOT) / f"{name}.gz").is_file() for name in FILES),
    reason=f"Fashion-MNIST is not installed in {FASHION_MNIST_ROOT} "
    f"(apt-get install dataset-fashion-mnist)",
)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def subset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full test split and a class-balanced 10k subset of the training split."""
    from chainrule.data.datasets import FashionMNIST

    root = tmp_path_factory.mktemp("fashion-subset")
    train_set = FashionMNIST(train=True)
    test_set = FashionMNIST(train=False)
    labels = np.asarray(train_set.targets)
    rng = np.random.default_rng(1234)
    per_class = SUBSET // 10
    keep = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
        )
    )
    _write_idx(root / "train-images-idx3-ubyte", np.asarray(train_set.data)[keep])
    _write_idx(root / "train-labels-idx1-ubyte", labels[keep])
    _write_idx(root / "t10k-images-idx3-ubyte", np.asarray(test_set.data))
    _write_idx(root / "t10k-labels-idx1-ubyte", np.asarray(test_set.targets))
    return root


def test_subset_is_what_the_test_claims(subset_root: Path) -> None:
    from chainrule.data.datasets import FashionMNIST

    train_set = FashionMNIST(root=subset_root, train=True)
    test_set = FashionMNIST(root=subset_root, train=False)
    assert len(train_set) == SUBSET and len(test_set) == 10_000
    assert np.bincount(np.asarray(train_set.targets)).tolist() == [SUBSET // 10] * 10


@pytest.mark.parametrize("seed", [0])
def test_reduced_recipe_beats_a_linear_model(subset_root: Path, tmp_path: Path, seed: int) -> None:
    cfg = TrainConfig(**RECIPE, data_root=str(subset_root), epochs=3, seed=seed)
    summary = train(cfg, out=tmp_path, log=None)
    assert summary["parameters"] == 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 10 + 10
    # The accuracy after the last epoch, as the issue asks (not the best epoch).
    assert summary["test_accuracy"] >= MIN_ACCURACY, summary
    assert summary["test_loss"] < MAX_LOSS, summary
