"""The stateless forms of the image layers (re-exported by ``chainrule.nn.functional``):
``conv2d``, ``conv1d``, ``conv_transpose2d``, ``conv_transpose1d``, ``max_pool2d``,
``avg_pool2d``, ``adaptive_avg_pool2d``, ``batch_norm``, ``layer_norm``, ``group_norm`` and
``dropout2d``,
with PyTorch's names, arguments and NCHW layout.

Each checks its arguments, resolves the geometry (stride, padding per side, dilation)
and calls one fused Function from ``nn.conv_functions``, ``nn.pool_functions`` or
``nn.norm_functions``.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.errors import DTypeError, ShapeError
from chainrule.nn.conv_functions import Conv2dFunction, ConvGeometry, ConvTranspose2dFunction
from chainrule.nn.device_arrays import random_on
from chainrule.nn.norm_functions import BatchNormFunction, LayerNormFunction, channel_shape
from chainrule.nn.pool_functions import (
    AdaptiveAvgPool2dFunction,
    AvgPool2dFunction,
    MaxPool2dFunction,
)
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor

IntPair = int | tuple[int, int]


def pair(value: Any, name: str) -> tuple[int, int]:
    """(v, v) for an int, the pair itself for a pair of ints."""
    if isinstance(value, int):
        return (value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (values[0], values[1])


def unbatched(op: str, input: Tensor, rank: int, layout: str) -> bool:
    """PyTorch's rule for the image layers: an input of one dim fewer than ``layout``
    (rank dims, batch first) is one example, run as a batch of one and given back without
    the batch dim. True for such an input; an error for any other rank."""
    if input.ndim == rank:
        return False
    if input.ndim == rank - 1:
        return True
    one = "(" + layout[1:-1].split(", ", 1)[1] + ")"  # "(N, C, H, W)" -> "(C, H, W)"
    raise ShapeError(
        f"{op}: expected a {rank}-D input {layout}, or {rank - 1}-D {one} for one example, "
        f"got shape {input.shape}"
    )


def resolve_padding(
    padding: Any, kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding per side ((top, bottom), (left, right)) from an int, a pair, "valid" or
    "same" (total d(k − 1) per axis, the extra pixel of an odd total at the end, as
    PyTorch; only with stride 1).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same'; got {padding!r}")
        if stride != (1, 1):
            raise ValueError(
                f"padding='same' is not supported for strided convolutions (stride={stride}); "
                f"give the padding as numbers"
            )
        sides = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            sides.append((total // 2, total - total // 2))
        return (sides[0], sides[1])
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return ((ph, ph), (pw, pw))


def _check_positive(name: str, values: tuple[int, int]) -> None:
    if min(values) < 1:
        raise ValueError(f"{name} must be positive, got {values}")


def check_window_fits(
    op: str, x_shape: tuple[int, ...], kernel: tuple[int, int], geo: ConvGeometry
) -> tuple[int, int]:
    """The output size; a ShapeError naming ``op`` when the (dilated) kernel is larger
    than the padded input.
    """
    ho, wo = geo.output_size(x_shape[2], x_shape[3], *kernel)
    if ho < 1 or wo < 1:
        (pt, pb), (pl, pr) = geo.padding
        padded = (x_shape[2] + pt + pb, x_shape[3] + pl + pr)
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, geo.dilation, strict=True))
        raise ShapeError(
            f"{op}: the kernel {kernel} (spanning {span} with dilation {geo.dilation}) is "
            f"larger than the padded input {padded} (input {tuple(x_shape)}); use a smaller "
            f"kernel, more padding or a larger input"
        )
    return ho, wo


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: Any = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation, PyTorch's ``conv2d`` (fused: im2col and one BLAS product;
    dx by the transposed convolution, dW by one product).

    Shape:
        input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) → (N, O, Ho, Wo),
        Ho = ⌊(H + pads − dilation·(kh − 1) − 1)/stride⌋ + 1; an input (C, H, W) of one
        example gives (O, Ho, Wo).
    """
    if unbatched("conv2d", input, 4, "(N, C, H, W)"):
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(
            0
        )
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: expected a 4-D weight (O, C/groups, kh, kw), got {weight.shape}")
    kernel = (weight.shape[2], weight.shape[3])
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    _check_positive("stride", strides)
    _check_positive("dilation", dilations)
    out_channels, in_per_group = weight.shape[0], weight.shape[1]
    if groups < 1 or input.shape[1] % groups or out_channels % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide both the input channels ({input.shape[1]}) "
            f"and the output channels ({out_channels})"
        )
    if input.shape[1] != in_per_group * groups:
        raise ShapeError(
            f"conv2d: input of shape {input.shape} has {input.shape[1]} channels, but the "
            f"weight {weight.shape} with groups={groups} expects {in_per_group * groups}"
        )
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"conv2d: bias must have shape ({out_channels},), got {bias.shape}")
    if input.dtype != weight.dtype:
        raise DTypeError(
            f"conv2d: input is {input.dtype} but weight is {weight.dtype}; convert one "
            f"(x.float(), model.double())"
        )
    geo = ConvGeometry(
        strides, resolve_padding(padding, kernel, dilations, strides), dilations, int(groups)
    )
    check_window_fits("conv2d", input.shape, kernel, geo)
    return Conv2dFunction.apply(input, weight, bias, geo)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: Any = 0,
    dilation: int = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation, PyTorch's ``conv1d``: ``conv2d`` on a height-1 image.

    Shape:
        input (N, C, L), weight (O, C/groups, k), bias (O,) → (N, O, Lo); (C, L) → (O, Lo).
    """
    if unbatched("conv1d", input, 3, "(N, C, L)"):
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(
            0
        )
    if weight.ndim != 3:
        raise ShapeError(f"conv1d: expected a 3-D weight (O, C/groups, k), got {weight.shape}")
    pad2: Any = padding if isinstance(padding, str) else (0, _single(padding, "padding"))
    y = conv2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, _single(stride, "stride")),
        pad2,
        (1, _single(dilation, "dilation")),
        groups,
    )
    return y.squeeze(2)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> Tensor:
    """The transposed convolution, PyTorch's ``conv_transpose2d``: the gradient of
    ``conv2d`` with respect to its input, as a layer (it upsamples by ``stride``). Fused:
    col2im of Wᵀ x (the conv's input-gradient code); its own VJP is conv2d of g with W
    for dx and conv2d's weight gradient for dW.

    Shape:
        input (N, C, H, W), weight (C, O/groups, kh, kw), bias (O,) → (N, O, Ho, Wo),
        Ho = (H − 1)·stride − 2·padding + dilation·(kh − 1) + output_padding + 1; an input
        (C, H, W) of one example gives (O, Ho, Wo).
    """
    if unbatched("conv_transpose2d", input, 4, "(N, C, H, W)"):
        return conv_transpose2d(
            input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups, dilation
        ).squeeze(0)
    if weight.ndim != 4:
        raise ShapeError(
            f"conv_transpose2d: expected a 4-D weight (C, O/groups, kh, kw), got {weight.shape}"
        )
    strides, dilations = pair(stride, "stride"), pair(dilation, "dilation")
    pads, extra = pair(padding, "padding"), pair(output_padding, "output_padding")
    _check_positive("stride", strides)
    _check_positive("dilation", dilations)
    in_channels, kernel = weight.shape[0], (weight.shape[2], weight.shape[3])
    if groups < 1 or in_channels % groups:
        raise ValueError(
            f"conv_transpose2d: groups={groups} must divide the weight's {in_channels} input "
            f"channels"
        )
    if input.shape[1] != in_channels:
        raise ShapeError(
            f"conv_transpose2d: input of shape {input.shape} has {input.shape[1]} channels, "
            f"but the weight {weight.shape} takes {in_channels}"
        )
    if min(pads) < 0:
        raise ValueError(f"conv_transpose2d: padding must be non-negative, got {pads}")
    for e, s_, d in zip(extra, strides, dilations, strict=True):
        if not 0 <= e < max(s_, d):
            raise ValueError(
                f"conv_transpose2d: output_padding {extra} must be smaller than the stride "
                f"{strides} or the dilation {dilations} (PyTorch's rule)"
            )
    out_channels = weight.shape[1] * groups
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(
            f"conv_transpose2d: bias must have shape ({out_channels},), got {bias.shape}"
        )
    if input.dtype != weight.dtype:
        raise DTypeError(
            f"conv_transpose2d: input is {input.dtype} but weight is {weight.dtype}; convert "
            f"one (x.float(), model.double())"
        )
    size = tuple(
        (n - 1) * s_ - 2 * p + d * (k - 1) + e + 1
        for n, s_, p, d, k, e in zip(
            input.shape[2:], strides, pads, dilations, kernel, extra, strict=True
        )
    )
    if min(size) < 1:
        raise ShapeError(
            f"conv_transpose2d: an input of shape {input.shape} with padding {pads} gives an "
            f"output of size {size}; lower the padding"
        )
    geo = ConvGeometry(strides, ((pads[0], pads[0]), (pads[1], pads[1])), dilations, int(groups))
    y = ConvTranspose2dFunction.apply(input, weight, geo, (input.shape[0], out_channels, *size))
    return y if bias is None else y + bias.reshape(1, out_channels, 1, 1)


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    groups: int = 1,
    dilation: int = 1,
) -> Tensor:
    """PyTorch's ``conv_transpose1d``: ``conv_transpose2d`` on a height-1 image.

    Shape:
        input (N, C, L), weight (C, O/groups, k), bias (O,) → (N, O, Lo),
        Lo = (L − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1.
    """
    if unbatched("conv_transpose1d", input, 3, "(N, C, L)"):
        return conv_transpose1d(
            input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups, dilation
        ).squeeze(0)
    if weight.ndim != 3:
        raise ShapeError(
            f"conv_transpose1d: expected a 3-D weight (C, O/groups, k), got {weight.shape}"
        )
    y = conv_transpose2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, _single(stride, "stride")),
        (0, _single(padding, "padding")),
        (0, _single(output_padding, "output_padding")),
        groups,
        (1, _single(dilation, "dilation")),
    )
    return y.squeeze(2)


def _single(value: Any, name: str) -> int:
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(values) != 1:
        raise ValueError(f"{name} must be an int or a 1-tuple for conv1d, got {value!r}")
    return int(values[0])


def _pool_geometry(
    op: str, input: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple[tuple[int, int], ConvGeometry]:
    kernel = pair(kernel_size, "kernel_size")
    strides = kernel if stride is None or stride == () else pair(stride, "stride")
    dilations = pair(dilation, "dilation")
    _check_positive("kernel_size", kernel)
    _check_positive("stride", strides)
    _check_positive("dilation", dilations)
    pads = pair(padding, "padding")
    for p, k, d in zip(pads, kernel, dilations, strict=True):
        if p < 0 or p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{op}: padding {pads} must be at most half of the (dilated) kernel "
                f"{kernel}, as in PyTorch"
            )
    geo = ConvGeometry(strides, ((pads[0], pads[0]), (pads[1], pads[1])), dilations, 1)
    check_window_fits(op, input.shape, kernel, geo)
    return kernel, geo


def max_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum over each window (PyTorch's ``max_pool2d``; ties: the first maximum
    in row-major order gets the gradient). ``stride`` defaults to ``kernel_size``.

    Returns:
        The pooled tensor (N, C, Ho, Wo) ((C, Ho, Wo) for an input (C, H, W) of one
        example); with ``return_indices``, also the int64 index row·W + column of each
        maximum in its input plane.
    """
    if ceil_mode:
        raise NotImplementedError("max_pool2d: ceil_mode=True is not supported; pad instead")
    if unbatched("max_pool2d", input, 4, "(N, C, H, W)"):
        pooled = max_pool2d(
            input.unsqueeze(0), kernel_size, stride, padding, dilation, False, return_indices
        )
        if return_indices:
            return pooled[0].squeeze(0), pooled[1].squeeze(0)
        return pooled.squeeze(0)
    kernel, geo = _pool_geometry("max_pool2d", input, kernel_size, stride, padding, dilation)
    result = MaxPool2dFunction.apply(input, kernel, geo, bool(return_indices))
    return tuple(result) if return_indices else result


def avg_pool2d(
    input: Tensor,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """The mean over each window (PyTorch's ``avg_pool2d``): the window's sum divided by
    ``divisor_override``, else kh·kw when ``count_include_pad``, else by the number of
    pixels of the window inside the input. (N, C, H, W) → (N, C, Ho, Wo); (C, H, W) of
    one example → (C, Ho, Wo).
    """
    if ceil_mode:
        raise NotImplementedError("avg_pool2d: ceil_mode=True is not supported; pad instead")
    if unbatched("avg_pool2d", input, 4, "(N, C, H, W)"):
        return avg_pool2d(
            input.unsqueeze(0), kernel_size, stride, padding, False, count_include_pad,
            divisor_override,
        ).squeeze(0)  # fmt: skip
    kernel, geo = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding, 1)
    divisor: Any
    if divisor_override is not None:
        if divisor_override <= 0:
            raise ValueError(
                f"avg_pool2d: divisor_override must be positive, got {divisor_override}"
            )
        divisor = int(divisor_override)
    elif count_include_pad or geo.padding == ((0, 0), (0, 0)):
        divisor = kernel[0] * kernel[1]
    else:
        divisor = _inside_counts(input.shape, kernel, geo, input.data)
    return AvgPool2dFunction.apply(input, kernel, geo, divisor)


def _inside_counts(
    shape: tuple[int, ...], kernel: tuple[int, int], geo: ConvGeometry, like: Any
) -> Any:
    """How many pixels of each window lie inside the (unpadded) input: (1, 1, Ho, Wo),
    of ``like``'s dtype and on its device."""
    xp = backend.get_array_module(like)
    ho, wo = geo.output_size(shape[2], shape[3], *kernel)
    counts = []
    for size, k, s, (before, _), n_out in zip(
        shape[2:], kernel, geo.stride, geo.padding, (ho, wo), strict=True
    ):
        start = xp.arange(n_out) * s - before
        counts.append(xp.minimum(start + k, size) - xp.maximum(start, 0))
    return (counts[0][:, None] * counts[1][None, :]).astype(like.dtype).reshape(1, 1, ho, wo)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (PyTorch's windows: rows ⌊iH/Ho⌋ to
    ⌈(i+1)H/Ho⌉ − 1). ``None`` in ``output_size`` keeps that input dimension. An input
    (C, H, W) of one example gives (C, Ho, Wo).
    """
    if unbatched("adaptive_avg_pool2d", input, 4, "(N, C, H, W)"):
        return adaptive_avg_pool2d(input.unsqueeze(0), output_size).squeeze(0)
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    size = tuple(input.shape[2 + i] if s is None else int(s) for i, s in enumerate(output_size))
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    return AdaptiveAvgPool2dFunction.apply(input, size)


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation (PyTorch's ``batch_norm``): with ``training``, the batch's
    per-channel statistics (and the running ones updated in place with ``momentum``),
    else the running statistics.

    Shape:
        input (N, C) or (N, C, *spatial); weight, bias, running_mean, running_var (C,).
    """
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected an input (N, C, ...), got shape {input.shape}")
    c = input.shape[1]
    for name, t in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if t is not None and t.shape != (c,):
            raise ShapeError(
                f"batch_norm: {name} of shape {t.shape} does not fit an input with {c} "
                f"channels (shape {input.shape}); it must be ({c},)"
            )
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got "
                f"input of shape {input.shape}"
            )
        rm = None if running_mean is None else running_mean.data
        rv = None if running_var is None else running_var.data
        # momentum may be a 0-d array (BatchNorm's cumulative average, 1/batches seen,
        # computed on the device): float() of it would wait for the GPU.
        factor = momentum if hasattr(momentum, "dtype") else float(momentum)
        y = BatchNormFunction.apply(input, weight, bias, rm, rv, factor, float(eps))
        for buf in (running_mean, running_var):
            if buf is not None:
                buf.increment_version()
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    # Evaluation: y = (x − r_μ) · γ/√(r_σ² + ε) + β, an affine map of x with constant
    # statistics, composed from primitives (so it is differentiable to any order).
    shape = channel_shape(input.ndim, c)
    invstd = 1.0 / (running_var.data + eps) ** 0.5
    scale: Any = Tensor(invstd.reshape(shape))
    if weight is not None:
        scale = weight.reshape(shape) * scale
    y = (input - Tensor(running_mean.data.reshape(shape))) * scale
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def layer_norm(
    input: Tensor,
    normalized_shape: int | tuple[int, ...] | list[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalisation (PyTorch's ``layer_norm``): each example normalised over its
    last ``len(normalized_shape)`` dims, y = γ (x − μ)/√(σ² + ε) + β, with μ and the
    biased σ² of those dims' values (one fused Function; ``nn.norm_functions``).

    Shape:
        input (*, *normalized_shape); weight, bias normalized_shape (or None).
    """
    shape = (
        (int(normalized_shape),)
        if isinstance(normalized_shape, int)
        else tuple(int(d) for d in normalized_shape)
    )
    dims = len(shape)
    if dims == 0 or input.ndim < dims or tuple(input.shape[input.ndim - dims :]) != shape:
        raise ShapeError(
            f"layer_norm: normalized_shape {shape} must be the input's last dims, got input "
            f"of shape {input.shape}; give the shape of the features each example is "
            f"normalised over (for (N, D) inputs, D)"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ShapeError(
                f"layer_norm: {name} of shape {t.shape} must have normalized_shape {shape}"
            )
    return LayerNormFunction.apply(input, weight, bias, dims, float(eps))


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalisation (PyTorch's ``group_norm``): the C channels of each example cut
    into ``num_groups`` groups, each group normalised over its channels and positions,
    then y = γ_c x̂ + β_c per channel. It is layer norm over (C/G, *spatial) per group
    (the same fused Function), with a per-channel affine map after it; independent of
    the batch, like layer norm, so it trains with batches of any size.

    Shape:
        input (N, C, *) with C divisible by num_groups; weight, bias (C,).
    """
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an input (N, C, ...), got shape {input.shape}")
    n, c = input.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups} must divide the {c} channels of the input "
            f"{input.shape}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ShapeError(f"group_norm: {name} of shape {t.shape} must be ({c},)")
    grouped = input.reshape(n, num_groups, -1)
    y = LayerNormFunction.apply(grouped, None, None, 1, float(eps)).reshape(input.shape)
    shape = channel_shape(input.ndim, c)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None
) -> Tensor:
    """Channel dropout (PyTorch's ``dropout2d``): zero whole channels of (N, C, H, W) with
    probability ``p``, scale the others by 1/(1 − p); the identity when not ``training``.
    Gradient: g times the same scaled mask.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d probability must be in [0, 1], got {p}")
    if input.ndim not in (3, 4):
        raise ShapeError(
            f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got {input.shape}"
        )
    if not training or p == 0.0:
        return input
    dtype = input.data.dtype
    mask_shape = (*input.shape[: input.ndim - 2], 1, 1)
    # Drawn on the input's device (nn.device_arrays.random_on), never on the host.
    keep = random_on(resolve(generator), mask_shape, dtype, input.device) >= p
    mask = keep.astype(dtype)
    mask *= (1.0 / (1.0 - p)) if p < 1 else 0.0
    return input * Tensor(mask)
