"""A failing rank ends the whole job quickly, with a message naming it (scripts/failure.py)."""

from __future__ import annotations

import time

import pytest
from mpi_launch import mpirun, requires_mpi

pytestmark = requires_mpi


@pytest.mark.parametrize("nproc", [2, 4])
def test_killed_rank_ends_the_job_naming_the_rank(nproc: int) -> None:
    start = time.monotonic()
    proc = mpirun(nproc, "failure.py", "--mode", "kill", timeout=90)
    assert time.monotonic() - start < 90
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "rank 1" in output and "signal 9" in output, output
    assert "finished all steps" not in output


def test_rank_that_raises_aborts_the_others() -> None:
    proc = mpirun(2, "failure.py", "--mode", "raise", timeout=90)
    assert proc.returncode != 0
    assert "rank 1 of 2: uncaught ValueError: a bad batch on purpose" in proc.stderr
    assert "finished all steps" not in proc.stdout


def test_different_models_are_refused_at_wrap_time() -> None:
    proc = mpirun(2, "failure.py", "--mode", "mismatch", timeout=90)
    assert proc.returncode != 0
    assert (
        "the model on rank 1 differs from rank 0's: '0.bias' is shape (9,), dtype float32 on "
        "rank 1 but shape (8,), dtype float32 on rank 0"
    ) in proc.stderr


def test_rank_that_stops_communicating_times_out_the_others() -> None:
    start = time.monotonic()
    proc = mpirun(2, "failure.py", "--mode", "stall", timeout=90)
    assert time.monotonic() - start < 60  # the timeout is 5 s, not the 600 s sleep
    assert proc.returncode != 0
    assert "rank 0 of 2: the gradient all-reduce of buckets [0] did not complete within 5 s" in (
        proc.stderr
    )
