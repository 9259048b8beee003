"""Keep the memory of freed arrays for the next ones: ``keep_freed_memory()``.

A training step makes and frees the same large arrays (activations, their gradients)
over and over. With glibc's default policy an array of more than 128 KiB (at first; the
limit grows to the largest one freed, up to 32 MiB) gets pages fresh from the kernel
through ``mmap`` and gives them back when freed, and memory freed at the top of the heap
is handed back too beyond 128 KiB. Every new array then starts with a page fault per
4 KiB page it touches. On a virtual machine a fault is costly: measured on this project's
2-core AMD EPYC VM, one ``TransformerEncoderLayer`` step (E=128, 32 sequences of 64,
forward and backward, ``benchmarks/bench_transformer.py``) took 39–45 ms with the default
policy and 25 ms with freed memory kept, the same speedup a raw NumPy version of the
layer got (46 → 24 ms); PyTorch's step took 19–20 ms either way.

``keep_freed_memory`` tells glibc (``mallopt``) to serve arrays up to ``MMAP_THRESHOLD``
from its heap and to keep up to ``TRIM_THRESHOLD`` of free memory at the heap's top, so a
step reuses the pages the previous step freed. The cost: memory the process has freed
stays mapped to it (reused by its next allocations, not returned to the system), which a
training process, whose next step needs the same memory again, does not mind. It is a
setting of the whole process, so the library never makes it on import:
``chainrule train`` (and ``chainrule.training.train``) make it, unless the environment
sets ``CHAINRULE_KEEP_FREED_MEMORY=0``; a program of one's own calls it once at start.
The same effect without code: ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in
the environment of a glibc process.

Other C libraries (macOS, Windows, musl) have their own policies; there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

# Arrays up to this size come from the heap: glibc's documented maximum for the mmap
# threshold on 64-bit systems (larger values are refused), above a CNN's batch of
# activations (128 × 32 × 28 × 28 float32: 12.8 MB).
MMAP_THRESHOLD = 32 << 20
# Free memory kept at the top of the heap before any is returned to the system.
TRIM_THRESHOLD = 512 << 20
# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
ENV = "CHAINRULE_KEEP_FREED_MEMORY"

_kept = False


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for the next arrays (module docstring). Returns True
    when the setting is in force (now or from an earlier call), False where the C library
    is not glibc or refused it."""
    global _kept
    if _kept:
        return True
    libc = _glibc()
    if libc is None:
        return False
    _kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _kept


def keep_freed_memory_unless_disabled() -> bool:
    """``keep_freed_memory()``, unless the environment sets ``CHAINRULE_KEEP_FREED_MEMORY``
    to 0 (or "false", "no", "off"): the training job's default."""
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return keep_freed_memory()


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return libc
