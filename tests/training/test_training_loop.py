"""The training job end to end: outputs, resume bit-identity, reproducibility, accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.training import TrainConfig, train

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")

SMALL = {"hidden": (32,), "epochs": 4, "batch_size": 64}


def _weights(out: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in cr.load(out / "model.safetensors").items()}


def test_outputs_of_a_run(tmp_path: Path) -> None:
    summary = train(TrainConfig(**SMALL), out=tmp_path, log=None)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "checkpoint.safetensors",
        "model.safetensors",
        "metrics.jsonl",
        "config.json",
        "summary.json",
    }
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert {"lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy"} <= set(rows[0])
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert json.loads((tmp_path / "config.json").read_text())["hidden"] == [32]
    assert (
        summary["test_accuracy"]
        == json.loads((tmp_path / "summary.json").read_text())["test_accuracy"]
    )
    confusion = np.array(summary["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 359


class _InterruptError(Exception):
    pass


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "optimizer": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "nesterov": True,
            "schedule": "step",
            "step_size": 2,
            "l1": 1e-4,
            "weight_decay": 1e-4,
        },
        {"optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 1, "oversample": True},
        {"stratified": False, "schedule": "plateau", "normalize": False},
        {"schedule": "onecycle", "lr": 3e-3},
    ],
    ids=["adam-cosine", "sgd-step-l1-l2", "adamw-warmup-oversample", "shuffle-plateau", "onecycle"],
)
def test_resume_is_bit_identical(tmp_path: Path, options: dict[str, Any]) -> None:
    cfg = TrainConfig(**{**SMALL, "dropout": 0.3, **options})
    full = train(cfg, out=tmp_path / "full", log=None)

    def stop_after_two(metrics: dict[str, Any]) -> None:
        if metrics["epoch"] == 2:
            raise _InterruptError

    with pytest.raises(_InterruptError):
        train(cfg, out=tmp_path / "cut", log=None, on_epoch_end=stop_after_two)
    resumed = train(out=tmp_path / "cut", resume=True, log=None)

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key  # bit for bit, not approximately
    assert resumed["test_accuracy"] == full["test_accuracy"]

    def losses(out: Path) -> list[float]:
        return [
            json.loads(r)["train_loss"] for r in (out / "metrics.jsonl").read_text().splitlines()
        ]

    assert losses(tmp_path / "full") == losses(tmp_path / "cut")


_TRAIN_SNIPPET = """
import hashlib, sys
import chainrule as cr
from chainrule.training import TrainConfig, train
train(TrainConfig(hidden=(16,), epochs=2, seed=int(sys.argv[1])), out=sys.argv[2], log=None)
h = hashlib.sha256()
for k, v in sorted(cr.load(sys.argv[2] + "/model.safetensors").items()):
    h.update(k.encode()); h.update(v.numpy().tobytes())
print(h.hexdigest())
"""


def test_same_seed_same_weights_in_two_processes(tmp_path: Path) -> None:
    def digest(seed: int, name: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", _TRAIN_SNIPPET, str(seed), str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    assert digest(3, "a") == digest(3, "b")
    assert digest(3, "a2") != digest(4, "c")


def test_default_run_reaches_97_percent_on_digits(tmp_path: Path) -> None:
    summary = train(out=tmp_path, log=None)  # exactly what `chainrule train` runs
    assert summary["test_accuracy"] >= 0.97


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    train(TrainConfig(**{**SMALL, "epochs": 1}), out=tmp_path, log=None)
    with pytest.raises(FileExistsError, match="--resume"):
        train(TrainConfig(**{**SMALL, "epochs": 1}), out=tmp_path, log=None)


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="--optimizer"):
        TrainConfig(optimizer="lbfgs").validate()
    with pytest.raises(ValueError, match="--dropout"):
        TrainConfig(dropout=1.0).validate()
    with pytest.raises(ValueError, match="--nesterov"):
        TrainConfig(optimizer="adam", nesterov=True).validate()


def test_onecycle_steps_per_batch_and_its_rates_are_torchs(tmp_path: Path) -> None:
    """--schedule onecycle: the rate recorded at each epoch's end is PyTorch's OneCycleLR
    rate after that many batches (a per-batch schedule over the whole run)."""
    torch = pytest.importorskip("torch")
    from chainrule.training.loop import load_run

    cfg = TrainConfig(**{**SMALL, "schedule": "onecycle", "lr": 3e-3})
    train(cfg, out=tmp_path, log=None)
    rows = [json.loads(r) for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = len(load_run(tmp_path).loader)
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w], lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, epochs=cfg.epochs, steps_per_epoch=steps
    )
    expected = []
    for _ in range(cfg.epochs):
        for _ in range(steps):
            opt.step()
            sched.step()
        expected.append(opt.param_groups[0]["lr"])
    assert [row["lr"] for row in rows] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="warms up by itself"):
        TrainConfig(schedule="onecycle", warmup_epochs=1).validate()
