"""``chainrule graph``: draw the model of a run directory, or of the default options.

The model is rebuilt from the run's ``config.json`` (an MLP's sizes read from the saved
weights; a CNN's, LSTM's or transformer's from the options and the dataset's image
shape) with its weights loaded, so no dataset is needed; run once on a batch of
``batch_size`` examples in training mode (dropout included), followed by the
cross-entropy loss, and drawn with ``viz.draw`` grouped by module.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import chainrule as cr
from chainrule import nn
from chainrule.training.config import TrainConfig
from chainrule.training.model import build_mlp, build_model
from chainrule.viz.drawing import Drawing, draw
from chainrule.viz.record import record

# The input shape of each dataset the trainer knows (channels, height, width); classes.
_SHAPES = {
    "digits": ((1, 8, 8), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
}


def _weights(run_dir: Path) -> dict[str, Any]:
    """The model's state dict from ``model.safetensors``, or from the checkpoint."""
    from chainrule.serialization import load

    if (run_dir / "model.safetensors").exists():
        return dict(load(run_dir / "model.safetensors"))
    if (run_dir / "checkpoint.safetensors").exists():
        state = load(run_dir / "checkpoint.safetensors")
        return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    raise FileNotFoundError(
        f"{run_dir}: no model.safetensors or checkpoint.safetensors; is this a "
        f"chainrule train --out directory?"
    )


def model_for(run_dir: str | Path | None) -> tuple[nn.Module, tuple[int, ...], int, TrainConfig]:
    """The run's model (weights loaded), its example input shape, classes and options."""
    if run_dir is None:
        cfg = TrainConfig()
        default_shape, classes = _SHAPES[cfg.dataset]
        cr.manual_seed(cfg.seed)
        return build_mlp(cfg, math.prod(default_shape), classes), default_shape, classes, cfg
    folder = Path(run_dir)
    config = folder / "config.json"
    if not config.exists():
        raise FileNotFoundError(
            f"{folder}: no config.json; is this a chainrule train --out directory?"
        )
    cfg = TrainConfig.from_json(config.read_text(encoding="utf-8"))
    state = _weights(folder)
    if cfg.model != "mlp":
        # The CNN, LSTM and transformer read images of their dataset's shape; their layer
        # sizes come from the options, so the dataset's shape and classes rebuild them.
        image, image_classes = _SHAPES[cfg.dataset]
        cr.manual_seed(cfg.seed)
        model = build_model(cfg, image, image_classes)
        model.load_state_dict(state)
        return model, image, image_classes, cfg
    matrices = sorted(
        (k for k, v in state.items() if k.endswith("weight") and len(v.shape) == 2),
        key=lambda k: int(k.split(".")[0]),
    )
    in_features = state[matrices[0]].shape[1]
    classes = state[matrices[-1]].shape[0]
    model = build_mlp(cfg, in_features, classes)
    model.load_state_dict(state)
    shape: tuple[int, ...] = _SHAPES.get(cfg.dataset, ((in_features,), classes))[0]
    if math.prod(shape) != in_features:
        shape = (in_features,)
    return model, shape, classes, cfg


def draw_model(run_dir: str | Path | None = None, depth: int | None = None) -> Drawing:
    """The forward and gradient graphs of a run's model and its loss, by module.

    Args:
        run_dir: a ``chainrule train --out`` directory; None: the default options.
        depth: collapse each module at this level into a box (1: one box per layer).
    """
    model, shape, classes, cfg = model_for(run_dir)
    loss_fn = nn.CrossEntropyLoss()
    batch = cfg.batch_size
    x = cr.randn(batch, *shape)
    targets = cr.tensor([i % classes for i in range(batch)])
    model.train()
    with record({"model": model, "loss": loss_fn}) as trace:
        loss = loss_fn(model(x), targets)
    where = f"run {run_dir}" if run_dir is not None else "default options"
    title = f"{where}: batch of {batch}, cross-entropy loss"
    return draw(loss, trace=trace, depth=depth, title=title)
