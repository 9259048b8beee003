"""Build the ``mpirun`` command line that starts N copies of a program on this machine.

``chainrule train --nproc N`` and the tests use it. Open MPI refuses to run as root
unless told it may (containers often run as root), and refuses more ranks than cores
unless oversubscription is allowed (``--oversubscribe``); both flags are added only where
they apply. For several machines, call ``mpirun`` yourself with a ``--hostfile``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence


def mpirun_command(nproc: int, program: Sequence[str], mpirun: str | None = None) -> list[str]:
    """``mpirun -np nproc [flags] program...`` for this machine.

    Args:
        nproc: the number of ranks.
        program: the command each rank runs.
        mpirun: the launcher (default: ``mpirun`` from PATH).

    Raises:
        FileNotFoundError: no ``mpirun`` on PATH.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"the number of processes must be a positive integer, got {nproc!r}")
    launcher = mpirun or shutil.which("mpirun")
    if launcher is None:
        raise FileNotFoundError(
            "mpirun was not found on PATH; install MPI with pip install 'chainrule[mpi]' "
            "(or Debian's openmpi-bin)"
        )
    command = [launcher, "-np", str(nproc)]
    if _is_open_mpi(launcher):
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
        if nproc > (os.cpu_count() or 1):
            command.append("--oversubscribe")
    return [*command, *program]


def _is_open_mpi(launcher: str) -> bool:
    try:
        version = subprocess.run(
            [launcher, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Open MPI" in version or "OpenRTE" in version
