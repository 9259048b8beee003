"""Launch a test script under ``mpirun`` on this machine, with an outer timeout.

The CI machines have two cores, so four ranks are oversubscribed; in a root container
Open MPI also needs its explicit permission. A hang fails the test when the timeout
expires instead of stalling the suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def mpi_available() -> str | None:
    """None when MPI tests can run, else the reason they cannot."""
    if shutil.which("mpirun") is None:
        return "mpirun is not on PATH (pip install 'chainrule[mpi]')"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'chainrule[mpi]')"
    return None


requires_mpi = pytest.mark.skipif(mpi_available() is not None, reason=str(mpi_available()))


def mpirun(
    nproc: int, script: str, *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<script>`` on ``nproc`` ranks; a run past ``timeout`` fails the test."""
    from chainrule.distributed.launch import mpirun_command

    command = mpirun_command(nproc, [sys.executable, str(SCRIPTS / script), *args])
    full_env = {
        **os.environ,
        **(env or {}),
        # One BLAS thread per rank: the ranks already share the cores.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=full_env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpirun -np {nproc} {script} {args} hung for more than {timeout} s: {exc}")


def results(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON line that rank 0 printed after ``RESULT``."""
    assert proc.returncode == 0, f"mpirun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise AssertionError(f"no RESULT line in the output:\n{proc.stdout}\n{proc.stderr}")
