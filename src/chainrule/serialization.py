"""``cr.save`` / ``cr.load``: dictionaries of tensors in the safetensors format.

safetensors is the format the field shares (PyTorch, JAX and Hugging Face read it): an
8-byte little-endian header length N, N bytes of JSON header (name → dtype, shape, byte
range; text metadata under ``__metadata__``) and the raw little-endian bytes, tensor
after tensor. chainrule reads and writes it itself, tensor by tensor, so that neither
call holds a second copy of the state: ``save`` streams each array's own memory to the
file, ``load`` reads each tensor straight into its own array. Loading parses JSON and
copies bytes; unlike pickle, it never runs code from the file.

Checksums: ``save`` stores a CRC-32 (``zlib.crc32``) of every tensor's bytes and one of
the header in the metadata key ``chainrule.crc32`` (see ``CHECKSUM_KEY``), and ``load``
verifies them, so a changed byte anywhere is an error naming the file and the tensor.
CRC-32 rather than a cryptographic hash: it is meant to catch accidents (disk, network,
a truncated copy), and it *guarantees* to detect every change confined to 32
consecutive bits (so every changed byte), at ~4 GB/s against BLAKE2b's ~1 GB/s. Files
written by other tools carry no checksum and load as before.

Saving is atomic: the bytes go to ``.<name>.<pid>.<random>.tmp`` in the target's
directory, which is flushed to disk and renamed over the target in one step, so a crash
mid-write leaves the previous file intact. A temporary file left by a killed process is
removed by the next save to the same target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy

from chainrule.tensor import Tensor

PathLike = str | os.PathLike[str]

CHECKSUM_KEY = "chainrule.crc32"
"""Metadata key of the checksums: a JSON object ``{"header": crc, "tensors": {name: crc}}``
with each CRC-32 as 8 lowercase hex digits. The header's CRC covers the header JSON without
this key, re-serialised canonically (sorted keys, no spaces, ASCII)."""

# safetensors dtype names and their little-endian NumPy dtypes (the ones NumPy has).
_DTYPES: dict[str, numpy.dtype] = {
    "BOOL": numpy.dtype("|b1"),
    "U8": numpy.dtype("|u1"),
    "I8": numpy.dtype("|i1"),
    "U16": numpy.dtype("<u2"),
    "I16": numpy.dtype("<i2"),
    "F16": numpy.dtype("<f2"),
    "U32": numpy.dtype("<u4"),
    "I32": numpy.dtype("<i4"),
    "F32": numpy.dtype("<f4"),
    "U64": numpy.dtype("<u8"),
    "I64": numpy.dtype("<i8"),
    "F64": numpy.dtype("<f8"),
}
_NAMES = {(d.kind, d.itemsize): name for name, d in _DTYPES.items()}
_MAX_HEADER = 100_000_000  # the limit the reference implementation enforces


class CorruptFileError(ValueError):
    """A file that is not a complete safetensors file (truncated, damaged or another format)."""


def save(
    tensors: Mapping[str, Any], path: PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a dict of tensors to ``path`` in the safetensors format, atomically.

    The header (with a CRC-32 of each tensor) is written first, then each tensor's bytes
    straight from its array: no copy of the whole state is made.

    Args:
        tensors: name → Tensor (or array), e.g. ``model.state_dict()``.
        path: the file to write (conventionally ``*.safetensors``); replaced if it exists.
        metadata: optional text key → text value pairs stored in the header.

    Raises:
        TypeError: not a dict of named numeric tensors, or metadata that is not text.
        OSError: the file cannot be written; the message names ``path``.

    Example:
        >>> import chainrule as cr, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> cr.save({"w": cr.ones(2, 2)}, path)
        >>> cr.load(path)["w"].shape
        (2, 2)
    """
    arrays = _arrays_to_save(tensors)
    user_meta = _metadata_to_save(metadata)
    header = _build_header(arrays, user_meta)
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    _remove_stale_temporaries(directory, target.name)
    tmp = directory / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    replaced = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb", buffering=0) as handle:
            _write_all(handle, header)
            for _, array in arrays:
                _write_all(handle, _byte_view(_little_endian(array)))
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        replaced = True
    except OSError as exc:
        raise _save_error(exc, target) from exc
    finally:
        if not replaced:
            tmp.unlink(missing_ok=True)
    _fsync_directory(directory)


def load(path: PathLike) -> dict[str, Tensor]:
    """Read a safetensors file into a dict of name → Tensor (never runs code).

    Each tensor is read straight into its own array, so the peak memory is the state
    itself. Checksums written by ``cr.save`` are verified; files from other tools (no
    checksum) load unverified.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptFileError: the file is truncated, damaged (a checksum does not match) or
            not safetensors; the message names the file (and the tensor, for data).

    Example:
        ``model.load_state_dict(cr.load("model.safetensors"))``
    """
    name = os.fspath(path)
    with open(path, "rb", buffering=0) as handle:
        header = _read_header(handle, name)
        out: dict[str, Tensor] = {}
        for entry in header.entries:
            array = numpy.empty(entry.shape, dtype=entry.dtype)
            view = _byte_view(array)
            handle.seek(header.data_start + entry.begin)
            if _read_into(handle, view) != len(view):
                raise _corrupt(name, f"tensor {entry.name!r} is cut short (truncated file)")
            expected = header.crcs.get(entry.name)
            if expected is not None and zlib.crc32(view) != expected:
                raise _corrupt(
                    name,
                    f"the data of tensor {entry.name!r} do not match their CRC-32 checksum "
                    f"(bytes changed on disk or in transit)",
                )
            if not array.dtype.isnative:  # big-endian hosts only
                array = array.astype(array.dtype.newbyteorder("="))
            out[entry.name] = Tensor(array)
    return out


