"""An optimizer's state dict in flat form: named arrays plus JSON strings (safetensors).

A safetensors file holds a flat ``{name: array}`` mapping and a ``{str: str}`` metadata
block. ``optimizer_state_to_flat`` splits ``Optimizer.state_dict()`` into those two
parts (arrays under ``"{prefix}state.{index}.{name}"``, everything else as JSON), and
``optimizer_state_from_flat`` puts them back together, so a checkpoint can keep the model
and its optimizer in one file.

Host-only: the flat form is for files, so its arrays are NumPy arrays (a GPU optimizer's
state is copied to the host here; ``Optimizer.load_state_dict`` moves it back).
"""

from __future__ import annotations

import json
from typing import Any

from chainrule import backend
from chainrule.backend import xp  # host-only (files): NumPy
from chainrule.tensor import Tensor

_GROUPS = "param_groups"
_SCALARS = "state_scalars"


def optimizer_state_to_flat(
    state_dict: dict[str, Any], prefix: str = "optimizer."
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split an optimizer state dict into arrays and JSON metadata strings.

    Args:
        state_dict: what ``Optimizer.state_dict()`` returned.
        prefix: put in front of every key, so the result can share a file with the
            model's weights.

    Returns:
        ``(arrays, metadata)``: ``arrays`` maps ``"{prefix}state.{index}.{name}"`` to a
        contiguous NumPy array (a host copy of a GPU array); ``metadata`` maps
        ``"{prefix}param_groups"`` and ``"{prefix}state_scalars"`` to JSON strings.
        Floats are written with ``repr``, so they read back bit for bit.

    Example:
        >>> import chainrule as cr
        >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward(); opt.step()
        >>> arrays, meta = cr.optim.optimizer_state_to_flat(opt.state_dict())
        >>> sorted(arrays)
        ['optimizer.state.0.momentum_buffer']
    """
    arrays: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, Tensor | xp.ndarray) or backend.is_device_array(value):
                array = value.data if isinstance(value, Tensor) else value
                arrays[f"{prefix}state.{index}.{name}"] = xp.ascontiguousarray(
                    backend.to_host(array)
                )
            else:
                scalars.setdefault(str(index), {})[name] = value
    metadata = {
        prefix + _GROUPS: json.dumps(state_dict["param_groups"], default=_plain),
        prefix + _SCALARS: json.dumps(scalars, default=_plain),
    }
    return arrays, metadata


def optimizer_state_from_flat(
    arrays: dict[str, Any], metadata: dict[str, str], prefix: str = "optimizer."
) -> dict[str, Any]:
    """Rebuild the state dict that ``optimizer_state_to_flat`` split; the inverse.

    Args:
        arrays: the named arrays (other keys, such as model weights, are ignored).
        metadata: the metadata strings.
        prefix: the prefix used when saving.

    Returns:
        A state dict for ``Optimizer.load_state_dict``.

    Raises:
        KeyError: ``metadata`` holds no optimizer state under ``prefix``.
    """
    if prefix + _GROUPS not in metadata:
        raise KeyError(
            f"no optimizer state under the prefix {prefix!r}: the metadata has no "
            f"{prefix + _GROUPS!r} entry (keys: {sorted(metadata)}); save it with "
            f"optimizer_state_to_flat, or pass the prefix it was saved with"
        )
    groups = json.loads(metadata[prefix + _GROUPS])
    state: dict[int, dict[str, Any]] = {
        int(index): dict(entries)
        for index, entries in json.loads(metadata.get(prefix + _SCALARS, "{}")).items()
    }
    head = prefix + "state."
    for key, array in arrays.items():
        if not key.startswith(head):
            continue
        index, name = key[len(head) :].split(".", 1)
        state.setdefault(int(index), {})[name] = Tensor(xp.asarray(array))
    return {"state": state, "param_groups": groups}


def _plain(value: Any) -> Any:
    # NumPy scalars (an lr computed with NumPy) are not JSON types; tuples already are.
    if isinstance(value, xp.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} {value!r} in optimizer metadata")
