"""The Transformer of Vaswani et al. (2017) with PyTorch's classes, arguments and
parameter names (a state_dict loads into ``torch.nn.Transformer*`` and back):
``TransformerEncoderLayer``, ``TransformerEncoder``, ``TransformerDecoderLayer``,
``TransformerDecoder`` and ``Transformer``.

A layer is attention and a two-layer feed-forward network, each wrapped in a residual
connection and a layer norm, after the sum (post-norm, the paper's) or before the block
(``norm_first``, pre-norm, which trains deep stacks without warm-up):

    post-norm:  x ← LN(x + Block(x))        pre-norm:  x ← x + Block(LN(x))
    FF(x) = W₂ dropout(act(W₁ x + b₁)) + b₂

Everything is composed from ``MultiheadAttention``, ``Linear``, ``LayerNorm`` and
``Dropout``, so every gradient, to any order, is the chain rule through them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from chainrule import backend
from chainrule.backend import default_float
from chainrule.nn import device_arrays, init
from chainrule.nn.attention import MultiheadAttention
from chainrule.nn.containers import ModuleList
from chainrule.nn.dropout import Dropout
from chainrule.nn.functional import gelu, relu
from chainrule.nn.linear import Linear
from chainrule.nn.module import Module
from chainrule.nn.normalization import LayerNorm
from chainrule.random import Generator
from chainrule.tensor import Tensor

Activation = str | Callable[[Tensor], Tensor]
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": relu, "gelu": gelu}


def _activation(name: str, activation: Activation) -> Callable[[Tensor], Tensor]:
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"{name}: activation must be 'relu', 'gelu' or a callable, got {activation!r}"
            )
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"{name}: activation must be a string or a callable, got {activation!r}")
    return activation


class _Sublayers(Module):
    """What the encoder and decoder layers share: the feed-forward block, the dropouts
    after each block, and the choice of post- or pre-norm."""

    def _build_feed_forward(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        activation: Activation,
        bias: bool,
        factory: dict[str, Any],
        generator: Generator | None,
    ) -> None:
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout, generator=generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        # A Module activation (nn.GELU(approximate="tanh")) is a submodule, as in PyTorch;
        # a string or a function is a plain attribute and adds nothing to the state_dict.
        self.activation = _activation(type(self).__name__, activation)

    def _build_residuals(
        self,
        count: int,
        d_model: int,
        eps: float,
        bias: bool,
        dropout: float,
        factory: dict[str, Any],
    ) -> None:
        """The layer norm and the dropout of each of ``count`` residual blocks, under
        PyTorch's names ``norm1``…, ``dropout1``…"""
        for i in range(1, count + 1):
            norm = LayerNorm(
                d_model, eps=eps, bias=bias, dtype=factory["dtype"], device=factory["device"]
            )
            self.add_module(f"norm{i}", norm)
            self.add_module(f"dropout{i}", Dropout(dropout, generator=factory["generator"]))

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def _residual(
        self, x: Tensor, norm: LayerNorm, block: Callable[[Tensor], Tensor], drop: Dropout
    ) -> Tensor:
        if self.norm_first:
            return x + drop(block(norm(x)))
        return norm(x + drop(block(x)))


def _factory(dtype: Any, device: Any, generator: Generator | None) -> dict[str, Any]:
    dtype = default_float if dtype is None else backend.DType(dtype)
    return {"dtype": dtype, "device": device, "generator": generator}


