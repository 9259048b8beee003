"""Damaged IDX files, raw and gzip: each a clear error naming the file, in little memory."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from chainrule.data.datasets import MNIST, FashionMNIST, IDXFormatError, read_idx
from chainrule.data.datasets.mnist import IMAGES_MAGIC, LABELS_MAGIC


def idx_header(code: int, shape: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def zip_bomb(head: bytes, mebibytes: int) -> bytes:
    """A multi-member gzip of ~1 KB per MiB that inflates to ``head`` + that many zeros."""
    zeros = gzip.compress(bytes(16 << 20))  # 16 MiB of zeros deflate to ~16 KB
    return gzip.compress(head) + zeros * (mebibytes // 16)


def test_a_gzip_bomb_with_a_small_header_is_rejected_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(zip_bomb(idx_header(0x08, (10,)) + bytes(range(10)), 1024))
    assert path.stat().st_size < 2 << 20  # ~1 MB on disk, 1 GiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match=r"bomb-idx1-ubyte.gz.*trailing bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, f"read_idx peaked at {peak / 2**20:.0f} MiB"


def test_a_header_claiming_more_than_the_file_can_hold_allocates_nothing(
    tmp_path: Path,
) -> None:
    huge = (60_000, 2**20, 2**20)  # 66 TB of uint8
    raw = tmp_path / "huge-idx3-ubyte"
    raw.write_bytes(idx_header(0x08, huge) + bytes(100))
    gz = tmp_path / "huge-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(idx_header(0x08, huge) + bytes(100)))
    tracemalloc.start()
    try:
        with pytest.raises(
            IDXFormatError, match=r"huge-idx3-ubyte.*truncated.*but the file has 100"
        ):
            read_idx(raw)
        with pytest.raises(IDXFormatError, match=r"huge-idx3-ubyte.gz.*more than a \d+-byte gzip"):
            read_idx(gz)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_cut_and_padded_payloads(tmp_path: Path, compress: bool) -> None:
    good = idx_header(0x0C, (5, 4)) + np.arange(20, dtype=">i4").tobytes()  # 80 bytes
    cases = {
        "cut": (good[:-10], r"truncated.*needs 80 payload bytes but the file has 70"),
        "long": (good + b"\x00", "trailing bytes"),
        "header": (good[:9], r"truncated header.*12 header bytes.*has 9"),
    }
    for name, (payload, message) in cases.items():
        path = tmp_path / f"{name}.idx"
        path.write_bytes(gzip.compress(payload) if compress else payload)
        with pytest.raises(IDXFormatError, match=rf"{name}\.idx.*{message}"):
            read_idx(path)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"\x1f\x8b\x08\x00", "gzip stream is damaged"),  # gzip magic, nothing after it
        (b"<html><body>404</body></html>", "not an IDX file"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 0]), "unknown IDX dtype code 0x07"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    ],
    ids=["gzip-header-only", "html", "dtype-code", "no-dims"],
)
def test_bad_starts(tmp_path: Path, head: bytes, message: str) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(head)
    with pytest.raises(IDXFormatError, match=rf"bad-idx1-ubyte.*{message}"):
        read_idx(path)


def test_a_damaged_gzip_body_is_caught_by_its_crc(tmp_path: Path) -> None:
    payload = (
        idx_header(0x08, (1000,))
        + np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    )
    data = bytearray(gzip.compress(payload))
    data[-8] ^= 0xFF  # the stored CRC-32 of the inflated data
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(IDXFormatError, match=r"crc.gz.*gzip stream is damaged"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_the_mnist_type_code_is_checked_when_the_caller_knows_it(
    tmp_path: Path, compress: bool
) -> None:
    values = np.array([0, 127, 128, 255], dtype=np.uint8)
    data = idx_header(0x09, (4,)) + values.tobytes()  # 0x08 (unsigned) changed to 0x09
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(
        IDXFormatError,
        match=r"t10k-labels-idx1-ubyte.*0x00000901 says int8.*must have 0x00000801 \(uint8",
    ):
        read_idx(path, magic=LABELS_MAGIC)
    # A valid IDX file of signed bytes is still read as such when no magic is asked for.
    assert read_idx(path).tolist() == [0, 127, -128, -1]


def test_mnist_and_fashion_mnist_refuse_a_changed_type_code(tmp_path: Path) -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    labels = np.array([1, 2], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(
            idx_header(0x08, images.shape) + images.tobytes()
        )
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(
            idx_header(0x08, labels.shape) + labels.tobytes()
        )
    assert len(MNIST(root=tmp_path)) == 2
    images_path = tmp_path / "train-images-idx3-ubyte"
    data = bytearray(images_path.read_bytes())
    data[2] = 0x09
    images_path.write_bytes(bytes(data))
    for dataset in (MNIST, FashionMNIST):
        with pytest.raises(IDXFormatError, match=r"train-images-idx3-ubyte.*int8.*uint8"):
            dataset(root=tmp_path)
    assert (IMAGES_MAGIC, LABELS_MAGIC) == (0x803, 0x801)
