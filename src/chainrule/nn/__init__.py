"""``chainrule.nn``: modules with fused gradients, graphs of modules, losses and init.

The PyTorch surface users know::

    from chainrule import nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(256, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()

Layers whose backward has a closed form (Linear, the losses, Dropout, GELU…) run as one
fused ``Function`` each (``nn.fused``, ``nn.fused_loss``), with the formula in its
docstring and a ``backward_graph`` for gradients of gradients; the wiring modules
(Duplicate, Add, Max, ``nn.wiring``) are built on the core's ops and the engine's
fan-out. ``nn.Graph`` wires modules into any DAG by name.
"""

from chainrule.nn import functional, init, utils
from chainrule.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from chainrule.nn.attention import MultiheadAttention
from chainrule.nn.containers import ModuleDict, ModuleList, Sequential
from chainrule.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from chainrule.nn.dropout import Dropout
from chainrule.nn.graph import Edge, Graph
from chainrule.nn.linear import Embedding, Flatten, Identity, Linear
from chainrule.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from chainrule.nn.module import IncompatibleKeys, Module, RemovableHandle
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, Dropout2d, GroupNorm, LayerNorm
from chainrule.nn.parameter import Parameter
from chainrule.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from chainrule.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from chainrule.nn.wiring import Add, Duplicate, Max

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "Dropout2d",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "MaxPool2d",
    "ELU",
    "GELU",
    "Add",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Duplicate",
    "Edge",
    "Embedding",
    "Flatten",
    "Graph",
    "GroupNorm",
    "HuberLoss",
    "Identity",
    "IncompatibleKeys",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Max",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "Parameter",
    "RNN",
    "RNNCell",
    "ReLU",
    "RemovableHandle",
    "SiLU",
    "Sequential",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "functional",
    "init",
    "utils",
]
