"""The codebase stays lint-clean, typed, and behind its one array seam."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "chainrule"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy")
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_array_library_is_reached_only_through_the_backend() -> None:
    # The GPU backend will swap the array library in one place: backend.py. Differentiable
    # code must not import NumPy itself.
    guarded = ["autograd", "ops", "nn", "optim", "tensor.py", "creation.py"]
    offenders = []
    for part in guarded:
        path = SRC / part
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for f in files:
            if re.search(r"^\s*(import numpy|from numpy)", f.read_text(), re.MULTILINE):
                offenders.append(str(f.relative_to(ROOT)))
    assert not offenders, f"import numpy outside chainrule.backend: {offenders}"
