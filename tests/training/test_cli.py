"""``chainrule train`` and ``chainrule evaluate`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")


def _chainrule(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True, check=False
    )


def test_help_lists_the_options() -> None:
    result = _chainrule("train", "--help")
    assert result.returncode == 0
    for option in (
        "--dataset",
        "--epochs",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--weight-decay",
        "--l1",
        "--seed",
        "--out",
        "--resume",
        "--hidden",
        "--dropout",
        "--init",
        "--schedule",
        "--stratified",
        "--normalize",
    ):
        assert option in result.stdout, option


def test_train_then_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _chainrule(
        "train", "--epochs", "2", "--hidden", "32", "--out", str(out), "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert "epoch   2/2" in result.stdout and "test accuracy" in result.stdout
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    result = _chainrule("evaluate", str(out))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    evaluation = json.loads((out / "evaluation.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert evaluation["accuracy"] == summary["test_accuracy"]


def test_errors_are_reported_without_a_traceback(tmp_path: Path) -> None:
    result = _chainrule("train", "--dataset", "cifar", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "--dataset must be one of" in result.stderr and "Traceback" not in result.stderr
    result = _chainrule("evaluate", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "checkpoint" in result.stderr
    result = _chainrule("train", "--resume", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "no checkpoint" in result.stderr
