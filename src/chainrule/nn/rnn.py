"""Recurrent layers with PyTorch's arguments, equations, parameter names and layout (a
state_dict loads into ``torch.nn.LSTM`` and the others): ``RNN``, ``LSTM`` and ``GRU``
over whole sequences (several layers, both directions, dropout between layers), and the
single steps ``RNNCell``, ``LSTMCell`` and ``GRUCell``.

An RNN, LSTM or GRU layer is one fused node per sequence (``nn.rnn_functions``: the steps
loop inside it, and its backward is backpropagation through time written out), an
``LSTMCell`` one node per step. The ``RNNCell`` and ``GRUCell`` are written with the
primitives (matmul, sigmoid, tanh, products), in the same step formulas the RNN and GRU
layers rebuild their states with for second-order gradients: a loop of cells is the
lecture's "graphs whose shape depends on the data", its backward pass through time the
engine's chain rule over the unrolled graph. The input projections of a whole sequence are
one matrix product before the loop; only h Wₕₕᵀ is computed per step.

The equations (σ the logistic sigmoid, ⊙ the elementwise product; PyTorch's gate order):

    RNN:   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)          (or relu)
    LSTM:  i, f, g, o = σ, σ, tanh, σ of the four blocks of W_ih x + b_ih + W_hh h + b_hh
           c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')
    GRU:   r, z = σ of the first two blocks of W_ih x + b_ih + W_hh h + b_hh
           n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),   h' = (1 − z) ⊙ n + z ⊙ h
"""

from __future__ import annotations

import math
from typing import Any

from chainrule import backend, ops
from chainrule.backend import default_float
from chainrule.nn import device_arrays, init
from chainrule.nn.functional import dropout, linear
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import module_shape_error
from chainrule.nn.rnn_functions import (
    GRULayerFunction,
    LSTMCellFunction,
    LSTMLayerFunction,
    RNNLayerFunction,
    gru_step_graph,
    rnn_step_graph,
)
from chainrule.random import Generator
from chainrule.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_NONLINEARITY = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}  # the RNN modes' φ

State = Any  # h (Tensor), or (h, c) for an LSTM


