"""``Normalize``: standardise inputs with statistics measured on the training set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chainrule import backend
from chainrule.device import Device
from chainrule.errors import ShapeError
from chainrule.tensor import Tensor

ChannelAxis = int | tuple[int, ...] | None


class Normalize:
    """Per-channel standardisation, x̃ = (x - m) / max(σ, ε).

    ``fit(x_train)`` measures, for each channel, the mean m and the standard deviation σ
    (the population one, dividing by the count) over every other axis: the examples and,
    for images, the pixels. Calling the transform then applies
    (x - m) / max(σ, ε), always with the *training* statistics, so validation and test
    data are transformed exactly as the training data was. The floor ε keeps a constant
    channel (σ = 0) from dividing by zero: on the training set such a channel becomes 0.

    The statistics travel with the model: ``state_dict()`` gives
    ``{"mean": Tensor, "std": Tensor, "eps": float}`` for the checkpoint and
    ``load_state_dict`` restores them.

    Devices: ``fit`` and the transform work on CPU and GPU data alike, each with the
    data's own array module; the statistics stay where they were measured (or loaded),
    and a copy on the input's device is made once, the first time it is needed.

    Args:
        eps: the floor ε on σ (must be positive). It only guards against σ = 0: a
            channel that is constant in training but varies at test time is scaled by
            1/ε, so pick ε on the data's scale if that can happen.
        channel_axis: the axis (or axes) that index channels, counted in the *batched*
            layout with the examples on axis 0. The default 1 is the channel axis of
            (N, C, H, W) images and the feature axis of flat (N, D) data, where every
            feature is its own channel. ``(1, 2, 3)`` normalises every pixel of
            (N, C, H, W) images separately; ``None`` uses one mean and σ for everything.

    Shape:
        - fit: (N, ...) with at least the channel axes.
        - call: the fitted layout (N', ...) with any N', or one example without the
          leading axis; the output has the input's shape.
        - mean, std: the fitted shape with 1 on every reduced axis, e.g. (1, C, 1, 1),
          or () for ``channel_axis=None``.

    Example:
        >>> import numpy as np
        >>> norm = Normalize().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
        >>> norm(np.array([[1.0, 5.0], [3.0, 6.0]])).tolist()
        [[0.0, 0.0], [2.0, 1000000.0]]
    """

    def __init__(self, eps: float = 1e-6, channel_axis: ChannelAxis = 1) -> None:
        self.eps = _check_eps(eps)
        self.channel_axis = channel_axis
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self._moved: dict[Device, tuple[Any, Any]] = {}  # the statistics on other devices

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, x: Any) -> Normalize:
        """Measure per-channel mean and σ on ``x`` (a Tensor or array); returns self.

        Raises:
            ValueError: ``x`` holds NaN or ±Inf, naming the channels and the counts. A
                non-finite value would make its whole channel's statistics NaN, and so
                every input of that channel after normalisation: clean or impute the
                data first (e.g. ``numpy.nan_to_num`` or the channel's ``nanmean``).
        """
        data = _as_array(x)
        xp = backend.get_array_module(data)
        if data.ndim == 0 or data.shape[0] == 0:
            raise ShapeError(
                f"Normalize.fit needs a batch of examples (N, ...) with N >= 1, got shape "
                f"{tuple(data.shape)}"
            )
        dtype = data.dtype if backend.is_floating(data.dtype) else backend.default_float
        if self.channel_axis is None:
            reduce: tuple[int, ...] | None = None
            keepdims = False
        else:
            channels = _channel_axes(self.channel_axis, data.ndim, tuple(data.shape))
            reduce = tuple(a for a in range(data.ndim) if a not in channels)
            keepdims = True
        # Statistics in float64 so a large training set does not lose digits.
        # NaN/Inf in the data are reported below, not as NumPy's "invalid value" warning.
        with backend.errstate(data, invalid="ignore", over="ignore"):
            mean = xp.mean(data, axis=reduce, dtype=backend.float64, keepdims=keepdims)
            std = xp.std(data, axis=reduce, dtype=backend.float64, keepdims=keepdims)
        # One read of a GPU's result (fit runs once, before training).
        if not bool(xp.isfinite(mean).all() & xp.isfinite(std).all()):
            _check_finite(backend.to_host(data), reduce)
        self.mean = Tensor(xp.asarray(mean, dtype=dtype))
        self.std = Tensor(xp.asarray(std, dtype=dtype))
        self._moved = {}
        return self

    def __call__(self, x: Any) -> Any:
        """(x - m) / max(σ, ε), returning a Tensor for a Tensor and an array for an array.

        Integer inputs (e.g. uint8 pixels) give float32; float inputs keep their dtype.
        Differentiable when ``x`` is a Tensor that requires grad.
        """
        if self.mean is None or self.std is None:
            raise RuntimeError(
                "Normalize is used before fit: call norm.fit(x_train) on the training "
                "inputs (or load_state_dict from a checkpoint) first"
            )
        data = _as_array(x)
        xp = backend.get_array_module(data)
        dtype = data.dtype if backend.is_floating(data.dtype) else backend.default_float
        mean, std = self._stats_for(tuple(data.shape), data)
        mean = mean.astype(dtype, copy=False)
        denom = xp.maximum(std, self.eps).astype(dtype, copy=False)
        if isinstance(x, Tensor) and x.requires_grad:
            return (x - Tensor(mean)) / Tensor(denom)
        out = (data.astype(dtype, copy=False) - mean) / denom
        return Tensor(out) if isinstance(x, Tensor) else out

    def _stats_for(self, shape: tuple[int, ...], data: Any) -> tuple[Any, Any]:
        """The stored statistics on the device of ``data``, shaped to broadcast against
        an input of ``shape``."""
        assert self.mean is not None and self.std is not None
        mean, std = self.mean.data, self.std.data
        device = backend.device_of(data)
        if backend.device_of(mean) != device:
            moved = self._moved.get(device)
            if moved is None:
                moved = (backend.to_device(mean, device), backend.to_device(std, device))
                self._moved[device] = moved
            mean, std = moved
        if mean.ndim == 0:
            return mean, std
        if len(shape) == mean.ndim - 1:
            # One example without its batch axis: drop the (size 1) example axis.
            mean, std = mean[0], std[0]
        if len(shape) != mean.ndim or any(
            s != 1 and s != d for s, d in zip(mean.shape, shape, strict=True)
        ):
            raise ShapeError(
                f"Normalize was fitted on data laid out like {tuple(self.mean.shape)} "
                f"(statistics per channel, 1 = averaged over), but got an input of shape "
                f"{shape}; give a batch or a single example with the same channels"
            )
        return mean, std

    def state_dict(self) -> dict[str, Any]:
        """``{"mean": Tensor, "std": Tensor, "eps": float}``: what a checkpoint needs."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Normalize.state_dict before fit: nothing has been measured yet")
        return {"mean": self.mean, "std": self.std, "eps": self.eps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore statistics saved by ``state_dict`` (Tensors or arrays)."""
        missing = {"mean", "std"} - set(state)
        if missing:
            raise KeyError(f"Normalize.load_state_dict: missing entries {sorted(missing)}")
        mean = state["mean"].data if isinstance(state["mean"], Tensor) else state["mean"]
        std = state["std"].data if isinstance(state["std"], Tensor) else state["std"]
        mean, std = _as_array(mean), _as_array(std)
        if mean.shape != std.shape:
            raise ShapeError(
                f"Normalize.load_state_dict: mean has shape {tuple(mean.shape)} but std "
                f"has {tuple(std.shape)}; they must match"
            )
        expect_scalar = self.channel_axis is None
        if expect_scalar != (mean.ndim == 0):
            raise ShapeError(
                f"Normalize.load_state_dict: statistics of shape {tuple(mean.shape)} do not "
                f"fit channel_axis={self.channel_axis!r}; build Normalize with the "
                f"channel_axis used when they were fitted"
            )
        if "eps" in state:
            self.eps = _check_eps(float(state["eps"]))
        self.mean = Tensor(mean)
        self.std = Tensor(std)
        self._moved = {}

    def __repr__(self) -> str:
        shape = None if self.mean is None else tuple(self.mean.shape)
        return f"Normalize(eps={self.eps}, channel_axis={self.channel_axis!r}, stats={shape})"


def _as_array(x: Any) -> Any:
    """The array of a Tensor, a GPU array as it is, anything else as a NumPy array."""
    if isinstance(x, Tensor):
        return x.data
    return x if backend.is_device_array(x) else backend.to_host(x)


def _check_finite(data: Any, reduce: tuple[int, ...] | None) -> None:
    """Raise, saying which channels of ``data`` (host data) hold NaN or ±Inf and how many.

    Called only when the statistics are not finite, so the common case costs nothing.
    Finite data whose σ overflows (values near 1e300) pass: that is their scale.
    """
    xp = backend.xp  # the host's NumPy: an error path, after one copy of the data
    # Fail rather than skip them (a nanmean): a NaN in the training inputs is almost
    # always a bug in loading or preprocessing, the same value would turn the loss NaN
    # at training time anyway, and statistics measured around it would hide the bug.
    nan = xp.isnan(data).sum(axis=reduce)
    inf = xp.isinf(data).sum(axis=reduce)
    if reduce is None:
        where = [("all channels (channel_axis=None)", int(nan), int(inf))]
    else:
        nan, inf = xp.asarray(nan).reshape(-1), xp.asarray(inf).reshape(-1)
        channel_shape = tuple(d for a, d in enumerate(data.shape) if a not in reduce)
        where = []
        for flat in xp.flatnonzero((nan + inf) > 0).tolist():
            index = xp.unravel_index(flat, channel_shape)
            label = str(int(index[0])) if len(index) == 1 else str(tuple(int(i) for i in index))
            where.append((f"channel {label}", int(nan[flat]), int(inf[flat])))
    parts = [f"{label}: {n} NaN, {i} Inf" for label, n, i in where[:10]]
    if len(where) > 10:
        parts.append(f"and {len(where) - 10} more channels")
    total_nan = sum(n for _, n, _ in where)
    total_inf = sum(i for _, _, i in where)
    if total_nan + total_inf == 0:
        return
    raise ValueError(
        f"Normalize.fit: the data hold {total_nan} NaN and {total_inf} Inf values "
        f"({'; '.join(parts)}), which would make the mean and σ of those channels NaN; "
        f"remove or impute them (e.g. numpy.nan_to_num) before fitting"
    )


def _check_eps(eps: float) -> float:
    if not eps > 0:
        raise ValueError(f"Normalize: eps must be positive (it floors σ), got {eps!r}")
    return float(eps)


def _channel_axes(
    channel_axis: int | tuple[int, ...], ndim: int, shape: tuple[int, ...]
) -> set[int]:
    axes = (channel_axis,) if isinstance(channel_axis, int) else tuple(channel_axis)
    result = set()
    for a in axes:
        if not -ndim <= a < ndim or a % ndim == 0:
            raise ShapeError(
                f"Normalize: channel_axis={channel_axis!r} does not fit data of shape {shape}: "
                f"axis 0 holds the examples, so channel axes must be among 1..{ndim - 1}; "
                f"use channel_axis=None for one global mean and σ"
            )
        result.add(a % ndim)
    return result
