"""Gradients on demand: ``backward``, ``grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``,
``hvp`` and ``vhp`` (the names and return values of ``torch.autograd.functional``).

All of them run the one engine (``autograd.engine.run_backward``); they differ in where
the gradients go (into ``.grad`` or returned) and how the engine is seeded. Second-order
tools differentiate a first-order gradient computed with ``create_graph=True``:

- ``hvp(f, x, v)`` = H v: the gradient of ⟨∇f(x), v⟩, one extra backward pass;
- ``jvp(f, x, v)`` = J v, forward-mode by the double-VJP trick: u ↦ uᵀJ is linear in u,
  so J v = ∂/∂u ⟨uᵀJ, v⟩, two backward passes and no forward-mode machinery;
- ``hessian(f, x)`` = one ``hvp`` per unit vector, shape ``x.shape + x.shape``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from chainrule import backend, ops
from chainrule.autograd.engine import accumulate_grad, run_backward
from chainrule.autograd.grad_mode import enable_grad
from chainrule.errors import DeviceError, GraphError, ShapeError
from chainrule.tensor import Tensor, TensorLike, bind_autograd


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _seed(outputs: list[Tensor], grad_outputs: list[Any] | None, graph: bool) -> list[Any]:
    """The gradient to start from for each output: given, or 1 for a scalar.

    Arrays for the fast path; Tensors with ``graph`` (a given seed keeps its own graph, so
    the result can be differentiated with respect to it, as ``jvp`` does). Seeds live on
    their output's device: made there, or (lists, NumPy arrays) copied there; a seed
    tensor on another device is an error, as in PyTorch.
    """
    seeds = []
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"backward needs Tensors, output {i} is {type(out).__name__}")
        if not out.requires_grad:
            raise GraphError(
                f"output {i} (shape {out.shape}) does not require grad and has no grad_fn: "
                f"nothing it depends on was created with requires_grad=True, or it was "
                f"computed under no_grad()"
            )
        g = None if grad_outputs is None or i >= len(grad_outputs) else grad_outputs[i]
        if g is None:
            if out.data.size != 1:
                raise GraphError(
                    f"grad can be implicitly created only for a scalar output, but output "
                    f"{i} has shape {out.shape}; pass gradient= (∂C/∂output, same shape), or "
                    f"reduce it first (e.g. .sum())"
                )
            g = backend.get_array_module(out.data).ones(out.data.shape, out.data.dtype)
        elif isinstance(g, Tensor):
            if g.device != out.device:
                raise DeviceError(
                    f"the gradient for output {i} is on {g.device} but the output is on "
                    f"{out.device}; move it first (gradient.to('{out.device}'))"
                )
            if not graph:
                g = g.data
        else:
            g = _on_device_of(out.data, g, out.data.dtype)
        if g.shape != out.data.shape:
            raise ShapeError(
                f"gradient has shape {tuple(g.shape)} but output {i} has shape "
                f"{out.shape}; they must match"
            )
        seeds.append(g if not graph or isinstance(g, Tensor) else Tensor(g))
    return seeds


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Sequence[TensorLike] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    With ``create_graph=True`` the backward pass is recorded: each ``.grad`` is a Tensor
    with a graph, which can be differentiated again. ``retain_graph`` defaults to
    ``create_graph``, as in PyTorch.
    """
    retain = create_graph if retain_graph is None else retain_graph
    outputs = _as_list(tensors)
    seeds = _seed(outputs, None if grad_tensors is None else _as_list(grad_tensors), create_graph)
    if inputs is None:
        run_backward(outputs, seeds, retain, create_graph=create_graph)
        return
    wanted = _as_list(inputs)
    captured = run_backward(
        outputs, seeds, retain, inputs=wanted, accumulate=False, create_graph=create_graph
    )
    taken = {id(s) for s in seeds}  # as in run_backward: the caller's seeds stay theirs
    for t in wanted:
        # A tensor that retains its grad got it from its hook during the pass already.
        if id(t) in captured and not (t._node is not None and t.retains_grad):
            accumulate_grad(t, captured[id(t)], taken)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Sequence[TensorLike] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    Args:
        outputs: tensors to differentiate (scalars unless ``grad_outputs`` is given).
        inputs: tensors to differentiate with respect to (leaves or intermediate).
        grad_outputs: ∂C/∂output for each output (the "vector" of the VJP).
        retain_graph: keep the graph for another backward (defaults to ``create_graph``).
        create_graph: record the gradient computation, so the returned gradients can be
            differentiated again (Hessian-vector products, gradient penalties).
        allow_unused: return None for an input the outputs do not depend on, instead of
            raising.

    Returns:
        One gradient tensor (or None) per input, each of the input's shape.

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> (g,) = cr.autograd.grad((x ** 3).sum(), x, create_graph=True)
        >>> g                                   # 3x²
        tensor([ 3., 12.], grad_fn=<MulBackward>)
        >>> cr.autograd.grad(g.sum(), x)        # d/dx Σ 3x² = 6x
        (tensor([ 6., 12.]),)
    """
    retain = create_graph if retain_graph is None else retain_graph
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"input {i} of grad() does not require grad")
    seeds = _seed(outs, None if grad_outputs is None else _as_list(grad_outputs), create_graph)
    captured = run_backward(
        outs, seeds, retain, inputs=ins, accumulate=False, create_graph=create_graph
    )
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = captured.get(id(t))
        if g is None:
            if not allow_unused:
                raise GraphError(
                    f"input {i} (shape {t.shape}) was not used to compute the outputs; pass "
                    f"allow_unused=True to get None for it"
                )
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g if g.dtype == t.dtype else g.to(t.dtype))
        else:
            if g.dtype != t.dtype:
                g = g.astype(t.dtype)
            result.append(Tensor(g.copy() if g.base is not None else g))
    return tuple(result)


def _on_device_of(like: Any, value: Any, dtype: Any) -> Any:
    """``value`` (nested lists, a number, an array) as an array of ``dtype`` on the device
    of the array ``like``."""
    if backend.is_device_array(like):
        return backend.to_device(backend.as_array(value, dtype), backend.device_of(like))
    if backend.is_device_array(value):
        raise DeviceError(
            f"a gradient on {backend.device_of(value)} was given for a tensor on cpu; move it "
            f"to the CPU first"
        )
    return backend.xp.asarray(value, dtype=dtype)  # the CPU: NumPy


def _fresh_leaf(t: Any) -> Tensor:
    """A leaf sharing ``t``'s values that requires grad, so ``t``'s own graph is untouched."""
    if not isinstance(t, Tensor):
        t = Tensor(t)
    leaf = t.detach()
    if not leaf.dtype.kind == "f":
        raise TypeError(f"cannot differentiate with respect to a {t.dtype} tensor")
    return leaf.requires_grad_(True)


def _zeros(like: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with the dtype and on the device of the array ``like``."""
    return backend.get_array_module(like).zeros(shape, like.dtype)


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor(_zeros(t.data, t.data.shape))


