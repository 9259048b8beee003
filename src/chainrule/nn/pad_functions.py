"""Padding's Functions: ``PadFunction`` builds the padded array, ``PadGradFunction`` folds a
gradient back onto the unpadded one; each is the other's VJP, so both are differentiable
to any order.

Along one axis of size n padded by (lo, hi), the padded array p of size lo + n + hi is

    p[lo + i] = x[i]                                  (every mode)
    constant:  p[j] = value                  outside
    reflect:   p[lo − k] = x[k],  p[lo + n − 1 + k] = x[n − 1 − k]       (k = 1 … lo / hi)
    replicate: p[j] = x[0] before,  x[n − 1] after
    circular:  p[lo − k] = x[n − k],  p[lo + n − 1 + k] = x[k − 1]

a linear map x ↦ P x with P of 0/1 entries (one 1 per row, for the non-constant part). Its
VJP dx = Pᵀ g adds each border element of g onto the input element it copied: the centre
of g, plus the reflected, edge or wrapped borders (none for constant). Padding several
axes pads one after the other, and the fold undoes them one after the other.
"""

from __future__ import annotations

from typing import Any

from chainrule.autograd.function import Function

Widths = tuple[tuple[int, int], ...]  # (before, after) for every axis of the array

# The names NumPy's and CuPy's ``pad`` give PyTorch's modes.
ARRAY_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def pad_array(xp: Any, x: Any, widths: Widths, mode: str, value: float = 0.0) -> Any:
    """x padded by ``widths`` in ``mode`` (PyTorch's name), with ``xp`` on x's device."""
    if mode == "constant":
        return xp.pad(x, widths, mode="constant", constant_values=value)
    return xp.pad(x, widths, mode=ARRAY_MODES[mode])


def fold_array(xp: Any, g: Any, widths: Widths, mode: str) -> Any:
    """Pᵀ g: the gradient of the padded array folded back onto the unpadded one."""
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            g = _fold_axis(xp, g, axis, lo, hi, mode)
    return g


def _fold_axis(xp: Any, g: Any, axis: int, lo: int, hi: int, mode: str) -> Any:
    n = g.shape[axis] - lo - hi

    def at(start: int | None, stop: int | None) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(start, stop),)

    dx = g[at(lo, lo + n)].copy()
    before, after = g[at(0, lo)], g[at(lo + n, None)]
    if mode == "reflect":  # p[lo − k] = x[k] for k = 1…lo; p[lo+n−1+k] = x[n−1−k]
        if lo:
            dx[at(1, lo + 1)] += xp.flip(before, axis=axis)
        if hi:
            dx[at(n - 1 - hi, n - 1)] += xp.flip(after, axis=axis)
    elif mode == "replicate":  # every border element copied the edge one
        if lo:
            dx[at(0, 1)] += before.sum(axis=axis, keepdims=True)
        if hi:
            dx[at(n - 1, n)] += after.sum(axis=axis, keepdims=True)
    elif mode == "circular":  # the border before is the input's end, and vice versa
        if lo:
            dx[at(n - lo, n)] += before
        if hi:
            dx[at(0, hi)] += after
    return dx


class PadFunction(Function):
    """y = x padded by ``widths`` (before, after per axis) in ``mode``: "constant" (with
    ``value``), "reflect", "replicate" or "circular" (see the module docstring).

    VJP: dx = Pᵀ g, the centre of g plus each border element added onto the input element
    it copies (``PadGradFunction``); ``value`` is a constant and gets no gradient.
    """

    @staticmethod
    def forward(ctx: Any, x: Any, widths: Widths, mode: str, value: float) -> Any:
        return pad_array(ctx.xp, x, widths, mode, value)

    @staticmethod
    def backward(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        _, widths, mode, _ = ctx.inputs
        return fold_array(ctx.xp, g, widths, mode), None, None, None

    @staticmethod
    def backward_graph(ctx: Any, g: Any) -> tuple[Any, None, None, None]:
        _, widths, mode, _ = ctx.inputs
        return PadGradFunction.apply(g, widths, mode), None, None, None


class PadGradFunction(Function):
    """dx = Pᵀ g: padding's input gradient as an op (linear in g), so that it can be
    differentiated again.

    VJP (h the gradient into dx): dg = P h, h padded in the same mode with zeros for
    "constant" (the transpose of the transpose).
    """

    @staticmethod
    def forward(ctx: Any, g: Any, widths: Widths, mode: str) -> Any:
        return fold_array(ctx.xp, g, widths, mode)

    @staticmethod
    def backward(ctx: Any, h: Any) -> tuple[Any, None, None]:
        _, widths, mode = ctx.inputs
        return pad_array(ctx.xp, h, widths, mode), None, None

    @staticmethod
    def backward_graph(ctx: Any, h: Any) -> tuple[Any, None, None]:
        _, widths, mode = ctx.inputs
        return PadFunction.apply(h, widths, mode, 0.0), None, None