def _cell_step(
    mode: str, x_proj: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """One step from the input's projection x_proj = W_ih x + b_ih: (h', c')."""
    if mode == "LSTM":  # one fused node (nn.rnn_functions)
        h_next, c_next = LSTMCellFunction.apply(x_proj, h, c, w_hh, b_hh)
        return h_next, c_next
    if mode == "GRU":
        return gru_step_graph(x_proj, h, w_hh, b_hh), None
    return rnn_step_graph(x_proj, h, w_hh, b_hh, _NONLINEARITY[mode]), None


def _uniform_init(module: Module, hidden_size: int, generator: Generator | None) -> None:
    """PyTorch's: every weight and bias U(−1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound, generator)


class _RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters per layer and direction, the layouts, the
    initial states, and the loop over layers, directions and time."""

    mode = "RNN_TANH"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        if mode is not None:  # RNN picks tanh or relu
            self.mode = mode
        name = type(self).__name__
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(
                f"{name}: input_size, hidden_size and num_layers must be positive, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size is not supported")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), bias
        self.batch_first, self.dropout = batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.generator = generator
        dtype = default_float if dtype is None else backend.DType(dtype)
        gate = _GATES[self.mode] * self.hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes: dict[str, tuple[int, ...]] = {
                    "weight_ih": (gate, width),
                    "weight_hh": (gate, self.hidden_size),
                }
                if bias:
                    shapes |= {"bias_ih": (gate,), "bias_hh": (gate,)}
                for kind, shape in shapes.items():
                    empty = device_arrays.empty(shape, dtype, device)
                    setattr(self, kind + suffix, Parameter(empty))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_init(self, self.hidden_size, self.generator)

    def _weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Any, Any]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return (
            getattr(self, "weight_ih" + suffix),
            getattr(self, "weight_hh" + suffix),
            getattr(self, "bias_ih" + suffix, None),
            getattr(self, "bias_hh" + suffix, None),
        )

    def forward(self, input: Tensor, hx: State = None) -> tuple[Tensor, State]:
        """input (T, N, I), or (N, T, I) with ``batch_first``, or (T, I) for one
        sequence; hx the initial state(s) (layers·directions, N, H), zeros by default.
        Returns (output (T, N, directions·H) in the input's layout, final state(s))."""
        unbatched = input.ndim == 2
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "(N, T, I)" if self.batch_first else "(T, N, I)"
            raise module_shape_error(
                self,
                f"expected input {layout} or (T, I) with I = {self.input_size}, got {input.shape}",
            )
        x = (
            input.unsqueeze(1)
            if unbatched
            else input.transpose(0, 1)
            if self.batch_first
            else input
        )
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise module_shape_error(
                self, f"expected a sequence of at least one step, got {input.shape}"
            )
        h0, c0 = self._initial_state(hx, batch, unbatched, x)
        directions = 2 if self.bidirectional else 1
        finals_h: list[Tensor] = []
        finals_c: list[Tensor] = []
        layer_in = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                out, h, c = self._direction(
                    layer, direction, layer_in, h0[index], None if c0 is None else c0[index]
                )
                outputs.append(out)
                finals_h.append(h)
                if c is not None:
                    finals_c.append(c)
            layer_in = outputs[0] if directions == 1 else ops.cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = dropout(layer_in, self.dropout, True, self.generator)
        output = layer_in
        h_n = ops.stack(finals_h, 0)
        state: State = (h_n, ops.stack(finals_c, 0)) if self.mode == "LSTM" else h_n
        if unbatched:
            output = output.squeeze(1)
            state = tuple(s.squeeze(1) for s in state) if self.mode == "LSTM" else state.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, state

    def _direction(
        self, layer: int, direction: int, layer_in: Tensor, h: Tensor, c: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer in one direction over the sequence: (outputs (T, N, H), h_T, c_T).
        Every step's W_ih x + b_ih is one product; the layer's Function then runs the whole
        sequence in one node (its backward is BPTT written out)."""
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
        projected = linear(layer_in, w_ih, b_ih)
        reverse = bool(direction)
        if self.mode == "LSTM":
            out, h, c = LSTMLayerFunction.apply(projected, h, c, w_hh, b_hh, reverse)
            return out, h, c
        if self.mode == "GRU":
            out, h = GRULayerFunction.apply(projected, h, w_hh, b_hh, reverse)
            return out, h, None
        nonlinearity = _NONLINEARITY[self.mode]
        out, h = RNNLayerFunction.apply(projected, h, w_hh, b_hh, nonlinearity, reverse)
        return out, h, None

    def _initial_state(
        self, hx: State, batch: int, unbatched: bool, like: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        states = self.num_layers * (2 if self.bidirectional else 1)
        shape = (states, batch, self.hidden_size)
        if hx is None:
            zeros = Tensor(backend.get_array_module(like.data).zeros(shape, dtype=like.dtype))
            return zeros, (zeros if self.mode == "LSTM" else None)
        parts = hx if self.mode == "LSTM" else (hx,)
        if self.mode == "LSTM" and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise TypeError(f"{type(self).__name__}: hx must be a pair (h0, c0)")
        fixed = []
        for name, t in zip(("h0", "c0"), parts, strict=False):
            t = t.unsqueeze(1) if unbatched else t
            if t.shape != shape:
                raise module_shape_error(
                    self,
                    f"expected {name} of shape {(states, *shape[2:]) if unbatched else shape}, "
                    f"got {t.shape if not unbatched else t.squeeze(1).shape}",
                )
            fixed.append(t)
        return fixed[0], (fixed[1] if self.mode == "LSTM" else None)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(_RNNBase):
    """An Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (``nonlinearity="relu"``
    for relu), over whole sequences; arguments and layout as ``LSTM``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> out, h = nn.RNN(4, 8, batch_first=True)(cr.randn(2, 5, 4))
        >>> out.shape, h.shape
        ((2, 5, 8), (1, 2, 8))
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
        **kwargs: Any,
    ) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, mode=mode, **kwargs)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_RNNBase):
    """Long short-term memory (Hochreiter and Schmidhuber, 1997) over whole sequences,
    PyTorch's equations and gate order (i, f, g, o; module docstring).

    Args:
        input_size, hidden_size: I and H.
        num_layers: stacked layers, each reading the previous one's outputs.
        bias: the b_ih and b_hh biases.
        batch_first: input and output (N, T, ·) instead of (T, N, ·).
        dropout: dropout on the outputs of every layer but the last, in training.
        bidirectional: a second pass from the end; outputs are the two concatenated.
        dtype, generator, device: of the parameters (U(±1/√H), PyTorch's init).

    Shape:
        input (T, N, I) (or (N, T, I), or (T, I)); hx = (h0, c0), each
        (layers·directions, N, H) (zeros if None). Returns (output (T, N, directions·H),
        (h_n, c_n)).

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> out, (h, c) = nn.LSTM(4, 8, num_layers=2)(cr.randn(5, 3, 4))
        >>> out.shape, h.shape, c.shape
        ((5, 3, 8), (2, 3, 8), (2, 3, 8))
    """

    mode = "LSTM"