def _grads_or_zeros(grads: tuple[Tensor | None, ...], like: list[Tensor]) -> tuple[Tensor, ...]:
    return tuple(_zeros_like(t) if g is None else g for g, t in zip(grads, like))


def _check_output(out: Any, name: str) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: func must return a Tensor, got {type(out).__name__}")
    return out


def _pack(items: Sequence[Any], single: bool) -> Any:
    return items[0] if single else tuple(items)


def _vectors(v: Any, like: list[Tensor], name: str) -> list[Tensor]:
    vs = _as_list(v)
    if len(vs) != len(like):
        raise ValueError(f"{name}: got {len(vs)} vectors for {len(like)} inputs")
    out = []
    for i, (vi, t) in enumerate(zip(vs, like)):
        vi = vi if isinstance(vi, Tensor) else Tensor(_on_device_of(t.data, vi, t.dtype))
        if vi.shape != t.shape:
            raise ShapeError(
                f"{name}: vector {i} has shape {vi.shape} but input {i} has shape {t.shape}"
            )
        out.append(vi)
    return out


def _dot(grads: tuple[Tensor | None, ...], vs: list[Tensor]) -> Tensor | None:
    """Σᵢ ⟨gᵢ, vᵢ⟩ over the gradients that exist, recorded (None if there are none)."""
    total = None
    for g, vi in zip(grads, vs):
        if g is not None:
            term = (g * vi).sum()
            total = term if total is None else total + term
    return total


