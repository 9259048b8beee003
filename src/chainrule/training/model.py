"""The model, optimiser and schedule that a ``TrainConfig`` describes."""

from __future__ import annotations

import math
from typing import Any

import chainrule as cr
from chainrule import nn, optim
from chainrule.optim import lr_scheduler
from chainrule.training.config import PATCH_GRID, TRANSFORMER_HEADS, TrainConfig

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
# The gain each activation asks of Kaiming init (``nn.init.calculate_gain``'s names).
_GAIN_NAME = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "gelu": "relu",
}


def build_mlp(cfg: TrainConfig, in_features: int, num_classes: int) -> nn.Sequential:
    """Flatten → [Linear → activation → Dropout] per hidden size → Linear (logits).

    Weights are drawn from the default generator, so ``cr.manual_seed`` fixes them.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for size in cfg.hidden:
        layers.append(nn.Linear(width, size))
        layers.append(_ACTIVATIONS[cfg.activation]())
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = size
    layers.append(nn.Linear(width, num_classes))
    model = nn.Sequential(*layers)
    if cfg.init != "default":
        _init_weights(cfg, model, (nn.Linear,))
    return model


CNN_HIDDEN = 128


def build_cnn(cfg: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """The CNN of ``--model cnn``, for (C, H, W) images, one block per ``cfg.channels`` size:

        [ (Conv2d 3×3 (padding 1) → BatchNorm2d → activation) × cfg.convs_per_block
          → MaxPool2d 2 ] per size
        → Flatten → Dropout → Linear (c·⌊H/2ᵏ⌋·⌊W/2ᵏ⌋ → 128) → activation → Dropout
        → Linear (128 → classes)

    With the defaults (32 and 64 channels, two convolutions per block, as VGG stacks
    them: two 3×3 layers see 5×5 with one more non-linearity), 28×28 images (the MNIST
    family) end in 7×7 maps (a 3136 → 128 layer; 468k parameters, 401k of them in that
    layer) and the 8×8 digits in 2×2. Weights are initialised as ``build_mlp`` does
    (``cfg.init``), the convolutions by their fan-in (C/groups · 3 · 3).
    """
    blocks = len(cfg.channels)
    if len(image_shape) != 3 or min(image_shape[1:]) < 2**blocks:
        raise ValueError(
            f"--model cnn with {blocks} blocks (--channels {','.join(map(str, cfg.channels))}) "
            f"needs images (C, H, W) of at least {2**blocks}x{2**blocks} pixels (each block "
            f"halves them), got examples of shape {tuple(image_shape)}; give fewer "
            f"--channels, or --model mlp for flat data"
        )
    channels, height, width = (int(v) for v in image_shape)
    act = _ACTIVATIONS[cfg.activation]
    layers: list[nn.Module] = []
    for out_channels in cfg.channels:
        for _ in range(cfg.convs_per_block):
            layers += [
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                act(),
            ]
            channels = out_channels
        layers.append(nn.MaxPool2d(2))
        height, width = height // 2, width // 2
    layers.append(nn.Flatten())
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers += [nn.Linear(channels * height * width, CNN_HIDDEN), act()]
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    layers.append(nn.Linear(CNN_HIDDEN, num_classes))
    model = nn.Sequential(*layers)
    if cfg.init != "default":
        _init_weights(cfg, model, (nn.Conv2d, nn.Linear))
    return model


class RowLSTM(nn.Module):
    """An image read row by row: H steps of C·W features through an LSTM, the last
    step's hidden state through dropout and a linear layer to the logits (the classic
    sequential-MNIST classifier, and a graph whose depth is the number of rows).

    Shape:
        (N, C, H, W) or (N, H, W) → (N, classes).
    """

    def __init__(
        self, rows: int, features: int, hidden: int, layers: int, classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.rows, self.features = rows, features
        self.lstm = nn.LSTM(features, hidden, num_layers=layers, batch_first=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: Any) -> Any:
        n = x.shape[0]
        if x.ndim == 4:  # (N, C, H, W): each row's C·W values are one step's input
            x = x.permute(0, 2, 1, 3)
        out, _ = self.lstm(x.reshape(n, self.rows, self.features))
        return self.head(self.dropout(out[:, -1]))


def build_lstm(cfg: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> RowLSTM:
    """``--model lstm``: a ``RowLSTM`` with ``len(cfg.hidden)`` layers of
    ``cfg.hidden[0]`` units, PyTorch's initialisation (U(±1/√H); ``--init`` does not
    apply), ``cfg.dropout`` before the output layer."""
    if len(image_shape) not in (2, 3):
        raise ValueError(
            f"--model lstm reads images row by row: it needs examples (C, H, W) or (H, W), "
            f"got {tuple(image_shape)}; use --model mlp for flat data"
        )
    rows = int(image_shape[-2])
    features = int(math.prod(image_shape)) // rows
    return RowLSTM(rows, features, cfg.hidden[0], len(cfg.hidden), num_classes, cfg.dropout)


class PatchTransformer(nn.Module):
    """A small vision transformer (Dosovitskiy et al., 2021): the image cut into a
    ``grid`` × ``grid`` grid of patches, each patch's pixels a token through a linear
    embedding plus a learned position embedding, a stack of pre-norm encoder layers
    (GELU, feed-forward width 2·d), a final LayerNorm, the tokens' mean, and a linear
    layer to the logits.

    Shape:
        (N, C, H, W) or (N, H, W) with H and W multiples of ``grid`` → (N, classes).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        d_model: int,
        layers: int,
        heads: int,
        classes: int,
        dropout: float,
        grid: int = PATCH_GRID,
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.image_shape, self.grid = image_shape, grid
        self.patch = (height // grid, width // grid)
        self.embed = nn.Linear(channels * self.patch[0] * self.patch[1], d_model)
        self.position = nn.Parameter(cr.zeros(1, grid * grid, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=2 * d_model,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: Any) -> Any:
        n = x.shape[0]
        c = self.image_shape[0]
        (ph, pw), g = self.patch, self.grid
        # (N, C, g, ph, g, pw) → (N, g, g, C, ph, pw): each patch's pixels together
        patches = x.reshape(n, c, g, ph, g, pw).permute(0, 2, 4, 1, 3, 5)
        tokens = self.embed(patches.reshape(n, g * g, c * ph * pw)) + self.position
        return self.head(self.encoder(tokens).mean(1))


def build_transformer(
    cfg: TrainConfig, image_shape: tuple[int, ...], num_classes: int
) -> PatchTransformer:
    """``--model transformer``: a ``PatchTransformer`` over a 4 × 4 grid of patches (28×28
    images: 16 patches of 7×7), ``len(cfg.hidden)`` encoder layers of width
    ``cfg.hidden[0]`` with 4 heads, ``cfg.dropout`` inside them; PyTorch's
    initialisation (``--init`` does not apply)."""
    shape = tuple(int(v) for v in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or shape[1] % PATCH_GRID or shape[2] % PATCH_GRID:
        raise ValueError(
            f"--model transformer cuts each image into a {PATCH_GRID}x{PATCH_GRID} grid of "
            f"patches: it needs examples (C, H, W) or (H, W) with H and W multiples of "
            f"{PATCH_GRID}, got {tuple(image_shape)}; use --model mlp for flat data"
        )
    if cfg.hidden[0] % TRANSFORMER_HEADS:
        raise ValueError(
            f"--model transformer has {TRANSFORMER_HEADS} attention heads: --hidden "
            f"{cfg.hidden[0]} must be a multiple of {TRANSFORMER_HEADS}"
        )
    image = (shape[0], shape[1], shape[2])
    return PatchTransformer(
        image, cfg.hidden[0], len(cfg.hidden), TRANSFORMER_HEADS, num_classes, cfg.dropout
    )


def build_model(cfg: TrainConfig, example_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model ``cfg.model`` names, for examples of ``example_shape`` (without N)."""
    if cfg.model == "cnn":
        return build_cnn(cfg, example_shape, num_classes)
    if cfg.model == "lstm":
        return build_lstm(cfg, example_shape, num_classes)
    if cfg.model == "transformer":
        return build_transformer(cfg, example_shape, num_classes)
    return build_mlp(cfg, int(math.prod(example_shape)), num_classes)


def _init_weights(cfg: TrainConfig, model: nn.Module, kinds: tuple[type, ...]) -> None:
    """Kaiming (by fan-in, for the activation) on every layer but the last, which feeds the
    softmax and gets Xavier; or Xavier everywhere. Biases start at 0.
    """
    layers = [m for m in model.modules() if isinstance(m, kinds)]
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        if cfg.init == "kaiming" and not last:
            nn.init.kaiming_normal_(layer.weight, nonlinearity=_GAIN_NAME[cfg.activation])
        else:
            # The output layer feeds a softmax, not the activation: Xavier keeps its
            # logits at unit scale.
            nn.init.xavier_normal_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> optim.Optimizer:
    params = list(model.parameters())
    common: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "l1": cfg.l1}
    if cfg.optimizer == "sgd":
        return optim.SGD(params, momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    if cfg.optimizer == "adam":
        return optim.Adam(params, **common)
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, **common)
    if cfg.optimizer == "rmsprop":
        return optim.RMSprop(params, **common)
    return optim.Adagrad(params, **common)


def build_scheduler(cfg: TrainConfig, opt: optim.Optimizer) -> Any:
    """A per-epoch schedule, preceded by a linear warm-up when ``warmup_epochs`` > 0.
    None for "onecycle", a per-batch schedule that needs the loader's length
    (``build_one_cycle``)."""
    decay_epochs = cfg.epochs - cfg.warmup_epochs
    main: Any
    if cfg.schedule in ("none", "onecycle"):
        main = None
    elif cfg.schedule == "step":
        main = lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.schedule == "multistep":
        main = lr_scheduler.MultiStepLR(opt, milestones=cfg.milestones, gamma=cfg.gamma)
    elif cfg.schedule == "exponential":
        main = lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    elif cfg.schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(opt, T_max=decay_epochs)
    else:
        main = lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.gamma, patience=2)
    if cfg.warmup_epochs == 0:
        return main
    if main is None or cfg.schedule == "plateau":
        raise ValueError("--warmup-epochs needs a --schedule other than none and plateau")
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=cfg.warmup_epochs)
    return lr_scheduler.SequentialLR(opt, [warmup, main], milestones=[cfg.warmup_epochs])


def build_one_cycle(
    cfg: TrainConfig, opt: optim.Optimizer, steps_per_epoch: int
) -> lr_scheduler.OneCycleLR:
    """``--schedule onecycle``: one cycle over the whole run, stepped per batch, peaking
    at ``cfg.lr``. It cycles Adam's β₁, or SGD's momentum when ``--momentum`` is set (the
    0.85–0.95 of the policy then replaces it); the other optimisers keep theirs."""
    cycle = cfg.optimizer in ("adam", "adamw") or (cfg.optimizer == "sgd" and cfg.momentum > 0)
    return lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
        cycle_momentum=cycle,
    )  # fmt: skip
