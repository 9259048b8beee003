"""``cr.save`` / ``cr.load``: dictionaries of tensors in the safetensors format.

safetensors is the format the field shares (PyTorch, JAX and Hugging Face read it): an
8-byte header length, a JSON header (name → dtype, shape, byte range) and the raw bytes.
Loading parses JSON and copies bytes; unlike pickle, it never runs code from the file.

Saving is atomic: the bytes go to a temporary file in the target's directory, which is
flushed to disk and then renamed over the target in one step, so a crash mid-write
leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy

from chainrule.tensor import Tensor

PathLike = str | os.PathLike[str]


class CorruptFileError(ValueError):
    """A file that is not a complete safetensors file (truncated, damaged or another format)."""


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            'cr.save and cr.load need the safetensors package: pip install "chainrule[io]" '
            "(or pip install safetensors)"
        ) from exc
    return safetensors.numpy


def save(
    tensors: Mapping[str, Any], path: PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a dict of tensors to ``path`` in the safetensors format, atomically.

    Args:
        tensors: name → Tensor (or array), e.g. ``model.state_dict()``.
        path: the file to write (conventionally ``*.safetensors``); replaced if it exists.
        metadata: optional text key → text value pairs stored in the header.

    Example:
        >>> import chainrule as cr, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> cr.save({"w": cr.ones(2, 2)}, path)
        >>> cr.load(path)["w"].shape
        (2, 2)
    """
    st = _safetensors_numpy()
    if not isinstance(tensors, Mapping):
        raise TypeError(
            f"save: expected a dict of name -> tensor, got {type(tensors).__name__}; "
            f"to save a model, pass model.state_dict()"
        )
    arrays: dict[str, Any] = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save: tensor names must be strings, got {name!r}")
        array = numpy.asarray(value.detach() if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"save: {name!r} has dtype {array.dtype}, which safetensors "
                f"cannot store (use a numeric or bool dtype)"
            )
        # Not ascontiguousarray: it turns a 0-d array into shape (1,).
        arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"save: metadata keys and values must be strings; not so for {bad}")
    payload = st.save(arrays, metadata=dict(metadata) if metadata else None)

    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)


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


def load(path: PathLike) -> dict[str, Tensor]:
    """Read a safetensors file into a dict of name → Tensor (never runs code).

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptFileError: the file is truncated, damaged or not safetensors.

    Example:
        ``model.load_state_dict(cr.load("model.safetensors"))``
    """
    st = _safetensors_numpy()
    data = Path(path).read_bytes()
    _check_header(data, path)
    try:
        arrays = st.load(data)
    except Exception as exc:  # the Rust parser raises its own error types
        raise CorruptFileError(
            f"cannot read {os.fspath(path)!r} as safetensors: {exc}. The file is truncated, "
            f"damaged or in another format; re-save it (or restore a copy)."
        ) from exc
    # The parser returns read-only views of the file's bytes; tensors need their own memory.
    return {name: Tensor(numpy.array(array, copy=True)) for name, array in arrays.items()}


def load_metadata(path: PathLike) -> dict[str, str]:
    """The text metadata stored in a safetensors file's header (empty if none)."""
    import json

    data = Path(path).read_bytes()
    _check_header(data, path)
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}))


def _check_header(data: bytes, path: PathLike) -> None:
    """Catch truncation with a plain message before the parser sees the bytes."""
    name = os.fspath(path)
    if len(data) < 8:
        raise CorruptFileError(
            f"{name!r} is {len(data)} bytes long: too short to be a safetensors file (truncated?)"
        )
    header_len = int.from_bytes(data[:8], "little")
    if 8 + header_len > len(data):
        raise CorruptFileError(
            f"{name!r} is truncated or not safetensors: its header "
            f"claims {header_len} bytes but the file has {len(data) - 8} "
            f"after the length field"
        )
