"""Writing a file atomically: readers see the old file or the new one, never half of it.

The one writer behind the small files the library makes (a run's JSON files, figures,
reports, drawings); ``cr.save`` streams tensors with the same steps (serialization.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same folder, flushed
    to disk and renamed over the target (``os.replace`` is atomic on POSIX and Windows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; these are for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """``write_bytes_atomic`` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))
