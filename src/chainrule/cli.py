"""The ``chainrule`` command: ``chainrule train``, ``evaluate DIR`` and ``graph [DIR]``."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chainrule.training.config import (
    ACTIVATIONS,
    INITS,
    MODELS,
    OPTIMIZERS,
    PATCH_GRID,
    RECIPES,
    SCHEDULES,
    TRANSFORMER_HEADS,
    TrainConfig,
)

DEFAULTS = TrainConfig()
# The recipes for the 28x28 MNIST family, for the help texts (mnist has the same).
_FAMILY_MLP = RECIPES[("fashion-mnist", "mlp")]
_FAMILY_CNN = RECIPES[("fashion-mnist", "cnn")]
_FAMILY_TRANSFORMER = RECIPES[("fashion-mnist", "transformer")]
# The TrainConfig fields that are command-line options.
CONFIG_OPTIONS = tuple(
    f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("extra", "eval_batch_size")
)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128; got {text!r}") from None


def _number(text: str) -> float:
    """A float option's value: finite, since NaN or inf would train to garbage silently.

    argparse names the option in its message ("argument --lr: ..."); the range of each
    option is checked by ``TrainConfig.validate``, reported the same way.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bool(parser: argparse._ActionsContainer, name: str, default: bool, help_text: str) -> None:
    # _ActionsContainer: the common base of ArgumentParser and argument groups.
    parser.add_argument(
        f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help_text
    )


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None: those options say in their help what
    they default to (the recipe for the dataset and model)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser(defaults: bool = True) -> argparse.ArgumentParser:
    """The command line. ``defaults=False`` leaves out the training options' defaults,
    so that parsing tells which ones the user actually gave (for ``--resume``)."""

    def given_or_default(value: Any) -> Any:
        # SUPPRESS: argparse then sets the option only when it is on the command line.
        return value if defaults else argparse.SUPPRESS

    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Train and evaluate MLPs the lecture's way, with every gradient checkable.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train an MLP (default: the 8x8 digits, in seconds)",
        formatter_class=_DefaultsHelpFormatter,
        description="Train an MLP classifier. With no options: scikit-learn's 8x8 digits, "
        "about 98%% test accuracy in a few seconds.",
    )
    d = t.add_argument_group("data")
    d.add_argument(
        "--dataset",
        default=given_or_default(DEFAULTS.dataset),
        help="digits (bundled with scikit-learn), fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or mnist",
    )
    d.add_argument(
        "--data-root", default=given_or_default(None), help="where the dataset's files are"
    )
    d.add_argument(
        "--batch-size",
        type=int,
        default=given_or_default(None),
        help=f"default {DEFAULTS.batch_size}; {_FAMILY_CNN['batch_size']} on the MNIST "
        "family (mnist, fashion-mnist)",
    )
    _bool(
        d,
        "augment",
        given_or_default(DEFAULTS.augment),
        "random shifts (and mirrors) of the training images, a new draw each epoch; cnn only",
    )
    d.add_argument(
        "--augment-shift",
        type=int,
        default=given_or_default(DEFAULTS.augment_shift),
        help="with --augment: the largest shift in pixels",
    )
    d.add_argument(
        "--augment-flip",
        type=_number,
        default=given_or_default(DEFAULTS.augment_flip),
        help="with --augment: the probability of a left-right mirror (0.5 suits clothes)",
    )
    _bool(
        d,
        "stratified",
        given_or_default(DEFAULTS.stratified),
        "stratified minibatches: every batch keeps each class's share",
    )
    _bool(
        d,
        "oversample",
        given_or_default(DEFAULTS.oversample),
        "oversample rare classes so every class is in every batch",
    )
    _bool(
        d,
        "normalize",
        given_or_default(DEFAULTS.normalize),
        "per-channel (x - m)/max(sigma, eps) with the training set's statistics",
    )
    d.add_argument(
        "--norm-eps",
        type=_number,
        default=given_or_default(DEFAULTS.norm_eps),
        help="the floor eps on sigma",
    )

    m = t.add_argument_group("model")
    m.add_argument(
        "--model",
        choices=MODELS,
        default=given_or_default(DEFAULTS.model),
        help="mlp (--hidden sizes), cnn ([--convs-per-block x (conv 3x3, BatchNorm, "
        "ReLU), maxpool 2] per --channels size, linear 128, linear), lstm (the image row "
        "by row: len(--hidden) LSTM layers of --hidden[0] units, linear on the last step) or "
        "transformer (a 4x4 grid of patches: len(--hidden) pre-norm encoder layers of width "
        "--hidden[0], 4 heads, mean of the tokens, linear)",
    )
    m.add_argument(
        "--channels",
        type=_sizes,
        default=given_or_default(DEFAULTS.channels),
        help="cnn: output channels of each conv block, e.g. 32,64",
    )
    m.add_argument(
        "--convs-per-block",
        type=int,
        default=given_or_default(DEFAULTS.convs_per_block),
        help="cnn: conv 3x3 + BatchNorm + ReLU layers in each block before its maxpool",
    )
    m.add_argument(
        "--hidden",
        type=_sizes,
        default=given_or_default(None),
        help=f"mlp: hidden layer sizes, e.g. 256,128 (default "
        f"{','.join(map(str, DEFAULTS.hidden))}; "
        f"{','.join(map(str, _FAMILY_MLP['hidden']))} on the MNIST family)",
    )
    m.add_argument(
        "--activation", choices=ACTIVATIONS, default=given_or_default(DEFAULTS.activation)
    )
    m.add_argument(
        "--dropout",
        type=_number,
        default=given_or_default(None),
        help=f"dropout probability after each hidden layer (default {DEFAULTS.dropout}; "
        f"{_FAMILY_TRANSFORMER['dropout']} inside the transformer's layers on the MNIST family)",
    )
    m.add_argument(
        "--init",
        choices=INITS,
        default=given_or_default(DEFAULTS.init),
        help="weight initialisation (kaiming: N(0, 2/fan_in))",
    )

    o = t.add_argument_group("optimisation")
    o.add_argument(
        "--epochs",
        type=int,
        default=given_or_default(None),
        help=f"default {DEFAULTS.epochs}; on the MNIST family {_FAMILY_MLP['epochs']} "
        f"for the mlp, {_FAMILY_CNN['epochs']} for the cnn",
    )
    o.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=given_or_default(None),
        help=f"default {DEFAULTS.optimizer}; {_FAMILY_TRANSFORMER['optimizer']} for the "
        "transformer on the MNIST family",
    )
    o.add_argument(
        "--lr",
        type=_number,
        default=given_or_default(None),
        help=f"learning rate (default {DEFAULTS.lr}; {_FAMILY_TRANSFORMER['lr']} for the "
        "transformer on the MNIST family)",
    )
    o.add_argument(
        "--momentum", type=_number, default=given_or_default(DEFAULTS.momentum), help="SGD momentum"
    )
    _bool(o, "nesterov", given_or_default(DEFAULTS.nesterov), "Nesterov momentum (SGD)")
    o.add_argument(
        "--weight-decay",
        type=_number,
        default=given_or_default(None),
        help=f"L2: adds weight_decay*w to the gradient (decoupled for adamw; default "
        f"{DEFAULTS.weight_decay}, {_FAMILY_TRANSFORMER['weight_decay']} for the transformer "
        "on the MNIST family)",
    )
    o.add_argument(
        "--l1",
        type=_number,
        default=given_or_default(DEFAULTS.l1),
        help="L1 by soft-thresholding: useless weights become exactly 0",
    )
    o.add_argument(
        "--label-smoothing",
        type=_number,
        default=given_or_default(DEFAULTS.label_smoothing),
        help="cross-entropy against (1 - eps)*one-hot + eps/classes",
    )
    o.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=given_or_default(DEFAULTS.schedule),
        help="learning-rate schedule, stepped once per epoch (onecycle: once per batch, "
        "peaking at --lr)",
    )
    o.add_argument(
        "--warmup-epochs",
        type=int,
        default=given_or_default(DEFAULTS.warmup_epochs),
        help="linear warm-up epochs before the schedule",
    )
    o.add_argument(
        "--step-size",
        type=int,
        default=given_or_default(DEFAULTS.step_size),
        help="epochs between decays (step schedule)",
    )
    o.add_argument(
        "--gamma",
        type=_number,
        default=given_or_default(DEFAULTS.gamma),
        help="decay factor (step, multistep, exponential, plateau)",
    )
    o.add_argument(
        "--milestones",
        type=_sizes,
        default=given_or_default(DEFAULTS.milestones),
        help="epochs at which to decay (multistep), e.g. 10,15",
    )

    r = t.add_argument_group("run")
    r.add_argument("--seed", type=int, default=given_or_default(DEFAULTS.seed))
    r.add_argument(
        "--device",
        default=given_or_default(DEFAULTS.device),
        help="where to train: cpu, cuda or cuda:N (an NVIDIA GPU through CuPy: pip install "
        "'chainrule[cuda]'); the whole dataset is put on it; with --resume, continue there",
    )
    r.add_argument("--out", default=None, help="output directory (default: runs/DATASET-TIMESTAMP)")
    r.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="continue the run in DIR with its own options; with --epochs N, train it to "
        "N epochs in all (not with the cosine schedule, whose rates depend on the total)",
    )
    _bool(r, "progress", True, "show a progress bar")
    t.set_defaults(parser=t)
    _bool(r, "report", False, "write plots and a self-contained report/report.html (matplotlib)")
    r.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train on N processes: launches mpirun -np N for you (pip install "
        "'chainrule[mpi]'); --batch-size is then the global batch",
    )

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a trained run")
    e.add_argument("run_dir", metavar="DIR", help="a chainrule train --out directory")

    g = sub.add_parser("graph", help="draw a model's forward and gradient graphs")
    g.add_argument(
        "run_dir",
        metavar="DIR",
        nargs="?",
        default=None,
        help="a chainrule train --out directory (default: the default options)",
    )
    g.add_argument("--depth", type=int, default=None, help="collapse modules at this level")
    g.add_argument(
        "--format",
        choices=("svg", "png", "pdf", "dot"),
        default=None,
        help="default: from --out's suffix, else svg",
    )
    g.add_argument("--out", default=None, help="output file (default: graph.FORMAT)")
    return parser


