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

The header (its checks, the checksum layout) lives in ``chainrule.safetensors_header``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy

from chainrule import backend
from chainrule.device import Device
from chainrule.safetensors_header import (
    CHECKSUM_KEY,
    DTYPE_NAMES,
    CorruptFileError,
    build_header,
    corrupt,
    read_header,
)
from chainrule.tensor import Tensor

__all__ = ["CHECKSUM_KEY", "CorruptFileError", "load", "load_metadata", "save"]

PathLike = str | os.PathLike[str]


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
    crcs = {name: zlib.crc32(_byte_view(_little_endian(array))) for name, array in arrays}
    header = build_header(arrays, crcs, user_meta)
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


DeviceMap = str | Device | Mapping[str, Any] | Callable[[str], Any] | None


def load(path: PathLike, device: DeviceMap = None) -> dict[str, Tensor]:
    """Read a safetensors file into a dict of name → Tensor (never runs code).

    Each tensor is read straight into its own host array (and, for a GPU, copied there
    before the next one is read), so the peak memory is the state itself plus one
    tensor. Checksums written by ``cr.save`` are verified; files from other tools (no
    checksum) load unverified.

    Args:
        path: the file.
        device: where the tensors go (a file holds no device): None or ``"cpu"`` for the
            CPU, ``"cuda"``/``"cuda:1"``/a ``cr.device`` for all of them, a dict
            name → device (names it lacks stay on the CPU), or a function name → device.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptFileError: the file is truncated, damaged (a checksum does not match) or
            not safetensors; the message names the file (and the tensor, for data).
        DeviceError: a GPU asked for where there is none (the message says what to
            install); checked before the file is read.

    Example:
        ``model.load_state_dict(cr.load("model.safetensors", device="cuda"))``
    """
    place = _placement(device)
    name = os.fspath(path)
    with open(path, "rb", buffering=0) as handle:
        header = read_header(handle, name)
        out: dict[str, Tensor] = {}
        for entry in header.entries:
            array = numpy.empty(entry.shape, dtype=entry.dtype)
            view = _byte_view(array)
            handle.seek(header.data_start + entry.begin)
            if _read_into(handle, view) != len(view):
                raise corrupt(name, f"tensor {entry.name!r} is cut short (truncated file)")
            expected = header.crcs.get(entry.name)
            if expected is not None and zlib.crc32(view) != expected:
                raise corrupt(
                    name,
                    f"the data of tensor {entry.name!r} do not match their CRC-32 checksum "
                    f"(bytes changed on disk or in transit)",
                )
            if not array.dtype.isnative:  # big-endian hosts only
                array = array.astype(array.dtype.newbyteorder("="))
            target = place(entry.name)
            out[entry.name] = Tensor(array if target is None else backend.to_device(array, target))
    return out


def _placement(device: DeviceMap) -> Callable[[str], Device | None]:
    """``device`` as a function name → concrete GPU, or None for the CPU; every GPU a
    fixed device or a dict names is resolved now, so a missing GPU is reported before the
    file is read."""
    if device is None:
        return lambda name: None
    if isinstance(device, (str, Device)):
        fixed = _gpu_or_none(device)
        return lambda name: fixed
    if isinstance(device, Mapping):
        table = {key: _gpu_or_none(value) for key, value in device.items()}
        return lambda name: table.get(name)
    if callable(device):
        chosen = device
        return lambda name: _gpu_or_none(chosen(name))
    raise TypeError(
        f"load: device must be 'cpu', 'cuda', 'cuda:N', a cr.device, a dict name -> device "
        f"or a function name -> device; got {type(device).__name__} {device!r}"
    )


def _gpu_or_none(device: Any) -> Device | None:
    target = backend.resolve_device(device)
    return None if target.type == "cpu" else target


def load_metadata(path: PathLike) -> dict[str, str]:
    """The text metadata stored in a safetensors file's header (empty if none).

    chainrule's own checksum entry (``CHECKSUM_KEY``) is left out: the result is the
    ``metadata`` that was passed to ``save``.
    """
    with open(path, "rb", buffering=0) as handle:
        return read_header(handle, os.fspath(path)).metadata


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
        # A GPU tensor is copied to the host here, one tensor at a time (an explicit sync).
        array = backend.to_host(value.data if isinstance(value, Tensor) else value)
        if (array.dtype.kind, array.dtype.itemsize) not in DTYPE_NAMES:
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


def _read_into(handle: BinaryIO, view: memoryview) -> int:
    done = 0
    while done < len(view):
        count = handle.readinto(view[done:])  # type: ignore[attr-defined]
        if not count:
            break
        done += count
    return done
