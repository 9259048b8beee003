"""A damaged run directory: ``chainrule evaluate`` and ``--resume`` give a clear error.

The library reads one file of a run back: ``checkpoint.safetensors`` (tensors, and its
options, history and random states as JSON text in the metadata). ``config.json``,
``metrics.jsonl`` and ``summary.json`` are written for people and never read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import chainrule as cr
from chainrule.cli import main

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from chainrule.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "run"
    train(TrainConfig(epochs=1, hidden=(8,)), out=out, progress=False, log=None)
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_changed_bytes_in_a_checkpoint_stop_evaluate_and_resume(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(finished_run, tmp_path)
    ckpt = run / "checkpoint.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes
    ckpt.write_bytes(bytes(data))
    for argv in (["evaluate", str(run)], ["train", "--resume", str(run)]):
        err = _cli_error(capsys, *argv)
        assert "checkpoint.safetensors" in err and "CRC-32" in err


def test_a_truncated_checkpoint_stops_evaluate(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(finished_run, tmp_path)
    ckpt = run / "checkpoint.safetensors"
    for size in (0, 5, 200, ckpt.stat().st_size - 1):
        ckpt.write_bytes((finished_run / "checkpoint.safetensors").read_bytes()[:size])
        err = _cli_error(capsys, "evaluate", str(run))
        assert "checkpoint.safetensors" in err


def test_a_changed_option_in_the_checkpoint_is_caught(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(finished_run, tmp_path)
    ckpt = run / "checkpoint.safetensors"
    data = ckpt.read_bytes()
    assert data.count(b'\\"epochs\\": 1') == 1
    ckpt.write_bytes(data.replace(b'\\"epochs\\": 1', b'\\"epochs\\": 9'))
    err = _cli_error(capsys, "train", "--resume", str(run))
    assert "checkpoint.safetensors" in err and "header does not match its CRC-32" in err


@pytest.mark.parametrize(
    ("key", "value"),
    [("history", "[{not json"), ("rng.loader", ""), ("epoch", "three"), ("config", None)],
)
def test_damaged_metadata_without_checksums_is_a_clear_error(
    finished_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: str | None,
) -> None:
    # As a checkpoint edited by hand or by another tool would be: no chainrule checksum.
    from safetensors.numpy import save_file

    run = _copy(finished_run, tmp_path)
    ckpt = run / "checkpoint.safetensors"
    metadata = cr.load_metadata(ckpt)
    if value is None:
        del metadata[key]
    else:
        metadata[key] = value
    arrays = {name: t.numpy() for name, t in cr.load(ckpt).items()}
    save_file(arrays, str(ckpt), metadata=metadata)
    err = _cli_error(capsys, "evaluate", str(run))
    assert "checkpoint.safetensors" in err and repr(key) in err