def _config(args: argparse.Namespace) -> TrainConfig:
    """The options on the command line over the recipe for its dataset and model (the
    options without a default in the parser are None when left out)."""
    given = {n: getattr(args, n) for n in CONFIG_OPTIONS if getattr(args, n) is not None}
    return TrainConfig.recipe(**given)


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    from chainrule import distributed as dist

    if args.nproc is not None and not dist.launched_by_mpi():
        return _launch_mpirun(args, argv)
    progress = args.progress and sys.stderr.isatty()
    speak = dist.rank() == 0  # under MPI only rank 0 prints
    if args.resume:
        return _resume(args, argv, progress, speak)
    try:
        cfg = _config(args).validate()
    except ValueError as exc:
        args.parser.error(str(exc))  # usage and the message naming the option; exit 2
    out = args.out or f"runs/{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if dist.world_size() > 1:
        from chainrule.distributed.collectives import all_gather_json

        out = all_gather_json(out)[0]  # rank 0's clock names the run for every rank
    if speak:
        print(
            f"training on {cfg.dataset}: {_describe_model(cfg)}, "
            f"dropout {cfg.dropout}, {cfg.optimizer} lr {cfg.lr}, {cfg.schedule} schedule, "
            f"{cfg.epochs} epochs, batch {cfg.batch_size}"
            f"{'' if cfg.device == 'cpu' else f' on {cfg.device}'} -> {out}/"
        )
    return _run_training(
        out, lambda train: train(cfg, out=out, progress=progress, report=args.report), False
    )


