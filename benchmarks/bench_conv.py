"""The default CNN (``chainrule train --model cnn``), layer by layer and as a training step,
chainrule vs PyTorch CPU.

    python benchmarks/bench_conv.py                 # per-layer forward+backward, one step
    python benchmarks/bench_conv.py --rounds 3 --repeat 5
    python benchmarks/bench_conv.py --rss           # peak RSS of 100 training steps

Shapes are the CNN's on Fashion-MNIST at batch 128 (``training.model.build_cnn`` with
``TrainConfig``'s defaults; shown for two convolutions per block)::

    conv1  (128, 1, 28, 28)  → Conv2d(1, 32, 3, padding=1, bias=False)  → (128, 32, 28, 28)
    conv1b Conv2d(32, 32, 3, padding=1, bias=False), the block's other convolutions
    bn1    BatchNorm2d(32) in training mode, after each convolution of the block
    pool1  MaxPool2d(2)                                                → (128, 32, 14, 14)
    conv2  Conv2d(32, 64, 3, padding=1, bias=False), conv2b Conv2d(64, 64, 3) → (128, 64, 14, 14)
    bn2, pool2                                                         → (128, 64, 7, 7)
    fc     Linear(3136, 128), ReLU, Linear(128, 10)

Each layer task times forward + backward (upstream gradient of ones) on a fixed input;
``step`` times a whole Adam step of the CNN (forward, cross-entropy, backward, update) on
random data; an epoch is 469 such steps plus an evaluation, so the step ratio is the
epoch ratio. Each library runs in its own process, rounds alternate (``harness.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

BATCH = 128
STEPS_PER_EPOCH = 469
# TrainConfig's defaults (tests/training/test_cnn_recipe.py checks they agree), written out
# so that the PyTorch worker does not import chainrule and count it in its memory.
CHANNELS = (32, 64)
CONVS = 2
SIDE = 28


def _layer_specs() -> dict[str, tuple[tuple[int, ...], tuple[Any, ...], int]]:
    """name -> (input shape, (kind, arguments...), how many times the CNN has it)."""
    specs: dict[str, tuple[tuple[int, ...], tuple[Any, ...], int]] = {}
    width, side = 1, SIDE
    for block, c in enumerate(CHANNELS, 1):
        specs[f"conv{block}"] = ((BATCH, width, side, side), ("conv", width, c), 1)
        if CONVS > 1:
            specs[f"conv{block}b"] = ((BATCH, c, side, side), ("conv", c, c), CONVS - 1)
        specs[f"bn{block}"] = ((BATCH, c, side, side), ("bn", c), CONVS)
        specs[f"pool{block}"] = ((BATCH, c, side, side), ("pool",), 1)
        width, side = c, side // 2
    specs["fc"] = ((BATCH, width * side * side), ("fc", width * side * side), 1)
    return specs


LAYERS = tuple(_layer_specs())
TASKS = [*LAYERS, "step"]


def _build_layer(nn: Any, spec: tuple[Any, ...]) -> Any:
    """One layer of the CNN from either library's ``nn`` (they share the names)."""
    kind, *sizes = spec
    if kind == "conv":
        return nn.Conv2d(sizes[0], sizes[1], 3, padding=1, bias=False)
    if kind == "bn":
        return nn.BatchNorm2d(sizes[0])
    if kind == "pool":
        return nn.MaxPool2d(2)
    return nn.Sequential(nn.Linear(sizes[0], 128), nn.ReLU(), nn.Linear(128, 10))


def chainrule_tasks() -> dict[str, harness.Task]:
    import numpy as np

    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.training.config import TrainConfig
    from chainrule.training.model import build_cnn

    cr.manual_seed(0)
    layers = {name: _build_layer(nn, spec) for name, (_, spec, _) in _layer_specs().items()}

    def layer(name: str) -> harness.Task:
        def build() -> Callable[[], None]:
            shape = _layer_specs()[name][0]
            x = cr.tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
            x.requires_grad_(True)
            module = layers[name]

            def step() -> None:
                x.grad = None
                module(x).sum().backward()

            return step

        return build

    def train_step() -> Callable[[], None]:
        model = build_cnn(TrainConfig(model="cnn"), (1, 28, 28), 10)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        rng = np.random.default_rng(0)
        x = cr.tensor(rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32))
        y = cr.tensor(rng.integers(0, 10, BATCH))

        def step() -> None:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    return {**{name: layer(name) for name in LAYERS}, "step": train_step}


