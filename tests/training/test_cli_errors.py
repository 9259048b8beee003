"""``chainrule train`` on bad command lines (issue 7, item 14): an argparse-style error
naming the option, exit status 2, no traceback, and no run folder left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.training import TrainConfig, loop, train

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")

SMALL = ["--epochs", "1", "--hidden", "16", "--no-progress"]


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the command in this process; return its error message (exit status 2)."""
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--lr", "inf", "argument --lr: expected a finite number, got 'inf'"),
        ("--lr", "nan", "argument --lr: expected a finite number"),
        ("--lr", "0", "--lr must be > 0, got 0.0"),
        ("--lr", "-1e-3", "--lr must be > 0"),
        ("--gamma", "-0.5", "--gamma must be in (0, 1], got -0.5"),
        ("--gamma", "2", "--gamma must be in (0, 1]"),
        ("--momentum", "1.5", "--momentum must be in [0, 1)"),
        ("--dropout", "1", "--dropout must be in [0, 1)"),
        ("--weight-decay", "-1e-4", "--weight-decay must be >= 0"),
        ("--l1", "-inf", "argument --l1: expected a finite number"),
        ("--norm-eps", "0", "--norm-eps must be > 0"),
        ("--seed", "-1", "--seed must be a whole number >= 0"),
        ("--epochs", "0", "--epochs must be a whole number >= 1"),
        ("--milestones", "0,3", "--milestones must be positive"),
        ("--dataset", "cifar", "--dataset must be one of digits, fashion-mnist, mnist"),
    ],
)
def test_bad_numbers_are_named_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    out = tmp_path / "runs" / "bad"
    err = _fails(capsys, ["train", *SMALL, f"{option}={value}", "--out", str(out)])
    assert said in err
    assert "usage: chainrule train" in err
    assert not (tmp_path / "runs").exists()


def test_plateau_needs_a_factor_below_one() -> None:
    with pytest.raises(ValueError, match="--gamma must be < 1 with --schedule plateau"):
        TrainConfig(schedule="plateau", gamma=1.0).validate()
    TrainConfig(schedule="step", gamma=1.0).validate()  # a constant rate, but valid


def test_out_under_a_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder")
    assert main(["train", *SMALL, "--out", str(afile / "run")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot create the run directory" in err
    assert main(["train", *SMALL, "--out", str(afile)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert afile.read_text() == "not a folder"


def test_missing_dataset_files_leave_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs" / "mnist"
    argv = ["train", *SMALL, "--dataset", "mnist", "--data-root", str(tmp_path / "none")]
    assert main([*argv, "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failure_in_the_first_epoch_removes_what_the_run_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any) -> dict[str, Any]:
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(loop.Run, "evaluate", broken)
    cfg = TrainConfig(hidden=(16,), epochs=1)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        train(cfg, out=tmp_path / "runs" / "a", log=None)
    assert list(tmp_path.iterdir()) == []  # runs/ too: the run made it
    # A folder the user made is kept (only the run's own file is removed).
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        train(cfg, out=tmp_path / "mine", log=None)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def _weights(out: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in cr.load(out / "model.safetensors").items()}


def _losses(out: Path) -> list[float]:
    rows = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(r)["train_loss"] for r in rows]


@pytest.mark.parametrize(
    "options",
    [
        {"schedule": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 1},
        {"schedule": "exponential", "gamma": 0.7, "optimizer": "sgd", "lr": 0.05},
    ],
    ids=["step-warmup", "exponential-sgd"],
)
def test_resume_with_more_epochs_is_the_longer_run_bit_for_bit(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    # Issue 7, item 14: --resume DIR --epochs N ignored N.
    base = {"hidden": (32,), "batch_size": 64, "dropout": 0.3, **options}
    train(TrainConfig(epochs=4, **base), out=tmp_path / "long", log=None)
    train(TrainConfig(epochs=2, **base), out=tmp_path / "short", log=None)
    summary = train(out=tmp_path / "short", resume=True, epochs=4, log=None)

    assert summary["epochs"] == 4
    long, extended = _weights(tmp_path / "long"), _weights(tmp_path / "short")
    for key in long:
        assert np.array_equal(long[key], extended[key]), key
    assert _losses(tmp_path / "long") == _losses(tmp_path / "short")
    assert json.loads((tmp_path / "short" / "config.json").read_text())["epochs"] == 4
    # The checkpoint now says 4 too: a plain --resume does not go back to 2.
    assert train(out=tmp_path / "short", resume=True, log=None)["epochs"] == 4


def test_resume_epochs_that_would_change_the_past_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    train(TrainConfig(hidden=(16,), epochs=2, schedule="cosine"), out=out, log=None)
    before = (out / "checkpoint.safetensors").read_bytes()
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 3 with --resume" in err and "cosine schedule" in err
    assert main(["train", "--resume", str(out), "--epochs", "1"]) == 2
    assert "already completed 2 epochs" in capsys.readouterr().err
    # Any other option cannot change a resumed run (it was silently ignored before).
    err = _fails(capsys, ["train", "--resume", str(out), "--lr", "0.1", "--seed", "3"])
    assert "--lr, --seed cannot change them" in err
    assert (out / "checkpoint.safetensors").read_bytes() == before
