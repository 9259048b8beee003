"""Run the same workloads in one process per library, alternating rounds between them.

Why processes: inside one process NumPy's and PyTorch's thread pools slow each other down,
so each library gets a worker of its own. Why alternating rounds: these machines are shared
and noisy; interleaving spreads any slow period evenly over the contenders. Each worker
reads a task name per line on stdin, runs it ``repeat`` times, and answers one JSON line
with the per-run seconds. The driver reports medians and ratios.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

Task = Callable[[], Callable[[], None]]  # builds the state, returns the timed step


def serve(tasks: dict[str, Task]) -> None:
    """Worker loop: build each task once, then time it on request."""
    steps: dict[str, Callable[[], None]] = {}
    for line in sys.stdin:
        name, repeat = line.split()
        if name not in steps:
            steps[name] = tasks[name]()
            for _ in range(3):  # warm caches and allocators
                steps[name]()
        step = steps[name]
        times = []
        for _ in range(int(repeat)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print(json.dumps(times), flush=True)


# ``--keep-freed-memory``: glibc's malloc told, through its environment variables, to keep
# freed memory for the next arrays (what ``chainrule.allocator.keep_freed_memory`` sets and
# ``chainrule train`` runs with), in every worker alike, so no library gets it alone.
KEEP_FREED_MEMORY_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(512 << 20),
}
_worker_env: dict[str, str] = {}


class Worker:
    def __init__(self, script: str, library: str) -> None:
        self.library = library
        self.proc = subprocess.Popen(
            [sys.executable, script, "--worker", library],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0", **_worker_env},
        )

    def run(self, task: str, repeat: int) -> list[float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{task} {repeat}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.library} worker died while running {task}")
        return list(json.loads(line))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def compare(
    script: str,
    libraries: list[str],
    tasks: list[str],
    rounds: int,
    repeat: int,
    settle: float = 0.3,
    contenders: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """Median seconds per task and library, over ``rounds`` alternating rounds.

    ``contenders`` names the libraries that run a task when not all of them offer it
    (e.g. no hand-written NumPy version); a task it does not name runs in every library.
    """
    workers = {lib: Worker(script, lib) for lib in libraries}
    entrants = {t: (contenders or {}).get(t, libraries) for t in tasks}
    samples: dict[str, dict[str, list[float]]] = {
        t: {lib: [] for lib in entrants[t]} for t in tasks
    }
    try:
        for task in tasks:
            libs = entrants[task]
            for r in range(rounds):
                # Rotate who goes first, so no library always runs right after another.
                order = libs[r % len(libs) :] + libs[: r % len(libs)]
                for lib in order:
                    # PyTorch's OpenMP threads spin for a while after their work: let them
                    # settle so they do not slow the next library down.
                    time.sleep(settle)
                    samples[task][lib].extend(workers[lib].run(task, repeat))
    finally:
        for w in workers.values():
            w.close()
    return {t: {lib: statistics.median(v) for lib, v in per.items()} for t, per in samples.items()}


def describe_machine() -> str:
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {numpy.__version__}"
    )


def table(
    results: dict[str, dict[str, float]],
    baseline: str,
    unit: float = 1e6,
    unit_name: str = "µs",
    extra: dict[str, float] | None = None,
) -> str:
    """Medians and ratios to ``baseline`` as an aligned text table; "-" where a library
    did not run a task (not one of its ``contenders``)."""
    libs = list(dict.fromkeys(lib for per in results.values() for lib in per))
    head = f"{'task':28s}" + "".join(f"{lib + ' (' + unit_name + ')':>20s}" for lib in libs)
    head += "".join(f"{lib + '/' + baseline:>20s}" for lib in libs if lib != baseline)
    lines = [head, "-" * len(head)]
    for task, per in results.items():
        scale = (extra or {}).get(task, 1.0)
        row = f"{task:28s}" + "".join(
            f"{per[lib] * unit / scale:20.2f}" if lib in per else f"{'-':>20s}" for lib in libs
        )
        row += "".join(
            f"{per[lib] / per[baseline]:20.2f}" if lib in per else f"{'-':>20s}"
            for lib in libs
            if lib != baseline
        )
        lines.append(row)
    return "\n".join(lines)


Results = dict[str, dict[str, float]]


def run(
    script: str,
    doc: str | None,
    workers: dict[str, Callable[[], dict[str, Task]]],
    tasks: list[str],
    report: Callable[[Results], None],
    contenders: dict[str, list[str]] | None = None,
) -> None:
    """The command line every comparison script shares.

    As a worker (``--worker LIB``, started by the driver) it serves that library's tasks;
    otherwise it drives one worker per library through alternating rounds (only the
    ``contenders`` of a task that names them), prints the machine and hands the medians to
    ``report``, and writes them to ``--json`` if asked.
    """
    import argparse

    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", default=None, help="also write the medians to this file")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="run every worker with glibc keeping freed memory for reuse (as chainrule "
        "train does; see chainrule.allocator)",
    )
    args = parser.parse_args()
    if args.worker:
        serve(workers[args.worker]())
        return
    if args.keep_freed_memory:
        _worker_env.update(KEEP_FREED_MEMORY_ENV)
    results = compare(script, list(workers), tasks, args.rounds, args.repeat, contenders=contenders)
    print(f"machine: {describe_machine()}")
    policy = "kept for reuse (all workers)" if args.keep_freed_memory else "glibc's default"
    print(
        f"medians over {args.rounds} alternating rounds x {args.repeat} runs, one process "
        f"per library; freed memory: {policy}\n"
    )
    report(results)
    if args.json:
        json_dump(args.json, {"machine": describe_machine(), "median_seconds": results})


def json_dump(path: str, payload: Any) -> None:
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
