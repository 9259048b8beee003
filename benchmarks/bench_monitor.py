"""Monitor benchmark (issue 9): the cost of ``viz.Monitor`` attached to a training loop.

    python benchmarks/bench_monitor.py [--rounds 7 --repeat 5]

An MLP 784-512-256-10 (ReLU, ``nn`` modules, cross-entropy, SGD with momentum), timed
over blocks of 50 training steps, so each timed block holds exactly one sampled step:

- ``plain``: no monitor;
- ``monitor``: ``viz.Monitor(model, every=50)`` attached (hooks on every parameter and
  leaf module; one step in 50 records norms, activation statistics and weight copies).

The ratio monitor/plain is the monitor's whole cost; the target is at most 1.05.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

BATCHES = (32, 128)
STEPS = 50


def tasks(monitored: bool) -> dict[str, harness.Task]:
    import numpy as np

    import chainrule as cr
    from chainrule import nn, optim, viz

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            cr.manual_seed(0)
            rng = np.random.default_rng(0)
            x = cr.tensor(rng.standard_normal((batch, 784), dtype=np.float32))
            y = cr.tensor(rng.integers(0, 10, batch))
            model = nn.Sequential(
                nn.Linear(784, 512),
                nn.ReLU(),
                nn.Linear(512, 256),
                nn.ReLU(),
                nn.Linear(256, 10),
            )
            opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()
            if monitored:
                viz.Monitor(model, every=STEPS, warn=False)

            def block() -> None:
                for _ in range(STEPS):
                    loss = loss_fn(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()

            return block

        return build

    return {f"mlp_{b}_x{STEPS}": mlp(b) for b in BATCHES}


WORKERS = {"plain": lambda: tasks(False), "monitor": lambda: tasks(True)}


def report(results: harness.Results) -> None:
    print(f"MLP 784-512-256-10, {STEPS} training steps per block (ms):")
    print(harness.table(results, "plain", unit=1e3, unit_name="ms"))


def main() -> None:
    harness.run(__file__, __doc__, WORKERS, [f"mlp_{b}_x{STEPS}" for b in BATCHES], report)


if __name__ == "__main__":
    main()
