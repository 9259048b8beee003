"""The optimiser update of every parameter in one CUDA launch (CuPy).

``FlatParams`` puts all parameters of one dtype and device in one contiguous buffer, and
their gradients in another, each parameter's ``.data`` and ``.grad`` a view into them.
The update kernels (``adam_update``, ``sgd_update``) then run over the whole buffer in one
launch, where the per-parameter loop launches a dozen kernels per parameter.

The kernels follow ``chainrule.optim``'s rules (``Adam``/``AdamW``/``SGD`` docstrings),
in the same order of operations, with the scalars rounded to the arrays' dtype as NumPy
does; ``*_reference`` are the NumPy forms the GPU tests hold them to. CuPy is imported
inside the functions (this module imports without it); CuPy compiles each kernel once per
dtype and caches it.

Example (on a GPU):
    >>> flat = FlatParams(model.parameters())                    # doctest: +SKIP
    >>> m, v = flat.zeros_like_data(), flat.zeros_like_data()     # doctest: +SKIP
    >>> loss.backward(); flat.gather_grads()                      # doctest: +SKIP
    >>> for b, mb, vb in zip(flat.buffers, m, v):                 # doctest: +SKIP
    ...     adam_update(b.data, b.grad, mb, vb, lr=1e-3, step=t)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy

from chainrule import backend
from chainrule.tensor import Tensor

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
    kernel = _kernel(
        "adam",
        "T g, T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay, "
        "T step_size, T bias_correction2_sqrt, T decay, bool maximize",
        "T p, T m, T v",
        _ADAM_OP,
    )
    kernel(
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
    kernel = _kernel(
        "sgd",
        "T g, T lr, T momentum, T one_minus_dampening, T weight_decay, bool use_momentum, "
        "bool first, bool nesterov, bool maximize",
        "T p, T buf",
        _SGD_OP,
    )
    kernel(
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


@dataclass
class FlatBuffer:
    """The parameters of one dtype and device: ``data`` and ``grad`` flat, and each
    parameter's views into them (``data_views[i]``, ``grad_views[i]`` for ``params[i]``)."""

    data: Any
    grad: Any
    params: list[Tensor] = field(default_factory=list)
    data_views: list[Any] = field(default_factory=list)
    grad_views: list[Any] = field(default_factory=list)


class FlatParams:
    """All parameters in one contiguous buffer per (dtype, device), gradients in another.

    Each parameter's ``.data`` becomes a view into ``buffers[k].data`` (its values are
    copied in once) and its ``.grad`` a view into ``buffers[k].grad`` (zeros, or its
    current gradient), so an update kernel over the buffer updates every parameter.

    The autograd engine may hand a parameter a new ``.grad`` array instead of adding into
    the view; ``gather_grads()`` copies such gradients back into the buffer before the
    update (one copy each; none while the views are kept).

    Args:
        params: the parameters (Tensors); duplicates are kept once.
    """

    def __init__(self, params: Iterable[Tensor]) -> None:
        groups: dict[tuple[Any, Any], list[Tensor]] = {}
        seen: set[int] = set()
        for p in params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            groups.setdefault((p.data.dtype, str(p.device)), []).append(p)
        self.buffers: list[FlatBuffer] = []
        for members in groups.values():
            xp = backend.get_array_module(members[0].data)
            total = sum(int(p.data.size) for p in members)
            dtype = members[0].data.dtype
            buf = FlatBuffer(xp.empty(total, dtype), xp.zeros(total, dtype))
            offset = 0
            for p in members:
                size, shape = int(p.data.size), tuple(p.data.shape)
                data_view = buf.data[offset : offset + size].reshape(shape)
                grad_view = buf.grad[offset : offset + size].reshape(shape)
                data_view[...] = p.data
                if p.grad is not None:
                    grad_view[...] = p.grad.data
                p.data = data_view
                buf.params.append(p)
                buf.data_views.append(data_view)
                buf.grad_views.append(grad_view)
                offset += size
            self.buffers.append(buf)
        self._point_grads()

    def _point_grads(self) -> None:
        for buf in self.buffers:
            for p, view in zip(buf.params, buf.grad_views):
                p.grad = Tensor(view)

    def gather_grads(self) -> None:
        """Copy into the flat buffer each gradient the engine replaced (a parameter that
        got no gradient gets zeros), and point ``.grad`` at the views again."""
        for buf in self.buffers:
            for p, view in zip(buf.params, buf.grad_views):
                g = p.grad
                if g is not None and g.data is view:
                    continue
                if g is None:
                    view.fill(0)
                else:
                    view[...] = g.data
                p.grad = Tensor(view)

    def check_data(self) -> None:
        """Raise if some code replaced a parameter's ``.data`` (the update would miss it)."""
        for buf in self.buffers:
            for i, (p, view) in enumerate(zip(buf.params, buf.data_views)):
                if p.data is not view:
                    raise RuntimeError(
                        f"FlatParams: parameter {i} of shape {tuple(view.shape)} no longer "
                        f"views the flat buffer (its .data was replaced); assign in place "
                        f"(p.data[...] = new) or build FlatParams again"
                    )

    def zero_grad(self) -> None:
        """All gradients to zero: one fill per buffer."""
        for buf in self.buffers:
            buf.grad.fill(0)
        self._point_grads()

    def zeros_like_data(self) -> list[Any]:
        """One zero array per buffer, of its size (optimiser state: Adam's m and v)."""
        out = []
        for buf in self.buffers:
            xp = backend.get_array_module(buf.data)
            out.append(xp.zeros_like(buf.data))
        return out
