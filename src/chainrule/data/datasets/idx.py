"""A reader for the IDX format of the MNIST family of datasets.

An IDX file is a header and a payload (http://yann.lecun.com/exdb/mnist/, bottom):

- the magic number, 4 bytes: 0x00 0x00, a dtype code, the number of dimensions;
- each dimension's size as a big-endian unsigned 32-bit integer;
- the values, big-endian, in C order; exactly the product of the sizes of them.

Files are often gzip-compressed (``.gz``); the reader recognises gzip by its own magic
bytes, whatever the file is called, and inflates it as it reads: never past what the
header announces (plus one byte, to see trailing data). Every part is checked, so a
truncated download or a file of another kind is an ``IDXFormatError`` naming the file and
what is wrong, never a silently wrong array; a caller that knows which file it wants
(MNIST's images, its labels) passes its magic number and gets the type checked too.
"""

from __future__ import annotations

import gzip
import io
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


def read_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> numpy.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    The header is parsed first; then exactly the bytes it announces are read (plus one, to
    detect trailing data) straight into the array, so a ``.gz`` is never inflated past
    what its header promises and a file whose header claims more than it could hold is
    rejected before any memory is allocated.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.
        magic: the magic number the file must have, when the caller knows it (MNIST's
            images are ``0x00000803``: unsigned bytes in 3 dimensions; its labels
            ``0x00000801``); None accepts any valid IDX file.

    Returns:
        A writable array in native byte order with the file's shape and dtype (uint8,
        int8, int16, int32, float32 or float64).

    Raises:
        FileNotFoundError: the file does not exist.
        IDXFormatError: a bad magic number (or not the ``magic`` asked for), an unknown
            dtype code, a header cut short, fewer or more payload bytes than the sizes
            promise, or a damaged gzip stream.

    Example:
        >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
        ... # doctest: +SKIP
        >>> images.shape, images.dtype  # doctest: +SKIP
        ((10000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        file_size = os.fstat(raw.fileno()).st_size
        if not compressed:
            return _read_stream(raw, path, magic, file_size, None)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(stream, path, magic, None, file_size)
        except (EOFError, OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise IDXFormatError(
                f"{path}: the gzip stream is damaged or truncated ({err}); download the file again"
            ) from err


# deflate inflates at most ~1032:1, so a .gz of n bytes cannot hold more than this times n.
_GZIP_MAX_RATIO = 1100
_CHUNK = 1 << 20  # read a .gz in 1 MiB steps: the decompressor copies what each read returns


def _read_stream(
    stream: io.BufferedIOBase,
    path: Path,
    magic: int | None,
    payload_file_size: int | None,
    gzip_size: int | None,
) -> numpy.ndarray:
    """Header, then payload. ``payload_file_size``: the raw file's size; ``gzip_size``:
    the compressed size of a .gz (exactly one of the two is given)."""
    head = _read_exact(stream, 4)
    if len(head) < 4:
        raise IDXFormatError(
            f"{path}: {len(head)} bytes is too short for an IDX file (the magic number alone "
            f"is 4 bytes); the file is empty or truncated, download it again"
        )
    zero0, zero1, code, ndim = head
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            f"{path}: not an IDX file: the magic number must start with two zero bytes, got "
            f"{head.hex(' ')}; check that this is an MNIST-style *-idx*-ubyte file"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in IDX_DTYPES.items())
        raise IDXFormatError(
            f"{path}: unknown IDX dtype code 0x{code:02X} in the magic number; the format "
            f"defines {known}"
        )
    if magic is not None and int.from_bytes(head, "big") != magic:
        raise IDXFormatError(
            f"{path}: magic number 0x{int.from_bytes(head, 'big'):08X} says "
            f"{_describe(code, ndim)}, but this file must have 0x{magic:08X} "
            f"({_describe((magic >> 8) & 0xFF, magic & 0xFF)}); the file is damaged or not "
            f"the one expected here, download it again"
        )
    if ndim == 0:
        raise IDXFormatError(f"{path}: the magic number declares 0 dimensions; expected >= 1")
    header = 4 + 4 * ndim
    sizes = _read_exact(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {header} header bytes, the "
            f"file has {4 + len(sizes)}; download it again"
        )
    shape = tuple(int(s) for s in numpy.frombuffer(sizes, dtype=">u4"))
    dtype = IDX_DTYPES[code]
    expected = dtype.itemsize * _product(shape)
    if payload_file_size is not None:
        _check_payload_size(path, shape, dtype, expected, payload_file_size - header)
    elif gzip_size is not None and expected > _GZIP_MAX_RATIO * gzip_size:
        raise IDXFormatError(
            f"{path}: the header announces shape {shape} of {dtype.name} ({expected} bytes), "
            f"more than a {gzip_size}-byte gzip file can hold; the header is damaged, "
            f"download the file again"
        )
    values = numpy.empty(_product(shape), dtype=dtype)
    view = values.view(numpy.uint8).data
    got = _fill(stream, view)
    if got < expected:
        _check_payload_size(path, shape, dtype, expected, got)
    if stream.read(1):
        raise IDXFormatError(
            f"{path}: unexpected trailing bytes after the payload (shape {shape} of "
            f"{dtype.name} is {expected} bytes, the data go on); the file is corrupt or not "
            f"what its header says"
        )
    if not dtype.isnative:  # swapped in place: no second copy of the payload
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.reshape(shape)


def _check_payload_size(
    path: Path, shape: tuple[int, ...], dtype: numpy.dtype, expected: int, actual: int
) -> None:
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


def _describe(code: int, ndim: int) -> str:
    kind = IDX_DTYPES[code].name if code in IDX_DTYPES else f"unknown type 0x{code:02X}"
    return f"{kind} values in {ndim} dimension{'s' if ndim != 1 else ''}"


def _read_exact(stream: io.BufferedIOBase, count: int) -> bytes:
    """``count`` bytes, or fewer at the end of the stream."""
    buffer = bytearray(count)
    return bytes(buffer[: _fill(stream, memoryview(buffer))])


def _fill(stream: io.BufferedIOBase, view: memoryview) -> int:
    """Read into ``view`` until it is full or the stream ends; the number of bytes read."""
    done = 0
    while done < len(view):
        count = stream.readinto(view[done : done + _CHUNK])
        if not count:
            break
        done += count
    return done


def _product(shape: tuple[int, ...]) -> int:
    count = 1
    for s in shape:
        count *= s
    return count