def _describe_model(cfg: TrainConfig) -> str:
    """The model in a few words; the activation only where ``--activation`` applies (the
    LSTM has its own gates, the transformer GELU)."""
    if cfg.model == "mlp":
        return f"mlp {list(cfg.hidden)}, {cfg.activation}"
    if cfg.model == "lstm":
        layers = len(cfg.hidden)
        return f"lstm {layers} layer{'s' if layers > 1 else ''} of {cfg.hidden[0]} over rows"
    if cfg.model == "transformer":
        layers = len(cfg.hidden)
        return (
            f"transformer {layers} layer{'s' if layers > 1 else ''} of {cfg.hidden[0]}, "
            f"{TRANSFORMER_HEADS} heads, {PATCH_GRID * PATCH_GRID} patches"
        )
    convs = "" if cfg.convs_per_block == 1 else f" x {cfg.convs_per_block} convs"
    return f"cnn {list(cfg.channels)}{convs}, {cfg.activation}"


def _resume(args: argparse.Namespace, argv: list[str], progress: bool, speak: bool) -> int:
    """``--resume DIR [--epochs N]``: the run's own options, so any other is refused."""
    given = set(vars(build_parser(defaults=False).parse_args(argv))) & set(CONFIG_OPTIONS)
    # --device moves the run, it does not change what it computes: allowed, as --epochs.
    others = sorted(given - {"epochs", "device"})
    if others:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in others)
        args.parser.error(
            f"--resume continues the run with the options it was started with; {names} "
            f"cannot change them (only --epochs and --device can); start a new run to "
            f"train differently"
        )
    epochs = args.epochs if "epochs" in given else None
    device = args.device if "device" in given else None
    target = f" to {epochs} epochs" if epochs is not None else ""
    if speak:
        print(f"resuming the run in {args.resume}{target}")
    return _run_training(
        args.resume,
        lambda train: train(
            out=args.resume,
            resume=True,
            progress=progress,
            epochs=epochs,
            report=args.report,
            device=device,
        ),
        True,
        f" --epochs {epochs}" if epochs is not None else "",
    )


