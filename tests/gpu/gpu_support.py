"""Shared pieces of the GPU suite: the skip, the tolerances, host copies.

The suite runs where ``cr.cuda.is_available()`` (CuPy installed and a GPU seen); elsewhere
every GPU module skips with ``REASON``. Results are compared on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr

REASON = (
    "no CUDA GPU here (CuPy missing or it sees no device): the GPU suite runs on a GPU "
    "machine (bash benchmarks/gpu_check.sh)"
)

# (rtol, atol) per dtype: the bar, float32 1e-5 and float64 1e-10.
TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-10, 1e-12)}


def gpu_available() -> bool:
    return bool(cr.cuda.is_available())


def skip_without_gpu() -> None:
    """Skip the calling test module unless a real GPU is here."""
    if not gpu_available():
        pytest.skip(REASON, allow_module_level=True)


def host(x: Any) -> np.ndarray:
    """A NumPy copy of a chainrule Tensor, CuPy array, torch tensor or NumPy array."""
    if isinstance(x, cr.Tensor):
        x = x.data
    if hasattr(x, "detach"):  # torch
        return np.asarray(x.detach().cpu().numpy())
    if hasattr(x, "get"):  # CuPy
        return np.asarray(x.get())
    return np.asarray(x)


def assert_close(ours: Any, theirs: Any, dtype: Any, what: str, scale: float = 1.0) -> None:
    """``ours`` matches ``theirs`` to the dtype's tolerance (``scale`` widens it)."""
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    a, b = host(ours), host(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol * scale, atol=atol * scale, err_msg=what)
