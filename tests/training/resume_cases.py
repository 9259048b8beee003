"""The check every model's training tests share: a run interrupted after its first epoch
and resumed ends with weights bit-identical to the uninterrupted run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.training import TrainConfig, train


class StopError(Exception):
    """Raised from ``on_epoch_end`` to interrupt a run."""


def assert_resume_is_bit_identical(cfg: TrainConfig, folder: Path) -> dict[str, Any]:
    """Train ``cfg`` to the end in ``folder/full``; again in ``folder/cut``, stopped after
    epoch 1 and resumed; assert both final weights equal bit for bit. Returns the full
    run's weights (for checks of their own)."""
    train(cfg, out=folder / "full", log=None)

    def stop_after_one(metrics: dict[str, Any]) -> None:
        if metrics["epoch"] == 1:
            raise StopError

    with pytest.raises(StopError):
        train(cfg, out=folder / "cut", log=None, on_epoch_end=stop_after_one)
    train(out=folder / "cut", resume=True, log=None)
    full = cr.load(folder / "full" / "model.safetensors")
    cut = cr.load(folder / "cut" / "model.safetensors")
    assert full.keys() == cut.keys()
    for key in full:
        assert np.array_equal(full[key].numpy(), cut[key].numpy()), key
    return dict(full)
