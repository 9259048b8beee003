"""Padding layers with PyTorch's names: ``ZeroPad1d/2d``, ``ConstantPad1d/2d``,
``ReflectionPad1d/2d``, ``ReplicationPad1d/2d`` and ``CircularPad1d/2d``, each
``F.pad`` with its mode (one ``PadFunction`` node; exact gradients of any order).

``padding`` is an int (every side) or a tuple in ``F.pad``'s order: (left, right) for
the 1-D layers, (left, right, top, bottom) for the 2-D ones.
"""

from __future__ import annotations

from typing import ClassVar

from chainrule.nn.functional_pad import pad
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class _PadNd(Module):
    """``F.pad(input, padding, mode, value)`` as a layer; subclasses set the mode and
    the number of padded dims."""

    mode: ClassVar[str] = "constant"
    dims: ClassVar[int] = 1

    def __init__(self, padding: int | tuple[int, ...], value: float | None = None) -> None:
        super().__init__()
        sides = 2 * self.dims
        widths = (padding,) * sides if isinstance(padding, int) else tuple(padding)
        if len(widths) != sides:
            raise ValueError(
                f"{type(self).__name__}: padding must be an int or a {sides}-tuple "
                f"(left, right{', top, bottom' if self.dims == 2 else ''}), got {padding!r}"
            )
        self.padding = tuple(int(w) for w in widths)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return pad(input, self.padding, self.mode, self.value)

    def extra_repr(self) -> str:
        if self.mode == "constant":
            return f"padding={self.padding}, value={self.value}"
        return f"padding={self.padding}"


class ConstantPad1d(_PadNd):
    """Pads the last dim with ``value`` (negative widths crop).

    Shape:
        (*, L) → (*, left + L + right).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.ConstantPad1d((1, 2), 9.0)(cr.tensor([[1.0, 2.0]])).tolist()
        [[9.0, 1.0, 2.0, 9.0, 9.0]]
    """

    def __init__(self, padding: int | tuple[int, int], value: float) -> None:
        super().__init__(padding, float(value))


class ConstantPad2d(_PadNd):
    """Pads the last two dims with ``value`` (negative widths crop).

    Shape:
        (*, H, W) → (*, top + H + bottom, left + W + right).
    """

    dims = 2

    def __init__(self, padding: int | tuple[int, int, int, int], value: float) -> None:
        super().__init__(padding, float(value))


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros. Shape: (*, L) → (*, left + L + right)."""

    def __init__(self, padding: int | tuple[int, int]) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros.

    Shape:
        (*, H, W) → (*, top + H + bottom, left + W + right).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.ZeroPad2d((1, 0, 0, 2))(cr.randn(1, 3, 4, 4)).shape
        (1, 3, 6, 5)
    """

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__(padding, 0.0)


class ReflectionPad1d(_PadNd):
    """Pads the last dim with its mirror image, the edge sample not repeated: x[a], …,
    x[1], x, x[L−2], …; each width less than L.

    Shape:
        (N, C, L) or (C, L) → (…, left + L + right).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.ReflectionPad1d(2)(cr.tensor([[1.0, 2.0, 3.0]])).tolist()
        [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
    """

    mode = "reflect"

    def __init__(self, padding: int | tuple[int, int]) -> None:
        super().__init__(padding)


class ReflectionPad2d(_PadNd):
    """Pads the last two dims with their mirror image (edges not repeated); each width
    less than the size of the dim it pads.

    Shape:
        (N, C, H, W) or (C, H, W) → (…, top + H + bottom, left + W + right).
    """

    mode, dims = "reflect", 2

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__(padding)


class ReplicationPad1d(_PadNd):
    """Pads the last dim by repeating its edge samples.

    Shape:
        (N, C, L) or (C, L) → (…, left + L + right).
    """

    mode = "replicate"

    def __init__(self, padding: int | tuple[int, int]) -> None:
        super().__init__(padding)


class ReplicationPad2d(_PadNd):
    """Pads the last two dims by repeating their edge rows and columns.

    Shape:
        (N, C, H, W) or (C, H, W) → (…, top + H + bottom, left + W + right).
    """

    mode, dims = "replicate", 2

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__(padding)


class CircularPad1d(_PadNd):
    """Pads the last dim with the input wrapped around (each width at most L).

    Shape:
        (N, C, L) or (C, L) → (…, left + L + right).
    """

    mode = "circular"

    def __init__(self, padding: int | tuple[int, int]) -> None:
        super().__init__(padding)


class CircularPad2d(_PadNd):
    """Pads the last two dims with the input wrapped around (a torus).

    Shape:
        (N, C, H, W) or (C, H, W) → (…, top + H + bottom, left + W + right).
    """

    mode, dims = "circular", 2

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__(padding)
