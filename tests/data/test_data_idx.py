"""read_idx on small IDX files written here: good, truncated, corrupt."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from chainrule.data.datasets import IDXFormatError, read_idx

CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """The IDX encoding of ``array`` (big-endian sizes and values), written by hand."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.tobytes()


def write(path: Path, payload: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype(tmp_path: Path, dtype: str, compress: bool) -> None:
    values = (np.arange(24) - 7).reshape(2, 3, 4)
    if dtype == "u1":
        values = values + 7
    array = values.astype(dtype)
    name = "x-idx3-ubyte" + (".gz" if compress else "")
    out = read_idx(write(tmp_path / name, idx_bytes(array, CODES[dtype]), compress))
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    assert out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, values)


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = write(tmp_path / "labels-idx1-ubyte", idx_bytes(labels, 0x08), compress=True)
    assert read_idx(path).tolist() == [3, 1, 4, 1, 5]


def test_truncated_payload_names_file_and_byte_counts(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((10, 2, 2), dtype=np.uint8), 0x08)
    path = write(tmp_path / "cut-idx3-ubyte", data[:-3])
    with pytest.raises(IDXFormatError, match=r"cut-idx3-ubyte.*truncated.*40.*37"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    compressed = gzip.compress(idx_bytes(np.arange(500, dtype=np.uint8), 0x08))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXFormatError, match=r"cut.gz.*gzip stream is damaged or truncated"):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8), 0x08)
    with pytest.raises(IDXFormatError, match=r"truncated header.*16.*10"):
        read_idx(write(tmp_path / "h", data[:10]))
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(write(tmp_path / "empty", b""))


def test_wrong_magic(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(np.zeros(4, dtype=np.uint8), 0x08))
    data[0] = 0x50  # e.g. a PNG or an HTML error page saved under the file's name
    with pytest.raises(IDXFormatError, match=r"not an IDX file.*50 00 08 01"):
        read_idx(write(tmp_path / "bad", bytes(data)))


def test_unknown_dtype_code(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(np.zeros(4, dtype=np.uint8), 0x08))
    data[2] = 0x0A
    with pytest.raises(IDXFormatError, match="unknown IDX dtype code 0x0A"):
        read_idx(write(tmp_path / "bad", bytes(data)))


def test_zero_dimensions(tmp_path: Path) -> None:
    with pytest.raises(IDXFormatError, match="0 dimensions"):
        read_idx(write(tmp_path / "bad", bytes([0, 0, 8, 0])))


def test_trailing_bytes(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((3, 2), dtype=">i2"), 0x0B) + b"\x00\x01"
    with pytest.raises(IDXFormatError, match=r"2 unexpected trailing bytes.*12.*14"):
        read_idx(write(tmp_path / "long", data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        read_idx(tmp_path / "nope")
