"""``train``: the lecture's recipe as one function, and the loop behind ``chainrule train``.

Per epoch: reshuffle (stratified batches by default), one SGD-family step per minibatch
on the cross-entropy of the logits, a scheduler step, an evaluation on the test split,
one line of metrics, and a checkpoint. The checkpoint holds every piece of state that
influences what comes next (weights, optimiser moments, schedule, both random streams),
so ``resume`` continues an interrupted run to bit-identical weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chainrule as cr
from chainrule import data, nn
from chainrule.data import datasets
from chainrule.training.checkpoint import Checkpoint, save_checkpoint
from chainrule.training.config import TrainConfig
from chainrule.training.files import write_json, write_jsonl
from chainrule.training.model import build_model, build_optimizer, build_scheduler

CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"

EpochCallback = Callable[[dict[str, Any]], None]


def load_splits(cfg: TrainConfig) -> tuple[Any, Any]:
    """The dataset's train and test splits."""
    if cfg.dataset not in datasets.DATASETS:
        raise ValueError(
            f"--dataset must be one of {', '.join(sorted(datasets.DATASETS))}; got {cfg.dataset!r}"
        )
    cls = datasets.DATASETS[cfg.dataset]
    kwargs: dict[str, Any] = {}
    if cfg.data_root is not None:
        kwargs["root"] = cfg.data_root
    return cls(train=True, **kwargs), cls(train=False, **kwargs)


class Run:
    """The state of one training run, built from its options (and a checkpoint to resume)."""

    def __init__(self, cfg: TrainConfig, out: Path) -> None:
        self.cfg = cfg.validate()
        self.out = out
        cr.manual_seed(cfg.seed)
        # Shuffling has a stream of its own, so that changing dropout does not change the
        # order of the examples (and the other way round).
        self.loader_generator = cr.Generator(cfg.seed + 1)

        train_set, test_set = load_splits(cfg)
        self.classes = list(train_set.classes)
        x_train, self.y_train = train_set.arrays()
        x_test, self.y_test = test_set.arrays()
        self.normalizer = None
        if cfg.normalize:
            self.normalizer = data.Normalize(eps=cfg.norm_eps, channel_axis=1).fit(x_train)
        self.x_train_raw, self.x_test_raw = x_train, x_test

        self.model = build_model(cfg, tuple(x_train.shape[1:]), len(self.classes))
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.loss_fn = nn.CrossEntropyLoss()
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    def restore(self, ckpt: Checkpoint) -> None:
        self.model.load_state_dict(ckpt.model_state())
        self.optimizer.load_state_dict(ckpt.optimizer_state())
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt.scheduler_state())
        norm_state = ckpt.normalizer_state()
        if self.normalizer is not None and norm_state is not None:
            self.normalizer.load_state_dict(norm_state)
        ckpt.restore_rng(self.loader_generator)
        self.epoch = ckpt.epoch
        self.history = ckpt.history

    def prepare_data(self) -> None:
        """Normalise both splits with the training statistics and make the loader."""
        x_train, x_test = self.x_train_raw, self.x_test_raw
        if self.normalizer is not None:
            x_train, x_test = self.normalizer(x_train), self.normalizer(x_test)
        self.x_test = cr.tensor(x_test)
        train_ds = data.TensorDataset(cr.tensor(x_train), cr.tensor(self.y_train))
        cfg = self.cfg
        if cfg.stratified or cfg.oversample:
            sampler = data.StratifiedBatchSampler(
                self.y_train,
                cfg.batch_size,
                shuffle=True,
                oversample_rare=cfg.oversample,
                generator=self.loader_generator,
            )
            self.loader = data.DataLoader(train_ds, batch_sampler=sampler)
        else:
            self.loader = data.DataLoader(
                train_ds, batch_size=cfg.batch_size, shuffle=True, generator=self.loader_generator
            )

    def train_epoch(self, bar: Any = None) -> tuple[float, float]:
        """One pass over the training set; returns (mean loss, accuracy).

        ``bar`` (a tqdm bar or None) is advanced per batch and shows the running figures.
        """
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for i, (xb, yb) in enumerate(self.loader):
            logits = self.model(xb)
            loss = self.loss_fn(logits, yb)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            n = len(yb)
            total_loss += loss.item() * n
            correct += int((logits.data.argmax(1) == yb.data).sum())
            seen += n
            if bar is not None:
                if i % 10 == 0:
                    bar.set_postfix(
                        loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.2%}", refresh=False
                    )
                bar.update(1)
        return total_loss / seen, correct / seen

    def evaluate(self) -> dict[str, Any]:
        return evaluate_model(
            self.model, self.x_test, self.y_test, len(self.classes), self.cfg.eval_batch_size
        )

    def step_scheduler(self, train_loss: float) -> None:
        if self.scheduler is None:
            return
        if self.cfg.schedule == "plateau":
            self.scheduler.step(train_loss)
        else:
            self.scheduler.step()

    def save(self) -> None:
        save_checkpoint(
            self.out / CHECKPOINT,
            config_json=self.cfg.to_json(),
            epoch=self.epoch,
            model=self.model,
            opt=self.optimizer,
            scheduler=self.scheduler,
            normalizer=self.normalizer,
            loader_generator=self.loader_generator,
            history=self.history,
        )
        write_jsonl(self.out / METRICS, self.history)