def _run_training(
    out: str, start: Callable[[Callable[..., Any]], Any], resumed: bool, more: str = ""
) -> int:
    """Run ``start(train)``; on Ctrl-C say what was saved and how to go on, exit 130.

    ``more``: options to repeat after ``--resume DIR`` in the hint (``--epochs N``).
    """
    try:
        from chainrule.training import train

        start(train)
    except KeyboardInterrupt:
        checkpoint = Path(out) / "checkpoint.safetensors"
        if checkpoint.exists():
            message = (
                f"interrupted; the last completed epoch is saved in {out}. Continue with:\n"
                f"  chainrule train --resume {out}{more}"
            )
        elif resumed:  # cannot happen after a successful start, but say it plainly
            message = f"interrupted; {out} holds no checkpoint"
        else:
            message = (
                "interrupted before the first epoch ended: nothing was saved and the run "
                "directory was removed. Start over with the same command."
            )
        print(f"\n{message}", file=sys.stderr)
        return 130
    return 0


def _launch_mpirun(args: argparse.Namespace, argv: list[str]) -> int:
    """Run this same command on ``--nproc`` processes under mpirun; its exit status."""
    import subprocess

    from chainrule.distributed.launch import mpirun_command

    rest = []
    skip = False
    for a in argv:  # the command line without --nproc
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    if args.out is None and args.resume is None:
        rest += ["--out", f"runs/{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"]
    command = mpirun_command(args.nproc, [sys.executable, "-m", "chainrule", *rest])
    return subprocess.run(command).returncode


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


def _graph(args: argparse.Namespace) -> int:
    from chainrule.viz.model_graph import draw_model

    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "") or "svg"
    path = draw_model(args.run_dir, depth=args.depth).render(args.out or f"graph.{fmt}", fmt)
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args, argv)
        if args.command == "graph":
            return _graph(args)
        return _evaluate(args)
    except (ValueError, OSError, ImportError, RuntimeError) as exc:
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
