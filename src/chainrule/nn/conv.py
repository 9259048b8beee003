"""Convolution layers: ``Conv2d`` and ``Conv1d``, and their transposes ``ConvTranspose2d``
and ``ConvTranspose1d`` (PyTorch's arguments, NCHW / NCL)."""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend
from chainrule.backend import default_float
from chainrule.nn import device_arrays, init
from chainrule.nn.functional_conv import (
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    pair,
)
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import module_shape_error
from chainrule.random import Generator
from chainrule.tensor import Tensor


class _ConvNd(Module):
    """What the convolutions share: the parameters, their initialisation and checks.

    A convolution's weight is (out, in/groups, *kernel); a transposed one's is
    (in, out/groups, *kernel) (``_transposed``), as in PyTorch: it is the weight of the
    convolution whose input gradient it computes.
    """

    _transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, ...],
        stride: tuple[int, ...],
        padding: Any,
        dilation: tuple[int, ...],
        groups: int,
        bias: bool,
        padding_mode: str,
        dtype: Any,
        generator: Generator | None,
        device: Any,
    ) -> None:
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{type(self).__name__}: groups={groups} must divide in_channels "
                f"({in_channels}) and out_channels ({out_channels})"
            )
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"{type(self).__name__}: padding_mode={padding_mode!r} is not supported; only "
                f"'zeros' (pad the input yourself for reflect/replicate/circular)"
            )
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or numbers, got {padding!r}")
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"padding='same' is not supported for strided convolutions: {stride}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dtype = default_float if dtype is None else backend.DType(dtype)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *kernel)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *kernel)
        self.weight = Parameter(device_arrays.empty(shape, dtype, device))
        if bias:
            self.bias = Parameter(device_arrays.empty((self.out_channels,), dtype, device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """PyTorch's default: W ~ kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), and
        b ~ U(±1/√fan_in), with fan_in = the weight's dim 1 · kernel area
        ((in_channels/groups) · k² for a convolution, (out_channels/groups) · k² for a
        transposed one).
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5.0), generator=generator)
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound, generator)

    def _check_input(self, input: Tensor, ndim: int, layout: str) -> None:
        # PyTorch's rule: one dim fewer is one example, without its batch dim.
        if input.ndim not in (ndim, ndim - 1):
            one = "(" + layout[1:-1].split(", ", 1)[1] + ")"
            raise module_shape_error(
                self,
                f"expected a {ndim}-D input {layout}, or {ndim - 1}-D {one} for one example, "
                f"got shape {input.shape}",
            )
        channels = input.shape[input.ndim - ndim + 1]
        if channels != self.in_channels:
            raise module_shape_error(
                self,
                f"expected {self.in_channels} input channels, got input of shape "
                f"{input.shape} with {channels}",
            )

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding not in (0, (0,) * len(self.kernel_size), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.kernel_size):
            text += f", dilation={self.dilation}"
        if any(getattr(self, "output_padding", ())):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation, as PyTorch) over (N, C, H, W) images, one
    fused op: im2col plus one BLAS product forward; dx by the transposed convolution,
    dW = Σₙ g colsᵀ by one product, db = Σ g.

    Args:
        in_channels, out_channels: C and O.
        kernel_size, stride, dilation: an int or a pair (height, width).
        padding: an int or a pair (zeros on both sides), "valid" (none) or "same"
            (output size = input size; stride 1 only).
        groups: split the channels into this many independent convolutions.
        bias: learn a per-output-channel bias.
        padding_mode: only "zeros".
        dtype, generator: the parameters' dtype; where the initial values come from.
        device: where the parameters are made and drawn (default the CPU).

    Shape:
        (N, C, H, W) → (N, O, Ho, Wo), Ho = ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1; one example
        (C, H, W) → (O, Ho, Wo).

    Attributes:
        weight: (O, C/groups, kh, kw), initialised as PyTorch (``reset_parameters``).
        bias: (O,).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> conv = nn.Conv2d(1, 8, 3, padding=1)
        >>> conv(cr.randn(2, 1, 28, 28)).shape
        (2, 8, 28, 28)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Any = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        if not isinstance(padding, str):
            padding = pair(padding, "padding")
        super().__init__(
            in_channels,
            out_channels,
            pair(kernel_size, "kernel_size"),
            pair(stride, "stride"),
            padding,
            pair(dilation, "dilation"),
            groups,
            bias,
            padding_mode,
            dtype,
            generator,
            device,
        )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input, 4, "(N, C, H, W)")
        stride, dilation = pair(self.stride, "stride"), pair(self.dilation, "dilation")
        return conv2d(input, self.weight, self.bias, stride, self.padding, dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) sequences; the same fused op as ``Conv2d`` on a
    height-1 image. Arguments as ``Conv2d``, with ints (or 1-tuples) for the sizes.

    Shape:
        (N, C, L) → (N, O, Lo), Lo = ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1; (C, L) → (O, Lo).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.Conv1d(4, 6, 5, padding="same")(cr.randn(2, 4, 10)).shape
        (2, 6, 10)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: Any = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        if not isinstance(padding, str):
            padding = _one(padding)
        super().__init__(
            in_channels,
            out_channels,
            _one(kernel_size),
            _one(stride),
            padding,
            _one(dilation),
            groups,
            bias,
            padding_mode,
            dtype,
            generator,
            device,
        )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input, 3, "(N, C, L)")
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return conv1d(
            input,
            self.weight,
            self.bias,
            self.stride[0],
            padding,
            self.dilation[0],
            self.groups,
        )


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution over (N, C, H, W): the input gradient of a Conv2d as a
    layer, the learned upsampling of decoders and generators (a stride of 2 doubles H and
    W). One fused op (col2im of Wᵀ x); dx is a convolution of g with W, dW the Conv2d
    weight gradient with the roles of x and g swapped.

    Args:
        in_channels, out_channels: C and O.
        kernel_size, stride, padding, dilation: an int or a pair (padding: numbers only;
            it removes rows and columns from the output's borders).
        output_padding: rows and columns added at the bottom and right, to pick among the
            input sizes a strided Conv2d maps to one size (smaller than stride or dilation).
        groups, bias, padding_mode, dtype, generator, device: as ``Conv2d``.

    Shape:
        (N, C, H, W) → (N, O, Ho, Wo), Ho = (H − 1)s − 2p + d(k − 1) + output_padding + 1;
        one example (C, H, W) → (O, Ho, Wo).

    Attributes:
        weight: (C, O/groups, kh, kw), PyTorch's layout and initialisation.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        >>> up(cr.randn(2, 16, 7, 7)).shape
        (2, 8, 14, 14)
    """

    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str = "zeros",
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            pair(kernel_size, "kernel_size"),
            pair(stride, "stride"),
            pair(padding, "padding"),
            pair(dilation, "dilation"),
            groups,
            bias,
            padding_mode,
            dtype,
            generator,
            device,
        )
        self.output_padding = pair(output_padding, "output_padding")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input, 4, "(N, C, H, W)")
        return conv_transpose2d(
            input,
            self.weight,
            self.bias,
            pair(self.stride, "stride"),
            self.padding,
            self.output_padding,
            self.groups,
            pair(self.dilation, "dilation"),
        )


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution over (N, C, L): ``ConvTranspose2d`` on a height-1 image.
    Arguments as ``ConvTranspose2d``, with ints (or 1-tuples) for the sizes.

    Shape:
        (N, C, L) → (N, O, Lo), Lo = (L − 1)s − 2p + d(k − 1) + output_padding + 1;
        (C, L) → (O, Lo).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.ConvTranspose1d(4, 2, 3, stride=2)(cr.randn(1, 4, 5)).shape
        (1, 2, 11)
    """

    _transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: int | tuple[int] = 0,
        output_padding: int | tuple[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int] = 1,
        padding_mode: str = "zeros",
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _one(kernel_size),
            _one(stride),
            _one(padding),
            _one(dilation),
            groups,
            bias,
            padding_mode,
            dtype,
            generator,
            device,
        )
        self.output_padding = _one(output_padding)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input, 3, "(N, C, L)")
        return conv_transpose1d(
            input,
            self.weight,
            self.bias,
            self.stride[0],
            self.padding[0],
            self.output_padding[0],
            self.groups,
            self.dilation[0],
        )


def _one(value: Any) -> tuple[int]:
    if isinstance(value, int):
        return (value,)
    values = tuple(int(v) for v in value)
    if len(values) != 1:
        raise ValueError(f"expected an int or a 1-tuple, got {value!r}")
    return (values[0],)
