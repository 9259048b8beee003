"""benchmarks/bench_gpu.py's plumbing, on the CPU: the dry run (NumPy and torch's CPU at
tiny sizes) writes a complete JSON report, and the fused-kernel step computes the same
training as the NumPy-style step (so the GPU figures compare the same math)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_gpu  # noqa: E402
from bench_gpu_cupy import Cupy, CupyFused  # noqa: E402
from bench_gpu_workers import Env, batch_data  # noqa: E402


def test_dry_run_writes_every_workload(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    libraries = "torch,chainrule,cupy,cupy-fused,cupy-fused-graph,torch-compile"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_gpu.py"), "--dry-run", "--out", str(out),
         "--libraries", libraries, "--time-cap", "120"],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["dry_run"] is True
    assert results["tasks"] == ["mlp-8", "mlp-32", "ops-200", "epoch"]
    by = {(r["library"], r["task"]): r for r in results["records"]}
    for lib in ("torch", "chainrule", "cupy"):
        for task in results["tasks"]:
            record = by[(lib, task)]
            assert "error" not in record, record
            assert record["seconds"] > 0 and len(record["samples"]) >= 1
    assert "seconds" in by[("cupy-fused", "mlp-32")]
    assert "synthetic" in by[("torch", "epoch")]["data"]
    assert by[("cupy-fused-graph", "mlp-8")]["error"].startswith("n/a: dry run")
    assert by[("torch-compile", "*")]["error"] == "n/a: dry run"
    assert results["table"].startswith("workload") and "x)" in results["table"]
    assert results["table"] in done.stdout


def test_table_gives_ratios_to_torch_and_reasons() -> None:
    results = {
        "libraries": ["torch", "chainrule", "cupy"],
        "tasks": ["mlp-128", "ops-200"],
        "records": [
            {"library": "torch", "task": "mlp-128", "seconds": 2e-3},
            {"library": "chainrule", "task": "mlp-128", "seconds": 1e-3},
            {"library": "torch", "task": "ops-200", "seconds": 2e-3},
            {"library": "cupy", "task": "mlp-128", "error": "NotImplementedError: cuBLAS"},
        ],
    }
    text = bench_gpu.table(results)
    assert "1.000 ms (0.50x)" in text and "2.000 ms" in text
    assert "10.0 us/op" in text
    assert "- cupy / mlp-128: NotImplementedError: cuBLAS" in text


def test_fused_step_trains_like_the_numpy_style_step() -> None:
    env = Env.make(dry_run=True)
    x, y = batch_data(16)
    plain, fused = Cupy(env).make_step(), CupyFused(env).make_step()
    losses = [(float(plain(x, y)), float(fused(x, y))) for _ in range(4)]
    np.testing.assert_allclose([f for _, f in losses], [p for p, _ in losses], rtol=1e-5)
    assert losses[-1][0] < losses[0][0]  # Adam is stepping
