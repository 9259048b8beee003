"""``cr.save`` / ``cr.load``: safetensors files, atomic writes, clear errors, torch interop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.serialization import CorruptFileError, load, load_metadata, save

pytest.importorskip("safetensors")


def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path: Path, device: str) -> None:
    tensors = {
        "w": cr.randn(3, 4, device=device),
        "d": cr.randn(2, dtype=cr.float64, device=device),
        "i": cr.tensor(np.arange(6).reshape(2, 3), device=device),
        "b": cr.tensor(np.array([True, False]), device=device),
        "s": cr.tensor(np.float32(2.5), device=device),
    }
    path = tmp_path / "t.safetensors"
    save(tensors, path, metadata={"epoch": "3"})
    for where in (None, device):
        loaded = load(path, device=where)
        assert set(loaded) == set(tensors)
        for name, t in tensors.items():
            assert loaded[name].dtype == t.dtype and loaded[name].shape == t.shape
            assert loaded[name].device == (cr.device("cpu") if where is None else t.device)
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


# ------------------------------------------------------------------ checksums, corruption


def _data_start(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


def _raw_file(path: Path, header: dict[str, object], data: bytes) -> Path:
    """A safetensors file written by hand (no checksum), to reach every check of the reader."""
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_every_one_byte_change_in_the_data_is_caught_and_names_the_tensor(
    tmp_path: Path,
) -> None:
    tensors = {
        "w": cr.randn(8, 9),
        "idx": cr.tensor(np.arange(30)),
        "mask": cr.tensor(np.array([True, False, True])),
        "h": cr.tensor(np.linspace(0, 1, 7).astype(np.float16)),
    }
    path = tmp_path / "good.safetensors"
    save(tensors, path)
    data = path.read_bytes()
    start = _data_start(data)
    header = json.loads(data[8:start])
    owner = {}  # byte position in the file -> the tensor that holds it
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            owner.update({start + i: name for i in range(begin, end)})
    assert len(owner) == len(data) - start
    rng = np.random.default_rng(7)
    bad = tmp_path / "flipped.safetensors"
    for position in rng.choice(np.arange(start, len(data)), size=150, replace=False):
        changed = bytearray(data)
        changed[position] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(changed))
        with pytest.raises(CorruptFileError, match=rf"flipped.*{owner[position]!r}.*CRC-32"):
            load(bad)


def test_every_one_byte_change_in_the_header_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "h.safetensors"
    save({"w": cr.randn(2, 3), "b": cr.zeros(3)}, path, metadata={"epoch": "3"})
    data = path.read_bytes()
    # Every byte but the padding (spaces that JSON ignores) means something.
    meaningful = 8 + len(data[8 : _data_start(data)].rstrip(b" "))
    bad = tmp_path / "bad.safetensors"
    for position in range(meaningful):
        for flip in (0x01, 0x20, 0x80):
            changed = bytearray(data)
            changed[position] ^= flip
            bad.write_bytes(bytes(changed))
            with pytest.raises(CorruptFileError, match=r"bad\.safetensors"):
                load(bad)
            # load_metadata reads no tensor data, so a changed tensor CRC passes it; the
            # metadata it returns must still be the saved one.
            try:
                assert load_metadata(bad) == {"epoch": "3"}
            except CorruptFileError as exc:
                assert "bad.safetensors" in str(exc)


def test_a_changed_metadata_value_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save({"w": cr.ones(2)}, path, metadata={"epoch": "3"})
    path.write_bytes(path.read_bytes().replace(b'"epoch":"3"', b'"epoch":"4"'))
    with pytest.raises(CorruptFileError, match="header does not match its CRC-32"):
        load_metadata(path)


def test_checksums_live_in_the_documented_metadata_key(tmp_path: Path) -> None:
    import zlib

    from safetensors import safe_open

    from chainrule.serialization import CHECKSUM_KEY

    w = cr.randn(4, 5)
    path = tmp_path / "w.safetensors"
    save({"w": w}, path, metadata={"note": "x"})
    with safe_open(str(path), "np") as f:  # the reference reader accepts the file
        sums = json.loads(f.metadata()[CHECKSUM_KEY])
        np.testing.assert_array_equal(f.get_tensor("w"), w.numpy())
    assert int(sums["tensors"]["w"], 16) == zlib.crc32(w.numpy().astype("<f4").tobytes())
    assert load_metadata(path) == {"note": "x"}  # the key is chainrule's, not the user's
    with pytest.raises(TypeError, match="reserved"):
        save({"w": w}, path, metadata={CHECKSUM_KEY: "mine"})


def test_files_of_other_tools_have_no_checksum_and_load_as_before(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    arrays = {"a": np.arange(6, dtype=np.int16).reshape(2, 3), "b": np.array(1.5)}
    path = tmp_path / "theirs.safetensors"
    save_file(arrays, str(path), metadata={"k": "v"})
    loaded = load(path)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name].numpy(), array)
    assert load_metadata(path) == {"k": "v"}


def test_non_contiguous_big_endian_and_empty_tensors_round_trip(tmp_path: Path) -> None:
    tensors = {
        "t": np.arange(12.0).reshape(3, 4).T,
        "be": np.arange(5, dtype=">i4"),
        "empty": np.zeros((0, 3), dtype=np.float16),
        "u": np.array([1, 2**31], dtype=np.uint32),
    }
    path = tmp_path / "odd.safetensors"
    save(tensors, path)
    loaded = load(path)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape
        assert loaded[name].data.dtype == array.dtype.newbyteorder("=")
        np.testing.assert_array_equal(loaded[name].numpy(), array)


GOOD_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"w": {**GOOD_ENTRY, "dtype": "F99"}}, bytes(8), "dtype 'F99'"),
        ({"w": {**GOOD_ENTRY, "dtype": "BF16"}}, bytes(8), "dtype 'BF16'"),
        ({"w": {**GOOD_ENTRY, "shape": [3]}}, bytes(8), r"needs 12 bytes.*span 8"),
        ({"w": {**GOOD_ENTRY, "shape": [-2]}}, bytes(8), "not a list of sizes"),
        ({"w": {**GOOD_ENTRY, "shape": "2"}}, bytes(8), "not a list of sizes"),
        ({"w": {**GOOD_ENTRY, "data_offsets": [4, 12]}}, bytes(12), "starts at byte 4"),
        ({"w": {**GOOD_ENTRY, "data_offsets": [0]}}, bytes(8), "not \\[begin, end\\]"),
        ({"w": GOOD_ENTRY, "v": GOOD_ENTRY}, bytes(16), "overlapping or missing"),
        ({"w": GOOD_ENTRY}, bytes(9), "trailing bytes"),
        ({"w": GOOD_ENTRY}, bytes(5), "truncated"),
        # A shape claiming far more memory than the file holds fails before any allocation.
        ({"w": {**GOOD_ENTRY, "shape": [2**40], "data_offsets": [0, 2**42]}}, b"", "truncated"),
        ({"w": [1, 2]}, bytes(8), "not an object"),
        ({"w": GOOD_ENTRY, "__metadata__": {"k": 1}}, bytes(8), "map of text to text"),
        ({"w": GOOD_ENTRY, "__metadata__": {"chainrule.crc32": "{"}}, bytes(8), "damaged"),
    ],
    ids=[
        "unknown-dtype",
        "bf16",
        "shape-vs-bytes",
        "negative-size",
        "shape-not-list",
        "offsets-gap",
        "offsets-short",
        "overlap",
        "trailing",
        "truncated",
        "huge-shape",
        "entry-not-object",
        "metadata-not-text",
        "checksum-damaged",
    ],
)
def test_bad_headers_are_clear_errors(
    tmp_path: Path, header: dict[str, object], data: bytes, message: str
) -> None:
    path = _raw_file(tmp_path / "hand.safetensors", header, data)
    with pytest.raises(CorruptFileError, match=rf"'.*hand.safetensors'.*{message}"):
        load(path)


def test_header_length_and_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "len.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CorruptFileError, match=r"len.safetensors.*claims 4611686018427387904"):
        load(path)
    for payload in (b"[1, 2]", b"\xff\xfe{}", b"[" * 100_000):
        path.write_bytes(len(payload).to_bytes(8, "little") + payload)
        with pytest.raises(CorruptFileError, match=r"len\.safetensors"):
            load(path)