def evaluate_model(
    model: nn.Module, x: cr.Tensor, y: Any, num_classes: int, batch_size: int = 1000
) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted)."""
    import numpy

    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total = 0.0
    predictions = []
    with cr.no_grad():
        for start in range(0, len(y), batch_size):
            xb = x[start : start + batch_size]
            yb = cr.tensor(y[start : start + batch_size])
            logits = model(xb)
            total += loss_fn(logits, yb).item()
            predictions.append(logits.data.argmax(1))
    predicted = numpy.concatenate(predictions)
    confusion = numpy.zeros((num_classes, num_classes), dtype=numpy.int64)
    numpy.add.at(confusion, (numpy.asarray(y), predicted), 1)
    return {
        "loss": total / len(y),
        "accuracy": float((predicted == numpy.asarray(y)).mean()),
        "confusion": confusion.tolist(),
    }


def train(
    config: TrainConfig | None = None,
    out: str | Path = "runs/latest",
    resume: bool = False,
    progress: bool = False,
    on_epoch_end: EpochCallback | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train an MLP as ``config`` says, writing checkpoints and metrics into ``out``.

    Args:
        config: the options (``TrainConfig()`` defaults when None). Ignored with
            ``resume``: the run's own saved options are used.
        out: the run's directory.
        resume: continue the run saved in ``out`` from its last completed epoch.
        progress: show a progress bar per epoch.
        on_epoch_end: called with each epoch's metrics after its checkpoint is written.
        log: where to print one line per epoch (None for silence).

    Returns:
        The summary (also written to ``out/summary.json``).
    """
    out = Path(out)
    if resume:
        ckpt_path = out / CHECKPOINT
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume {out}: no {CHECKPOINT} there to resume from")
        ckpt = Checkpoint(ckpt_path)
        cfg = TrainConfig.from_json(ckpt.metadata["config"])
        run = Run(cfg, out)
        run.restore(ckpt)
    else:
        cfg = config or TrainConfig()
        if (out / CHECKPOINT).exists():
            raise FileExistsError(
                f"{out} already holds a run; continue it with --resume {out}, or choose "
                f"another --out directory"
            )
        out.mkdir(parents=True, exist_ok=True)
        run = Run(cfg, out)
        write_json(out / CONFIG, _config_dict(cfg))
    run.prepare_data()

    started = time.perf_counter()
    while run.epoch < cfg.epochs:
        t0 = time.perf_counter()
        bar = _progress(len(run.loader), progress, f"epoch {run.epoch + 1}/{cfg.epochs}")
        train_loss, train_acc = run.train_epoch(bar)
        lr = run.optimizer.param_groups[0]["lr"]
        run.step_scheduler(train_loss)
        result = run.evaluate()
        run.epoch += 1
        metrics = {
            "epoch": run.epoch,
            "lr": lr,
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "test_loss": result["loss"],
            "test_accuracy": result["accuracy"],
            "seconds": time.perf_counter() - t0,
        }
        run.history.append(metrics)
        if bar is not None:
            bar.set_postfix(
                loss=f"{train_loss:.4f}",
                acc=f"{train_acc:.2%}",
                test_acc=f"{result['accuracy']:.2%}",
            )
            bar.close()
        run.save()
        if log is not None:
            log(
                f"epoch {run.epoch:3d}/{cfg.epochs}  lr {lr:.2e}  train loss {train_loss:.4f}"
                f"  train acc {train_acc:.2%}  test acc {result['accuracy']:.2%}"
                f"  ({metrics['seconds']:.1f} s)"
            )
        if on_epoch_end is not None:
            on_epoch_end(metrics)

    from chainrule.serialization import save

    save(run.model.state_dict(), out / WEIGHTS)
    final = run.evaluate()
    best = max(run.history, key=lambda m: m["test_accuracy"])
    summary = {
        "dataset": cfg.dataset,
        "epochs": cfg.epochs,
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "best_test_accuracy": best["test_accuracy"],
        "best_epoch": best["epoch"],
        "mean_epoch_seconds": sum(m["seconds"] for m in run.history) / len(run.history),
        "seconds_this_session": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "confusion": final["confusion"],
        "classes": run.classes,
        "model": repr(run.model),
    }
    write_json(out / SUMMARY, summary)
    if log is not None:
        log(
            f"test accuracy {final['accuracy']:.2%} after {cfg.epochs} epochs "
            f"(best {best['test_accuracy']:.2%} at epoch {best['epoch']}); "
            f"{summary['mean_epoch_seconds']:.2f} s per epoch; outputs in {out}/"
        )
    return summary


def load_run(out: str | Path) -> Run:
    """A finished or interrupted run rebuilt from its directory (for evaluation)."""
    out = Path(out)
    ckpt_path = out / CHECKPOINT
    if not ckpt_path.exists():
        raise FileNotFoundError(
            f"{out}: no {CHECKPOINT}; is this a chainrule train --out directory?"
        )
    ckpt = Checkpoint(ckpt_path)
    run = Run(TrainConfig.from_json(ckpt.metadata["config"]), out)
    run.restore(ckpt)
    run.prepare_data()
    return run


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    import json

    return dict(json.loads(cfg.to_json()))


def _progress(total: int, enabled: bool, desc: str) -> Any:
    """A tqdm bar of ``total`` batches, or None when disabled or tqdm is not installed.

    The bar is advanced by hand and closed after the epoch's evaluation, so its last
    state shows the test accuracy too.
    """
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress bar is a nicety: train without it
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)
