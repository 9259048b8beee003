"""Checkpoints: everything a run needs to continue, in one safetensors file.

Tensors: the model's ``state_dict`` under ``model.``, the optimiser's state arrays under
``optimizer.``, the normaliser's statistics under ``normalizer.``. Metadata (JSON
strings): the options, the epoch reached, the optimiser's and scheduler's numbers, and
the positions of both random streams (dropout and shuffling), so that a resumed run
continues bit for bit where the interrupted one stopped.

Everything is written as host (CPU) copies, whatever device the run trains on, so a
checkpoint made on a GPU opens anywhere; ``Run.restore`` puts it back on the run's device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chainrule import backend
from chainrule import random as cr_random
from chainrule.optim import optimizer_state_from_flat, optimizer_state_to_flat
from chainrule.serialization import CorruptFileError, load, load_metadata, save
from chainrule.tensor import Tensor

FORMAT = "chainrule-checkpoint/1"


def save_checkpoint(
    path: Path,
    *,
    config_json: str,
    epoch: int,
    model: Any,
    opt: Any,
    scheduler: Any,
    normalizer: Any,
    loader_generator: cr_random.Generator,
    history: list[dict[str, Any]],
    world_size: int = 1,
) -> None:
    tensors: dict[str, Tensor] = {
        f"model.{k}": host_tensor(v) for k, v in model.state_dict().items()
    }
    opt_arrays, opt_meta = optimizer_state_to_flat(opt.state_dict(), prefix="optimizer.")
    tensors.update({k: Tensor(v) for k, v in opt_arrays.items()})
    metadata = {
        "format": FORMAT,
        "config": config_json,
        "epoch": str(epoch),
        "scheduler": json.dumps(scheduler.state_dict() if scheduler is not None else None),
        "rng.default": json.dumps(cr_random.get_rng_state()),
        "rng.loader": json.dumps(loader_generator.get_state()),
        "history": json.dumps(history),
        "world_size": str(world_size),  # processes that trained it (chainrule.distributed)
        **opt_meta,
    }
    if normalizer is not None:
        state = normalizer.state_dict()
        tensors["normalizer.mean"] = host_tensor(state["mean"])
        tensors["normalizer.std"] = host_tensor(state["std"])
        metadata["normalizer"] = json.dumps(
            {k: v for k, v in state.items() if k not in ("mean", "std")}
        )
    save(tensors, path, metadata=metadata)


def host_tensor(t: Tensor) -> Tensor:
    """``t`` with its values in host memory (itself on the CPU: saving copies anyway)."""
    return t if not backend.is_device_array(t.data) else Tensor(backend.to_host(t.data))


class Checkpoint:
    """A checkpoint read back: its tensors and its metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tensors = load(path)
        self.metadata = load_metadata(path)
        if self.metadata.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not a chainrule training checkpoint (format "
                f"{self.metadata.get('format')!r}, expected {FORMAT!r})"
            )
        self._check_metadata()

    def _check_metadata(self) -> None:
        # Parsed once here so that a damaged entry (a file without checksums, edited by
        # hand or another tool) is an error naming the file and the entry, not a raw
        # JSONDecodeError or KeyError later.
        for key in ("config", "epoch", "scheduler", "rng.default", "rng.loader", "history"):
            try:
                json.loads(self.metadata[key])
            except (KeyError, ValueError, RecursionError) as exc:
                problem = "missing" if isinstance(exc, KeyError) else f"not valid JSON ({exc})"
                raise CorruptFileError(
                    f"{self.path}: the checkpoint's {key!r} entry is {problem}; the file is "
                    f"damaged, restore a copy or start a new run"
                ) from exc
        if not self.metadata["epoch"].isdigit():
            raise CorruptFileError(
                f"{self.path}: the checkpoint's 'epoch' entry is "
                f"{self.metadata['epoch']!r}, not a count; the file is damaged"
            )

    @property
    def epoch(self) -> int:
        return int(self.metadata["epoch"])

    @property
    def world_size(self) -> int:
        """The number of processes that trained the run (1 for checkpoints before MPI)."""
        return int(self.metadata.get("world_size", "1"))

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(json.loads(self.metadata["history"]))

    def model_state(self) -> dict[str, Tensor]:
        return {k[len("model.") :]: v for k, v in self.tensors.items() if k.startswith("model.")}

    def optimizer_state(self) -> dict[str, Any]:
        arrays = {k: v.data for k, v in self.tensors.items() if k.startswith("optimizer.")}
        return optimizer_state_from_flat(arrays, self.metadata, prefix="optimizer.")

    def scheduler_state(self) -> Any:
        return json.loads(self.metadata["scheduler"])

    def normalizer_state(self) -> dict[str, Any] | None:
        if "normalizer" not in self.metadata:
            return None
        state: dict[str, Any] = dict(json.loads(self.metadata["normalizer"]))
        state["mean"] = self.tensors["normalizer.mean"]
        state["std"] = self.tensors["normalizer.std"]
        return state

    def restore_rng(self, loader_generator: cr_random.Generator) -> None:
        cr_random.set_rng_state(json.loads(self.metadata["rng.default"]))
        loader_generator.set_state(json.loads(self.metadata["rng.loader"]))
