"""Gradients on demand: ``backward``, ``grad``, ``vjp`` and ``jacobian``.

All of them run the one engine (``autograd.engine.run_backward``); they differ in where
the gradients go (into ``.grad`` or returned) and how the engine is seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chainrule.autograd.engine import run_backward
from chainrule.backend import xp
from chainrule.errors import GraphError, ShapeError
from chainrule.tensor import Tensor, TensorLike

_SECOND_ORDER = (
    "create_graph=True (second-order gradients) is not available yet: backward formulas "
    "run on arrays. It is planned; for now use gradcheck or finite differences of first-order "
    "gradients."
)


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _seed(outputs: list[Tensor], grad_outputs: list[Any] | None) -> list[Any]:
    """The gradient to start from for each output: given, or 1 for a scalar."""
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
            g = xp.ones(out.data.shape, out.data.dtype)
        else:
            g = g.data if isinstance(g, Tensor) else xp.asarray(g, dtype=out.data.dtype)
            if g.shape != out.data.shape:
                raise ShapeError(
                    f"gradient has shape {tuple(g.shape)} but output {i} has shape "
                    f"{out.shape}; they must match"
                )
        seeds.append(g)
    return seeds


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Sequence[TensorLike] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    if create_graph:
        raise NotImplementedError(_SECOND_ORDER)
    outputs = _as_list(tensors)
    seeds = _seed(outputs, None if grad_tensors is None else _as_list(grad_tensors))
    if inputs is None:
        run_backward(outputs, seeds, retain_graph)
        return
    wanted = _as_list(inputs)
    captured = run_backward(outputs, seeds, retain_graph, inputs=wanted, accumulate=False)
    from chainrule.autograd.engine import _accumulate_grad

    taken = {id(s) for s in seeds}  # as in run_backward: the caller's seeds stay theirs
    for t in wanted:
        if id(t) in captured:
            _accumulate_grad(t, captured[id(t)], taken)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Sequence[TensorLike] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    Args:
        outputs: tensors to differentiate (scalars unless ``grad_outputs`` is given).
        inputs: tensors to differentiate with respect to (leaves or intermediate).
        grad_outputs: ∂C/∂output for each output (the "vector" of the VJP).
        retain_graph: keep the graph for another backward.
        allow_unused: return None for an input the outputs do not depend on, instead of
            raising.

    Returns:
        One gradient tensor (or None) per input, each of the input's shape.

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> cr.autograd.grad((x ** 3).sum(), x)
        (tensor([ 3., 12.]),)
    """
    if create_graph:
        raise NotImplementedError(_SECOND_ORDER)
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"input {i} of grad() does not require grad")
    seeds = _seed(outs, None if grad_outputs is None else _as_list(grad_outputs))
    captured = run_backward(outs, seeds, retain_graph, inputs=ins, accumulate=False)
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
        else:
            result.append(Tensor._wrap(g.copy() if g.base is not None else g, False, None, 0))
    return tuple(result)


def vjp(
    func: Callable[..., Tensor],
    inputs: Tensor | Sequence[Tensor],
    v: TensorLike | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Evaluate ``func(*inputs)`` and the vector-Jacobian product vᵀ J at ``inputs``.

    Returns:
        ``(output, vjps)``: the output (detached) and one tensor per input, vᵀ ∂f/∂input.
    """
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    out = func(*ins)
    grads = grad(out, ins, None if v is None else [v], allow_unused=True)
    vjps = tuple(
        g if g is not None else Tensor(xp.zeros(t.shape, t.dtype)) for g, t in zip(grads, ins)
    )
    return out.detach(), vjps


def jacobian(
    func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor]
) -> Tensor | tuple[Tensor, ...]:
    """The full Jacobian of ``func`` at ``inputs``, of shape ``out.shape + in.shape``.

    For f: Rᴺ → Rᴹ this is the lecture's M×N matrix of ∂yᵢ/∂xⱼ. Row i comes from one
    backward pass seeded with the i-th unit vector, so it costs M backward passes.

    Returns:
        One tensor for a single input tensor, else a tuple with one per input.
    """
    single = isinstance(inputs, Tensor)
    ins = [_fresh_leaf(t) for t in _as_list(inputs)]
    out = func(*ins)
    if not isinstance(out, Tensor):
        raise TypeError(f"jacobian: func must return a Tensor, got {type(out).__name__}")
    m = out.data.size
    rows: list[list[Any]] = [[] for _ in ins]
    for i in range(m):
        seed = xp.zeros(m, out.data.dtype)
        seed[i] = 1
        if not out.requires_grad:
            captured: dict[int, Any] = {}
        else:
            captured = run_backward(
                [out],
                [seed.reshape(out.data.shape)],
                retain_graph=True,
                inputs=ins,
                accumulate=False,
            )
        for k, t in enumerate(ins):
            g = captured.get(id(t))
            rows[k].append(xp.zeros(t.data.shape, t.data.dtype) if g is None else g)
    jacs = tuple(
        Tensor(
            xp.stack(r).reshape(out.data.shape + t.data.shape)
            if r
            else xp.zeros(out.data.shape + t.data.shape, t.data.dtype)
        )
        for r, t in zip(rows, ins)
    )
    return jacs[0] if single else jacs


def _fresh_leaf(t: Any) -> Tensor:
    """A leaf sharing ``t``'s values that requires grad, so ``t``'s own graph is untouched."""
    if not isinstance(t, Tensor):
        t = Tensor(t)
    leaf = t.detach()
    if not leaf.dtype.kind == "f":
        raise TypeError(f"cannot differentiate with respect to a {t.dtype} tensor")
    return leaf.requires_grad_(True)