class TransformerEncoderLayer(_Sublayers):
    r"""Self-attention and a feed-forward network, each in a residual connection with a
    layer norm (module docstring for the formulas).

    Args:
        d_model: the features of each position (E).
        nhead: attention heads, dividing ``d_model``.
        dim_feedforward: the hidden width of the feed-forward network.
        dropout: on the attention weights, inside the feed-forward network and on each
            block's output, in training.
        activation: "relu", "gelu", or a callable (a function or a Module).
        layer_norm_eps: the layer norms' ε.
        batch_first: inputs (N, S, E) instead of (S, N, E).
        norm_first: pre-norm (LN before each block) instead of post-norm.
        bias: biases in the linear layers, attention and layer norms.
        dtype, device, generator: of the parameters; where the initial values and the
            dropout masks come from.

    Shape:
        src (S, N, E), (N, S, E) with ``batch_first``, or (S, E) → the same shape.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> layer(cr.randn(2, 5, 16)).shape
        (2, 5, 16)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        factory = _factory(dtype, device, generator)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **factory
        )
        self._build_feed_forward(
            d_model, dim_feedforward, dropout, activation, bias, factory, generator
        )
        self.norm_first, self.batch_first = norm_first, batch_first
        self._build_residuals(2, d_model, layer_norm_eps, bias, dropout, factory)

    def forward(
        self,
        src: Tensor,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Masks as ``MultiheadAttention``'s: ``src_mask`` (S, S) or (N·nhead, S, S),
        ``src_key_padding_mask`` (N, S); boolean True (or −∞) where attending is not
        allowed. ``is_causal`` applies the causal mask when ``src_mask`` is None."""

        def self_attention(x: Tensor) -> Tensor:
            out, _ = self.self_attn(
                x,
                x,
                x,
                attn_mask=src_mask,
                key_padding_mask=src_key_padding_mask,
                need_weights=False,
                is_causal=is_causal,
            )
            return out

        x = self._residual(src, self.norm1, self_attention, self.dropout1)
        return self._residual(x, self.norm2, self._ff_block, self.dropout2)


