"""``pad`` (re-exported by ``chainrule.nn.functional``): PyTorch's ``F.pad``, one
``PadFunction`` node (``nn.pad_functions``) after the arguments are checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from chainrule.errors import ShapeError
from chainrule.nn.pad_functions import PadFunction, Widths
from chainrule.tensor import Tensor

MODES = ("constant", "reflect", "replicate", "circular")


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pads the last ``len(pad) // 2`` dims of ``input`` (PyTorch's ``F.pad``).

    ``pad`` lists (before, after) pairs from the last dim backwards: ``(left, right)`` pads
    the last dim, ``(left, right, top, bottom)`` the last two, and so on. Along a dim of
    size n padded by (a, b), with x the input's values along it:

    - "constant": ``value`` (default 0) on both sides; negative widths crop instead.
    - "reflect": the mirror image without the edge: x[a], …, x[1], x, x[n−2], …; a, b < n.
    - "replicate": the edge repeated: x[0] a times, x, x[n−1] b times.
    - "circular": the input wrapped around: x[n−a], …, x[n−1], x, x[0], …, x[b−1]; a, b ≤ n.

    The gradient adds each padded element's gradient onto the input element it copies
    (the border elements receive several), so it is exact for every mode; second order too.

    Args:
        input: any shape for "constant"; for the other modes, k padded dims need an input
            of k + 1 dims (one example, (C, *spatial)) or k + 2 (a batch, (N, C, *spatial)),
            k = 1, 2 or 3.
        pad: an even number of ints, at most 2·input.ndim.
        mode: "constant", "reflect", "replicate" or "circular".
        value: the fill of "constant" mode (only there).

    Shape:
        (*, n) with pad (a, b) → (*, a + n + b); likewise for each padded dim.

    Example:
        >>> import chainrule as cr
        >>> import chainrule.nn.functional as F
        >>> F.pad(cr.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
        [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """
    if mode not in MODES:
        raise ValueError(f"pad: mode must be one of {MODES}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' fills with one)")
    widths = _widths(input, pad, mode)
    if mode == "constant" and any(w < 0 for pair in widths for w in pair):
        # Negative widths crop (PyTorch's rule): cut first, then pad what is left.
        input = input[
            tuple(slice(max(-a, 0), n - max(-b, 0)) for (a, b), n in zip(widths, input.shape))
        ]
        widths = tuple((max(a, 0), max(b, 0)) for a, b in widths)
    if not any(a or b for a, b in widths):
        return input.clone()  # a new tensor, as PyTorch's: writing to it leaves x alone
    return PadFunction.apply(input, widths, mode, 0.0 if value is None else value)


def _widths(input: Tensor, pad: Sequence[int], mode: str) -> Widths:
    """(before, after) for every dim of ``input``, checked against the mode's rules."""
    values = [int(p) for p in pad]
    dims = len(values) // 2
    if len(values) % 2 or dims > input.ndim:
        raise ShapeError(
            f"pad: the padding {tuple(values)} must have an even length of at most "
            f"2·ndim = {2 * input.ndim} for an input of shape {input.shape}"
        )
    if mode != "constant":
        if dims not in (1, 2, 3) or input.ndim not in (dims + 1, dims + 2):
            raise ShapeError(
                f"pad: mode {mode!r} pads 1, 2 or 3 dims of an input with 1 or 2 dims more "
                f"(C, *spatial) or (N, C, *spatial); the padding {tuple(values)} pads {dims} "
                f"dims, so it expects a {dims + 1}-D or {dims + 2}-D input, got shape "
                f"{input.shape}"
            )
        if min(values) < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative padding, got {tuple(values)}")
    # pad lists the last dim first: pairs (values[2i], values[2i + 1]) for dim −1 − i.
    widths = [(0, 0)] * input.ndim
    for i in range(dims):
        widths[input.ndim - 1 - i] = (values[2 * i], values[2 * i + 1])
    for axis, (a, b) in enumerate(widths):
        _check_fits(input, axis, a, b, mode, tuple(values))
    return tuple(widths)


def _check_fits(input: Tensor, axis: int, a: int, b: int, mode: str, pad: tuple[int, ...]) -> None:
    n = input.shape[axis]
    if not (a or b):
        return
    too_large = {
        "reflect": (max(a, b) >= n, f"smaller than the size {n} of the dim it pads"),
        "circular": (max(a, b) > n, f"at most the size {n} of the dim it pads"),
        "replicate": (n == 0, "on a dim of size at least 1"),
        "constant": (n + min(a, 0) + min(b, 0) < 0, f"cropping at most the size {n}"),
    }
    bad, rule = too_large[mode]
    if bad:
        raise ShapeError(
            f"pad: {mode} padding ({a}, {b}) of dim {axis} must be {rule} (padding {pad}, "
            f"input of shape {input.shape})"
        )
