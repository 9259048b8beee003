"""Ctrl-C during ``chainrule train`` (issue 7, item 15), with a real SIGINT to a child process.

The child's progress is followed through the run folder and its output, so the signal
lands at the moment under test: before the first epoch ends, and during a resumed run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")

TIMEOUT = 120.0  # seconds, for each wait on the child (the machine may be busy)


COMMAND = [sys.executable, "-m", "chainrule", "train", "--no-progress"]


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(condition: Callable[[], bool], child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if child.poll() is not None:
            pytest.fail(f"the child ended early: {child.communicate()}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("timed out waiting for the child")
        time.sleep(0.005)


def _interrupt(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    child.send_signal(signal.SIGINT)
    try:
        stdout, stderr = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    return child.returncode, stdout, stderr


def test_ctrl_c_before_the_first_epoch_ends_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "cut"
    # Batches of one example and wide layers: the first epoch takes seconds, so the
    # signal sent as soon as config.json exists lands inside it.
    child = _start("--out", str(out), "--batch-size", "1", "--hidden", "1024,1024")
    _wait_for((out / "config.json").exists, child)
    code, stdout, stderr = _interrupt(child)

    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "nothing was saved" in stderr and "--resume" not in stderr
    assert "epoch   1/" not in stdout  # the premise: no epoch had ended
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_during_a_resumed_run_is_handled_like_a_first_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = ["--hidden", "256", "--batch-size", "8", "--schedule", "step"]
    first = subprocess.run(
        [*COMMAND, "--epochs", "1", *options, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert "epoch   1/1" in first.stdout

    child = _start("--resume", str(out), "--epochs", "5")
    assert child.stdout is not None
    lines: list[str] = []

    def second_epoch_done() -> bool:
        assert child.stdout is not None
        lines.append(child.stdout.readline())
        return lines[-1].startswith("epoch   2/5")

    _wait_for(second_epoch_done, child)
    code, stdout, stderr = _interrupt(child)

    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert f"chainrule train --resume {out} --epochs 5" in stderr
    assert "epoch   5/5" not in stdout  # the premise: interrupted before the end

    # The hint works: the run continues from its last saved epoch to the end.
    done = subprocess.run(
        [*COMMAND, "--resume", str(out), "--epochs", "5"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert "epoch   5/5" in done.stdout and "test accuracy" in done.stdout
