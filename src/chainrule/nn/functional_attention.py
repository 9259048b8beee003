"""The functional form of attention (re-exported by ``chainrule.nn.functional``):
``scaled_dot_product_attention``, PyTorch's arguments and masks, and the mask helpers
``nn.MultiheadAttention`` shares. Composed from the primitives (matmul, softmax, where),
so every gradient, to any order, is the chain rule through them.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + M) V

for queries Q (…, L, d), keys K (…, S, d), values V (…, S, dᵥ) and a mask M (0 where a
query may look at a key, −∞ where it may not).
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend, ops
from chainrule.errors import DTypeError, ShapeError
from chainrule.nn.fused import DropoutFunction
from chainrule.random import Generator, resolve
from chainrule.tensor import Tensor


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    generator: Generator | None = None,
) -> Tensor:
    """softmax(Q Kᵀ · scale + M) V, PyTorch's ``scaled_dot_product_attention``.

    Args:
        query, key, value: (…, L, d), (…, S, d), (…, S, dᵥ); leading dims broadcast.
        attn_mask: a boolean mask, True where a query **may** attend (PyTorch's rule for
            this function), or a float mask added to the scores; broadcast to (…, L, S).
        dropout_p: dropout on the attention weights (pass 0.0 in evaluation).
        is_causal: query i attends to keys 0..i only (no attn_mask with it).
        scale: the factor of the scores; default 1/√d.
        generator: where the dropout masks come from (default the global one).

    Returns:
        (…, L, dᵥ).
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ShapeError(
            f"scaled_dot_product_attention: query, key and value need (..., length, dim), "
            f"got {query.shape}, {key.shape}, {value.shape}"
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: query {query.shape} and key {key.shape} must "
            f"share the last dim, key and value {value.shape} the second to last"
        )
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = (query * factor) @ key.transpose(-2, -1)
    length, source = query.shape[-2], key.shape[-2]
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
        attn_mask = causal(length, source, scores)
    if attn_mask is not None:
        scores = apply_mask(scores, attn_mask, allowed=True)
    weights = scores.softmax(-1)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}"
        )
    if dropout_p > 0.0:
        weights = DropoutFunction.apply(weights, float(dropout_p), resolve(generator))
    return weights @ value


def causal(length: int, source: int, like: Tensor) -> Tensor:
    """True on and below the diagonal: query i may attend to keys 0..i."""
    xp = backend.get_array_module(like.data)
    return Tensor(xp.tril(xp.ones((length, source), dtype=bool)))


def apply_mask(scores: Tensor, mask: Any, allowed: bool) -> Tensor:
    """The scores with a mask applied: a boolean mask (True meaning ``allowed`` to
    attend, or its opposite) puts −∞ where attending is not allowed; a float mask is
    added (converted to the scores' dtype)."""
    data = mask_array(mask)
    if data.dtype == bool:
        return ops.where(data if allowed else ~data, scores, -math.inf)
    if data.dtype.kind != "f":
        raise DTypeError(f"attention: a mask must be boolean or floating, got {data.dtype}")
    return scores + Tensor(data.astype(scores.dtype, copy=False))


def mask_array(mask: Any) -> Any:
    """A mask as an array: a Tensor's data, an array of either library, or nested lists
    (read by NumPy on the host)."""
    if isinstance(mask, Tensor):
        return mask.data
    if hasattr(mask, "dtype") and hasattr(mask, "shape"):
        return mask
    return backend.xp.asarray(mask)  # nested lists: host data, read by NumPy


def heads_mask(mask: Any, batch: int, heads: int, length: int, source: int) -> Any:
    """An attn_mask (L, S) as it is (it broadcasts), or (N·h, L, S) as (N, h, L, S)."""
    data = mask_array(mask)
    if tuple(data.shape) == (length, source):
        return data
    if tuple(data.shape) == (batch * heads, length, source):
        return data.reshape(batch, heads, length, source)
    raise ShapeError(
        f"MultiheadAttention: attn_mask must be (L, S) = ({length}, {source}) or "
        f"(N·num_heads, L, S) = ({batch * heads}, {length}, {source}), got {tuple(data.shape)}"
    )


def padding_mask(mask: Any, batch: int, source: int) -> Any:
    """A key_padding_mask (N, S) as (N, 1, 1, S): the same keys hidden from every head
    and query of an example."""
    data = mask_array(mask)
    if tuple(data.shape) != (batch, source):
        raise ShapeError(
            f"MultiheadAttention: key_padding_mask must be (N, S) = ({batch}, {source}), got "
            f"{tuple(data.shape)}"
        )
    return data.reshape(batch, 1, 1, source)
