"""Loading a state dict into a module: every mismatch reported at once, values copied in
place so the Parameter objects (and the optimisers holding them) stay the same.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chainrule import backend
from chainrule.autograd.grad_mode import no_grad
from chainrule.errors import ShapeError
from chainrule.tensor import Tensor


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _array_of(value: Any) -> Any:
    """The array of a state-dict value (a Tensor, an array of either device, or host
    data such as a list)."""
    if isinstance(value, Tensor):
        return value.data
    return value if backend.is_device_array(value) else backend.to_host(value)


def load_state(self: Any, state_dict: Any, strict: bool) -> IncompatibleKeys:
    """``Module.load_state_dict`` (see there)."""
    own = self.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = []
    for key, target in own.items():
        if key in state_dict:
            shape = tuple(_array_of(state_dict[key]).shape)
            if shape != target.shape:
                mismatched.append(
                    f"{key}: the model has {target.shape}, the state dict has {shape}"
                )
    if mismatched:
        raise ShapeError(
            f"load_state_dict into {type(self).__name__}: wrong shapes for "
            f"{len(mismatched)} key(s):\n  "
            + "\n  ".join(mismatched)
            + "\nWas the state dict saved from a model with other layer sizes?"
        )
    if strict and (missing or unexpected):
        lines = []
        if missing:
            lines.append(f"missing keys (in the model, not in the state dict): {missing}")
        if unexpected:
            lines.append(f"unexpected keys (in the state dict, not in the model): {unexpected}")
        raise KeyError(
            f"load_state_dict into {type(self).__name__} (strict=True):\n  "
            + "\n  ".join(lines)
            + "\nPass strict=False to load the keys that match."
        )
    with no_grad():
        for key, target in own.items():
            if key in state_dict:
                # The targets share memory with the live parameters: copying into
                # them updates the model and keeps the Parameter objects. The value is
                # first copied onto the parameter's device (a GPU state dict loads into a
                # CPU model and the other way round).
                value = backend.to_device(_array_of(state_dict[key]), target.device)
                target.data[...] = value
                target.increment_version()
    return IncompatibleKeys(missing, unexpected)
