"""The named pairs the selecting functions return, as in PyTorch (``torch.return_types``):
``max(dim)``/``min(dim)`` give ``MaxResult``, ``sort``/``topk`` give ``SortResult``.
Each unpacks as a tuple, ``values, indices = x.max(1)``."""

from __future__ import annotations

from typing import NamedTuple

from chainrule.tensor import Tensor


class MaxResult(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return: values and their indices."""

    values: Tensor
    indices: Tensor


class SortResult(NamedTuple):
    """What ``sort`` and ``topk`` return: values and their indices."""

    values: Tensor
    indices: Tensor
