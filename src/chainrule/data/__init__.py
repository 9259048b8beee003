"""Feeding data to a model: datasets, samplers, ``DataLoader`` and ``Normalize``.

PyTorch's names and protocol: a ``Dataset`` has ``__getitem__`` and ``__len__``; a
``DataLoader`` turns it into minibatches of Tensors, reshuffled every epoch from a seeded
``chainrule.random.Generator``::

    import chainrule as cr
    from chainrule.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    for epoch in range(10):
        for xb, yb in loader:
            ...

``StratifiedBatchSampler`` makes every batch keep the classes' proportions (and, with
``oversample_rare=True``, hold every class). ``Normalize`` standardises inputs with the
training set's statistics. ``chainrule.data.datasets`` reads MNIST-style IDX files and
serves Fashion-MNIST, MNIST and scikit-learn's 8x8 digits.
"""

from chainrule.data import datasets
from chainrule.data.dataloader import DataLoader, default_collate
from chainrule.data.dataset import Dataset, Subset, TensorDataset
from chainrule.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from chainrule.data.stratified import StratifiedBatchSampler
from chainrule.data.transforms import Normalize

__all__ = [
    "BatchSampler",
    "DataLoader",
    "Dataset",
    "Normalize",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StratifiedBatchSampler",
    "Subset",
    "TensorDataset",
    "datasets",
    "default_collate",
]
