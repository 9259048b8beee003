"""GPU benchmark (issue 11): chainrule vs PyTorch CUDA eager vs raw CuPy, medians.

    PYTHONPATH=src python benchmarks/bench_gpu.py --out gpu_results/bench.json
    PYTHONPATH=src python benchmarks/bench_gpu.py --dry-run --out /tmp/dry.json   # no GPU

Workloads (``bench_gpu_workers.py``): an MLP 784-512-256-10 training step (forward,
cross-entropy, backward, Adam) at batch 128, 1024 and 8192; the per-op overhead of a chain
of 200 small elementwise ops; an epoch of Fashion-MNIST (60,000 images held on the device,
batches of 128; synthetic data of that shape when the files are absent, said in the output).

Contenders, each in its own process, one after the other (one GPU):

==================  ======================================================================
torch               PyTorch CUDA eager, default Adam (the reference of the ratios)
chainrule           chainrule's modules, loss and optimiser on device "cuda"
cupy                the same math in raw CuPy, one kernel per NumPy-style call
cupy-fused          raw CuPy with chainrule's fused kernels and flat-buffer Adam
chainrule-fusedopt  chainrule with cuda_flat.FusedAdam as its optimiser step
cupy-fused-graph    that step captured in one CUDA graph (GEMMs through ctypes cuBLAS)
chainrule-graph     chainrule's step captured with CuPy's stream capture, if it can be
torch-graph         PyTorch's step captured with torch.cuda.graph (capturable Adam)
torch-compile       torch.compile(mode="reduce-overhead") forward+loss, fused Adam
==================  ======================================================================

Timing: each workload runs ``iters`` times between two device synchronisations, 7 times
(3 for the epoch), after a warm-up; the table gives medians and the ratio to PyTorch eager
(< 1: faster). A contender that cannot run a workload reports "n/a" and why. ``--time-cap``
bounds the whole run (workers past their share are stopped; what they measured is kept).
``--dry-run`` checks the plumbing on the CPU with NumPy and torch's CPU at tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_gpu_workers import Env, Library, load_epoch_data, time_it

LIBRARIES = [
    "torch",
    "chainrule",
    "cupy",
    "cupy-fused",
    "chainrule-fusedopt",
    "cupy-fused-graph",
    "chainrule-graph",
    "torch-graph",
    "torch-compile",
]
DRY_RUN_SKIPS = {"torch-graph", "torch-compile"}  # CUDA-only, or minutes of compiling


def _library(name: str, env: Env) -> Library:
    import bench_gpu_cupy as cp
    import bench_gpu_workers as tw

    classes: dict[str, Any] = {
        "torch": tw.Torch,
        "torch-graph": tw.TorchGraph,
        "torch-compile": tw.TorchCompile,
        "cupy": cp.Cupy,
        "cupy-fused": cp.CupyFused,
        "cupy-fused-graph": cp.CupyFusedGraph,
        "chainrule": cp.Chainrule,
        "chainrule-fusedopt": cp.ChainruleFusedOpt,
        "chainrule-graph": cp.ChainruleGraph,
    }
    return classes[name](env)  # type: ignore[no-any-return]


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def worker(name: str, env: Env) -> None:
    """Run every workload of one library, one JSON line per workload on stdout."""
    try:
        lib = _library(name, env)
    except Exception as exc:  # the library itself is missing or broken
        message = str(exc) if str(exc).startswith("n/a") else f"{type(exc).__name__}: {exc}"
        _emit({"library": name, "task": "*", "error": message})
        return
    tasks: list[tuple[str, Any, int, int]] = []
    for batch in env.batches:
        tasks.append((f"mlp-{batch}", lambda b=batch: lib.mlp(b), env.iters[batch], env.repeats))
    tasks.append(("ops-200", lib.ops_chain, 3, env.repeats))
    data: list[Any] = []

    def epoch() -> Any:
        x, y, source = load_epoch_data(env)
        data.append(source)
        return lib.epoch(x, y)

    tasks.append(("epoch", epoch, 1, env.epoch_repeats))
    for task, build, iters, repeats in tasks:
        record: dict[str, Any] = {"library": name, "task": task}
        try:
            run = build()
            if run is None:
                record["error"] = "n/a: not offered by this contender"
            else:
                warmup = 1 if task == "epoch" else 5
                record.update(time_it(run, lib.sync, iters, repeats, warmup))
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else ""
            if message.startswith("n/a"):
                record["error"] = message
            else:
                record["error"] = f"{type(exc).__name__}: {message}"[:300]
                record["traceback"] = traceback.format_exc(limit=4)[-1500:]
        if task == "epoch" and data and "seconds" in record:
            record["data"] = data[0]
        _emit(record)


def run_worker(name: str, dry_run: bool, timeout: float) -> list[dict[str, Any]]:
    """Start the worker of ``name``, wait at most ``timeout`` s, return its records."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name]
    if dry_run:
        cmd.append("--dry-run")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        out, err, note = done.stdout, done.stderr, ""
        if done.returncode != 0:
            note = f"worker exited with status {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        note = f"stopped after {timeout:.0f} s (time cap)"
    records = []
    for line in out.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    if note:
        records.append({"library": name, "task": "*", "error": note, "stderr": err[-2000:]})
    return records