class TransformerDecoderLayer(_Sublayers):
    r"""Masked self-attention over the target, attention from the target to the
    encoder's output (``memory``), and a feed-forward network, each in a residual
    connection with a layer norm. Arguments as ``TransformerEncoderLayer``'s.

    Shape:
        tgt (T, N, E), memory (S, N, E) (batch first with ``batch_first``; or (T, E)
        and (S, E)) → tgt's shape.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> layer = nn.TransformerDecoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> layer(cr.randn(2, 3, 16), cr.randn(2, 5, 16), tgt_is_causal=True).shape
        (2, 3, 16)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        factory = _factory(dtype, device, generator)
        attention = {"dropout": dropout, "bias": bias, "batch_first": batch_first, **factory}
        self.self_attn = MultiheadAttention(d_model, nhead, **attention)
        self.multihead_attn = MultiheadAttention(d_model, nhead, **attention)
        self._build_feed_forward(
            d_model, dim_feedforward, dropout, activation, bias, factory, generator
        )
        self.norm_first, self.batch_first = norm_first, batch_first
        self._build_residuals(3, d_model, layer_norm_eps, bias, dropout, factory)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """``tgt_mask`` (T, T) and ``memory_mask`` (T, S), or per head; the padding masks
        (N, T) and (N, S). ``tgt_is_causal`` applies the causal mask to the target's
        self-attention when ``tgt_mask`` is None, which a decoder trained to predict
        the next token needs."""

        def self_attention(x: Tensor) -> Tensor:
            out, _ = self.self_attn(
                x,
                x,
                x,
                attn_mask=tgt_mask,
                key_padding_mask=tgt_key_padding_mask,
                need_weights=False,
                is_causal=tgt_is_causal,
            )
            return out

        def cross_attention(x: Tensor) -> Tensor:
            out, _ = self.multihead_attn(
                x,
                memory,
                memory,
                attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask,
                need_weights=False,
                is_causal=memory_is_causal,
            )
            return out

        x = self._residual(tgt, self.norm1, self_attention, self.dropout1)
        x = self._residual(x, self.norm2, cross_attention, self.dropout2)
        return self._residual(x, self.norm3, self._ff_block, self.dropout3)


def _clones(layer: Module, num_layers: int, owner: str) -> ModuleList:
    """``num_layers`` deep copies of ``layer`` (PyTorch's rule: every layer starts from the
    same values). A generator the layer draws dropout masks from is shared, not copied:
    copies would draw the same masks in every layer."""
    if num_layers < 1:
        raise ValueError(f"{owner}: num_layers must be at least 1, got {num_layers}")
    generators = {id(m.generator): m.generator for m in layer.modules() if _has_generator(m)}
    return ModuleList(copy.deepcopy(layer, dict(generators)) for _ in range(num_layers))


def _has_generator(module: Module) -> bool:
    return getattr(module, "generator", None) is not None


class TransformerEncoder(Module):
    r"""A stack of ``num_layers`` copies of an encoder layer (``layers.0`` …, each
    starting from the layer's values), then an optional final ``norm``.

    Args:
        encoder_layer: the layer to copy.
        num_layers: how many copies.
        norm: a module applied to the last layer's output (a LayerNorm with pre-norm
            layers, whose output is otherwise unnormalised).
        enable_nested_tensor, mask_check: accepted for PyTorch compatibility; they select
            PyTorch's inference fast path, which chainrule does not have.

    Shape:
        as the layer's.
    """

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    r"""A stack of ``num_layers`` copies of a decoder layer, each attending to the same
    ``memory``, then an optional final ``norm``. Arguments as ``TransformerEncoder``'s."""

    def __init__(
        self,
        decoder_layer: TransformerDecoderLayer,
        num_layers: int,
        norm: Module | None = None,
    ) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(
                x,
                memory,
                tgt_mask,
                memory_mask,
                tgt_key_padding_mask,
                memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    r"""The encoder–decoder Transformer: an encoder stack over the source, a decoder
    stack over the target attending to the encoder's output, each ending in a LayerNorm;
    every weight matrix starts Xavier-uniform (PyTorch's ``_reset_parameters``).

    Args:
        d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
        norm_first, bias, dtype, device, generator: as ``TransformerEncoderLayer``'s.
        num_encoder_layers, num_decoder_layers: the depth of each stack.
        custom_encoder, custom_decoder: modules used instead of the stacks.

    Shape:
        src (S, N, E), tgt (T, N, E) (batch first with ``batch_first``) → (T, N, E).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> model = nn.Transformer(16, 4, 1, 1, dim_feedforward=32, batch_first=True)
        >>> mask = nn.Transformer.generate_square_subsequent_mask(3)
        >>> model(cr.randn(2, 5, 16), cr.randn(2, 3, 16), tgt_mask=mask).shape
        (2, 3, 16)
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        common: dict[str, Any] = {
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
            "activation": activation,
            "layer_norm_eps": layer_norm_eps,
            "batch_first": batch_first,
            "norm_first": norm_first,
            "bias": bias,
            "dtype": dtype,
            "generator": generator,
            "device": device,
        }
        factory = _factory(dtype, device, generator)
        norm = {"eps": layer_norm_eps, "bias": bias, "dtype": factory["dtype"], "device": device}
        self.encoder: Module = custom_encoder or TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **common),
            num_encoder_layers,
            LayerNorm(d_model, **norm),
        )
        self.decoder: Module = custom_decoder or TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **common),
            num_decoder_layers,
            LayerNorm(d_model, **norm),
        )
        self.d_model, self.nhead, self.batch_first = int(d_model), int(nhead), batch_first
        self.generator = generator
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p, generator=generator)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Any = None,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        src_key_padding_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        batch_dim = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise ValueError(
                f"Transformer: src {src.shape} and tgt {tgt.shape} have different batch sizes "
                f"(dim {batch_dim} with batch_first={self.batch_first})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(
                f"Transformer: src {src.shape} and tgt {tgt.shape} must end in "
                f"d_model={self.d_model} features"
            )
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
        """The causal mask for a sequence of ``sz``: a float (sz, sz) tensor, 0 where
        position i may attend to j (j ≤ i) and −∞ above the diagonal (PyTorch's)."""
        dtype = default_float if dtype is None else backend.DType(dtype)
        filled = device_arrays.constant((sz, sz), -math.inf, dtype, device)
        return Tensor(backend.get_array_module(filled).triu(filled, 1))
