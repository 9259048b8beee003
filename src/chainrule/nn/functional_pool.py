"""The 1-D pooling forms and adaptive max pooling (re-exported by
``chainrule.nn.functional``): ``max_pool1d``, ``avg_pool1d``, ``adaptive_avg_pool1d``,
``adaptive_max_pool1d`` and ``adaptive_max_pool2d``, with PyTorch's names and arguments.

A 1-D pooling is the 2-D one on a height-1 image, as ``conv1d`` is ``conv2d`` on one:
(N, C, L) is viewed as (N, C, 1, L), pooled with a (1, k) window by the fused Functions of
``nn.pool_functions``, and the height dropped again. Only the argument checks are 1-D's
own, so that an error names the 1-D function and the 1-D sizes.

Adaptive max pooling takes the maximum over PyTorch's adaptive windows (rows ⌊iH/Ho⌋ …
⌈(i+1)H/Ho⌉ − 1, likewise columns). When H and W are multiples of Ho and Wo those are
the windows of ``max_pool2d`` with kernel = stride = H/Ho; otherwise the windows differ in
size, and each is gathered at its largest size (its last row and column repeated, which
leaves the maximum unchanged) and reduced by ``max``: a Gather node and a MaxDim node,
whose gradient goes to the first maximum of each window, as PyTorch's.
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.errors import ShapeError
from chainrule.nn.functional_conv import (
    adaptive_avg_pool2d,
    avg_pool2d,
    max_pool2d,
    unbatched,
)
from chainrule.tensor import Tensor


def max_pool1d(
    input: Tensor,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum over each window of ``kernel_size`` samples (PyTorch's
    ``max_pool1d``; ties: the first maximum gets the gradient). ``stride`` defaults to
    ``kernel_size``; ``padding`` (−∞, at most half the kernel) on both sides.

    Shape:
        (N, C, L) → (N, C, Lo), Lo = ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1; (C, L) → (C, Lo).

    Returns:
        The pooled tensor; with ``return_indices``, also the int64 position in L of each
        maximum.
    """
    if ceil_mode:
        raise NotImplementedError("max_pool1d: ceil_mode=True is not supported; pad instead")
    unbatched("max_pool1d", input, 3, "(N, C, L)")
    k, s, p, d = _window_1d("max_pool1d", input, kernel_size, stride, padding, dilation)
    pooled = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), False, return_indices)
    if return_indices:
        return pooled[0].squeeze(-2), pooled[1].squeeze(-2)
    return pooled.squeeze(-2)