def load_metadata(path: PathLike) -> dict[str, str]:
    """The text metadata stored in a safetensors file's header (empty if none).

    chainrule's own checksum entry (``CHECKSUM_KEY``) is left out: the result is the
    ``metadata`` that was passed to ``save``.
    """
    with open(path, "rb", buffering=0) as handle:
        return _read_header(handle, os.fspath(path)).metadata


# ---------------------------------------------------------------------------- writing


def _arrays_to_save(tensors: Mapping[str, Any]) -> list[tuple[str, numpy.ndarray]]:
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"save: expected a dict of name -> tensor, got {type(tensors).__name__}; "
            f"to save a model, pass model.state_dict()"
        )
    arrays = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save: tensor names must be strings, got {name!r}")
        if name == "__metadata__":
            raise TypeError("save: '__metadata__' is reserved by the format; rename the tensor")
        array = numpy.asarray(value.detach() if isinstance(value, Tensor) else value)
        if (array.dtype.kind, array.dtype.itemsize) not in _NAMES:
            raise TypeError(
                f"save: {name!r} has dtype {array.dtype}, which safetensors "
                f"cannot store (use a numeric or bool dtype)"
            )
        arrays.append((name, array))
    # Widest dtype first keeps every tensor aligned to its item size in the file.
    arrays.sort(key=lambda item: (-item[1].dtype.itemsize, item[0]))
    return arrays


def _metadata_to_save(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"save: metadata keys and values must be strings; not so for {bad}")
    if CHECKSUM_KEY in metadata:
        raise TypeError(f"save: the metadata key {CHECKSUM_KEY!r} is reserved for checksums")
    return dict(metadata)


def _build_header(arrays: list[tuple[str, numpy.ndarray]], user_meta: dict[str, str]) -> bytes:
    """The length field, the JSON header with checksums, padded to 8 bytes."""
    header: dict[str, Any] = {}
    crcs: dict[str, str] = {}
    offset = 0
    for name, array in arrays:
        nbytes = array.size * array.dtype.itemsize
        header[name] = {
            "dtype": _NAMES[(array.dtype.kind, array.dtype.itemsize)],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        crcs[name] = f"{zlib.crc32(_byte_view(_little_endian(array))):08x}"
        offset += nbytes
    header["__metadata__"] = dict(user_meta)
    sums = {"header": f"{_header_crc(header):08x}", "tensors": crcs}
    header["__metadata__"][CHECKSUM_KEY] = json.dumps(sums, sort_keys=True)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # tensors start 8-byte aligned, as the format advises
    return len(text).to_bytes(8, "little") + text


def _header_crc(header: Mapping[str, Any]) -> int:
    """CRC-32 of the header without the checksum entry, in one canonical JSON spelling."""
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != CHECKSUM_KEY}
    canonical = {**header, "__metadata__": meta}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return zlib.crc32(text.encode("ascii"))


def _little_endian(array: numpy.ndarray) -> numpy.ndarray:
    # Copies only what must be (a non-contiguous or big-endian array), one tensor at a time.
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not _HOST_LITTLE):
        array = array.astype(array.dtype.newbyteorder("<"))
    # Not ascontiguousarray: it turns a 0-d array into shape (1,).
    return array if array.flags.c_contiguous else array.copy(order="C")


_HOST_LITTLE = numpy.little_endian


def _byte_view(array: numpy.ndarray) -> memoryview:
    """The array's own memory as flat bytes (no copy; the array must be C-contiguous)."""
    return array.reshape(-1).view(numpy.uint8).data