def vjp(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    v: TensorLike | None = None,
    create_graph: bool = False,
) -> tuple[Tensor, Any]:
    """Evaluate ``func(*inputs)`` and the vector-Jacobian product vᵀ J at ``inputs``.

    Returns:
        ``(output, vjp)``: the output (detached unless ``create_graph``) and vᵀ ∂f/∂input,
        a tensor for a single input tensor, else a tuple with one per input.
    """
    single = isinstance(inputs, Tensor)
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    with enable_grad():
        out = _check_output(func(*ins), "vjp")
    if not out.requires_grad:
        return out, _pack([_zeros_like(t) for t in ins], single)
    grads = grad(out, ins, None if v is None else [v], create_graph=create_graph, allow_unused=True)
    result = _grads_or_zeros(grads, ins)
    return (out if create_graph else out.detach()), _pack(result, single)


def jvp(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    v: TensorLike | Sequence[TensorLike] | None = None,
    create_graph: bool = False,
) -> tuple[Tensor, Tensor]:
    """Evaluate ``func(*inputs)`` and the Jacobian-vector product J v at ``inputs``.

    Computed by the double-VJP trick (reverse mode twice): with a dummy seed u that
    requires grad, uᵀJ is linear in u, so J v = ∂⟨uᵀJ, v⟩/∂u. Every op of ``func`` must
    be twice differentiable (all of chainrule's are).

    Returns:
        ``(output, jvp)``, both detached unless ``create_graph``; ``jvp`` has the output's
        shape.

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([1.0, 2.0])
        >>> cr.autograd.jvp(lambda t: t * t, x, cr.tensor([1.0, 0.0]))[1]
        tensor([2., 0.])
    """
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    if v is None:
        if sum(t.data.size for t in ins) != 1:
            raise ValueError("jvp: v can be omitted only for a single one-element input")
        v = [Tensor(backend.get_array_module(ins[0].data).ones_like(ins[0].data))]
    vs = _vectors(v, ins, "jvp")
    with enable_grad():
        out = _check_output(func(*ins), "jvp")
        if not out.requires_grad:
            return out, _zeros_like(out)
        u = Tensor(_zeros(out.data, out.data.shape), requires_grad=True)
        total = _dot(grad(out, ins, [u], create_graph=True, allow_unused=True), vs)
        if total is None or not total.requires_grad:
            product = _zeros_like(out)
        else:
            (du,) = grad(total, [u], create_graph=create_graph, allow_unused=True)
            product = _zeros_like(out) if du is None else du
    if create_graph:
        return out, product
    return out.detach(), product.detach()


def vhp(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    v: TensorLike | Sequence[TensorLike],
    create_graph: bool = False,
) -> tuple[Tensor, Any]:
    """Evaluate a scalar ``func(*inputs)`` and the vector-Hessian product vᵀ H.

    Returns:
        ``(output, vhp)``: a tensor for a single input tensor, else one per input.
    """
    single = isinstance(inputs, Tensor)
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    vs = _vectors(v, ins, "vhp")
    with enable_grad():
        out = _check_output(func(*ins), "vhp")
        if out.data.size != 1:
            raise ShapeError(f"vhp: func must return a single value, got shape {out.shape}")
        if not out.requires_grad:
            return out, _pack([_zeros_like(t) for t in ins], single)
        total = _dot(grad(out, ins, create_graph=True, allow_unused=True), vs)
        if total is None or not total.requires_grad:
            result: tuple[Tensor, ...] = tuple(_zeros_like(t) for t in ins)
        else:
            second = grad(total, ins, create_graph=create_graph, allow_unused=True)
            result = _grads_or_zeros(second, ins)
    if not create_graph:
        out = out.detach()
        result = tuple(r.detach() for r in result)
    return out, _pack(result, single)


def hvp(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    v: TensorLike | Sequence[TensorLike],
    create_graph: bool = False,
) -> tuple[Tensor, Any]:
    """Evaluate a scalar ``func(*inputs)`` and the Hessian-vector product H v.

    The Hessian of a twice continuously differentiable function is symmetric, so H v is
    vᵀ H transposed: computed by ``vhp``, one extra backward pass through the graph of
    the gradient (about 2-4× the cost of one gradient, never forming H).

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([1.0, 2.0])
        >>> cr.autograd.hvp(lambda t: (t ** 3).sum(), x, cr.tensor([1.0, 1.0]))[1]
        tensor([ 6., 12.])
    """
    return vhp(func, inputs, v, create_graph)


