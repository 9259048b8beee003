"""``cr.save`` / ``cr.load``: safetensors files, atomic writes, clear errors, torch interop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.serialization import CorruptFileError, load, load_metadata, save

pytest.importorskip("safetensors")


def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path: Path) -> None:
    tensors = {
        "w": cr.randn(3, 4),
        "d": cr.randn(2, dtype=cr.float64),
        "i": cr.tensor(np.arange(6).reshape(2, 3)),
        "b": cr.tensor(np.array([True, False])),
        "s": cr.tensor(np.float32(2.5)),
    }
    path = tmp_path / "t.safetensors"
    save(tensors, path, metadata={"epoch": "3"})
    loaded = load(path)
    assert set(loaded) == set(tensors)
    for name, t in tensors.items():
        assert loaded[name].dtype == t.dtype and loaded[name].shape == t.shape
        np.testing.assert_array_equal(loaded[name].numpy(), t.numpy())
    loaded["w"].data[0, 0] = 1.0  # tensors own writable memory
    assert load_metadata(path) == {"epoch": "3"}


def test_model_state_dict_round_trip(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 3))
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    other = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 3))
    other.load_state_dict(load(path))
    x = cr.randn(2, 5)
    np.testing.assert_array_equal(
        model.eval()(x).detach().numpy(), other.eval()(x).detach().numpy()
    )


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ckpt.safetensors"
    save({"w": cr.ones(3)}, path)
    original = path.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone mid-write")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        save({"w": cr.zeros(1000)}, path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # no temp left


def test_truncated_and_corrupted_files_raise_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save({"w": cr.randn(10, 10)}, path)
    data = path.read_bytes()
    for name, payload in [("short", data[:5]), ("cut", data[:-7]), ("header", data[:40])]:
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(payload)
        with pytest.raises(CorruptFileError, match=name):
            load(bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + b"\x00" * 8)
    with pytest.raises(CorruptFileError, match="garbage"):
        load(garbage)
    assert isinstance(CorruptFileError("x"), ValueError)


def test_loading_a_pickle_never_runs_it(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(CorruptFileError):
        load(path)


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="state_dict"):
        save([cr.ones(1)], "unused.safetensors")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        load("/nonexistent/dir/x.safetensors")


def test_torch_interop_both_ways(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    ours = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    path = tmp_path / "ours.safetensors"
    save(ours.state_dict(), path)
    theirs.load_state_dict(load_file(path))  # strict by default: keys and shapes match
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(
        theirs(torch.tensor(x)).detach().numpy(),
        ours(cr.tensor(x)).detach().numpy(),
        rtol=1e-6,
        atol=1e-7,
    )

    torch.manual_seed(1)
    fresh = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    back = tmp_path / "theirs.safetensors"
    save_file(fresh.state_dict(), back)
    ours.load_state_dict(load(back))
    np.testing.assert_allclose(
        ours(cr.tensor(x)).detach().numpy(),
        fresh(torch.tensor(x)).detach().numpy(),
        rtol=1e-6,
        atol=1e-7,
    )
