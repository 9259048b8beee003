"""``cr.device``: where a tensor's values live (PyTorch's names and spellings).

A device is a type, ``"cpu"`` or ``"cuda"``, and for CUDA the index of the GPU. It is
written as PyTorch writes it: ``cr.device("cuda")``, ``cr.device("cuda:1")``,
``cr.device("cuda", 1)``; everywhere a device is asked for, the string works too
(``x.to("cuda")``, ``cr.zeros(3, device="cuda:0")``).

A tensor does not store its device: the array it holds knows (a NumPy array is on the
CPU, a CuPy array on the GPU it was made on), so the device can never disagree with the
data. ``chainrule.backend`` maps between the two.
"""

from __future__ import annotations

from typing import Any

DEVICE_TYPES = ("cpu", "cuda")


class Device:
    """A device: ``type`` ("cpu" or "cuda") and ``index`` (the GPU's ordinal, or None).

    ``cr.device("cuda")`` has index None: "the current GPU", which is GPU 0 unless the
    user selects another; a tensor's ``.device`` always names its GPU's index.

    Example:
        >>> import chainrule as cr
        >>> cr.device("cuda:1")
        device(type='cuda', index=1)
        >>> str(cr.device("cpu"))
        'cpu'
    """

    __slots__ = ("type", "index")
    type: str
    index: int | None

    def __init__(self, spec: str | Device, index: int | None = None) -> None:
        if isinstance(spec, Device):
            if index is not None:
                raise ValueError(f"device({spec!r}, {index}): the device already has an index")
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(
                f"a device is a string such as 'cpu', 'cuda' or 'cuda:1', or a cr.device; "
                f"got {type(spec).__name__} {spec!r}"
            )
        kind, colon, ordinal = spec.strip().lower().partition(":")
        if kind not in DEVICE_TYPES:
            raise ValueError(
                f"unknown device {spec!r}: chainrule runs on {' and '.join(DEVICE_TYPES)} "
                f"('cuda:1' for the second GPU)"
            )
        if colon:
            if index is not None:
                raise ValueError(f"device({spec!r}, {index}): give the index once")
            if not ordinal.isdigit():
                raise ValueError(f"device {spec!r}: the index after ':' must be a number >= 0")
            index = int(ordinal)
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"device index must be an integer >= 0, got {index!r}")
            if kind == "cpu" and index != 0:
                raise ValueError(f"device 'cpu:{index}': there is one CPU device, cpu or cpu:0")
            if kind == "cpu":
                index = None
        self.type, self.index = kind, index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = Device("cpu")


def as_device(spec: Any) -> Device:
    """``spec`` (a string, a ``Device``, or None for the CPU) as a ``Device``."""
    if spec is None:
        return CPU
    if isinstance(spec, Device):
        return spec
    return Device(spec)


def parse_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Device | None, Any]:
    """The (device, dtype) that PyTorch-style ``to(...)`` arguments ask for (None where
    unchanged): devices as strings, ``Device`` or a GPU index, anything else a dtype."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)  # PyTorch's: copies are ordered on the stream anyway
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):  # x.to(1): GPU 1, as PyTorch
            device = Device("cuda", arg)
        elif isinstance(arg, Device) or (
            isinstance(arg, str) and arg.partition(":")[0].strip().lower() in DEVICE_TYPES
        ):
            device = arg
        else:
            dtype = arg
    return (None if device is None else as_device(device)), dtype
