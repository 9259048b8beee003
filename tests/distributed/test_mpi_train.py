"""``chainrule train`` on several processes (``--nproc`` launches mpirun)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy
from mpi_launch import requires_mpi

from chainrule import load

pytestmark = requires_mpi

OPTIONS = ["--epochs", "2", "--dropout", "0", "--batch-size", "64", "--no-progress"]


def train(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chainrule", "train", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_two_processes_train_the_weights_of_one(tmp_path: Path) -> None:
    one = train(*OPTIONS, "--out", str(tmp_path / "one"))
    two = train(*OPTIONS, "--out", str(tmp_path / "two"), "--nproc", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    # Same global batches, gradients averaged: the same weights up to float32 rounding.
    a = load(tmp_path / "one" / "model.safetensors")
    b = load(tmp_path / "two" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        numpy.testing.assert_allclose(b[name].data, a[name].data, atol=1e-5)
    assert two.stdout.count("epoch   2/2") == 1  # only rank 0 prints
    assert "test accuracy" in two.stdout

    resumed = train("--resume", str(tmp_path / "two"), "--no-progress")
    assert resumed.returncode == 2
    assert "trained on 2 process(es) and is being resumed on 1" in resumed.stderr
    assert "--nproc 2" in resumed.stderr


def test_global_batch_must_split_evenly(tmp_path: Path) -> None:
    proc = train("--epochs", "1", "--batch-size", "63", "--out", str(tmp_path), "--nproc", "2")
    assert proc.returncode != 0
    assert "--batch-size 63 is the global batch and must split evenly over 2 processes" in (
        proc.stderr
    )
