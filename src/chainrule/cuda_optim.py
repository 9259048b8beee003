"""The optimiser updates as single CUDA kernels (CuPy): Adam/AdamW and SGD (momentum).

Run over the flat buffers of ``chainrule.cuda_flat.FlatParams`` (every parameter of one
dtype in one array), one launch updates every parameter, where the per-parameter loop
launches a dozen kernels per parameter.

The kernels follow ``chainrule.optim``'s rules (``Adam``/``AdamW``/``SGD`` docstrings),
in the same order of operations, with the scalars rounded to the arrays' dtype as NumPy
does; ``*_reference`` are the NumPy forms the GPU tests hold them to. CuPy is imported
inside the functions (this module imports without it); CuPy compiles each kernel once per
dtype and caches it.

Example (on a GPU):
    >>> adam_update(w, g, m, v, lr=1e-3, step=1)       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy

_cache: dict[str, Any] = {}

# d = ±g + λw; m ← m + (1 − β₁)(d − m); v ← β₂v + (1 − β₂)d²;
# w ← w − step_size · m / (√v / √(1 − β₂ᵗ) + ε), step_size = η / (1 − β₁ᵗ).
_ADAM_OP = """
    T d = maximize ? -g : g;
    if (weight_decay != (T)0) d = p * weight_decay + d;
    m = m + one_minus_beta1 * (d - m);
    v = v * beta2 + one_minus_beta2 * (d * d);
    T denom = sqrt(v) / bias_correction2_sqrt + eps;
    p = p * decay - step_size * (m / denom);
"""

# d = ±g + λw; b₁ = d, b ← μb + (1 − τ)d; step along b (or d + μb, Nesterov); w ← w − ηd.
_SGD_OP = """
    T d = maximize ? -g : g;
    if (weight_decay != (T)0) d = p * weight_decay + d;
    if (use_momentum) {
        buf = first ? d : buf * momentum + one_minus_dampening * d;
        d = nesterov ? d + buf * momentum : buf;
    }
    p = p - d * lr;
"""


def _kernel(name: str, params: str, outputs: str, op: str) -> Any:
    kernel = _cache.get(name)
    if kernel is None:
        import cupy  # only when a kernel is asked for

        kernel = cupy.ElementwiseKernel(params, outputs, op, f"chainrule_{name}")
        _cache[name] = kernel
    return kernel


def _adam_kernel() -> Any:
    return _kernel(
        "adam",
        "T g, T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay, "
        "T step_size, T bias_correction2_sqrt, T decay, bool maximize",
        "T p, T m, T v",
        _ADAM_OP,
    )


def _sgd_kernel() -> Any:
    return _kernel(
        "sgd",
        "T g, T lr, T momentum, T one_minus_dampening, T weight_decay, bool use_momentum, "
        "bool first, bool nesterov, bool maximize",
        "T p, T buf",
        _SGD_OP,
    )


def adam_update(
    param: Any,
    grad: Any,
    exp_avg: Any,
    exp_avg_sq: Any,
    *,
    lr: float,
    step: int,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    maximize: bool = False,
) -> None:
    """One Adam (``decoupled=False``) or AdamW step over whole arrays, in place, one launch.

    Args:
        param, grad, exp_avg, exp_avg_sq: arrays of one shape and dtype (flat buffers, or
            one parameter's); param, exp_avg and exp_avg_sq are updated in place.
        lr, betas, eps, weight_decay, maximize: as ``optim.Adam``.
        step: t, counted from 1 (this step's number).
        decoupled: AdamW's decay w ← (1 − ηλ)w instead of λw added to the gradient.
    """
    beta1, beta2 = betas
    _adam_kernel()(
        grad, 1 - beta1, beta2, 1 - beta2, eps, 0.0 if decoupled else weight_decay,
        lr / (1 - beta1**step), (1 - beta2**step) ** 0.5,
        1 - lr * weight_decay if decoupled else 1.0, maximize,
        param, exp_avg, exp_avg_sq,
    )  # fmt: skip


def sgd_update(
    param: Any,
    grad: Any,
    momentum_buffer: Any,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    first: bool = False,
) -> None:
    """One SGD step (optionally with momentum) over whole arrays, in place, one launch.

    Args:
        momentum_buffer: the buffer b (any array of param's shape when momentum is 0).
        first: True on the first step, where b₁ = d (PyTorch's rule).
        lr, momentum, dampening, weight_decay, nesterov, maximize: as ``optim.SGD``.
    """
    _sgd_kernel()(
        grad, lr, momentum, 1 - dampening, weight_decay, momentum != 0, first, nesterov,
        maximize, param, momentum_buffer,
    )  # fmt: skip


def adam_update_reference(
    param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, **options: Any
) -> None:
    """NumPy reference of ``adam_update`` (same arguments), in place."""
    beta1, beta2 = options.get("betas", (0.9, 0.999))
    lr, step, eps = options["lr"], options["step"], options.get("eps", 1e-8)
    wd, decoupled = options.get("weight_decay", 0.0), options.get("decoupled", False)
    d = -grad if options.get("maximize", False) else grad
    if wd and not decoupled:
        d = param * wd + d
    if decoupled:
        param *= 1 - lr * wd
    exp_avg += (1 - beta1) * (d - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * (d * d)
    denom = numpy.sqrt(exp_avg_sq) / (1 - beta2**step) ** 0.5 + eps
    param -= lr / (1 - beta1**step) * (exp_avg / denom)


def sgd_update_reference(param: Any, grad: Any, momentum_buffer: Any, **options: Any) -> None:
    """NumPy reference of ``sgd_update`` (same arguments), in place."""
    momentum, wd = options.get("momentum", 0.0), options.get("weight_decay", 0.0)
    d = -grad if options.get("maximize", False) else grad
    if wd:
        d = param * wd + d
    if momentum:
        if options.get("first", False):
            momentum_buffer[...] = d
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - options.get("dampening", 0.0)) * d
        d = d + momentum * momentum_buffer if options.get("nesterov", False) else momentum_buffer
    param -= d * options["lr"]