def _write_all(handle: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while len(view):
        written = handle.write(view)
        if not written:
            raise OSError("the write made no progress")
        view = view[written:]


def _save_error(exc: OSError, target: Path) -> OSError:
    """The same kind of error, naming the target rather than the temporary file."""
    reason = exc.strerror or str(exc)
    message = f"save: cannot write {os.fspath(target)!r}: {reason}"
    if not target.parent.is_dir():
        message += f" (the folder {os.fspath(target.parent)!r} does not exist)"
    if exc.errno is None:
        return OSError(message)
    return OSError(exc.errno, message)  # OSError picks the subclass, e.g. PermissionError


def _remove_stale_temporaries(directory: Path, name: str) -> None:
    """Delete temporary files of earlier saves to ``name`` whose process has died."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return  # the save itself will report the folder's problem
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _process_alive(int(match.group(1))):
            # Another save may have removed it first, or it is not ours to remove.
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Entry:
    """One tensor as the header describes it; ``begin``/``end`` are offsets in the data."""

    name: str
    dtype: numpy.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class _Header:
    entries: list[_Entry]
    metadata: dict[str, str]  # without the checksum entry
    crcs: dict[str, int]  # empty for files without checksums
    data_start: int  # where the data area starts in the file


def _corrupt(name: str, what: str) -> CorruptFileError:
    return CorruptFileError(
        f"cannot read {name!r} as safetensors: {what}. The file is truncated, damaged or "
        f"in another format; re-save it (or restore a copy)."
    )


def _read_into(handle: BinaryIO, view: memoryview) -> int:
    done = 0
    while done < len(view):
        count = handle.readinto(view[done:])  # type: ignore[attr-defined]
        if not count:
            break
        done += count
    return done


def _read_header(handle: BinaryIO, name: str) -> _Header:
    """Parse and check the header: every entry valid, the byte ranges tiling the data."""
    size = os.fstat(handle.fileno()).st_size
    if size < 8:
        raise _corrupt(name, f"it is {size} bytes long, too short for the 8-byte length field")
    length = int.from_bytes(handle.read(8), "little")
    if length > size - 8 or length > _MAX_HEADER:
        raise _corrupt(
            name,
            f"its header claims {length} bytes but the file has {size - 8} after the "
            f"length field (truncated?)",
        )
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _corrupt(name, f"its header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _corrupt(name, f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _corrupt(name, "its __metadata__ is not a map of text to text")
    crcs = _checksums(header, metadata, name)
    data_size = size - 8 - length
    entries = [_entry(key, value, name) for key, value in header.items() if key != "__metadata__"]
    _check_tiling(entries, data_size, name)
    return _Header(
        entries, {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}, crcs, 8 + length
    )


def _checksums(header: dict[str, Any], metadata: dict[str, str], name: str) -> dict[str, int]:
    """The tensors' CRCs (empty for files without them), after checking the header's."""
    if CHECKSUM_KEY not in metadata:
        # A file of another tool, unless the key itself was damaged: look for the value.
        for key, value in metadata.items():
            if value.startswith('{"header": "') and '"tensors": {' in value:
                raise _corrupt(
                    name, f"its checksums are stored under {key!r}, not {CHECKSUM_KEY!r}"
                )
        return {}
    try:
        sums = json.loads(metadata[CHECKSUM_KEY])
        header_crc = _hex_crc(sums["header"])
        crcs = {str(k): _hex_crc(v) for k, v in sums["tensors"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise _corrupt(name, f"its {CHECKSUM_KEY!r} entry is damaged ({exc!r})") from exc
    if _header_crc(header) != header_crc:
        raise _corrupt(name, "its header does not match its CRC-32 checksum")
    tensors = {k for k in header if k != "__metadata__"}
    if set(crcs) != tensors:
        raise _corrupt(name, f"the checksums name {sorted(crcs)}, the header {sorted(tensors)}")
    return crcs


def _hex_crc(text: Any) -> int:
    # Exactly as written (8 lowercase hex digits): any other spelling is a damaged byte.
    if not isinstance(text, str) or not re.fullmatch("[0-9a-f]{8}", text):
        raise ValueError(f"{text!r} is not 8 lowercase hex digits")
    return int(text, 16)


def _entry(key: str, value: Any, name: str) -> _Entry:
    if not isinstance(value, dict):
        raise _corrupt(name, f"the entry of tensor {key!r} is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in _DTYPES:
        known = ", ".join(_DTYPES)
        raise _corrupt(name, f"tensor {key!r} has dtype {dtype!r}; chainrule reads {known}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise _corrupt(name, f"tensor {key!r} has shape {shape!r}, not a list of sizes >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise _corrupt(name, f"tensor {key!r} has data_offsets {offsets!r}, not [begin, end]")
    count = 1
    for s in shape:
        count *= s
    if offsets[1] - offsets[0] != count * _DTYPES[dtype].itemsize:
        raise _corrupt(
            name,
            f"tensor {key!r} of shape {tuple(shape)} and dtype {dtype} needs "
            f"{count * _DTYPES[dtype].itemsize} bytes but its data_offsets {offsets} span "
            f"{offsets[1] - offsets[0]}",
        )
    return _Entry(key, _DTYPES[dtype], tuple(shape), offsets[0], offsets[1])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(entries: list[_Entry], data_size: int, name: str) -> None:
    # The byte ranges must cover the data area exactly, one after the other: no overlap
    # (two tensors sharing bytes), no gap, nothing after the last (as the format demands).
    position = 0
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.begin != position:
            raise _corrupt(
                name,
                f"tensor {entry.name!r} starts at byte {entry.begin} of the data, expected "
                f"{position} (overlapping or missing bytes)",
            )
        position = entry.end
    if position != data_size:
        raise _corrupt(
            name,
            f"the tensors' bytes end at {position} but the data area has {data_size} bytes "
            f"({'truncated' if position > data_size else 'trailing bytes'})",
        )
