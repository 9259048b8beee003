"""The safetensors header: building it with chainrule's checksums, reading and checking it.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON and the raw
little-endian bytes of the tensors, one after the other. The JSON maps each tensor's name
to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the data area) and
may hold text metadata under ``__metadata__``. ``read_header`` checks every entry and that
the byte ranges tile the data area exactly, so nothing is allocated for a shape the file
cannot hold; ``chainrule.serialization`` does the file work around it.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy

CHECKSUM_KEY = "chainrule.crc32"
"""Metadata key of the checksums: a JSON object ``{"header": crc, "tensors": {name: crc}}``
with each CRC-32 as 8 lowercase hex digits. The header's CRC covers the header JSON without
this key, re-serialised canonically (sorted keys, no spaces, ASCII)."""

# safetensors dtype names and their little-endian NumPy dtypes (the ones NumPy has).
DTYPES: dict[str, numpy.dtype] = {
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
DTYPE_NAMES = {(d.kind, d.itemsize): name for name, d in DTYPES.items()}
MAX_HEADER = 100_000_000  # the limit the reference implementation enforces


class CorruptFileError(ValueError):
    """A file that is not a complete safetensors file (truncated, damaged or another format)."""


def build_header(
    arrays: list[tuple[str, numpy.ndarray]], crcs: dict[str, int], user_meta: dict[str, str]
) -> bytes:
    """The length field, the JSON header with checksums, padded to 8 bytes."""
    header: dict[str, Any] = {}
    offset = 0
    for name, array in arrays:
        nbytes = array.size * array.dtype.itemsize
        header[name] = {
            "dtype": DTYPE_NAMES[(array.dtype.kind, array.dtype.itemsize)],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header["__metadata__"] = dict(user_meta)
    tensors = {name: f"{crc:08x}" for name, crc in crcs.items()}
    sums = {"header": f"{header_crc(header):08x}", "tensors": tensors}
    header["__metadata__"][CHECKSUM_KEY] = json.dumps(sums, sort_keys=True)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # tensors start 8-byte aligned, as the format advises
    return len(text).to_bytes(8, "little") + text


def header_crc(header: Mapping[str, Any]) -> int:
    """CRC-32 of the header without the checksum entry, in one canonical JSON spelling."""
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != CHECKSUM_KEY}
    canonical = {**header, "__metadata__": meta}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return zlib.crc32(text.encode("ascii"))


@dataclass(frozen=True)
class Entry:
    """One tensor as the header describes it; ``begin``/``end`` are offsets in the data."""

    name: str
    dtype: numpy.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    entries: list[Entry]
    metadata: dict[str, str]  # without the checksum entry
    crcs: dict[str, int]  # empty for files without checksums
    data_start: int  # where the data area starts in the file


def corrupt(name: str, what: str) -> CorruptFileError:
    return CorruptFileError(
        f"cannot read {name!r} as safetensors: {what}. The file is truncated, damaged or "
        f"in another format; re-save it (or restore a copy)."
    )


def read_header(handle: BinaryIO, name: str) -> Header:
    """Parse and check the header: every entry valid, the byte ranges tiling the data."""
    size = os.fstat(handle.fileno()).st_size
    if size < 8:
        raise corrupt(name, f"it is {size} bytes long, too short for the 8-byte length field")
    length = int.from_bytes(handle.read(8), "little")
    if length > size - 8 or length > MAX_HEADER:
        raise corrupt(
            name,
            f"its header claims {length} bytes but the file has {size - 8} after the "
            f"length field (truncated?)",
        )
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise corrupt(name, f"its header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise corrupt(name, f"its header is a JSON {type(header).__name__}, not an object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise corrupt(name, "its __metadata__ is not a map of text to text")
    crcs = _checksums(header, metadata, name)
    data_size = size - 8 - length
    entries = [_entry(key, value, name) for key, value in header.items() if key != "__metadata__"]
    _check_tiling(entries, data_size, name)
    return Header(
        entries, {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}, crcs, 8 + length
    )


def _checksums(header: dict[str, Any], metadata: dict[str, str], name: str) -> dict[str, int]:
    """The tensors' CRCs (empty for files without them), after checking the header's."""
    if CHECKSUM_KEY not in metadata:
        # A file of another tool, unless the key itself was damaged: look for the value.
        for key, value in metadata.items():
            if value.startswith('{"header": "') and '"tensors": {' in value:
                raise corrupt(name, f"its checksums are stored under {key!r}, not {CHECKSUM_KEY!r}")
        return {}
    try:
        sums = json.loads(metadata[CHECKSUM_KEY])
        stored = _hex_crc(sums["header"])
        crcs = {str(k): _hex_crc(v) for k, v in sums["tensors"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise corrupt(name, f"its {CHECKSUM_KEY!r} entry is damaged ({exc!r})") from exc
    if header_crc(header) != stored:
        raise corrupt(name, "its header does not match its CRC-32 checksum")
    tensors = {k for k in header if k != "__metadata__"}
    if set(crcs) != tensors:
        raise corrupt(name, f"the checksums name {sorted(crcs)}, the header {sorted(tensors)}")
    return crcs


def _hex_crc(text: Any) -> int:
    # Exactly as written (8 lowercase hex digits): any other spelling is a damaged byte.
    if not isinstance(text, str) or not re.fullmatch("[0-9a-f]{8}", text):
        raise ValueError(f"{text!r} is not 8 lowercase hex digits")
    return int(text, 16)


def _entry(key: str, value: Any, name: str) -> Entry:
    if not isinstance(value, dict):
        raise corrupt(name, f"the entry of tensor {key!r} is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPES:
        known = ", ".join(DTYPES)
        raise corrupt(name, f"tensor {key!r} has dtype {dtype!r}; chainrule reads {known}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise corrupt(name, f"tensor {key!r} has shape {shape!r}, not a list of sizes >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise corrupt(name, f"tensor {key!r} has data_offsets {offsets!r}, not [begin, end]")
    count = 1
    for s in shape:
        count *= s
    if offsets[1] - offsets[0] != count * DTYPES[dtype].itemsize:
        raise corrupt(
            name,
            f"tensor {key!r} of shape {tuple(shape)} and dtype {dtype} needs "
            f"{count * DTYPES[dtype].itemsize} bytes but its data_offsets {offsets} span "
            f"{offsets[1] - offsets[0]}",
        )
    return Entry(key, DTYPES[dtype], tuple(shape), offsets[0], offsets[1])


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_tiling(entries: list[Entry], data_size: int, name: str) -> None:
    # The byte ranges must cover the data area exactly, one after the other: no overlap
    # (two tensors sharing bytes), no gap, nothing after the last (as the format demands).
    position = 0
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.begin != position:
            raise corrupt(
                name,
                f"tensor {entry.name!r} starts at byte {entry.begin} of the data, expected "
                f"{position} (overlapping or missing bytes)",
            )
        position = entry.end
    if position != data_size:
        raise corrupt(
            name,
            f"the tensors' bytes end at {position} but the data area has {data_size} bytes "
            f"({'truncated' if position > data_size else 'trailing bytes'})",
        )
