"""A reader for the IDX format of the MNIST family of datasets.

An IDX file is a header and a payload (http://yann.lecun.com/exdb/mnist/, bottom):

- the magic number, 4 bytes: 0x00 0x00, a dtype code, the number of dimensions;
- each dimension's size as a big-endian unsigned 32-bit integer;
- the values, big-endian, in C order; exactly the product of the sizes of them.

Files are often gzip-compressed (``.gz``); the reader recognises gzip by its own magic
bytes, whatever the file is called. Every part is checked, so a truncated download or a
file of another kind is an ``IDXFormatError`` naming the file and what is wrong, never a
silently wrong array.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy

# dtype code -> big-endian NumPy dtype, as listed by the format's description.
IDX_DTYPES: dict[int, numpy.dtype] = {
    0x08: numpy.dtype("u1"),
    0x09: numpy.dtype("i1"),
    0x0B: numpy.dtype(">i2"),
    0x0C: numpy.dtype(">i4"),
    0x0D: numpy.dtype(">f4"),
    0x0E: numpy.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file that is not a complete, well-formed IDX file. The message names the file."""


def read_idx(path: str | os.PathLike[str]) -> numpy.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        A writable array in native byte order with the file's shape and dtype (uint8,
        int8, int16, int32, float32 or float64).

    Raises:
        FileNotFoundError: the file does not exist.
        IDXFormatError: a bad magic number, an unknown dtype code, a header cut short,
            fewer or more payload bytes than the sizes promise, or a damaged gzip stream.

    Example:
        >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
        ... # doctest: +SKIP
        >>> images.shape, images.dtype  # doctest: +SKIP
        ((10000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXFormatError(
            f"{path}: {len(raw)} bytes is too short for an IDX file (the magic number alone "
            f"is 4 bytes); the file is empty or truncated, download it again"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, got "
            f"{raw[:4].hex(' ')}; check that this is an MNIST-style *-idx*-ubyte file"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise IDXFormatError(
            f"{path}: unknown IDX dtype code 0x{code:02X} in the magic number; the format "
            f"defines {known}"
        )
    if ndim == 0:
        raise IDXFormatError(f"{path}: the magic number declares 0 dimensions; expected >= 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} header bytes, the "
            f"file has {len(raw)}; download it again"
        )
    shape = tuple(int(s) for s in numpy.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = dtype.itemsize * _product(shape)
    actual = len(raw) - header
    if actual < expected:
        raise IDXFormatError(
            f"{path}: truncated: shape {shape} of {dtype.name} needs {expected} payload "
            f"bytes but the file has {actual}; download it again"
        )
    if actual > expected:
        raise IDXFormatError(
            f"{path}: {actual - expected} unexpected trailing bytes after the payload (shape "
            f"{shape} of {dtype.name} is {expected} bytes, the file has {actual}); the file "
            f"is corrupt or not what its header says"
        )
    values = numpy.frombuffer(raw, dtype=dtype, count=_product(shape), offset=header)
    # One copy, which also makes the array writable and puts it in native byte order.
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def _product(shape: tuple[int, ...]) -> int:
    count = 1
    for s in shape:
        count *= s
    return count


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise IDXFormatError(
            f"{path}: the gzip stream is damaged or truncated ({err}); download the file again"
        ) from err
