"""Resizing layers with PyTorch's names: ``Upsample`` (``F.interpolate`` as a module),
``UpsamplingNearest2d`` and ``UpsamplingBilinear2d`` (bilinear with aligned corners)."""

from __future__ import annotations

from collections.abc import Sequence

from chainrule.nn.functional_interpolate import interpolate
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class Upsample(Module):
    """Resizes (N, C, L) or (N, C, H, W) inputs to ``size`` or by ``scale_factor``
    (exactly one of them) with ``mode`` "nearest", "linear" (3-D) or "bilinear" (4-D);
    ``align_corners`` for the interpolating modes (None means False). See
    ``F.interpolate`` for the source coordinates, PyTorch's.

    Shape:
        (N, C, L) → (N, C, Lo); (N, C, H, W) → (N, C, Ho, Wo), with Ho = ``size`` or
        ⌊H·scale_factor⌋.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.Upsample(scale_factor=2, mode="bilinear")(cr.randn(1, 3, 4, 5)).shape
        (1, 3, 8, 10)
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode="nearest")`` for (N, C, H, W) inputs."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode="bilinear", align_corners=True)`` for
    (N, C, H, W) inputs, as PyTorch's (whose default differs from ``Upsample``'s)."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
