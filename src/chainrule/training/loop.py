"""``train``: the lecture's recipe as one function, and the loop behind ``chainrule train``.

Per epoch: reshuffle (stratified batches by default), one SGD-family step per minibatch
on the cross-entropy of the logits, a scheduler step, an evaluation on the test split,
one line of metrics, and a checkpoint. The checkpoint holds every piece of state that
influences what comes next (weights, optimiser moments, schedule, both random streams),
so ``resume`` continues an interrupted run to bit-identical weights.

On a GPU (``TrainConfig.device``): the model, its optimiser state and the whole dataset
(normalised on the host first) are moved there once; each step's loss and correct count
are added up on the GPU and read back once per epoch (and once per evaluation), so a
training step never waits for the GPU. The progress bar is the one exception the user
asks for: it shows the running figures every ``BAR_REFRESH`` batches, one read each.
Checkpoints hold host copies, and a run resumes onto whichever device it is given.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chainrule as cr
from chainrule import allocator, backend, data, nn
from chainrule import distributed as dist
from chainrule.data import datasets
from chainrule.data.augment import RandomShiftFlip
from chainrule.training.checkpoint import Checkpoint, host_tensor, save_checkpoint
from chainrule.training.config import TrainConfig
from chainrule.training.files import write_json, write_jsonl
from chainrule.training.model import (
    build_model,
    build_one_cycle,
    build_optimizer,
    build_scheduler,
)
from chainrule.training.progress import format_duration, progress_bar

CHECKPOINT = "checkpoint.safetensors"
WEIGHTS = "model.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"

EpochCallback = Callable[[dict[str, Any]], None]

BAR_REFRESH = 10
"""Batches between two updates of the progress bar's running loss and accuracy (each
update reads the running totals back from the GPU: one sync per ``BAR_REFRESH`` batches)."""


class Totals:
    """The running loss sum and correct count of an epoch, added up where the batches are
    (GPU arrays on a GPU) and read back only by ``read``: adding a batch never syncs."""

    def __init__(self) -> None:
        self.loss_sum: Any = None  # float64 0-d array: Σ batch mean loss × batch size
        self.correct: Any = None  # int64 0-d array
        self.seen = 0  # a host count: batch sizes are known without reading the GPU

    def add(self, loss: cr.Tensor, logits: cr.Tensor, labels: cr.Tensor) -> None:
        """Count one batch: its mean ``loss`` and the ``logits`` for its ``labels``."""
        n = labels.shape[0]
        # float64, as Python floats were: the same sums, bit for bit, on the CPU.
        batch_loss = loss.data.astype(backend.float64) * n
        hits = (logits.data.argmax(1) == labels.data).sum()
        if self.loss_sum is None:
            self.loss_sum, self.correct = batch_loss, hits
        else:
            self.loss_sum = self.loss_sum + batch_loss
            self.correct = self.correct + hits
        self.seen += n

    def read(self) -> tuple[float, int, int]:
        """(loss sum, correct, seen) on the host: one read of the GPU."""
        if self.loss_sum is None:
            return 0.0, 0, 0
        xp = backend.array_module(self.loss_sum, self.correct)
        both = backend.to_host(xp.stack([self.loss_sum, self.correct.astype(backend.float64)]))
        return float(both[0]), int(both[1]), self.seen


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
        self.device = cr.device(cfg.device)
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

        # Built on the host (the seeded draws are the CPU's on every device), then moved
        # before the optimiser exists, so that its state is made on the device.
        self.model = build_model(cfg, tuple(x_train.shape[1:]), len(self.classes))
        self.model.to(cfg.device)
        self.augment = (
            RandomShiftFlip(cfg.augment_shift, flip=cfg.augment_flip) if cfg.augment else None
        )
        self.optimizer = build_optimizer(cfg, self.model)
        # A per-batch schedule (onecycle) is made with the loader, in prepare_data.
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.per_batch_schedule = cfg.schedule == "onecycle"
        self._resume_states: tuple[Any, Any] | None = None
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        # Under MPI: the same model on every rank (DDP broadcasts rank 0's weights) and the
        # global batch split between the ranks; only rank 0 prints and writes files.
        self.rank, self.world = dist.rank(), dist.world_size()
        if self.world > 1 and self.device.type != "cpu":
            raise ValueError(
                f"--device {cfg.device} with --nproc {self.world}: training on several "
                f"processes runs on the CPU only for now; train on one process on the GPU"
            )
        self.ddp = dist.DistributedDataParallel(self.model) if self.world > 1 else None
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        # The directories a new run made (deepest first), removed again if it stops
        # before its first checkpoint; None for a resumed or reloaded run.
        self.created_dirs: list[Path] | None = None

    def restore(self, ckpt: Checkpoint) -> None:
        if ckpt.world_size != self.world:
            raise ValueError(
                f"--resume {self.out}: this run was trained on {ckpt.world_size} process(es) "
                f"and is being resumed on {self.world}; resume it with the same number "
                f"(--nproc {ckpt.world_size}) so that its batches and random streams continue"
            )
        # The checkpoint holds host copies: onto the model's device first.
        self.model.load_state_dict(
            {k: cr.Tensor(v.data, device=self.device) for k, v in ckpt.model_state().items()}
        )
        self.optimizer.load_state_dict(ckpt.optimizer_state())
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt.scheduler_state())
        elif self.per_batch_schedule:
            # Made in prepare_data; making it resets the rates and momenta, so both states
            # are loaded after it (PyTorch's order: make, then load).
            self._resume_states = (ckpt.optimizer_state(), ckpt.scheduler_state())
        norm_state = ckpt.normalizer_state()
        if self.normalizer is not None and norm_state is not None:
            self.normalizer.load_state_dict(norm_state)
        ckpt.restore_rng(self.loader_generator)
        self.epoch = ckpt.epoch
        self.history = ckpt.history

    def prepare_data(self) -> None:
        """Normalise both splits with the training statistics (on the host), move them to
        the run's device (once), and make the loader."""
        x_train, x_test = self.x_train_raw, self.x_test_raw
        if self.normalizer is not None:
            x_train, x_test = self.normalizer(x_train), self.normalizer(x_test)
        device = self.device
        self.x_test = cr.Tensor(x_test, device=device)
        self.y_test_device = cr.Tensor(self.y_test, device=device)
        train_ds = data.TensorDataset(
            cr.Tensor(x_train, device=device), cr.Tensor(self.y_train, device=device)
        )
        cfg = self.cfg
        self.shares: dist.DistributedBatchSampler | None = None
        if self.world > 1:
            # Every rank draws the one-process global batches and keeps its share of each.
            if cfg.batch_size % self.world:
                raise ValueError(
                    f"--batch-size {cfg.batch_size} is the global batch and must split evenly "
                    f"over {self.world} processes; choose a multiple of {self.world}"
                )
            if cfg.stratified or cfg.oversample:
                whole: Any = data.StratifiedBatchSampler(
                    self.y_train,
                    cfg.batch_size,
                    oversample_rare=cfg.oversample,
                    generator=self.loader_generator,
                )
            else:
                shuffled = data.RandomSampler(train_ds, generator=self.loader_generator)
                whole = data.BatchSampler(shuffled, cfg.batch_size)
            self.shares = dist.DistributedBatchSampler(whole, labels=self.y_train)
            self.loader = data.DataLoader(train_ds, batch_sampler=self.shares)
        elif cfg.stratified or cfg.oversample:
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
        if self.per_batch_schedule and self.scheduler is None:
            self.scheduler = build_one_cycle(cfg, self.optimizer, len(self.loader))
            if self._resume_states is not None:
                optimizer_state, scheduler_state = self._resume_states
                self.optimizer.load_state_dict(optimizer_state)
                self.scheduler.load_state_dict(scheduler_state)

    def train_step(self, xb: cr.Tensor, yb: cr.Tensor, totals: Totals, share: float = 1.0) -> None:
        """One minibatch: augment, forward, loss, backward, optimiser step, and the batch
        added to ``totals``. Reads nothing back from the device.

        ``share`` weights the loss under MPI (see ``train_epoch``).
        """
        if self.augment is not None:
            xb = self.augment(xb)
        model = self.ddp or self.model
        logits = model(xb)
        loss = self.loss_fn(logits, yb)
        self.optimizer.zero_grad()
        if share != 1.0:
            (loss * share).backward()
        else:
            loss.backward()
        self.optimizer.step()
        if self.per_batch_schedule:
            self.scheduler.step()
        totals.add(loss, logits, yb)

    def train_epoch(self, bar: Any = None) -> tuple[float, float]:
        """One pass over the training set; returns (mean loss, accuracy).

        ``bar`` (a tqdm bar or None) is advanced per batch and shows the running figures,
        refreshed every ``BAR_REFRESH`` batches (each refresh reads the totals back from
        a GPU; without a bar the epoch reads them once, at its end).
        """
        self.model.train()
        if self.world > 1 and self.rank > 0:
            # Dropout masks differ per rank, from a stream that depends only on the seed,
            # the rank and the epoch (rank 0 keeps the checkpointed stream): reproducible.
            cr.manual_seed(self.cfg.seed + 7919 * self.rank + 104729 * self.epoch)
        totals = Totals()
        for i, (xb, yb) in enumerate(self.loader):
            share = 1.0
            if self.shares is not None:
                # Weight this rank's mean by its share n/G of the global batch (times R, as
                # DDP averages): the exact global mean even when the shares differ by one.
                share = len(yb) * self.world / self.shares.global_batch_sizes[i]
            self.train_step(xb, yb, totals, share)
            if bar is not None:
                if i % BAR_REFRESH == 0:
                    running, hits, count = totals.read()
                    bar.set_postfix(
                        loss=f"{running / count:.4f}", acc=f"{hits / count:.2%}", refresh=False
                    )
                bar.update(1)
        total_loss, correct, seen = totals.read()
        if self.world > 1:
            summed = cr.tensor([total_loss, correct, seen], dtype=cr.float64)
            dist.all_reduce(summed)
            total_loss, correct, seen = float(summed[0]), int(summed[1]), int(summed[2])
        return total_loss / seen, correct / seen

    def evaluate(self) -> dict[str, Any]:
        return evaluate_model(
            self.model,
            self.x_test,
            self.y_test_device,
            len(self.classes),
            self.cfg.eval_batch_size,
        )

    def step_scheduler(self, train_loss: float) -> None:
        if self.scheduler is None or self.per_batch_schedule:  # that one steps per batch
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
            world_size=self.world,
        )
        write_jsonl(self.out / METRICS, self.history)
        # The options can change on resume (--epochs), so they are kept in step with the
        # checkpoint, which is what a later --resume reads.
        write_json(self.out / CONFIG, _config_dict(self.cfg))


