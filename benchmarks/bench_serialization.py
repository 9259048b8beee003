"""Peak extra memory and time of ``cr.save`` / ``cr.load`` on a large state.

Each measurement runs in a fresh Python process, so the figures do not depend on what
earlier measurements left in the allocator. Two views of memory:

- tracemalloc: the peak of Python and NumPy allocations during the call, above what was
  allocated before it (NumPy reports its buffers to tracemalloc);
- RSS: the process's peak resident size (``ru_maxrss``) after the call minus its size
  before it (coarser: it also counts the page cache of memory-mapped files).

For ``load`` the returned tensors themselves are 1.0x the state; anything above that is
overhead. For ``save`` the state already exists, so everything measured is overhead.

Usage::

    python benchmarks/bench_serialization.py            # 200 MB state
    python benchmarks/bench_serialization.py --mb 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc


def _state(megabytes: int) -> dict[str, object]:
    import numpy

    import chainrule as cr

    # A model-like mix: a few big matrices and many small vectors, float32.
    per_tensor = 8 * 2**20 // 4  # 8 MiB of float32
    count = max(1, megabytes // 8)
    state: dict[str, object] = {}
    for i in range(count):
        state[f"layer{i}.weight"] = cr.tensor(numpy.full(per_tensor, i, dtype=numpy.float32))
        state[f"layer{i}.bias"] = cr.tensor(numpy.full(64, i, dtype=numpy.float32))
    return state


def _rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _worker(kind: str, path: str, megabytes: int) -> None:
    import chainrule as cr

    if kind == "save":
        state = _state(megabytes)
        size = sum(t.numel() * t.data.itemsize for t in state.values())  # type: ignore[attr-defined]
        rss_before = _rss_bytes()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        cr.save(state, path)
    else:
        size = os.path.getsize(path)
        rss_before = _rss_bytes()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        loaded = cr.load(path)
        assert len(loaded) > 0
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    rss = _rss_bytes() - rss_before
    print(json.dumps({"size": size, "traced": peak, "rss": rss, "seconds": seconds}))


def _measure(kind: str, path: str, megabytes: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, path, str(megabytes)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="state size in MiB (default 200)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.safetensors")
        print(f"state: {args.mb} MiB of float32 in {2 * max(1, args.mb // 8)} tensors")
        for kind in ("save", "load"):
            r = _measure(kind, path, args.mb)
            mib = 2**20
            print(
                f"{kind}: {r['seconds']:.2f} s; peak extra memory: tracemalloc "
                f"{r['traced'] / mib:.0f} MiB ({r['traced'] / r['size']:.2f}x the state), "
                f"RSS {r['rss'] / mib:.0f} MiB ({r['rss'] / r['size']:.2f}x)"
            )


if __name__ == "__main__":
    main()
