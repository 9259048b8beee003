"""nn benchmark (issue 3): the MLP training step built from ``chainrule.nn`` modules.

    python benchmarks/bench_nn.py            # prints medians and ratios, writes JSON

The same step as ``bench_core.py``'s ``mlp_B`` (MLP 784-512-256-10, ReLU, float32, one
SGD step with the update written by hand, batch B in 32, 128, 1024), four ways, each in a
process of its own:

- ``chainrule_nn``: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` and
  ``nn.CrossEntropyLoss`` (fused Linear and cross-entropy Functions);
- ``chainrule_core``: the same from core ops (``bench_core``'s chainrule version);
- ``torch_nn``: ``torch.nn.Sequential`` and ``torch.nn.CrossEntropyLoss``, eager, CPU;
- ``numpy``: raw NumPy with the backward written by hand (``bench_core``'s version).

Targets: chainrule_nn no slower than chainrule_core; at most 1.15x raw NumPy at batch 32
and 128; no slower than PyTorch at 1024.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_core
import harness

BATCHES = bench_core.BATCHES
LR = bench_core.LR


def chainrule_nn_tasks() -> dict[str, harness.Task]:
    import chainrule as cr
    from chainrule import nn

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            xn, yn, pn = bench_core._data(batch)
            x, y = cr.tensor(xn), cr.tensor(yn)
            sizes = bench_core.SIZES
            model = nn.Sequential(
                nn.Linear(sizes[0], sizes[1]),
                nn.ReLU(),
                nn.Linear(sizes[1], sizes[2]),
                nn.ReLU(),
                nn.Linear(sizes[2], sizes[3]),
            )
            # bench_core stores weights as (in, out); nn.Linear's are (out, in).
            model.load_state_dict(
                {
                    f"{2 * i}.{kind}": (p.T.copy() if kind == "weight" else p)
                    for i in range(3)
                    for kind, p in (("weight", pn[2 * i]), ("bias", pn[2 * i + 1]))
                }
            )
            loss_fn = nn.CrossEntropyLoss()
            params = list(model.parameters())

            def step() -> None:
                loss = loss_fn(model(x), y)
                loss.backward()
                with cr.no_grad():
                    for p in params:
                        p -= LR * p.grad
                        p.grad = None

            return step

        return build

    return {f"mlp_{b}": mlp(b) for b in BATCHES}


def torch_nn_tasks() -> dict[str, harness.Task]:
    import torch

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            xn, yn, pn = bench_core._data(batch)
            x, y = torch.tensor(xn), torch.tensor(yn)
            sizes = bench_core.SIZES
            tnn = torch.nn
            model = tnn.Sequential(
                tnn.Linear(sizes[0], sizes[1]),
                tnn.ReLU(),
                tnn.Linear(sizes[1], sizes[2]),
                tnn.ReLU(),
                tnn.Linear(sizes[2], sizes[3]),
            )
            model.load_state_dict(
                {
                    f"{2 * i}.{kind}": torch.tensor(p.T.copy() if kind == "weight" else p)
                    for i in range(3)
                    for kind, p in (("weight", pn[2 * i]), ("bias", pn[2 * i + 1]))
                }
            )
            loss_fn = tnn.CrossEntropyLoss()
            params = list(model.parameters())

            def step() -> None:
                loss = loss_fn(model(x), y)
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        p -= LR * p.grad
                        p.grad = None

            return step

        return build

    return {f"mlp_{b}": mlp(b) for b in BATCHES}


WORKERS = {
    "chainrule_nn": chainrule_nn_tasks,
    "chainrule_core": bench_core.chainrule_tasks,
    "torch_nn": torch_nn_tasks,
    "numpy": bench_core.numpy_tasks,
}


def report(results: harness.Results) -> None:
    print("MLP 784-512-256-10 training step (ms):")
    print(harness.table(results, "numpy", unit=1e3, unit_name="ms"))
    print()
    for b in BATCHES:
        r = results[f"mlp_{b}"]
        print(
            f"mlp batch {b:4d}: nn/numpy = {r['chainrule_nn'] / r['numpy']:.2f}, "
            f"nn/core = {r['chainrule_nn'] / r['chainrule_core']:.2f}, "
            f"nn/torch = {r['chainrule_nn'] / r['torch_nn']:.2f}, "
            f"torch/numpy = {r['torch_nn'] / r['numpy']:.2f}"
        )


def main() -> None:
    harness.run(__file__, __doc__, WORKERS, [f"mlp_{b}" for b in BATCHES], report)


if __name__ == "__main__":
    main()
