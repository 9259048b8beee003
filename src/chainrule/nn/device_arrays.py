"""Where nn makes new arrays: on the device of the tensor they belong to.

Two kinds of new arrays appear in nn outside an op's ``forward``: a layer's parameters
when it is built (``nn.Linear(..., device="cuda")``) and the random draws of
initialisers and dropout masks. Both go through this module, so that the way a draw
reaches a device is decided in one place.

Random draws on a device come from the generator's stream on that device
(``Generator.random(..., device=)``, seeded from the generator's seed and the GPU's
index): masks are drawn where they are used, with no host-to-device copy and no sync.
A GPU stream's numbers differ from the CPU's for the same seed (cuRAND, not PCG64).
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.device import Device
from chainrule.random import Generator


def random_on(generator: Generator, shape: tuple[int, ...], dtype: Any, device: Device) -> Any:
    """Uniform draws in [0, 1) of ``shape`` and ``dtype``, as an array on ``device``."""
    if device.type == "cpu":
        return generator.random(shape, dtype)
    return generator.random(shape, dtype, device=device)  # drawn on the GPU


def standard_normal_on(
    generator: Generator, shape: tuple[int, ...], dtype: Any, device: Device
) -> Any:
    """Draws from N(0, 1) of ``shape`` and ``dtype``, as an array on ``device``."""
    if device.type == "cpu":
        return generator.standard_normal(shape, dtype)
    return generator.standard_normal(shape, dtype, device=device)  # drawn on the GPU


def empty(shape: tuple[int, ...], dtype: Any, device: Any = None) -> Any:
    """An array for a new parameter (its values are set by the initialiser that follows),
    on ``device`` (default the CPU). Made on the host and copied: it happens once, when
    a layer is built, and the copy lands on the GPU ``device`` names."""
    host = backend.xp.zeros(shape, dtype)  # on the host, then one copy
    return backend.to_device(host, device) if device is not None else host


def constant(shape: tuple[int, ...], value: float, dtype: Any, device: Any = None) -> Any:
    """An array filled with ``value`` (BatchNorm's ones and zeros), on ``device``."""
    host = backend.xp.full(shape, value, dtype)  # on the host, then one copy
    return backend.to_device(host, device) if device is not None else host
