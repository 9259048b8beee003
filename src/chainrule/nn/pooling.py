"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``,
``AdaptiveMaxPool2d`` (NCHW) and their 1-D forms ``MaxPool1d``, ``AvgPool1d``,
``AdaptiveAvgPool1d``, ``AdaptiveMaxPool1d`` (NCL: the 2-D pooling of a height-1 image).
"""

from __future__ import annotations

from typing import Any

from chainrule.nn.functional_conv import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from chainrule.nn.functional_pool import (
    adaptive_avg_pool1d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    max_pool1d,
)
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class _MaxPoolNd(Module):
    """What MaxPool1d and MaxPool2d share: PyTorch's arguments (see MaxPool2d)."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_MaxPoolNd):
    """The maximum of each kh × kw window (fused; the gradient goes to the first maximum
    of each window, as PyTorch).

    Args:
        kernel_size: an int or a pair.
        stride: defaults to ``kernel_size`` (non-overlapping windows).
        padding: implicit −∞ on both sides, at most half the kernel.
        dilation: spacing between the window's pixels.
        return_indices: also return the flat index (row·W + column) of each maximum.
        ceil_mode: only False.

    Shape:
        (N, C, H, W) → (N, C, Ho, Wo), Ho = ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1; one example
        (C, H, W) → (C, Ho, Wo).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.MaxPool2d(2)(cr.randn(1, 3, 8, 8)).shape
        (1, 3, 4, 4)
    """

    def forward(self, input: Tensor) -> Any:
        return max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )


class _AvgPoolNd(Module):
    """What AvgPool1d and AvgPool2d share: PyTorch's arguments (see AvgPool2d)."""

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """The mean of each kh × kw window (fused). Arguments as PyTorch's: ``stride``
    defaults to ``kernel_size``; ``count_include_pad`` divides by kh·kw even where the
    window covers padding; ``divisor_override`` replaces the divisor.

    Shape:
        (N, C, H, W) → (N, C, Ho, Wo); (C, H, W) → (C, Ho, Wo).
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


class _AdaptivePool(Module):
    """What the adaptive poolings share: the ``output_size`` to pool to."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveMaxPool(_AdaptivePool):
    """Adaptive max pooling also returns the maxima's indices with ``return_indices``."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling to a fixed ``output_size`` (an int, a pair, None keeps a dim),
    whatever the input size: y = A_h x A_wᵀ with PyTorch's windows.

    Shape:
        (N, C, H, W) → (N, C, *output_size); (C, H, W) → (C, *output_size).
    """

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Max pooling to a fixed ``output_size`` (an int, a pair, None keeps a dim) whatever
    the input size, over PyTorch's adaptive windows (rows ⌊iH/Ho⌋ … ⌈(i+1)H/Ho⌉ − 1).

    Shape:
        (N, C, H, W) → (N, C, *output_size); (C, H, W) → (C, *output_size). With
        ``return_indices``, also the int64 index row·W + column of each maximum.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.AdaptiveMaxPool2d((2, 3))(cr.randn(1, 4, 7, 8)).shape
        (1, 4, 2, 3)
    """

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)


class MaxPool1d(_MaxPoolNd):
    """The maximum of each window of ``kernel_size`` samples (the gradient goes to the
    first maximum of each window, as PyTorch).

    Args:
        kernel_size: an int (or a 1-tuple).
        stride: defaults to ``kernel_size`` (non-overlapping windows).
        padding: implicit −∞ on both sides, at most half the kernel.
        dilation: spacing between the window's samples.
        return_indices: also return the position in L of each maximum.
        ceil_mode: only False.

    Shape:
        (N, C, L) → (N, C, Lo), Lo = ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1; one example
        (C, L) → (C, Lo).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.MaxPool1d(3, stride=2)(cr.randn(2, 4, 9)).shape
        (2, 4, 4)
    """

    def forward(self, input: Tensor) -> Any:
        return max_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )


class AvgPool1d(_AvgPoolNd):
    """The mean of each window of ``kernel_size`` samples. Arguments as PyTorch's:
    ``stride`` defaults to ``kernel_size``; zero ``padding`` on both sides (at most half
    the kernel); ``count_include_pad`` divides by k even where the window covers padding,
    else by the samples inside the input; ``ceil_mode`` only False.

    Shape:
        (N, C, L) → (N, C, Lo), Lo = ⌊(L + 2p − k)/s⌋ + 1; (C, L) → (C, Lo).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.AvgPool1d(2)(cr.tensor([[[1.0, 3.0, 5.0, 7.0]]])).tolist()
        [[[2.0, 6.0]]]
    """

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling to ``output_size`` samples whatever the input length, with
    PyTorch's windows ⌊iL/Lo⌋ … ⌈(i+1)L/Lo⌉ − 1.

    Shape:
        (N, C, L) → (N, C, output_size); (C, L) → (C, output_size).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.AdaptiveAvgPool1d(1)(cr.randn(2, 4, 9)).shape
        (2, 4, 1)
    """

    def forward(self, input: Tensor) -> Tensor:
        return adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Max pooling to ``output_size`` samples whatever the input length, over PyTorch's
    adaptive windows.

    Shape:
        (N, C, L) → (N, C, output_size); (C, L) → (C, output_size). With
        ``return_indices``, also the int64 position in L of each maximum.
    """

    def forward(self, input: Tensor) -> Any:
        return adaptive_max_pool1d(input, self.output_size, self.return_indices)
