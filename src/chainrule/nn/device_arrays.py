"""Where nn makes new arrays: on the device of the tensor they belong to.

Two kinds of new arrays appear in nn outside an op's ``forward``: a layer's parameters
when it is built (``nn.Linear(..., device="cuda")``) and the random draws of
initialisers and dropout masks. Both go through this module, so that the way a draw
reaches a device is decided in one place.

Random draws on a device: ``chainrule.random.Generator`` draws on the host until its
``device=`` argument lands (the device generator). Until then ``random_on`` draws on the
host and copies the draw to the device, one host-to-device copy and no host-device sync
(the GPU is never waited for, and the masks equal the CPU's for the same seed); once the
generator takes ``device=``, ``random_on`` asks it to draw on the device directly. The
switch is detected once, at import, from the generator's signature.
"""

from __future__ import annotations

import inspect
from typing import Any

from chainrule import backend
from chainrule.device import Device
from chainrule.random import Generator

# True once Generator.random / standard_normal accept ``device=`` (the device generator).
_GENERATOR_TAKES_DEVICE = "device" in inspect.signature(Generator.random).parameters


def random_on(generator: Generator, shape: tuple[int, ...], dtype: Any, device: Device) -> Any:
    """Uniform draws in [0, 1) of ``shape`` and ``dtype``, as an array on ``device``."""
    if device.type == "cpu":
        return generator.random(shape, dtype)
    if _GENERATOR_TAKES_DEVICE:
        return generator.random(shape, dtype, device=device)  # type: ignore[call-arg]
    return backend.to_device(generator.random(shape, dtype), device)


def standard_normal_on(
    generator: Generator, shape: tuple[int, ...], dtype: Any, device: Device
) -> Any:
    """Draws from N(0, 1) of ``shape`` and ``dtype``, as an array on ``device``."""
    if device.type == "cpu":
        return generator.standard_normal(shape, dtype)
    if _GENERATOR_TAKES_DEVICE:
        return generator.standard_normal(shape, dtype, device=device)  # type: ignore[call-arg]
    return backend.to_device(generator.standard_normal(shape, dtype), device)


def empty(shape: tuple[int, ...], dtype: Any, device: Any = None) -> Any:
    """An array for a new parameter (its values are set by the initialiser that follows),
    on ``device`` (default the CPU). Made on the host and copied: it happens once, when
    a layer is built, and the copy lands on the GPU ``device`` names."""
    host = backend.xp.zeros(shape, dtype)
    return backend.to_device(host, device) if device is not None else host


def constant(shape: tuple[int, ...], value: float, dtype: Any, device: Any = None) -> Any:
    """An array filled with ``value`` (BatchNorm's ones and zeros), on ``device``."""
    host = backend.xp.full(shape, value, dtype)
    return backend.to_device(host, device) if device is not None else host