def avg_pool1d(
    input: Tensor,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean over each window of ``kernel_size`` samples (PyTorch's ``avg_pool1d``):
    the zero-padded window's sum over k, or over the samples inside the input when
    ``count_include_pad`` is False.

    Shape:
        (N, C, L) → (N, C, Lo), Lo = ⌊(L + 2p − k)/s⌋ + 1; (C, L) → (C, Lo).
    """
    if ceil_mode:
        raise NotImplementedError("avg_pool1d: ceil_mode=True is not supported; pad instead")
    unbatched("avg_pool1d", input, 3, "(N, C, L)")
    k, s, p, _ = _window_1d("avg_pool1d", input, kernel_size, stride, padding, 1)
    pooled = avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), False, count_include_pad)
    return pooled.squeeze(-2)


def adaptive_avg_pool1d(input: Tensor, output_size: int | tuple[int]) -> Tensor:
    """Average pooling to ``output_size`` samples whatever L (PyTorch's windows:
    ⌊iL/Lo⌋ … ⌈(i+1)L/Lo⌉ − 1). (N, C, L) → (N, C, Lo); (C, L) → (C, Lo)."""
    unbatched("adaptive_avg_pool1d", input, 3, "(N, C, L)")
    size = _size_1d("adaptive_avg_pool1d", output_size)
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def adaptive_max_pool1d(
    input: Tensor, output_size: int | tuple[int], return_indices: bool = False
) -> Any:
    """Max pooling to ``output_size`` samples whatever L (PyTorch's adaptive windows).
    (N, C, L) → (N, C, Lo); (C, L) → (C, Lo); with ``return_indices``, also the int64
    position in L of each maximum."""
    unbatched("adaptive_max_pool1d", input, 3, "(N, C, L)")
    size = _size_1d("adaptive_max_pool1d", output_size)
    pooled = adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices)
    if return_indices:
        return pooled[0].squeeze(-2), pooled[1].squeeze(-2)
    return pooled.squeeze(-2)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed ``output_size`` (an int, a pair; None keeps that dim),
    PyTorch's ``adaptive_max_pool2d``: the maximum over rows ⌊iH/Ho⌋ … ⌈(i+1)H/Ho⌉ − 1
    and the columns likewise; the gradient goes to each window's first maximum.

    Shape:
        (N, C, H, W) → (N, C, Ho, Wo); (C, H, W) → (C, Ho, Wo). With ``return_indices``,
        also the int64 index row·W + column of each maximum in its plane.
    """
    if unbatched("adaptive_max_pool2d", input, 4, "(N, C, H, W)"):
        pooled = adaptive_max_pool2d(input.unsqueeze(0), output_size, return_indices)
        if return_indices:
            return pooled[0].squeeze(0), pooled[1].squeeze(0)
        return pooled.squeeze(0)
    n, c, h, w = input.shape
    sizes = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(
            f"adaptive_max_pool2d: output_size must be an int or a pair, got {output_size!r}"
        )
    ho, wo = (size if s is None else int(s) for size, s in zip((h, w), sizes))
    if min(ho, wo) < 1 or min(h, w) < 1:
        raise ShapeError(
            f"adaptive_max_pool2d: output_size {output_size} must be positive and the input "
            f"{input.shape} non-empty"
        )
    if h % ho == 0 and w % wo == 0:  # equal windows, side by side: plain max pooling
        kernel = (h // ho, w // wo)
        return max_pool2d(input, kernel, kernel, 0, 1, False, return_indices)
    xp = backend.get_array_module(input.data)
    rows, cols = _adaptive_windows(xp, h, ho), _adaptive_windows(xp, w, wo)
    kh, kw = rows.shape[1], cols.shape[1]
    # (N, C, Ho, Wo, kh, kw): window (i, j) holds rows[i] × cols[j] of its plane.
    patches = input[..., rows[:, None, :, None], cols[None, :, None, :]]
    values, arg = patches.reshape(n, c, ho, wo, kh * kw).max(dim=-1)
    if not return_indices:
        return values
    a, b = arg.data // kw, arg.data % kw
    row = rows[xp.arange(ho)[:, None], a]
    col = cols[xp.arange(wo), b]
    return values, Tensor(row * w + col)


def _adaptive_windows(xp: Any, size_in: int, size_out: int) -> Any:
    """(size_out, k) indices of each adaptive window, k the largest window's size; a
    shorter window repeats its last index (on ``xp``'s device)."""
    # k from Python ints: a shape, known without reading the device.
    k = max(-(-(i + 1) * size_in // size_out) - i * size_in // size_out for i in range(size_out))
    i = xp.arange(size_out)[:, None]
    start = i * size_in // size_out
    end = -(-(i + 1) * size_in // size_out)
    return xp.minimum(start + xp.arange(k)[None, :], end - 1)


def _window_1d(
    op: str, input: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any
) -> tuple[int, int, int, int]:
    """(kernel, stride, padding, dilation) checked in 1-D terms, so that the 2-D pooling
    below never sees arguments it would reject in 2-D words."""
    k = single(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == () else single(stride, "stride", op)
    p, d = single(padding, "padding", op), single(dilation, "dilation", op)
    if min(k, s, d) < 1:
        raise ValueError(
            f"{op}: kernel_size, stride and dilation must be positive, got kernel_size={k}, "
            f"stride={s}, dilation={d}"
        )
    if p < 0 or p > k // 2:  # PyTorch's 1-D rule: half the kernel, whatever the dilation
        raise ValueError(f"{op}: padding {p} must be at most half of the kernel {k}, as in PyTorch")
    span = d * (k - 1) + 1
    length = input.shape[-1]
    if length + 2 * p < span:
        raise ShapeError(
            f"{op}: the kernel {k} (spanning {span} with dilation {d}) is larger than the "
            f"padded input length {length + 2 * p} (input {input.shape}); use a smaller "
            f"kernel, more padding or a longer input"
        )
    return k, s, p, d


def _size_1d(op: str, output_size: Any) -> int:
    size = single(output_size, "output_size", op)
    if size < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return size


def single(value: Any, name: str, op: str) -> int:
    """An int from an int or a 1-tuple (PyTorch's 1-D arguments)."""
    if isinstance(value, int):
        return value
    values = tuple(value)
    if len(values) != 1:
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {value!r}")
    return int(values[0])
