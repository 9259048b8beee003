"""MNIST and Fashion-MNIST, read from their IDX files (28x28 greyscale, 10 classes)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from chainrule.data.datasets.idx import IDXFormatError, read_idx
from chainrule.data.datasets.image import ImageArrayDataset

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package installs the files."""

# The magic numbers of the family's files: unsigned bytes (0x08) in 3 or 1 dimensions. A
# file with another type code (say 0x09, signed bytes) would load as different numbers.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


class _MNISTFamily(ImageArrayDataset):
    """Shared loading for the datasets laid out like MNIST (four IDX files)."""

    _class_names: ClassVar[list[str]] = []
    how_to_get: ClassVar[str] = ""

    def __init__(
        self,
        root: str | os.PathLike[str],
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.train = bool(train)
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"), magic=IMAGES_MAGIC)
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"), magic=LABELS_MAGIC)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IDXFormatError(
                f"{type(self).__name__}: the files in {self.root} hold images of shape "
                f"{images.shape} and labels of shape {labels.shape}; expected (N, 28, 28) "
                f"and (N,) with the same N"
            )
        if len(labels) and int(labels.max()) >= len(self._class_names):
            raise IDXFormatError(
                f"{type(self).__name__}: label {int(labels.max())} in {self.root} is out of "
                f"range for {len(self._class_names)} classes"
            )
        super().__init__(
            images,
            labels,
            list(self._class_names),
            255.0,
            transform,
            target_transform,
            batch_transform,
        )

    def _find(self, stem: str) -> Path:
        """The file ``stem`` or ``stem.gz`` in root (or torchvision's ``<Name>/raw``)."""
        folders = [self.root, self.root / "raw", self.root / type(self).__name__ / "raw"]
        for folder in folders:
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    return folder / name
        raise FileNotFoundError(
            f"{type(self).__name__}: {stem}.gz (or {stem}) not found in {self.root}. "
            f"{self.how_to_get}"
        )


class FashionMNIST(_MNISTFamily):
    """Zalando's Fashion-MNIST: 60,000 training and 10,000 test images of clothes.

    Reads the four IDX files (``train-images-idx3-ubyte.gz`` and so on, gzip-compressed
    or not) from ``root``. The default is where Debian's ``dataset-fashion-mnist``
    package puts them.

    Args:
        root: the folder with the files.
        train: the training set (60,000 images) or the test set (10,000).
        transform: applied to each example's x (1, 28, 28).
        target_transform: applied to each label.
        batch_transform: applied to a batch's x (B, 1, 28, 28), keeping the fast path.

    Shape:
        - an example: x float32 (1, 28, 28) in [0, 1], y an int in 0..9.
        - ``data``: uint8 (N, 28, 28); ``targets``: int64 (N,).

    Example:
        >>> train = FashionMNIST()  # doctest: +SKIP
        >>> x, y = train[0]; x.shape, train.classes[y]  # doctest: +SKIP
        ((1, 28, 28), 'Ankle boot')
    """

    _class_names: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
    how_to_get: ClassVar[str] = (
        "On Debian or Ubuntu install them with `sudo apt-get install dataset-fashion-mnist` "
        f"(they go to {FASHION_MNIST_ROOT}); elsewhere download the four *-ubyte.gz files "
        "from https://github.com/zalandoresearch/fashion-mnist (folder data/fashion) and "
        "pass root= the folder that holds them."
    )

    def __init__(
        self,
        root: str | os.PathLike[str] = FASHION_MNIST_ROOT,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(root, train, transform, target_transform, batch_transform)


class MNIST(_MNISTFamily):
    """LeCun, Cortes and Burges's handwritten digits: 60,000 training, 10,000 test images.

    Reads the four IDX files (``train-images-idx3-ubyte.gz`` and so on, gzip-compressed
    or not) from ``root``; chainrule does not download them.

    Args:
        root: the folder with the files (a torchvision ``MNIST/raw`` layout below it
            works too).
        train: the training set (60,000 images) or the test set (10,000).
        transform: applied to each example's x (1, 28, 28).
        target_transform: applied to each label.
        batch_transform: applied to a batch's x (B, 1, 28, 28), keeping the fast path.

    Shape:
        - an example: x float32 (1, 28, 28) in [0, 1], y an int in 0..9.
        - ``data``: uint8 (N, 28, 28); ``targets``: int64 (N,).

    Example:
        >>> test = MNIST(root="~/data/mnist", train=False)  # doctest: +SKIP
        >>> len(test)  # doctest: +SKIP
        10000
    """

    _class_names: ClassVar[list[str]] = [str(d) for d in range(10)]
    how_to_get: ClassVar[str] = (
        "Download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/ (or http://yann.lecun.com/exdb/mnist/) "
        "into one folder and pass it as root=."
    )

    def __init__(
        self,
        root: str | os.PathLike[str] = "~/.cache/chainrule/mnist",
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(root, train, transform, target_transform, batch_transform)
