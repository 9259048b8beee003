"""``MultiheadAttention``: PyTorch's arguments, masks and parameter layout (a state_dict
loads into ``torch.nn.MultiheadAttention``), built on ``nn.functional``'s linear and
dropout and the primitives, so every gradient, to any order, is the chain rule through
them."""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend
from chainrule.backend import default_float
from chainrule.nn import device_arrays, init
from chainrule.nn.functional import dropout, linear
from chainrule.nn.functional_attention import (
    apply_mask,
    causal,
    heads_mask,
    mask_array,
    padding_mask,
)
from chainrule.nn.linear import Linear
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import module_shape_error
from chainrule.random import Generator
from chainrule.tensor import Tensor


class MultiheadAttention(Module):
    r"""Multi-head attention (Vaswani et al., 2017) with PyTorch's arguments, parameter
    names and layout (a state_dict loads into ``torch.nn.MultiheadAttention``):

        head_i = Attention(Q W_qᵢ, K W_kᵢ, V W_vᵢ),  out = concat(head_1..head_h) W_o

    Args:
        embed_dim: E, split into ``num_heads`` heads of E/num_heads.
        num_heads: h, dividing E.
        dropout: dropout on the attention weights in training.
        bias: biases on the input and output projections.
        kdim, vdim: the keys' and values' feature sizes (default E); when they differ
            from E the three input projections are separate parameters.
        batch_first: inputs (N, L, E) instead of (L, N, E).
        dtype, device, generator: the parameters' dtype and device; where the initial
            values and dropout masks come from.

    Shape:
        query (L, N, E) or (N, L, E) with ``batch_first``, or (L, E) for one sequence;
        key (S, N, kdim), value (S, N, vdim) likewise. Returns (output of query's shape,
        weights (N, L, S) averaged over the heads, or (N, h, L, S) with
        ``average_attn_weights=False``; None with ``need_weights=False``).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
        >>> x = cr.randn(2, 5, 16)
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        ((2, 5, 16), (2, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: num_heads={num_heads} must divide embed_dim={embed_dim}"
            )
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(
                "MultiheadAttention: add_bias_kv and add_zero_attn are not supported"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = self.embed_dim if kdim is None else int(kdim)
        self.vdim = self.embed_dim if vdim is None else int(vdim)
        self.dropout, self.batch_first = float(dropout), batch_first
        self.generator = generator
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        dtype = default_float if dtype is None else backend.DType(dtype)
        e = self.embed_dim

        def param(*shape: int) -> Parameter:
            return Parameter(device_arrays.empty(shape, dtype, device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * e, e)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = param(e, e)
            self.k_proj_weight = param(e, self.kdim)
            self.v_proj_weight = param(e, self.vdim)
        if bias:
            self.in_proj_bias = param(3 * e)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, dtype=dtype, generator=generator, device=device)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform input projections, zero biases (the output
        projection keeps Linear's weight initialisation)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=self.generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=self.generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(
        self, query: Tensor, key: Tensor, value: Tensor, one_input: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Q W_qᵀ + b_q, K W_kᵀ + b_k, V W_vᵀ + b_v, each as (N, h, n, d) for inputs
        (n, N, E).

        Self-attention (``one_input``: one tensor as query, key and value, with the packed
        weight) projects in one product with the whole (3E, E) weight and splits the result: one
        matrix product forward and two backward instead of three and six, as PyTorch
        does. Otherwise the packed weight is split once (one node) into its three blocks.
        """
        length, batch = query.shape[0], query.shape[1]
        source = key.shape[0]
        h, d = self.num_heads, self.head_dim

        def heads(projected: Tensor, n: int) -> Tensor:
            # (n, N, E) → (N, h, n, d): each head's slice of the projected features
            return projected.reshape(n, batch, h, d).permute(1, 2, 0, 3)

        w, b = self.in_proj_weight, self.in_proj_bias
        if self._qkv_same_embed_dim and one_input:
            q, k, v = linear(query, w, b).chunk(3, -1)
            return heads(q, length), heads(k, length), heads(v, length)
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = w.chunk(3, 0)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3, 0)
        return (
            heads(linear(query, w_q, b_q), length),
            heads(linear(key, w_k, b_k), source),
            heads(linear(value, w_v, b_v), source),
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Masks as PyTorch's: ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or
        (N·h, L, S), boolean with True where attending is **not** allowed, or float and
        added to the scores. ``is_causal`` makes the causal mask when none is given."""
        unbatched = query.ndim == 2
        one_input = query is key and key is value  # self-attention: one projection
        for name, t, width in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            if t.ndim != (2 if unbatched else 3) or t.shape[-1] != width:
                layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
                raise module_shape_error(
                    self,
                    f"expected {name} {layout} or (L, E) with {width} features, got {t.shape}",
                )
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = mask_array(key_padding_mask).reshape(1, -1)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        length, batch, _ = query.shape
        source = key.shape[0]
        if key.shape[1] != batch or value.shape[:2] != key.shape[:2]:
            raise module_shape_error(
                self,
                f"query, key and value disagree on the batch or key length: "
                f"{query.shape}, {key.shape}, {value.shape} (as (L, N, E))",
            )
        q, k, v = self._project(query, key, value, one_input)
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)  # (N, h, L, S)
        if is_causal and attn_mask is None:
            attn_mask = ~causal(length, source, scores).data  # True: not allowed
        if attn_mask is not None:
            scores = apply_mask(
                scores, heads_mask(attn_mask, batch, h, length, source), allowed=False
            )
        if key_padding_mask is not None:
            scores = apply_mask(
                scores, padding_mask(key_padding_mask, batch, source), allowed=False
            )
        weights = scores.softmax(-1)
        if self.training and self.dropout > 0.0:
            weights = dropout(weights, self.dropout, True, self.generator)
        out = (weights @ v).permute(2, 0, 1, 3).reshape(length, batch, e)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        attn = weights.mean(1) if average_attn_weights else weights
        return out, (attn.squeeze(0) if unbatched else attn)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )
