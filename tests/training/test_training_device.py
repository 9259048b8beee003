"""``chainrule train --device``: the same run on a GPU as on the CPU, a training step that
never waits for the GPU, host checkpoints, resuming onto a device, and the option's errors.

The device cases run on ``fake-cuda`` here (tests/fake_cupy.py) and on a real GPU where
there is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import fake_cupy
from chainrule import backend
from chainrule.cli import main
from chainrule.training import TrainConfig, train
from chainrule.training.checkpoint import Checkpoint
from chainrule.training.loop import CHECKPOINT, Run, Totals

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")

# Dropout 0: the runs on both devices then draw nothing from the random streams but the
# (host) initial weights and shuffles, so their loss curves must agree.
SMALL = {"epochs": 2, "hidden": (32,), "dropout": 0.0, "batch_size": 64, "schedule": "step"}
CNN = {**SMALL, "model": "cnn", "channels": (4,), "augment": True, "augment_flip": 0.5}


def _curve(cfg: TrainConfig, out: Path) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    train(cfg, out=out, log=None, on_epoch_end=history.append)
    return history


def _assert_same_curve(got: list[dict[str, Any]], want: list[dict[str, Any]], device: str) -> None:
    on_fake = isinstance(backend.loaded_accelerator(), fake_cupy.FakeAccelerator)
    # The fake computes with NumPy: the same numbers. A GPU's float32 kernels round
    # differently in the last bits (reductions, matmul), which two epochs barely move.
    rtol = 1e-6 if on_fake or device == "cpu" else 1e-3
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for key in ("train_loss", "test_loss"):
            np.testing.assert_allclose(g[key], w[key], rtol=rtol, err_msg=key)
        for key in ("train_accuracy", "test_accuracy"):
            assert abs(g[key] - w[key]) <= (0 if on_fake else 0.01), key
        assert g["lr"] == w["lr"]


@pytest.mark.parametrize("options", [SMALL], ids=["mlp"])
def test_loss_curve_on_the_device_equals_the_cpu_one(
    device: str, options: dict[str, Any], tmp_path: Path
) -> None:
    cfg = TrainConfig(**options, device=device)
    got = _curve(cfg, tmp_path / "device")
    want = _curve(TrainConfig(**options), tmp_path / "cpu")
    _assert_same_curve(got, want, device)
    # The checkpoint holds host arrays, and names the device the run trained on.
    ckpt = Checkpoint(tmp_path / "device" / CHECKPOINT)
    assert all(type(t.data) is np.ndarray for t in ckpt.tensors.values())
    assert json.loads(ckpt.metadata["config"])["device"] == device


@pytest.mark.parametrize("options", [SMALL, CNN], ids=["mlp", "cnn-augment"])
def test_a_training_step_makes_no_host_sync(
    fake_cuda: str, options: dict[str, Any], tmp_path: Path
) -> None:
    cfg = TrainConfig(**options, device=fake_cuda)
    run = Run(cfg, tmp_path)
    run.prepare_data()
    assert all(backend.is_device_array(p.data) for p in run.model.parameters())
    batches = iter(run.loader)
    totals = Totals()
    xb, yb = next(batches)
    run.train_step(xb, yb, totals)  # the first step makes the optimiser's state
    count = yb.shape[0]
    fake_cupy.SYNCS[0] = 0
    for _ in range(3):
        xb, yb = next(batches)
        assert backend.is_device_array(xb.data) and backend.is_device_array(yb.data)
        run.train_step(xb, yb, totals)  # forward, loss, backward, step, metrics
        count += yb.shape[0]
    assert fake_cupy.SYNCS[0] == 0
    loss_sum, correct, seen = totals.read()
    assert fake_cupy.SYNCS[0] == 1 and seen == count and 0 <= correct <= seen
    assert np.isfinite(loss_sum) and loss_sum > 0
    for state in run.optimizer.state.values():
        assert all(backend.is_device_array(v.data) for v in state.values() if hasattr(v, "data"))
    fake_cupy.SYNCS[0] = 0
    result = run.evaluate()
    assert fake_cupy.SYNCS[0] == 1  # the whole evaluation comes back in one read
    assert sum(map(sum, result["confusion"])) == len(run.y_test)


def test_a_cpu_run_resumes_onto_the_device(fake_cuda: str, tmp_path: Path) -> None:
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    train(cfg, out=tmp_path / "run", log=None)
    resumed: list[dict[str, Any]] = []
    train(
        out=tmp_path / "run",
        resume=True,
        epochs=2,
        device=fake_cuda,
        log=None,
        on_epoch_end=resumed.append,
    )
    whole = _curve(TrainConfig(**SMALL), tmp_path / "whole")
    _assert_same_curve(resumed, whole[1:], fake_cuda)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["device"] == fake_cuda  # the next --resume continues on the device


def test_totals_on_the_cpu_are_the_python_sums() -> None:
    # The per-epoch figures did not change with the move to device accumulators.
    rng = np.random.default_rng(0)
    totals, loss_sum, correct = Totals(), 0.0, 0
    for n in (5, 7, 3):
        loss = cr.Tensor(np.float32(rng.random()))
        logits = cr.Tensor(rng.standard_normal((n, 4)).astype(np.float32))
        labels = cr.Tensor(rng.integers(0, 4, n))
        totals.add(loss, logits, labels)
        loss_sum += loss.item() * n
        correct += int((logits.numpy().argmax(1) == labels.numpy()).sum())
    assert totals.read() == (loss_sum, correct, 15)


def test_device_option_is_checked(fake_cuda: str) -> None:
    assert TrainConfig(device="cuda:0").validate().device == "cuda:0"
    with pytest.raises(ValueError, match=r"--device cuda:3: this machine has 1 GPU\(s\)"):
        TrainConfig(device="cuda:3").validate()


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_unknown_device_is_an_option_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = _fails(capsys, ["train", "--device", "tpu", "--out", str(tmp_path / "r")])
    assert "--device: unknown device 'tpu'" in err
    assert not (tmp_path / "r").exists()


def test_cuda_without_a_gpu_says_what_to_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if backend.loaded_accelerator() is not None or cr.cuda.is_available():
        pytest.skip("this machine has a GPU (or CuPy is loaded): the error cannot happen")
    err = _fails(capsys, ["train", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert "--device cuda:" in err and 'pip install "chainrule[cuda]"' in err
    assert "--device cpu" in err
    assert not (tmp_path / "r").exists()


def test_cli_trains_on_the_device_and_resumes_there(
    fake_cuda: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = str(tmp_path / "run")
    small = ["--hidden", "32", "--dropout", "0", "--schedule", "step", "--no-progress"]
    assert main(["train", *small, "--epochs", "1", "--device", "cuda", "--out", out]) == 0
    assert "1 epochs, batch 32 on cuda ->" in capsys.readouterr().out
    # --device is accepted with --resume (it moves the run; other options are refused).
    assert main(["train", "--resume", out, "--epochs", "2", "--device", "cpu"]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["device"] == "cpu" and saved["epochs"] == 2
