"""Fashion-MNIST recipe benchmark (issue 4, point 7): one training epoch, chainrule vs PyTorch.

    python benchmarks/bench_fashion_epoch.py               # ~45 s on an idle 2-core machine
    python benchmarks/bench_fashion_epoch.py --full-epoch  # ~2 min: also times whole epochs

The recipe is the one that reaches >= 89.5% test accuracy in 20 epochs (90.42% and
90.57% with seeds 0 and 1)::

    chainrule train --dataset fashion-mnist --epochs 20 --hidden 1024,512 --dropout 0.3 \\
        --optimizer adam --lr 1e-3 --schedule cosine --batch-size 128

that is: the full 60k/10k split; inputs scaled to [0, 1] then standardised with the
training set's mean and σ (one channel); an MLP 784-1024-512-10 with ReLU and dropout 0.3
after each hidden layer, Kaiming-normal hidden weights, a Xavier-normal output layer and
zero biases; cross-entropy; Adam (lr 1e-3); cosine annealing stepped once per epoch;
stratified shuffled minibatches of at most 128 (469 batches of 127 or 128 per epoch);
and, after each epoch, an evaluation on the 10k test images in batches of 1000.

The chainrule side runs the training package itself (``chainrule.training.loop.Run``: the
same code as ``chainrule train``). The PyTorch side is the same recipe written the usual
PyTorch way: ``nn.Sequential``, ``nn.CrossEntropyLoss``, ``optim.Adam``,
``CosineAnnealingLR``, indexing pre-normalised tensors with the batches of a stratified
sampler of its own (same dealing rule as chainrule's).

How an epoch is timed: each library runs in its own worker process (``harness.py``) and
rounds alternate between them. The default mode times chunks of ``--steps`` optimiser
steps (forward, loss, backward, step, and the loss/accuracy bookkeeping of the training
loop, batches drawn from the epoch's sampler) and the test evaluation separately, then
*extrapolates*: epoch = 469 × median step + median evaluation. ``--full-epoch`` also
times whole epochs (training pass, scheduler step, evaluation) directly.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

ROOT = Path(os.environ.get("FASHION_MNIST_ROOT", "/usr/share/datasets/fashion-mnist"))
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

EPOCHS = 20
HIDDEN = (1024, 512)
DROPOUT = 0.3
LR = 1e-3
BATCH = 128
EVAL_BATCH = 1000
NORM_EPS = 1e-3
SEED = 0
N_TRAIN = 60_000
STEPS_PER_EPOCH = math.ceil(N_TRAIN / BATCH)  # 469 stratified batches of 127 or 128

# Set in the workers from the command line of the driver.
STEPS = int(os.environ.get("BENCH_FASHION_STEPS", "100"))


def dataset_missing() -> list[str]:
    return [name for name in FILES if not (ROOT / name).is_file()]


# ------------------------------------------------------------------------------ chainrule
def chainrule_tasks() -> dict[str, harness.Task]:
    import chainrule as cr
    from chainrule.training import TrainConfig
    from chainrule.training.loop import Run

    cfg = TrainConfig(
        dataset="fashion-mnist",
        data_root=str(ROOT),
        epochs=EPOCHS,
        batch_size=BATCH,
        hidden=HIDDEN,
        activation="relu",
        dropout=DROPOUT,
        init="kaiming",
        optimizer="adam",
        lr=LR,
        schedule="cosine",
        stratified=True,
        normalize=True,
        norm_eps=NORM_EPS,
        seed=SEED,
        eval_batch_size=EVAL_BATCH,
    )
    run = Run(cfg, Path(tempfile.gettempdir()) / "bench-fashion-unused")
    run.prepare_data()
    assert len(run.loader) == STEPS_PER_EPOCH

    def batches() -> Iterator[tuple[Any, Any]]:
        while True:  # a new stratified epoch whenever the last one is used up
            yield from run.loader

    stream = batches()

    def train_step() -> None:
        # The body of Run.train_epoch, one minibatch at a time.
        xb, yb = next(stream)
        logits = run.model(xb)
        loss = run.loss_fn(logits, yb)
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
        loss.item()
        int((logits.data.argmax(1) == yb.data).sum())

    def steps() -> Callable[[], None]:
        run.model.train()

        def step() -> None:
            for _ in range(STEPS):
                train_step()

        return step

    def evaluate() -> Callable[[], None]:
        def step() -> None:
            run.evaluate()
            run.model.train()

        return step

    def epoch() -> Callable[[], None]:
        def step() -> None:
            loss, _ = run.train_epoch()
            run.step_scheduler(loss)
            run.evaluate()

        return step

    cr.manual_seed(SEED)
    return {"steps": steps, "evaluate": evaluate, "epoch": epoch}


# -------------------------------------------------------------------------------- PyTorch
def _read_idx(path: Path) -> Any:
    """An IDX file (gzip-compressed) as a NumPy array."""
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def stratified_batches(labels: Any, batch_size: int, rng: Any) -> list[Any]:
    """One epoch of stratified batches, dealt the way chainrule's sampler deals them.

    Shuffle within each class and the order of the classes, lay the classes end to end,
    deal position p to batch p mod n, then shuffle within each batch and the batch order.
    """
    import numpy as np

    n = math.ceil(len(labels) / batch_size)
    classes = np.unique(labels)
    rng.shuffle(classes)
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in classes])
    batches = [rng.permutation(order[b::n]) for b in range(n)]
    return [batches[i] for i in rng.permutation(n)]


def torch_tasks() -> dict[str, harness.Task]:
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    x_train = _read_idx(ROOT / FILES[0]).astype(np.float32) / np.float32(255.0)
    y_train = _read_idx(ROOT / FILES[1]).astype(np.int64)
    x_test = _read_idx(ROOT / FILES[2]).astype(np.float32) / np.float32(255.0)
    y_test = _read_idx(ROOT / FILES[3]).astype(np.int64)
    # The lecture's normalisation: one channel, training-set statistics, σ floored at eps.
    mean = x_train.mean(dtype=np.float64)
    std = max(float(x_train.std(dtype=np.float64)), NORM_EPS)
    xs_train = torch.from_numpy(((x_train - mean) / std).astype(np.float32)).view(-1, 784)
    xs_test = torch.from_numpy(((x_test - mean) / std).astype(np.float32)).view(-1, 784)
    ys_train, ys_test = torch.from_numpy(y_train), torch.from_numpy(y_test)

    layers: list[nn.Module] = []
    width = 784
    for size in HIDDEN:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(DROPOUT)]
        width = size
    layers.append(nn.Linear(width, 10))
    model = nn.Sequential(*layers)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for layer in linears[:-1]:
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    nn.init.xavier_normal_(linears[-1].weight)
    nn.init.zeros_(linears[-1].bias)

    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    rng = np.random.default_rng(SEED + 1)

    def epoch_batches() -> list[torch.Tensor]:
        return [torch.from_numpy(b) for b in stratified_batches(y_train, BATCH, rng)]

    def batches() -> Iterator[torch.Tensor]:
        while True:
            yield from epoch_batches()

    stream = batches()

    def train_step(idx: torch.Tensor) -> tuple[float, int]:
        xb, yb = xs_train[idx], ys_train[idx]
        logits = model(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), int((logits.detach().argmax(1) == yb).sum())

    def evaluate() -> float:
        model.eval()
        correct = 0
        total_loss = 0.0
        sum_loss = nn.CrossEntropyLoss(reduction="sum")
        with torch.no_grad():
            for start in range(0, len(ys_test), EVAL_BATCH):
                xb = xs_test[start : start + EVAL_BATCH]
                yb = ys_test[start : start + EVAL_BATCH]
                logits = model(xb)
                total_loss += sum_loss(logits, yb).item()
                correct += int((logits.argmax(1) == yb).sum())
        model.train()
        return correct / len(ys_test)

    def steps() -> Callable[[], None]:
        model.train()

        def step() -> None:
            for _ in range(STEPS):
                train_step(next(stream))

        return step

    def evaluate_task() -> Callable[[], None]:
        def step() -> None:
            evaluate()

        return step

    def epoch() -> Callable[[], None]:
        def step() -> None:
            model.train()
            for idx in epoch_batches():
                train_step(idx)
            scheduler.step()
            evaluate()

        return step

    return {"steps": steps, "evaluate": evaluate_task, "epoch": epoch}


WORKERS = {"chainrule": chainrule_tasks, "torch": torch_tasks}


def compare_samples(
    libraries: list[str], tasks: list[str], rounds: int, settle: float = 0.3
) -> dict[str, dict[str, list[float]]]:
    """``harness.compare``'s alternating rounds, keeping every sample (not only the
    median) so that the spread can be reported on this shared, noisy machine."""
    workers = {lib: harness.Worker(__file__, lib) for lib in libraries}
    samples: dict[str, dict[str, list[float]]] = {t: {lib: [] for lib in libraries} for t in tasks}
    try:
        for task in tasks:
            for r in range(rounds):
                order = libraries[r % len(libraries) :] + libraries[: r % len(libraries)]
                for lib in order:
                    time.sleep(settle)
                    samples[task][lib].extend(workers[lib].run(task, 1))
    finally:
        for w in workers.values():
            w.close()
    return samples


def _threads() -> str:
    import numpy  # noqa: F401  (its BLAS is what chainrule uses)

    parts = [f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    except ImportError:
        parts.append("torch not installed")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=STEPS, help="optimiser steps per sample")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds")
    parser.add_argument(
        "--full-epoch", action="store_true", help="also time whole epochs (3 rounds, slower)"
    )
    parser.add_argument("--json", default=None, help="also write the medians to this file")
    args = parser.parse_args()
    if args.worker:
        harness.serve(WORKERS[args.worker]())
        return

    missing = dataset_missing()
    if missing:
        print(
            f"SKIPPED: Fashion-MNIST not found in {ROOT} (missing {', '.join(missing)}). "
            f"Install it with `sudo apt-get install dataset-fashion-mnist`, or set "
            f"FASHION_MNIST_ROOT to the folder with the four *-ubyte.gz files."
        )
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED: PyTorch is not installed (pip install torch); nothing to compare with.")
        return

    os.environ["BENCH_FASHION_STEPS"] = str(args.steps)
    libs = list(WORKERS)
    samples = compare_samples(libs, ["steps", "evaluate"], args.rounds)
    if args.full_epoch:
        samples.update(compare_samples(libs, ["epoch"], 3))
    med = {t: {lib: statistics.median(v) for lib, v in per.items()} for t, per in samples.items()}

    print(f"machine: {harness.describe_machine()}; {_threads()}")
    print(
        f"recipe: Fashion-MNIST 60k/10k, MLP 784-{'-'.join(map(str, HIDDEN))}-10, ReLU, "
        f"dropout {DROPOUT}, Kaiming, Adam lr {LR}, cosine, stratified batches of {BATCH}, "
        f"normalised inputs"
    )
    print(
        f"medians over {args.rounds} alternating rounds, one process per library; a sample "
        f"is {args.steps} training steps, or one test evaluation (10k images); [min-max] "
        f"of the samples shows the noise\n"
    )
    step = {lib: med["steps"][lib] / args.steps for lib in libs}
    extrapolated = {lib: STEPS_PER_EPOCH * step[lib] + med["evaluate"][lib] for lib in libs}

    def cell(median: float, values: list[float] | None = None, scale: float = 1.0) -> str:
        spread = f"[{min(values) * scale:.2f}-{max(values) * scale:.2f}]" if values else ""
        return f"{median * scale:10.2f} {spread:<17s}"

    head = "".join(f"{lib:>10s} {'[min-max]':<17s}" for lib in libs)
    print(f"{'':38s}{head}  chainrule/torch")
    rows = [
        ("training step (ms)", "steps", 1e3 / args.steps),
        ("test evaluation, 10k images (ms)", "evaluate", 1e3),
    ]
    if args.full_epoch:
        rows.append(("epoch measured whole, 3 rounds (s)", "epoch", 1.0))
    for label, task, scale in rows:
        cells = "".join(cell(med[task][lib], samples[task][lib], scale) for lib in libs)
        print(f"{label:38s}{cells}{med[task]['chainrule'] / med[task]['torch']:17.2f}")
    label = f"epoch = {STEPS_PER_EPOCH} x step + evaluation (s)"
    cells = "".join(cell(extrapolated[lib]) for lib in libs)
    print(f"{label:38s}{cells}{extrapolated['chainrule'] / extrapolated['torch']:17.2f}")
    ratio = extrapolated["chainrule"] / extrapolated["torch"]
    print(
        f"\nepoch time, extrapolated ({STEPS_PER_EPOCH} steps x median step time + median "
        f"evaluation; not a measured epoch): chainrule {extrapolated['chainrule']:.2f} s, "
        f"torch {extrapolated['torch']:.2f} s, ratio chainrule/torch = {ratio:.2f}"
    )
    if args.json:
        harness.json_dump(
            args.json,
            {
                "machine": harness.describe_machine(),
                "samples_seconds": samples,
                "median_seconds": med,
                "step_seconds": step,
                "epoch_seconds_extrapolated": extrapolated,
            },
        )


if __name__ == "__main__":
    main()