class GRU(_RNNBase):
    """Gated recurrent unit (Cho et al., 2014) over whole sequences, PyTorch's equations
    and gate order (r, z, n; module docstring); arguments and layout as ``LSTM``, with a
    single state h.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> out, h = nn.GRU(4, 8, bidirectional=True)(cr.randn(5, 3, 4))
        >>> out.shape, h.shape
        ((5, 3, 16), (2, 3, 8))
    """

    mode = "GRU"


class _CellBase(Module):
    """What the cells share: one step of their layer, parameters without a layer suffix."""

    mode = "RNN_TANH"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = None,
        generator: Generator | None = None,
        device: Any = None,
        mode: str | None = None,
    ) -> None:
        super().__init__()
        if mode is not None:  # RNNCell picks tanh or relu
            self.mode = mode
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"{type(self).__name__}: input_size and hidden_size must be positive, got "
                f"{input_size}, {hidden_size}"
            )
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        dtype = default_float if dtype is None else backend.DType(dtype)
        gate = _GATES[self.mode] * self.hidden_size
        self.weight_ih = Parameter(device_arrays.empty((gate, self.input_size), dtype, device))
        self.weight_hh = Parameter(device_arrays.empty((gate, self.hidden_size), dtype, device))
        if bias:
            self.bias_ih = Parameter(device_arrays.empty((gate,), dtype, device))
            self.bias_hh = Parameter(device_arrays.empty((gate,), dtype, device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _uniform_init(self, self.hidden_size, generator)

    def forward(self, input: Tensor, hx: State = None) -> State:
        """input (N, I) or (I,); hx (N, H) (an LSTMCell: the pair (h, c)), zeros if None.
        Returns h' (an LSTMCell: (h', c'))."""
        unbatched = input.ndim == 1
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise module_shape_error(
                self, f"expected input (N, {self.input_size}) or ({self.input_size},), got "
                f"{input.shape}"
            )  # fmt: skip
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            xp = backend.get_array_module(x.data)
            h = Tensor(xp.zeros((x.shape[0], self.hidden_size), x.dtype))
            c = h if self.mode == "LSTM" else None
        else:
            h, c = hx if self.mode == "LSTM" else (hx, None)
            if unbatched:
                h, c = h.unsqueeze(0), (None if c is None else c.unsqueeze(0))
        x_proj = linear(x, self.weight_ih, self.bias_ih)
        h_next, c_next = _cell_step(self.mode, x_proj, h, c, self.weight_hh, self.bias_hh)
        if unbatched:
            h_next = h_next.squeeze(0)
            c_next = None if c_next is None else c_next.squeeze(0)
        return (h_next, c_next) if self.mode == "LSTM" else h_next

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One step of ``RNN``: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu)."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
        **kwargs: Any,
    ) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, mode=mode, **kwargs)
        self.nonlinearity = nonlinearity


class LSTMCell(_CellBase):
    """One step of ``LSTM``: (h, c) → (h', c')."""

    mode = "LSTM"


class GRUCell(_CellBase):
    """One step of ``GRU``: h → h'."""

    mode = "GRU"
