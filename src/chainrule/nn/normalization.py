"""Normalisation layers: ``BatchNorm1d`` and ``BatchNorm2d`` (statistics per channel,
over the batch), ``LayerNorm`` (statistics per example, over its last dims), ``GroupNorm``
(per example, over groups of channels), and ``Dropout2d`` (channel dropout, the
regulariser that goes with convolutions).
"""

from __future__ import annotations

from typing import Any

from chainrule import backend
from chainrule.backend import default_float
from chainrule.nn import device_arrays
from chainrule.nn.functional_conv import batch_norm, dropout2d, group_norm, layer_norm
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import module_shape_error
from chainrule.random import Generator
from chainrule.tensor import Tensor


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share (they differ only in the input ranks)."""

    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = default_float if dtype is None else backend.DType(dtype)
        c = self.num_features

        def filled(value: float) -> Any:  # a (C,) vector on the device asked for
            return device_arrays.constant((c,), value, dtype, device)

        if affine:
            self.weight = Parameter(filled(1.0))
            self.bias = Parameter(filled(0.0))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(filled(0.0)))
            self.register_buffer("running_var", Tensor(filled(1.0)))
            count = device_arrays.constant((), 0, backend.int64, device)
            self.register_buffer("num_batches_tracked", Tensor(count))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batch seen."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0
            for buf in (self.running_mean, self.running_var, self.num_batches_tracked):
                buf.increment_version()

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._ranks:
            raise module_shape_error(
                self, f"expected a {self._layout} input, got shape {input.shape}"
            )
        if input.shape[1] != self.num_features:
            raise module_shape_error(
                self,
                f"expected {self.num_features} channels (dim 1), got input of shape {input.shape}",
            )
        # PyTorch's rule: batch statistics in training, or whenever no running ones exist.
        use_batch = self.training or not self.track_running_stats
        factor: Any = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            self.num_batches_tracked.increment_version()
            # momentum None: the cumulative average over all batches seen, 1/count as a
            # 0-d array where the count is (reading it as a number would wait for a GPU).
            if self.momentum is None:
                factor = 1.0 / self.num_batches_tracked.data
            else:
                factor = float(self.momentum)
        update = self.training and self.track_running_stats
        return batch_norm(
            input,
            self.running_mean if update or not use_batch else None,
            self.running_var if update or not use_batch else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences, per channel:
    y = γ (x − μ)/√(σ² + ε) + β with the batch's μ, σ² in training (fused; backward by
    the three-term formula), the running ones in ``eval()``.

    Args:
        num_features: C.
        eps: added to σ² for stability.
        momentum: running ← (1 − momentum)·running + momentum·batch statistic (the
            unbiased variance); None for the cumulative average.
        affine: learn γ (``weight``, init 1) and β (``bias``, init 0).
        track_running_stats: keep ``running_mean``, ``running_var`` and
            ``num_batches_tracked`` buffers (saved in the state_dict); without them the
            batch statistics are used in eval too.
        dtype: of the parameters and running statistics (default float32).
        device: where they are made (default the CPU; ``to`` moves them later).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.BatchNorm1d(4)(cr.randn(8, 4)).shape
        (8, 4)
    """

    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images per channel (statistics over N, H, W).
    Arguments and behaviour as ``BatchNorm1d``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.BatchNorm2d(3)(cr.randn(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


class LayerNorm(Module):
    """Layer normalisation: each example normalised over its last dims,
    y = γ (x − μ)/√(σ² + ε) + β with μ, σ² (biased) of that example's values, the same in
    training and evaluation (no running statistics, no dependence on the batch). Fused:
    backward by the three-term formula (``nn.norm_functions.LayerNormFunction``).

    Args:
        normalized_shape: the trailing shape normalised over: D for (…, D) inputs, or a
            tuple such as (C, H, W).
        eps: added to σ² for stability.
        elementwise_affine: learn γ (``weight``, init 1) of ``normalized_shape``.
        bias: with ``elementwise_affine``, learn β (``bias``, init 0) as well.
        dtype: of the parameters (default float32).
        device: where they are made (default the CPU; ``to`` moves them later).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.LayerNorm(4)(cr.randn(2, 3, 4)).shape
        (2, 3, 4)
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...] | list[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        if not self.normalized_shape or min(self.normalized_shape) < 1:
            raise ValueError(
                f"LayerNorm: normalized_shape must be one or more positive sizes, got "
                f"{normalized_shape!r}"
            )
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        dtype = default_float if dtype is None else backend.DType(dtype)

        def filled(value: float) -> Any:
            return device_arrays.constant(self.normalized_shape, value, dtype, device)

        if elementwise_affine:
            self.weight = Parameter(filled(1.0))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(filled(0.0))
        else:
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        dims = len(self.normalized_shape)
        if input.ndim < dims or tuple(input.shape[input.ndim - dims :]) != self.normalized_shape:
            raise module_shape_error(
                self,
                f"expected input (..., {', '.join(map(str, self.normalized_shape))}), got "
                f"{input.shape}",
            )
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class GroupNorm(Module):
    """Group normalisation of (N, C, *) inputs: each example's channels in ``num_groups``
    groups, each group normalised over its channels and positions, then a learned scale
    and shift per channel. Batch statistics play no part, so it behaves the same in
    training and evaluation and with batches of one (where batch norm cannot).
    ``GroupNorm(1, C)`` normalises each example as a whole; ``GroupNorm(C, C)`` each
    channel on its own (instance norm).

    Args:
        num_groups: G, dividing C.
        num_channels: C.
        eps: added to σ² for stability.
        affine: learn γ (``weight``, init 1) and β (``bias``, init 0), each (C,).
        dtype, device: of the parameters (default float32, the CPU).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> nn.GroupNorm(4, 8)(cr.randn(2, 8, 5, 5)).shape
        (2, 8, 5, 5)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: Any = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_groups={num_groups} must divide num_channels={num_channels}"
            )
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = float(eps)
        self.affine = affine
        dtype = default_float if dtype is None else backend.DType(dtype)
        if affine:
            self.weight = Parameter(device_arrays.constant((num_channels,), 1.0, dtype, device))
            self.bias = Parameter(device_arrays.constant((num_channels,), 0.0, dtype, device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise module_shape_error(
                self,
                f"expected an input (N, {self.num_channels}, ...), got shape {input.shape}",
            )
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class Dropout2d(Module):
    """Channel dropout: in training, zero each whole channel of (N, C, H, W) with
    probability ``p`` and scale the rest by 1/(1 − p); the identity in ``eval()``.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single
    pixels barely regularises a convolution; dropping channels does.
    """

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
