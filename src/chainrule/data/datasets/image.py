"""``ImageArrayDataset``: labelled greyscale images held in two arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from chainrule.backend import xp
from chainrule.data.dataloader import default_collate
from chainrule.data.dataset import Dataset
from chainrule.tensor import Tensor


class ImageArrayDataset(Dataset):
    """Greyscale images ``data`` (N, H, W) with integer labels ``targets`` (N,).

    An example is ``(x, y)``: x a float32 Tensor of shape (1, H, W), the pixels divided
    by ``scale`` so they lie in [0, 1], and y the label as a Python int. ``get_batch``
    serves whole batches with one fancy-index (the ``DataLoader`` fast path) and
    ``arrays()`` the whole set at once.

    Args:
        data: the images, shape (N, H, W), e.g. uint8.
        targets: the labels, shape (N,).
        classes: the name of each label.
        scale: the largest pixel value (255 for bytes).
        transform: applied to the x of each example, shape (1, H, W) (PyTorch's
            meaning). With one set, batches are built example by example.
        target_transform: applied to the y of each example.
        batch_transform: applied to the x of a whole batch, shape (B, 1, H, W), so
            batches keep the one-fancy-index fast path; e.g. a fitted ``Normalize``. A
            single example ``dataset[i]`` gets it as a batch of one.

    Attributes:
        data: the images as stored (NumPy, host memory).
        targets: int64 labels (NumPy).
        classes: the class names, indexed by label.
    """

    def __init__(
        self,
        data: numpy.ndarray,
        targets: numpy.ndarray,
        classes: list[str],
        scale: float,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        batch_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if data.ndim != 3 or targets.ndim != 1 or len(data) != len(targets):
            raise ValueError(
                f"{type(self).__name__}: expected images (N, H, W) and labels (N,), got "
                f"shapes {data.shape} and {targets.shape}"
            )
        self.data = data
        self.targets = targets.astype(numpy.int64, copy=False)
        self.classes = classes
        self.scale = float(scale)
        self.transform = transform
        self.target_transform = target_transform
        self.batch_transform = batch_transform

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def _images(self, index: Any) -> Any:
        """Images at ``index`` as float32 in [0, 1] with a channel axis."""
        images = self.data[index].astype(numpy.float32)
        images /= numpy.float32(self.scale)  # in place: astype already made the copy
        return xp.asarray(numpy.expand_dims(images, -3))

    def _example(self, index: int) -> tuple[Any, Any]:
        """Example ``index`` with the per-example transforms applied."""
        x: Any = Tensor(self._images(int(index)))
        y: Any = int(self.targets[index])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x, y = self._example(index)
        if self.batch_transform is not None:
            x = self.batch_transform(x.unsqueeze(0))[0]
        return x, y

    def get_batch(self, indices: Any) -> Any:
        """The examples at ``indices`` (an integer array) as ``(x (B, 1, H, W), y (B,))``.

        Without per-example transforms this is one fancy-index per array; then
        ``batch_transform`` (if any) is applied to x.
        """
        if self.transform is not None or self.target_transform is not None:
            x, y = default_collate([self._example(int(i)) for i in indices])
        else:
            x = Tensor(self._images(indices))
            y = Tensor(xp.asarray(self.targets[indices]))
        if self.batch_transform is not None:
            x = self.batch_transform(x)
        return x, y

    def arrays(self) -> tuple[numpy.ndarray, numpy.ndarray]:
        """The whole set: x float32 (N, 1, H, W) in [0, 1] and y int64 (N,), untransformed.

        For building a ``TensorDataset`` or fitting ``Normalize`` without a Python loop.
        A new float array is made on each call.
        """
        images = self.data.astype(numpy.float32)
        images /= numpy.float32(self.scale)
        return numpy.expand_dims(images, 1), self.targets

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(examples={len(self)}, image_shape={self.data.shape[1:]}, "
            f"classes={len(self.classes)})"
        )
