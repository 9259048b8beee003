"""The options of a training run, with their defaults, checks and JSON form."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

MODELS = ("mlp", "cnn", "lstm", "transformer")
# --model transformer's fixed shape: the image cut into a PATCH_GRID × PATCH_GRID grid of
# patches (28×28: 16 tokens of 7×7 pixels), attended to by TRANSFORMER_HEADS heads.
PATCH_GRID = 4
TRANSFORMER_HEADS = 4
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
INITS = ("kaiming", "xavier", "default")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "multistep", "exponential", "cosine", "plateau", "onecycle")

# The options ``chainrule train`` takes from here when its command line leaves them out,
# by (dataset, model). ``TrainConfig``'s own defaults suit the bundled 8×8 digits (1,797
# images, seconds per epoch); the MNIST family has 60,000 images of 28×28, where 40
# epochs of 32 would take hours, so these are the README's recipes for them.
_MNIST_FAMILY_MLP: dict[str, Any] = {"epochs": 20, "batch_size": 128, "hidden": (1024, 512)}
_MNIST_FAMILY_CNN: dict[str, Any] = {"epochs": 15, "batch_size": 128}
_MNIST_FAMILY_LSTM: dict[str, Any] = {"epochs": 10, "batch_size": 128, "hidden": (128,)}
# Transformers want less dropout than the MLP's 0.3 and decoupled weight decay (AdamW).
_MNIST_FAMILY_TRANSFORMER: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "hidden": (64, 64),
    "dropout": 0.1,
    "optimizer": "adamw",
    "lr": 2e-3,
    "weight_decay": 0.05,
}
RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("fashion-mnist", "mlp"): _MNIST_FAMILY_MLP,
    ("fashion-mnist", "cnn"): _MNIST_FAMILY_CNN,
    ("fashion-mnist", "lstm"): _MNIST_FAMILY_LSTM,
    ("fashion-mnist", "transformer"): _MNIST_FAMILY_TRANSFORMER,
    ("mnist", "mlp"): _MNIST_FAMILY_MLP,
    ("mnist", "cnn"): _MNIST_FAMILY_CNN,
    ("mnist", "lstm"): _MNIST_FAMILY_LSTM,
    ("mnist", "transformer"): _MNIST_FAMILY_TRANSFORMER,
}


@dataclass
class TrainConfig:
    """Everything that decides a training run. The defaults train an MLP on scikit-learn's
    8×8 digits to about 98% test accuracy in a few seconds.

    Model: ``model`` "mlp", "cnn" (the CNN of ``training.model.build_cnn``: one
    block of ``convs_per_block`` conv–BatchNorm–ReLU layers and a maxpool per entry of
    ``channels``, then two linear layers), "lstm" (``training.model.RowLSTM``: the image
    read row by row by ``len(hidden)`` LSTM layers of ``hidden[0]`` units, then a linear
    layer on the last step) or "transformer" (``training.model.PatchTransformer``: a 4×4
    grid of patches through ``len(hidden)`` pre-norm encoder layers of width
    ``hidden[0]``, 4 heads, the tokens' mean, a linear layer). MLP: ``hidden`` sizes
    of an MLP with ``activation`` and ``dropout`` after each hidden layer. Weights
    initialised by ``init`` (Kaiming: N(0, 2/fan_in) for ReLU-like activations, the
    lecture's advice; Xavier; or PyTorch's default uniform).

    Optimisation: ``optimizer`` with ``lr`` (``momentum``/``nesterov`` for SGD), L2
    ``weight_decay`` (added to the gradient; decoupled for AdamW), L1 ``l1`` (proximal:
    useless weights become exactly 0), ``label_smoothing`` of the cross-entropy's
    targets, a per-epoch ``schedule`` after ``warmup_epochs`` of
    linear warm-up.

    Data: ``stratified`` batches keep every class's share in each minibatch (the lecture's
    advice), ``oversample`` forces every class into every batch, ``normalize`` applies the
    lecture's per-channel (x − m)/max(σ, ε) with the training set's statistics;
    ``augment`` (cnn only) shifts each training image by up to ``augment_shift`` pixels
    and mirrors it left-right with probability ``augment_flip`` (0.5 suits clothes, 0
    digits), a new draw every epoch (``data.augment.RandomShiftFlip``).

    Device: ``device`` "cpu" (default) or "cuda" / "cuda:N" (a GPU through CuPy): the
    model, its optimiser state and the whole dataset live there; the weights are drawn on
    the host first, so a seed gives the same starting point on every device.
    """

    dataset: str = "digits"
    data_root: str | None = None
    epochs: int = 40
    batch_size: int = 32
    model: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    channels: tuple[int, ...] = (32, 64)
    convs_per_block: int = 2
    activation: str = "relu"
    dropout: float = 0.3
    init: str = "kaiming"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    l1: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    stratified: bool = True
    oversample: bool = False
    normalize: bool = True
    norm_eps: float = 1e-3
    augment: bool = False
    augment_shift: int = 2
    augment_flip: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0
    eval_batch_size: int = 1000
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def recipe(cls, dataset: str = "digits", model: str = "mlp", **options: Any) -> TrainConfig:
        """The options ``chainrule train --dataset DATASET --model MODEL`` trains with:
        the defaults, then the recipe for that pair (``RECIPES``: epochs, batch size and
        MLP sizes for the MNIST family), then ``options``, which win over both.

        ``TrainConfig.recipe("fashion-mnist", "cnn", seed=1)`` is the README's CNN run.
        """
        return cls(dataset=dataset, model=model, **{**RECIPES.get((dataset, model), {}), **options})

    def validate(self) -> TrainConfig:
        """Check every option; raise ``ValueError`` naming the option and what to give."""
        from chainrule.data.datasets import DATASETS

        _choice("dataset", self.dataset, tuple(sorted(DATASETS)))
        _choice("model", self.model, MODELS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size", "convs_per_block"):
            _whole(name, getattr(self, name), 1)
        _whole("warmup_epochs", self.warmup_epochs, 0)
        _whole("seed", self.seed, 0)
        if any(not isinstance(h, numbers.Integral) or h < 1 for h in self.hidden):
            raise ValueError(f"--hidden sizes must be positive, got {list(self.hidden)}")
        if not self.channels or any(
            not isinstance(c, numbers.Integral) or c < 1 for c in self.channels
        ):
            raise ValueError(
                f"--channels must be one or more positive sizes, got {list(self.channels)}"
            )
        if any(not isinstance(m, numbers.Integral) or m < 1 for m in self.milestones):
            raise ValueError(f"--milestones must be positive epochs, got {list(self.milestones)}")
        # A NaN or infinite number trains to garbage (--lr inf: every weight NaN after one
        # step, 10% accuracy) without any error, so every float must be finite.
        _number("lr", self.lr, low=0.0, low_open=True)
        _number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        _number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _number("weight_decay", self.weight_decay, low=0.0)
        _number("l1", self.l1, low=0.0)
        _number("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        _number("norm_eps", self.norm_eps, low=0.0, low_open=True)
        # gamma multiplies the learning rate: a negative one makes it negative (the steps
        # then climb the loss), one above 1 makes a "decay" grow it.
        _number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        if self.schedule == "plateau" and self.gamma == 1.0:
            raise ValueError("--gamma must be < 1 with --schedule plateau (1 never reduces)")
        if self.schedule == "onecycle" and self.warmup_epochs:
            raise ValueError(
                "--warmup-epochs with --schedule onecycle: the one-cycle policy warms up "
                "by itself (its first 30% of the steps); leave --warmup-epochs at 0"
            )
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"--warmup-epochs must be in [0, epochs), got "
                f"{self.warmup_epochs} with {self.epochs} epochs"
            )
        _whole("augment_shift", self.augment_shift, 0)
        _number("augment_flip", self.augment_flip, low=0.0, high=1.0)
        if self.augment and self.model != "cnn":
            raise ValueError("--augment shifts images: it needs --model cnn")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("--nesterov needs --optimizer sgd with a non-zero --momentum")
        _device(self.device)
        return self

    def continued(self, epochs: int, completed: int) -> TrainConfig:
        """These options trained to ``epochs`` epochs in all, for ``--resume DIR --epochs N``.

        Honoured only when the result is exactly the run that a fresh start with
        ``--epochs N`` would give, bit for bit: the step, multistep, exponential and
        plateau schedules (and none) do not depend on the total, so the first
        ``completed`` epochs are the same either way. The cosine schedule's rate at every
        epoch depends on the total (T_max = epochs − warm-up), so changing it would
        change the epochs already trained: that is refused.

        Raises:
            ValueError: naming ``--epochs`` and what to do instead.
        """
        _whole("epochs", epochs, 1)
        if epochs == self.epochs:
            return self
        if epochs < completed:
            raise ValueError(
                f"--epochs {epochs} with --resume: this run has already completed "
                f"{completed} epochs; give --epochs of at least {completed}"
            )
        if self.schedule in ("cosine", "onecycle"):
            raise ValueError(
                f"--epochs {epochs} with --resume: this run's {self.schedule} schedule was "
                f"laid out for {self.epochs} epochs (the learning rate of every epoch "
                f"depends on the total), so training it to {epochs} would not give the run "
                f"that --epochs {epochs} gives from the start; resume without --epochs, or "
                f"start a new run with --epochs {epochs}"
            )
        return dataclasses.replace(self, epochs=epochs).validate()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown training options in saved config: {unknown}")
        for name in ("hidden", "channels", "milestones"):
            if name in raw:
                raw[name] = tuple(raw[name])
        # Runs saved before --convs-per-block existed had one convolution per block.
        raw.setdefault("convs_per_block", 1)
        return cls(**raw)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"--{name} must be one of {', '.join(allowed)}; got {value!r}")


def _device(spec: object) -> None:
    """Raise ``ValueError`` unless ``spec`` names a device this machine has; for a GPU
    the message says what is missing (CuPy, a GPU) and how to install it."""
    from chainrule import backend
    from chainrule.device import Device
    from chainrule.errors import DeviceError

    try:
        device = Device(spec)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--device: {exc}") from None
    if device.type == "cpu":
        return
    try:
        count = backend.accelerator().device_count()
    except DeviceError as exc:
        raise ValueError(f"--device {spec}: {exc}; or train with --device cpu") from None
    if device.index is not None and device.index >= count:
        raise ValueError(
            f"--device {spec}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
        )


def _whole(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(
            f"--{name.replace('_', '-')} must be a whole number >= {low}, got {value!r}"
        )


def _number(
    name: str,
    value: float,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise unless ``value`` is a finite number in the interval, naming the option."""
    option = f"--{name.replace('_', '-')}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{option} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        if high == math.inf:
            wanted = f"{'>' if low_open else '>='} {low:g}"
        else:
            wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{option} must be {wanted}, got {value!r}")