def _cell(record: dict[str, Any] | None, task: str) -> str:
    if record is None:
        return "n/a"
    if "seconds" not in record:
        return "n/a"
    s = record["seconds"]
    if task == "ops-200":
        return f"{s / 200 * 1e6:.1f} us/op"
    if task == "epoch":
        return f"{s:.2f} s"
    return f"{s * 1e3:.3f} ms"


def table(results: dict[str, Any]) -> str:
    """The text table: one row per workload, one column per contender, ratio to torch."""
    records = results["records"]
    by = {(r["library"], r["task"]): r for r in records if r["task"] != "*"}
    tasks = [t for t in results["tasks"]]
    libs = [lib for lib in results["libraries"]]
    head = ["workload", *libs]
    rows = [head]
    for task in tasks:
        ref = by.get(("torch", task), {}).get("seconds")
        row = [task]
        for lib in libs:
            rec = by.get((lib, task))
            cell = _cell(rec, task)
            if rec and "seconds" in rec and ref and lib != "torch":
                cell += f" ({rec['seconds'] / ref:.2f}x)"
            row.append(cell)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for r in records:
        if "error" in r:
            notes.append(f"- {r['library']} / {r['task']}: {r['error']}")
        if r.get("data"):
            notes.append(f"- {r['library']} / epoch data: {r['data']}")
    return (
        "\n".join(lines)
        + "\n\nratios: time / PyTorch eager (< 1: faster)\n"
        + "\n".join(dict.fromkeys(notes))
    )


def machine(dry_run: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    if dry_run:
        info["device"] = "CPU (dry run)"
        return info
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        info["device"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        info["device"] = f"nvidia-smi failed: {exc}"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the JSON results here")
    parser.add_argument("--dry-run", action="store_true", help="NumPy/CPU plumbing check")
    parser.add_argument("--time-cap", type=float, default=300.0, help="seconds for the run")
    parser.add_argument("--libraries", default=",".join(LIBRARIES), help="comma-separated")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = Env.make(args.dry_run)
    if args.worker:
        worker(args.worker, env)
        return 0
    start = time.monotonic()
    libraries = [lib for lib in args.libraries.split(",") if lib]
    unknown = sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {LIBRARIES}")
    records: list[dict[str, Any]] = []
    for i, lib in enumerate(libraries):
        if args.dry_run and lib in DRY_RUN_SKIPS:
            records.append({"library": lib, "task": "*", "error": "n/a: dry run"})
            continue
        left = args.time_cap - (time.monotonic() - start)
        if left < 5:
            records.append({"library": lib, "task": "*", "error": "n/a: time cap reached"})
            continue
        # The last contender (torch.compile, minutes of compiling) may use all that is left.
        share = left if i == len(libraries) - 1 else max(left / (len(libraries) - i) * 1.5, 20)
        print(f"[bench_gpu] {lib} (up to {min(share, left):.0f} s)", file=sys.stderr, flush=True)
        records.extend(run_worker(lib, args.dry_run, min(share, left)))
    tasks = [f"mlp-{b}" for b in env.batches] + ["ops-200", "epoch"]
    results = {
        "machine": machine(args.dry_run),
        "dry_run": args.dry_run,
        "libraries": libraries,
        "tasks": tasks,
        "records": records,
        "seconds_total": time.monotonic() - start,
    }
    text = table(results)
    print(text)
    results["table"] = text
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, args.out)  # atomic: a killed run leaves no half-written file
    return 0


if __name__ == "__main__":
    sys.exit(main())
