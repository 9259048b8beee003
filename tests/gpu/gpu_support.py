"""Shared pieces of the GPU suite: the skip, the tolerances, host copies.

The suite runs where ``cr.cuda.is_available()`` (CuPy installed and a GPU seen); elsewhere
every GPU module skips with ``REASON``. Results are compared on the host.

To check the suite's own plumbing on a machine without a GPU, run it with
``CHAINRULE_GPU_SUITE=fake``: the parity and training modules then run "cuda" on the
NumPy stand-in of ``tests/fake_cupy.py`` (and torch on its CPU); the kernel tests, which
need CuPy itself, still skip.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend

FAKE = os.environ.get("CHAINRULE_GPU_SUITE") == "fake"

REASON = (
    "no CUDA GPU here (CuPy missing or it sees no device): the GPU suite runs on a GPU "
    "machine (bash benchmarks/gpu_check.sh)"
)

# (rtol, atol) per dtype: the bar, float32 1e-5 and float64 1e-10.
TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float64): (1e-10, 1e-12)}


def gpu_available() -> bool:
    return bool(cr.cuda.is_available())


def skip_without_gpu(fake_ok: bool = False) -> None:
    """Skip the calling test module unless a real GPU is here (or, with ``fake_ok`` and
    ``CHAINRULE_GPU_SUITE=fake``, install the NumPy stand-in for a plumbing run)."""
    if FAKE and fake_ok:
        import fake_cupy  # tests/fake_cupy.py (tests/ is on sys.path: see conftest.py)

        backend.install_accelerator(fake_cupy.FakeAccelerator())
        return
    if not gpu_available():
        pytest.skip(REASON, allow_module_level=True)


def torch_device(torch: Any) -> str:
    """Where the torch side runs: "cuda" when torch has it, else its CPU (fake runs)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


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