def jacobian(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    create_graph: bool = False,
) -> Tensor | tuple[Tensor, ...]:
    """The full Jacobian of ``func`` at ``inputs``, of shape ``out.shape + in.shape``.

    For f: Rᴺ → Rᴹ this is the lecture's M×N matrix of ∂yᵢ/∂xⱼ. Row i comes from one
    backward pass seeded with the i-th unit vector, so it costs M backward passes.
    With ``create_graph`` the Jacobian is itself differentiable (``hessian`` uses it).

    Returns:
        One tensor for a single input tensor, else a tuple with one per input.
    """
    single = isinstance(inputs, Tensor)
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    with enable_grad():
        out = _check_output(func(*ins), "jacobian")
    m = out.data.size
    if not out.requires_grad or m == 0:
        zeros = [Tensor(_zeros(t.data, out.data.shape + t.data.shape)) for t in ins]
        return _pack(zeros, single)
    if create_graph:
        return _pack(_jacobian_graph(out, ins), single)
    rows: list[list[Any]] = [[] for _ in ins]
    for i in range(m):
        seed = _zeros(out.data, (m,))
        seed[i] = 1
        captured = run_backward(
            [out], [seed.reshape(out.data.shape)], retain_graph=True, inputs=ins, accumulate=False
        )
        for k, t in enumerate(ins):
            g = captured.get(id(t))
            rows[k].append(_zeros(t.data, t.data.shape) if g is None else g)
    jacs = [
        # Each input's rows are on that input's device (a move in func sends them back).
        Tensor(
            backend.get_array_module(t.data)
            .stack(r)
            .astype(t.data.dtype)
            .reshape(out.data.shape + t.data.shape)
        )
        for r, t in zip(rows, ins)
    ]
    return _pack(jacs, single)


def _jacobian_graph(out: Tensor, ins: list[Tensor]) -> list[Tensor]:
    """The rows of the Jacobian as recorded gradients, stacked into differentiable tensors."""
    m = out.data.size
    rows: list[list[Tensor]] = [[] for _ in ins]
    with enable_grad():
        for i in range(m):
            seed = _zeros(out.data, (m,))
            seed[i] = 1
            grads = grad(
                out,
                ins,
                [Tensor(seed.reshape(out.data.shape))],
                retain_graph=True,
                create_graph=True,
                allow_unused=True,
            )
            for k, (g, t) in enumerate(zip(grads, ins)):
                rows[k].append(_zeros_like(t) if g is None else g)
        return [ops.reshape(ops.stack(r), out.data.shape + t.data.shape) for r, t in zip(rows, ins)]


def hessian(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    create_graph: bool = False,
) -> Any:
    """The Hessian of a scalar ``func`` at ``inputs``: shape ``x.shape + x.shape``.

    The Jacobian of the gradient: one backward pass through the recorded gradient per
    element of x. With several inputs, a tuple of tuples: ``H[i][j]`` has shape
    ``inputs[i].shape + inputs[j].shape``.

    Example:
        >>> import chainrule as cr
        >>> A = cr.tensor([[2.0, 1.0], [0.0, 3.0]])
        >>> cr.autograd.hessian(lambda x: x @ A @ x, cr.tensor([1.0, 1.0]))   # A + Aᵀ
        tensor([[4., 1.],
                [1., 6.]])
    """
    single = isinstance(inputs, Tensor)
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]

    def gradient(*xs: Tensor) -> Any:
        out = _check_output(func(*xs), "hessian")
        if out.data.size != 1:
            raise ShapeError(f"hessian: func must return a single value, got shape {out.shape}")
        if not out.requires_grad:
            return tuple(_zeros_like(x) for x in xs)
        return _grads_or_zeros(grad(out, list(xs), create_graph=True, allow_unused=True), list(xs))

    blocks = []
    for i in range(len(ins)):

        def part(*xs: Tensor, i: int = i) -> Tensor:
            return gradient(*xs)[i]

        blocks.append(jacobian(part, ins, create_graph=create_graph))
    if single:
        return blocks[0][0]
    return tuple(tuple(b) for b in blocks)


# Tensor.backward calls `backward` above; Tensor itself imports nothing from autograd.
bind_autograd(sys.modules[__name__])
