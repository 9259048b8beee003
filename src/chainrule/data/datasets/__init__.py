"""Real datasets: MNIST, Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits.

``read_idx`` reads one IDX file (raw or ``.gz``) into a NumPy array with every part of the
file checked. The dataset classes serve ``(x, y)`` examples with x a float32 Tensor
scaled to [0, 1], offer ``get_batch`` for the ``DataLoader`` fast path and ``arrays()``
for the whole set at once.

``DATASETS`` maps the names a command line would use to the classes.
"""

from collections.abc import Callable

from chainrule.data.datasets.digits import Digits, stratified_split
from chainrule.data.datasets.idx import IDX_DTYPES, IDXFormatError, read_idx
from chainrule.data.datasets.image import ImageArrayDataset
from chainrule.data.datasets.mnist import FASHION_MNIST_ROOT, MNIST, FashionMNIST

# Callable, not type[...]: the subclasses take (train=..., root=...), not the base
# class's arrays, and the training loop calls them that way.
DATASETS: dict[str, Callable[..., ImageArrayDataset]] = {
    "digits": Digits,
    "fashion-mnist": FashionMNIST,
    "mnist": MNIST,
}

__all__ = [
    "DATASETS",
    "Digits",
    "FASHION_MNIST_ROOT",
    "FashionMNIST",
    "IDXFormatError",
    "IDX_DTYPES",
    "ImageArrayDataset",
    "MNIST",
    "read_idx",
    "stratified_split",
]
