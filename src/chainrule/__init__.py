"""chainrule: reverse-mode autodiff and neural networks on NumPy, every gradient visible.

The public API follows PyTorch's names::

    import chainrule as cr
    x = cr.randn(4, 3, requires_grad=True)
    loss = (x @ cr.randn(3, 2)).relu().sum()
    loss.backward()
    x.grad
"""

from chainrule import autograd, data, nn, optim
from chainrule.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from chainrule.backend import (
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)
from chainrule.creation import (
    arange,
    as_tensor,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from chainrule.errors import (
    AnomalyError,
    DTypeError,
    GradcheckError,
    GraphError,
    ShapeError,
)
from chainrule.ops import (
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    clamp,
    clip,
    clone,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from chainrule.serialization import load, load_metadata, save
from chainrule.random import Generator, get_rng_state, initial_seed, manual_seed, set_rng_state
from chainrule.tensor import Tensor

bool = bool_  # noqa: A001  (cr.bool, as torch.bool)

__version__ = "0.1.0"

__all__ = [
    "AnomalyError", "DTypeError", "Generator", "GradcheckError", "GraphError", "ShapeError",
    "Tensor", "abs", "add", "amax", "amin", "arange", "argmax", "argmin", "as_tensor",
    "autograd", "data", "nn", "optim", "bool", "bool_", "cat", "clamp", "clip", "clone", "concatenate", "div",
    "empty", "enable_grad", "exp", "expand", "eye", "flatten", "float16", "float32",
    "float64", "from_numpy", "full", "full_like", "get_rng_state", "initial_seed", "int8",
    "int16", "int32", "int64", "is_grad_enabled", "linspace", "load", "load_metadata", "log", "log_softmax",
    "logsumexp", "manual_seed", "matmul", "max", "maximum", "mean", "min", "minimum", "mul",
    "neg", "no_grad", "ones", "ones_like", "permute", "pow", "rand", "rand_like", "randint",
    "randn", "randn_like", "randperm", "relu", "reshape", "save", "set_grad_enabled",
    "set_rng_state", "sigmoid", "softmax", "softplus", "sqrt", "squeeze", "stack", "std",
    "sub", "sum", "tanh", "tensor", "transpose", "uint8", "unsqueeze", "var", "where",
    "zeros", "zeros_like",
]
