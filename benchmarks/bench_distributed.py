"""Data-parallel benchmark (issue 10): one training step on 1, 2 and 4 processes.

    python benchmarks/bench_distributed.py            # prints the table, --json to save

The MLP 784-1024-512-10 (ReLU, float32, cross-entropy, SGD) at a fixed global batch
(512 by default), split over N ranks started by ``mpirun -np N``: strong scaling. Each
rank uses one BLAS thread, so N ranks use N cores (this machine has 2: four ranks are
oversubscribed and cannot be faster than two). Reported per N and library:

- step: median seconds of zero_grad + forward + backward + gradient averaging + step;
- efficiency: T₁ / (N · T_N), 100% for a perfect split of the work;
- hidden (chainrule only): the share of communication hidden behind backward,
  1 − exposed / alone, where *exposed* is the median time from the last gradient of the
  backward pass to averaged gradients (what the step waits for), and *alone* the median
  time of the same all-reduces of the same buckets without any computation.

PyTorch runs the same model with ``torch.nn.parallel.DistributedDataParallel`` and the
gloo backend (one thread per rank), in jobs of its own, alternating with chainrule's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

SIZES = (784, 1024, 512, 10)
LR = 0.01


def _rank_and_size() -> tuple[int, int]:
    return int(os.environ.get("OMPI_COMM_WORLD_RANK", 0)), int(
        os.environ.get("OMPI_COMM_WORLD_SIZE", 1)
    )


def _data(batch: int, rank: int) -> tuple[Any, Any]:
    import numpy

    rng = numpy.random.default_rng(rank)
    return rng.standard_normal((batch, SIZES[0])).astype(numpy.float32), rng.integers(
        0, SIZES[-1], batch
    )


def chainrule_worker(global_batch: int, steps: int) -> dict[str, Any] | None:
    import numpy

    import chainrule as cr
    from chainrule import distributed as dist
    from chainrule import nn, optim

    dist.init()
    rank, size = dist.rank(), dist.world_size()
    xn, yn = _data(global_batch // size, rank)
    x, y = cr.tensor(xn), cr.tensor(yn)
    layers: list[nn.Module] = []
    for i in range(len(SIZES) - 1):
        layers += [nn.Linear(SIZES[i], SIZES[i + 1]), nn.ReLU()]
    model = dist.DistributedDataParallel(nn.Sequential(*layers[:-1]), record_timeline=True)
    opt = optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    step_times, exposed = [], []
    for i in range(steps + 5):
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 5:  # warm-up steps excluded
            step_times.append(time.perf_counter() - start)
            marks = {event: t for t, event, _ in model.timeline}
            if "synced" in marks:
                exposed.append(marks["synced"] - marks["backward_done"])
    alone = []
    if size > 1:
        mpi, comm = dist.world.mpi(), dist.world.comm()
        params = dict(model.module.named_parameters())
        sizes = [sum(params[n].numel() for n in b) for b in model.buckets]
        buffers = [numpy.ones(n, dtype=numpy.float32) for n in sizes]
        for _ in range(steps):
            dist.barrier()
            start = time.perf_counter()
            requests = [comm.Iallreduce(mpi.IN_PLACE, b, mpi.SUM) for b in buffers]
            mpi.Request.Waitall(requests)
            alone.append(time.perf_counter() - start)
    if rank != 0:
        return None
    result: dict[str, Any] = {"step": statistics.median(step_times)}
    if size > 1:
        result["exposed"] = statistics.median(exposed)
        result["alone"] = statistics.median(alone)
        result["hidden"] = max(0.0, 1.0 - result["exposed"] / result["alone"])
        result["buckets"] = model.buckets
    return result


def torch_worker(global_batch: int, steps: int, port: int) -> dict[str, Any] | None:
    import torch
    import torch.distributed as tdist

    torch.set_num_threads(1)
    rank, size = _rank_and_size()
    if size > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(port)
        tdist.init_process_group("gloo", rank=rank, world_size=size)
    xn, yn = _data(global_batch // size, rank)
    x, y = torch.from_numpy(xn), torch.from_numpy(yn)
    layers: list[torch.nn.Module] = []
    for i in range(len(SIZES) - 1):
        layers += [torch.nn.Linear(SIZES[i], SIZES[i + 1]), torch.nn.ReLU()]
    model: torch.nn.Module = torch.nn.Sequential(*layers[:-1])
    if size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    step_times = []
    for i in range(steps + 5):
        if size > 1:
            tdist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 5:
            step_times.append(time.perf_counter() - start)
    if size > 1:
        tdist.destroy_process_group()
    return {"step": statistics.median(step_times)} if rank == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(library: str, nproc: int, global_batch: int, steps: int) -> dict[str, Any]:
    from chainrule.distributed.launch import mpirun_command

    program = [
        sys.executable,
        os.path.abspath(__file__),
        "--rank-worker",
        library,
        "--batch",
        str(global_batch),
        "--steps",
        str(steps),
        "--port",
        str(_free_port()),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        mpirun_command(nproc, program), capture_output=True, text=True, env=env, timeout=600
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{library} on {nproc} ranks failed:\n{proc.stdout}\n{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rank-worker", choices=["chainrule", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=29500, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=512, help="the global batch")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per job")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of jobs")
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    if args.rank_worker == "chainrule":
        result = chainrule_worker(args.batch, args.steps)
    elif args.rank_worker == "torch":
        result = torch_worker(args.batch, args.steps, args.port)
    if args.rank_worker:
        if result is not None:
            print("RESULT " + json.dumps(result), flush=True)
        return

    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for nproc in args.nproc:
            libraries = ["chainrule", "torch"] if r % 2 == 0 else ["torch", "chainrule"]
            for library in libraries:
                runs.setdefault((library, nproc), []).append(
                    launch(library, nproc, args.batch, args.steps)
                )

    def median(library: str, nproc: int, key: str) -> float:
        return statistics.median(run[key] for run in runs[(library, nproc)])

    print(f"machine: {harness.describe_machine()}")
    print(
        f"MLP {'-'.join(map(str, SIZES))}, global batch {args.batch}, SGD, float32, one BLAS "
        f"thread per rank; medians of {args.steps} steps, median over {args.rounds} jobs\n"
    )
    head = (
        f"{'ranks':>5} {'chainrule ms':>13} {'eff':>5} {'hidden':>7} {'exposed ms':>11} "
        f"{'alone ms':>9} {'torch DDP ms':>13} {'eff':>5} {'chainrule/torch':>16}"
    )
    print(head)
    print("-" * len(head))
    table: dict[str, Any] = {}
    t1 = {lib: median(lib, args.nproc[0], "step") * args.nproc[0] for lib in ("chainrule", "torch")}
    for nproc in args.nproc:
        c, t = median("chainrule", nproc, "step"), median("torch", nproc, "step")
        row = {
            "chainrule_step_s": c,
            "chainrule_efficiency": t1["chainrule"] / (nproc * c),
            "torch_step_s": t,
            "torch_efficiency": t1["torch"] / (nproc * t),
        }
        hidden = exposed = alone = ""
        if nproc > 1:
            row["hidden"] = median("chainrule", nproc, "hidden")
            row["exposed_s"] = median("chainrule", nproc, "exposed")
            row["alone_s"] = median("chainrule", nproc, "alone")
            hidden = f"{row['hidden']:.0%}"
            exposed = f"{row['exposed_s'] * 1e3:.2f}"
            alone = f"{row['alone_s'] * 1e3:.2f}"
        table[str(nproc)] = row
        print(
            f"{nproc:>5} {c * 1e3:>13.2f} {row['chainrule_efficiency']:>5.0%} {hidden:>7} "
            f"{exposed:>11} {alone:>9} {t * 1e3:>13.2f} {row['torch_efficiency']:>5.0%} "
            f"{c / t:>16.2f}"
        )
    if args.json:
        harness.json_dump(args.json, {"machine": harness.describe_machine(), "results": table})


if __name__ == "__main__":
    main()
