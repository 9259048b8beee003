"""The ``chainrule`` command: ``chainrule train`` and ``chainrule evaluate DIR``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from chainrule.training.config import (
    ACTIVATIONS,
    INITS,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)

DEFAULTS = TrainConfig()


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128; got {text!r}") from None


def _bool(parser: argparse._ActionsContainer, name: str, default: bool, help_text: str) -> None:
    # _ActionsContainer: the common base of ArgumentParser and argument groups.
    parser.add_argument(
        f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help_text
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Train and evaluate MLPs the lecture's way, with every gradient checkable.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train an MLP (default: the 8x8 digits, in seconds)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train an MLP classifier. With no options: scikit-learn's 8x8 digits, "
        "about 98%% test accuracy in a few seconds.",
    )
    d = t.add_argument_group("data")
    d.add_argument(
        "--dataset",
        default=DEFAULTS.dataset,
        help="digits (bundled with scikit-learn), fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or mnist",
    )
    d.add_argument("--data-root", default=None, help="where the dataset's files are")
    d.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    _bool(
        d,
        "stratified",
        DEFAULTS.stratified,
        "stratified minibatches: every batch keeps each class's share",
    )
    _bool(
        d,
        "oversample",
        DEFAULTS.oversample,
        "oversample rare classes so every class is in every batch",
    )
    _bool(
        d,
        "normalize",
        DEFAULTS.normalize,
        "per-channel (x - m)/max(sigma, eps) with the training set's statistics",
    )
    d.add_argument(
        "--norm-eps", type=float, default=DEFAULTS.norm_eps, help="the floor eps on sigma"
    )

    m = t.add_argument_group("model")
    m.add_argument(
        "--model",
        choices=MODELS,
        default=DEFAULTS.model,
        help="mlp (--hidden sizes) or cnn (2x [conv 3x3, BatchNorm, ReLU, maxpool 2], "
        "linear 128, linear)",
    )
    m.add_argument(
        "--hidden", type=_sizes, default=DEFAULTS.hidden, help="hidden layer sizes, e.g. 256,128"
    )
    m.add_argument("--activation", choices=ACTIVATIONS, default=DEFAULTS.activation)
    m.add_argument(
        "--dropout",
        type=float,
        default=DEFAULTS.dropout,
        help="dropout probability after each hidden layer",
    )
    m.add_argument(
        "--init",
        choices=INITS,
        default=DEFAULTS.init,
        help="weight initialisation (kaiming: N(0, 2/fan_in))",
    )

    o = t.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    o.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer)
    o.add_argument("--lr", type=float, default=DEFAULTS.lr, help="learning rate")
    o.add_argument("--momentum", type=float, default=DEFAULTS.momentum, help="SGD momentum")
    _bool(o, "nesterov", DEFAULTS.nesterov, "Nesterov momentum (SGD)")
    o.add_argument(
        "--weight-decay",
        type=float,
        default=DEFAULTS.weight_decay,
        help="L2: adds weight_decay*w to the gradient (decoupled for adamw)",
    )
    o.add_argument(
        "--l1",
        type=float,
        default=DEFAULTS.l1,
        help="L1 by soft-thresholding: useless weights become exactly 0",
    )
    o.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=DEFAULTS.schedule,
        help="learning-rate schedule, stepped once per epoch",
    )
    o.add_argument(
        "--warmup-epochs",
        type=int,
        default=DEFAULTS.warmup_epochs,
        help="linear warm-up epochs before the schedule",
    )
    o.add_argument(
        "--step-size",
        type=int,
        default=DEFAULTS.step_size,
        help="epochs between decays (step schedule)",
    )
    o.add_argument(
        "--gamma",
        type=float,
        default=DEFAULTS.gamma,
        help="decay factor (step, multistep, exponential, plateau)",
    )
    o.add_argument(
        "--milestones",
        type=_sizes,
        default=DEFAULTS.milestones,
        help="epochs at which to decay (multistep), e.g. 10,15",
    )

    r = t.add_argument_group("run")
    r.add_argument("--seed", type=int, default=DEFAULTS.seed)
    r.add_argument("--out", default=None, help="output directory (default: runs/DATASET-TIMESTAMP)")
    r.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="continue the interrupted run in DIR (its own options are used)",
    )
    _bool(r, "progress", True, "show a progress bar")

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a trained run")
    e.add_argument("run_dir", metavar="DIR", help="a chainrule train --out directory")
    return parser


def _config(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra", "eval_batch_size"}
    return TrainConfig(**{n: getattr(args, n) for n in names})


def _train(args: argparse.Namespace) -> int:
    from chainrule.training import train

    progress = args.progress and sys.stderr.isatty()
    if args.resume:
        print(f"resuming the run in {args.resume}")
        train(out=args.resume, resume=True, progress=progress)
        return 0
    cfg = _config(args).validate()
    out = args.out or f"runs/{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"training on {cfg.dataset}: "
        f"{'cnn' if cfg.model == 'cnn' else f'mlp {list(cfg.hidden)}'}, {cfg.activation}, "
        f"dropout {cfg.dropout}, {cfg.optimizer} lr {cfg.lr}, {cfg.schedule} schedule, "
        f"{cfg.epochs} epochs -> {out}/"
    )
    try:
        train(cfg, out=out, progress=progress)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the last completed epoch is saved. Continue with:\n"
            f"  chainrule train --resume {out}",
            file=sys.stderr,
        )
        return 130
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from chainrule.training import load_run
    from chainrule.training.files import write_json

    run = load_run(args.run_dir)
    result = run.evaluate()
    classes = run.classes
    print(
        f"{run.cfg.dataset} test split: {len(run.y_test)} examples, accuracy "
        f"{result['accuracy']:.2%}, loss {result['loss']:.4f} (epoch {run.epoch})"
    )
    width = max(5, *(len(c) for c in classes))
    print("confusion matrix (rows: true class, columns: predicted)")
    print(" " * width + "".join(f"{i:>6d}" for i in range(len(classes))))
    for i, row in enumerate(result["confusion"]):
        print(f"{classes[i]:>{width}}" + "".join(f"{v:6d}" for v in row))
    write_json(
        Path(args.run_dir) / "evaluation.json", {**result, "classes": classes, "epoch": run.epoch}
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        return _evaluate(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as exc:
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
