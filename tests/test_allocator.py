"""``chainrule.allocator``: with freed memory kept, a step that makes and frees the same
large arrays again touches no new page (counted as the process's minor page faults);
with glibc's default policy every array costs its pages again. Each case runs in a
process of its own: the setting belongs to the whole process and cannot be undone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="keep_freed_memory sets glibc's malloc options; this C library is not glibc",
)

STEPS = """
import resource, sys
import numpy as np
from chainrule import allocator, training  # training: the import must not set anything

applied = allocator.keep_freed_memory() if sys.argv[1] == "keep" else None

def step():  # a step's arrays: made, freed out of order, made again larger
    a = np.ones(1 << 20, np.float32)
    b = np.ones(2 << 20, np.float32)
    del a
    c = np.ones(3 << 20, np.float32)
    del b, c

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=True,
    )
    applied, faults = done.stdout.split()
    return applied, int(faults)


def test_kept_memory_is_reused_without_page_faults() -> None:
    applied, kept = _faults("keep")
    _, default = _faults("default")
    assert applied == "True"
    # 20 steps of 24 MB each: thousands of fresh pages by default, none once memory is kept
    assert default > 10_000, default
    assert kept < 100, kept


def test_the_training_job_keeps_freed_memory_unless_disabled() -> None:
    script = (
        "from chainrule import allocator; "
        "print(allocator.keep_freed_memory_unless_disabled(), allocator._kept)"
    )

    def run(**env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
            check=True,
        )
        return done.stdout.strip()

    assert run() == "True True"
    assert run(CHAINRULE_KEEP_FREED_MEMORY="0") == "False False"
    assert run(CHAINRULE_KEEP_FREED_MEMORY="off") == "False False"