def torch_model(
    torch: Any,
    channels: tuple[int, ...] = CHANNELS,
    dropout: float = 0.3,
    size: int = SIDE,
    convs_per_block: int = CONVS,
) -> Any:
    """``chainrule train --model cnn``'s network in torch.nn (``training.model.build_cnn``):
    per channel size, ``convs_per_block`` × [conv 3×3 → BatchNorm → ReLU] and a maxpool 2;
    then dropout, linear 128, linear 10. Same layer indices, so state_dicts match.
    """
    tnn = torch.nn
    layers: list[Any] = []
    width = 1
    for c in channels:
        for _ in range(convs_per_block):
            layers += [
                tnn.Conv2d(width, c, 3, padding=1, bias=False),
                tnn.BatchNorm2d(c),
                tnn.ReLU(),
            ]
            width = c
        layers.append(tnn.MaxPool2d(2))
        size //= 2
    layers += [
        tnn.Flatten(),
        tnn.Dropout(dropout),
        tnn.Linear(width * size * size, 128),
        tnn.ReLU(),
        tnn.Dropout(dropout),
        tnn.Linear(128, 10),
    ]
    return tnn.Sequential(*layers)


def torch_tasks() -> dict[str, harness.Task]:
    import torch

    torch.manual_seed(0)
    tnn = torch.nn
    layers = {name: _build_layer(tnn, spec) for name, (_, spec, _) in _layer_specs().items()}

    def layer(name: str) -> harness.Task:
        def build() -> Callable[[], None]:
            shape = _layer_specs()[name][0]
            x = torch.randn(shape, requires_grad=True)
            module = layers[name]

            def step() -> None:
                x.grad = None
                module(x).sum().backward()

            return step

        return build

    def train_step() -> Callable[[], None]:
        model = torch_model(torch)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = tnn.CrossEntropyLoss()
        x = torch.randn(BATCH, 1, 28, 28)
        y = torch.randint(0, 10, (BATCH,))

        def step() -> None:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    return {**{name: layer(name) for name in LAYERS}, "step": train_step}


WORKERS = {"chainrule": chainrule_tasks, "torch": torch_tasks}


def report(results: harness.Results) -> None:
    print(harness.table(results, "torch", unit=1e3, unit_name="ms"))
    ours = results["step"]["chainrule"]
    theirs = results["step"]["torch"]
    print(
        f"\nepoch estimate ({STEPS_PER_EPOCH} steps): chainrule {ours * STEPS_PER_EPOCH:.1f} s, "
        f"torch {theirs * STEPS_PER_EPOCH:.1f} s, ratio {ours / theirs:.2f}"
    )
    # Each layer as often as the CNN has it (a block's BatchNorm after each convolution).
    counts = {name: count for name, (_, _, count) in _layer_specs().items()}
    layer_total = sum(results[name]["chainrule"] * counts[name] for name in LAYERS)
    share = {name: results[name]["chainrule"] * counts[name] / layer_total for name in LAYERS}
    print("chainrule's time by layer: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items()))


def peak_rss(library: str, steps: int = 100) -> float:
    """Peak RSS (MiB) of a fresh process that runs ``steps`` training steps of the CNN."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys, resource; sys.path.insert(0, {here!r})\n"
        "import bench_conv\n"
        f"step = bench_conv.WORKERS[{library!r}]()['step']()\n"
        f"for _ in range({steps}): step()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


if __name__ == "__main__":
    if "--rss" in sys.argv:
        for lib in WORKERS:
            print(f"{lib}: peak RSS {peak_rss(lib):.0f} MiB over 100 CNN training steps")
    else:
        harness.run(__file__, __doc__, WORKERS, TASKS, report)
