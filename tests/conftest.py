"""Shared test setup: every test starts from the same seed."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

import chainrule as cr
from chainrule import backend

sys.path.insert(0, os.path.dirname(__file__))  # tests/fake_cupy.py, for the fixture below
import fake_cupy


@pytest.fixture(autouse=True)
def _seed() -> None:
    cr.manual_seed(0)


# Devices. Tests that take the `device` fixture run once per device:
#   cpu        NumPy;
#   fake-cuda  "cuda" backed by tests/fake_cupy.py, a NumPy stand-in with CuPy's manners
#              (refuses NumPy functions and host arrays, counts host syncs): runs on any
#              machine and finds NumPy-only code;
#   cuda       the real GPU through CuPy; skipped, with the reason, without one.
# The fixture gives the device string to pass to chainrule ("cpu" or "cuda").
# CHAINRULE_TEST_DEVICES=cuda (benchmarks/gpu_check.sh) keeps only the real GPU's cases.
DEVICE_PARAMS = os.environ.get("CHAINRULE_TEST_DEVICES", "cpu,fake-cuda,cuda").split(",")


@pytest.fixture(params=DEVICE_PARAMS)
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _device(request.param)


@pytest.fixture
def fake_cuda() -> Iterator[str]:
    """ "cuda" on the NumPy stand-in, for tests of device handling itself."""
    yield from _device("fake-cuda")


def _device(kind: str) -> Iterator[str]:
    if kind == "cpu":
        yield "cpu"
        return
    if kind == "cuda":
        if not cr.cuda.is_available() or isinstance(
            backend.loaded_accelerator(), fake_cupy.FakeAccelerator
        ):
            pytest.skip("no CUDA GPU here (CuPy missing or no device): cuda cases run on a GPU")
        yield "cuda"
        return
    previous = backend.install_accelerator(fake_cupy.FakeAccelerator())
    fake_cupy.SYNCS[0] = 0
    try:
        yield "cuda"
    finally:
        backend.install_accelerator(previous)