def evaluate_model(
    model: nn.Module, x: cr.Tensor, y: Any, num_classes: int, batch_size: int = 1000
) -> dict[str, Any]:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted).

    Runs where ``x`` lives: the labels ``y`` (a Tensor or array) are put on that device
    (a copy only if they are elsewhere), the loss is summed and the predictions gathered
    there, and the results come back to the host in one read at the end.
    """
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    labels = backend.to_device(y.data if isinstance(y, cr.Tensor) else y, x.device)
    total: Any = None
    predictions = []
    with cr.no_grad():
        for start in range(0, len(labels), batch_size):
            stop = start + batch_size
            logits = model(cr.Tensor(x.data[start:stop]))
            batch_loss = loss_fn(logits, cr.Tensor(labels[start:stop])).data
            batch_loss = batch_loss.astype(backend.float64)
            total = batch_loss if total is None else total + batch_loss
            predictions.append(logits.data.argmax(1))
    xp = backend.get_array_module(labels)
    # One read: predictions, labels (class indices, exact in float64) and the loss.
    n = len(labels)
    pieces = [*predictions, labels, xp.reshape(total, (1,))]
    host = backend.to_host(xp.concatenate([p.astype(backend.float64) for p in pieces]))
    predicted, truth = host[:n].astype(backend.int64), host[n : 2 * n].astype(backend.int64)
    total_loss = float(host[-1])
    # The confusion matrix is host bookkeeping: counted with NumPy on the host copies.
    confusion = backend.xp.zeros((num_classes, num_classes), dtype=backend.int64)
    backend.scatter_add(confusion, (truth, predicted), 1)
    return {
        "loss": total_loss / len(truth),
        "accuracy": float((predicted == truth).mean()),
        "confusion": confusion.tolist(),
    }


def train(
    config: TrainConfig | None = None,
    out: str | Path = "runs/latest",
    resume: bool = False,
    progress: bool = False,
    on_epoch_end: EpochCallback | None = None,
    log: Callable[[str], None] | None = print,
    epochs: int | None = None,
    report: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """Train an MLP as ``config`` says, writing checkpoints and metrics into ``out``.

    A new run checks its options and loads its data before it creates ``out``; if it
    fails or is interrupted before its first epoch is saved, it removes what it created,
    so a failed start leaves no empty run folder behind.

    Args:
        config: the options (``TrainConfig()`` defaults when None). Ignored with
            ``resume``: the run's own saved options are used.
        out: the run's directory.
        resume: continue the run saved in ``out`` from its last completed epoch.
        progress: show a progress bar per epoch.
        on_epoch_end: called with each epoch's metrics after its checkpoint is written.
        log: where to print one line per epoch (None for silence).
        epochs: with ``resume``, train to this many epochs in all instead of the run's
            own number (``--resume DIR --epochs N``); refused where the result would
            differ from a run started with ``epochs`` (see ``TrainConfig.continued``).
        report: watch gradients and activations with a ``viz.Monitor`` and write plots
            and ``report/report.html`` at the end (``chainrule.viz.report``; Matplotlib).
        device: with ``resume``, continue on this device instead of the run's own
            (``--resume DIR --device cuda``: checkpoints hold host copies, so a run
            started on one device goes on on another; the numbers then differ in the
            last bits, as any CPU and GPU results do).

    Returns:
        The summary (also written to ``out/summary.json``).

    The process keeps the memory of freed arrays for the next step's
    (``chainrule.allocator.keep_freed_memory``) unless ``CHAINRULE_KEEP_FREED_MEMORY=0``.
    """
    allocator.keep_freed_memory_unless_disabled()
    out = Path(out)
    main_rank = dist.rank() == 0
    if not main_rank:
        log, progress = None, False
    if resume:
        run = _resumed_run(out, epochs, device)
    else:
        if epochs is not None or device is not None:
            raise ValueError(
                "train(epochs=..., device=...) are for resume; set TrainConfig.epochs and "
                "TrainConfig.device instead"
            )
        run = _new_run(config or TrainConfig(), out, write=main_rank)
    return _train_epochs(run, progress, on_epoch_end, log, report and main_rank)


def _resumed_run(out: Path, epochs: int | None, device: str | None = None) -> Run:
    ckpt_path = out / CHECKPOINT
    if not ckpt_path.exists():
        raise FileNotFoundError(f"--resume {out}: no {CHECKPOINT} there to resume from")
    ckpt = Checkpoint(ckpt_path)
    cfg = TrainConfig.from_json(ckpt.metadata["config"])
    if epochs is not None:
        cfg = cfg.continued(epochs, completed=ckpt.epoch)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    run = Run(cfg, out)
    run.restore(ckpt)
    run.prepare_data()
    if run.epoch == cfg.epochs and epochs is not None and dist.rank() == 0:
        run.save()  # no epoch left to train: record the new total now
    return run


def _new_run(cfg: TrainConfig, out: Path, write: bool = True) -> Run:
    """A new run; ``write`` is False on the ranks above 0 of an MPI job, which write
    nothing (rank 0 makes the directory and every file)."""
    if out.is_file():
        raise FileExistsError(f"--out {out} is a file; give a directory for the run")
    if (out / CHECKPOINT).exists():
        raise FileExistsError(
            f"{out} already holds a run; continue it with --resume {out}, or choose "
            f"another --out directory"
        )
    # Everything that can fail on bad options or missing data happens before the
    # directory exists (Run loads the data and builds the model without writing).
    run = Run(cfg, out)
    run.prepare_data()
    if not write:
        return run
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileExistsError(
            f"--out {out}: cannot create the run directory ({exc.strerror}: "
            f"{exc.filename}); give a directory path that is free"
        ) from None
    run.created_dirs = created
    write_json(out / CONFIG, _config_dict(cfg))
    return run


def _remove_unstarted(run: Run) -> None:
    """Undo the start of a new run that ends before its first checkpoint."""
    (run.out / CONFIG).unlink(missing_ok=True)
    for directory in run.created_dirs or []:  # deepest first; only the ones the run made
        try:
            directory.rmdir()
        except OSError:  # not empty: something else lives there, leave it
            return


def _train_epochs(
    run: Run,
    progress: bool,
    on_epoch_end: EpochCallback | None,
    log: Callable[[str], None] | None,
    report: bool = False,
) -> dict[str, Any]:
    cfg, out = run.cfg, run.out
    main_rank = dist.rank() == 0
    monitor = None
    if report:
        from chainrule.viz.report import report_monitor  # Matplotlib: the viz extra

        monitor = report_monitor(run)
    started = time.perf_counter()
    try:
        while run.epoch < cfg.epochs:
            metrics = _one_epoch(run, progress, save=main_rank)
            if log is not None:
                log(
                    f"epoch {run.epoch:3d}/{cfg.epochs}  lr {metrics['lr']:.2e}  train loss "
                    f"{metrics['train_loss']:.4f}  train acc {metrics['train_accuracy']:.2%}"
                    f"  test acc {metrics['test_accuracy']:.2%}"
                    f"  ({format_duration(metrics['seconds'])})"
                )
            if on_epoch_end is not None:
                on_epoch_end(metrics)
    except BaseException:
        if run.created_dirs is not None and not (out / CHECKPOINT).exists():
            _remove_unstarted(run)
        raise

    from chainrule.serialization import save

    if main_rank:
        save({k: host_tensor(v) for k, v in run.model.state_dict().items()}, out / WEIGHTS)
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
    if main_rank:
        write_json(out / SUMMARY, summary)
    if report:
        from chainrule.viz.report import write_report

        page = write_report(run, monitor, summary)
        if log is not None:
            log(f"report: {page}")
    if log is not None:
        log(
            f"test accuracy {final['accuracy']:.2%} after {cfg.epochs} epochs "
            f"(best {best['test_accuracy']:.2%} at epoch {best['epoch']}); "
            f"{format_duration(summary['mean_epoch_seconds'])} per epoch; outputs in {out}/"
        )
    return summary


def _one_epoch(run: Run, progress: bool, save: bool = True) -> dict[str, Any]:
    """Train, step the schedule, evaluate, save the checkpoint (``save``: rank 0 of an MPI
    job only); returns the metrics."""
    t0 = time.perf_counter()
    bar = progress_bar(len(run.loader), progress, f"epoch {run.epoch + 1}/{run.cfg.epochs}")
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
            time=format_duration(metrics["seconds"]),
        )
        bar.close()
    if save:
        run.save()
    return metrics


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
