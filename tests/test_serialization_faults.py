"""``cr.save`` under faults: killed mid-write, failing disks; and the memory both calls use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.serialization import load, save

# Saves ~100 MB once, announcing when it starts; the parent kills it at some moment.
CHILD = textwrap.dedent(
    """
    import sys
    import numpy
    import chainrule as cr
    state = {f"w{i}": cr.tensor(numpy.full(2_500_000, i, dtype=numpy.float32)) for i in range(10)}
    print("ready", flush=True)
    cr.save(state, sys.argv[1])
    print("saved", flush=True)
    """
)


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _kill_during_save(target: Path, delay: float | None) -> bool:
    """Run CHILD; SIGKILL it ``delay`` s after its temporary file appears (None: at once).

    Returns whether the kill left a temporary file, i.e. landed mid-write.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        if delay is not None:
            deadline = time.monotonic() + 30
            while not _temporaries(target.parent) and child.poll() is None:
                assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(delay)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()  # a no-op when already dead; reaps it below so its pid is free
        child.wait()
    return bool(_temporaries(target.parent))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid checks are POSIX")
def test_a_save_killed_mid_write_never_damages_the_target_nor_leaves_temporaries(
    tmp_path: Path,
) -> None:
    target = tmp_path / "model.safetensors"
    old = {"w": cr.tensor(np.arange(10, dtype=np.float32))}
    save(old, target)
    interrupted = 0
    for delay in (None, 0.0, 0.01, 0.03, 0.08, 0.15):
        interrupted += _kill_during_save(target, delay)
        loaded = load(target)  # intact: the old file, or the child's if it got that far
        if set(loaded) == {"w"}:
            np.testing.assert_array_equal(loaded["w"].numpy(), old["w"].numpy())
        else:
            assert sorted(loaded) == [f"w{i}" for i in range(10)]
            assert float(loaded["w9"].numpy()[-1]) == 9.0
        save(old, target)  # the next save removes what the dead child left
        assert _temporaries(tmp_path) == []
        assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    # The test means something only if kills landed mid-write.
    assert interrupted >= 3, f"only {interrupted} kills landed while the file was written"


@pytest.mark.skipif(os.name != "posix", reason="pid checks are POSIX")
def test_only_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = [
            f".m.safetensors.{dead.pid}.0123abcd.tmp",  # dead writer: removed
            f".m.safetensors.{alive.pid}.0123abcd.tmp",  # a save in progress: kept
            f".m.safetensors.{os.getpid()}.0123abcd.tmp",  # another thread of ours: kept
            f".other.safetensors.{dead.pid}.0123abcd.tmp",  # another target: kept
            "notes.tmp",
        ]
        for name in names:
            (tmp_path / name).write_bytes(b"partial")
        save({"w": cr.ones(2)}, tmp_path / "m.safetensors")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.safetensors", *names[1:]])
    finally:
        alive.kill()
        alive.wait()


def test_an_interrupted_save_cleans_up_and_keeps_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "t.safetensors"
    save({"w": cr.ones(3)}, target)
    original = target.read_bytes()

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save({"w": cr.zeros(100_000)}, target)
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


def test_errors_of_a_failed_save_name_the_target_not_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "w.safetensors"

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied", src)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        save({"w": cr.ones(2)}, target)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert "Permission denied" in str(info.value)
    monkeypatch.undo()

    missing = tmp_path / "no" / "such" / "w.safetensors"
    with pytest.raises(FileNotFoundError) as info2:
        save({"w": cr.ones(2)}, missing)
    assert str(missing) in str(info2.value) and ".tmp" not in str(info2.value)
    assert "does not exist" in str(info2.value)


def _state(megabytes: int) -> dict[str, cr.Tensor]:
    per_tensor = 2**20 // 4  # 1 MiB of float32
    return {f"t{i}": cr.full((per_tensor,), float(i)) for i in range(megabytes)}


def test_save_and_load_stream_tensor_by_tensor(tmp_path: Path) -> None:
    state = _state(40)
    size = sum(t.data.nbytes for t in state.values())
    path = tmp_path / "big.safetensors"

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        save(state, path)
        save_peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        loaded = load(path)
        load_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # save needs no copy of the state; load's result is the state itself (1.0x).
    assert save_peak < 0.3 * size, f"save peaked {save_peak / size:.2f}x the state"
    assert load_peak < 1.3 * size, f"load peaked {load_peak / size:.2f}x the state"
    assert float(loaded["t39"].numpy()[0]) == 39.0
