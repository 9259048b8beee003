"""Checking analytic gradients against finite differences.

The analytic Jacobian comes from the engine (one backward pass per output element); the
numeric one from central differences, (f(x + εeⱼ) − f(x − εeⱼ)) / 2ε, one pair of forward
passes per input element. Both run in float64: in float32, ε = 1e-6 is below the
precision of the values and the difference would be noise.

Inputs on a GPU are checked there: the function runs on the device it was given, the
Jacobians are built there, and only their comparison runs on host copies (NumPy), which
also keeps the error messages readable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from chainrule import backend
from chainrule.autograd.engine import run_backward
from chainrule.autograd.functional import grad
from chainrule.autograd.grad_mode import enable_grad
from chainrule.backend import float64
from chainrule.errors import GradcheckError
from chainrule.random import Generator
from chainrule.tensor import Tensor

_host = backend.xp  # NumPy: the comparisons run on host copies of the Jacobians


def _flat_output(out: Any) -> Any:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    flat = [o.data.reshape(-1) for o in outs if isinstance(o, Tensor)]
    return backend.array_module(*flat).concatenate(flat)


def _zeros(like: Any, shape: tuple[int, ...]) -> Any:
    """float64 zeros of ``shape`` on the device of the array ``like``."""
    return backend.get_array_module(like).zeros(shape, float64)


def _prepare(inputs: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """Float64 leaves for the float tensors to check; other arguments pass unchanged."""
    chosen = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not chosen:  # nothing marked: check every floating-point tensor
        chosen = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.dtype.kind == "f"]
    if not chosen:
        raise ValueError("gradcheck needs at least one floating-point tensor input")
    if any(inputs[i].dtype != float64 for i in chosen):
        warnings.warn(
            "gradcheck: float32 inputs were converted to float64 for the check (finite "
            "differences in float32 are too imprecise to compare)",
            stacklevel=3,
        )
    prepared = list(inputs)
    for i in chosen:
        # A C-ordered copy, on the input's device: the finite differences write through a
        # flat view of it.
        data = inputs[i].data
        copy = backend.get_array_module(data).array(data, float64, order="C")
        prepared[i] = Tensor(copy, requires_grad=True)
    return prepared, chosen


def gradcheck(
    func: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check ``func``'s backward against finite differences at ``inputs``.

    The tensors checked are the inputs that require grad (all floating-point tensor
    inputs if none do). Each analytic entry ``a`` must satisfy |a − n| ≤ atol + rtol·|n|
    against its numeric value ``n``.

    Args:
        func: takes the inputs and returns a tensor (or a tuple of tensors).
        inputs: a tensor or a sequence of arguments.
        eps: the finite-difference step.
        atol, rtol: the tolerances.
        raise_exception: raise ``GradcheckError`` on a mismatch (else return False).
        fast_mode: compare random projections uᵀJv instead of whole Jacobians: one backward
            and two forward passes per input, whatever the sizes.
        seed: the seed of ``fast_mode``'s random vectors.

    Returns:
        True when every gradient matches.

    Example:
        >>> import chainrule as cr
        >>> x = cr.randn(3, 2, dtype=cr.float64, requires_grad=True)
        >>> cr.autograd.gradcheck(lambda v: (v * v).sum(), (x,))
        True
    """
    args = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    prepared, chosen = _prepare(args)

    def evaluate() -> Any:
        # Grad mode as the caller has it (as PyTorch does): a function may itself call
        # autograd.grad, as a gradient penalty does.
        return _flat_output(func(*prepared))

    out = func(*prepared)
    outs = [o for o in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(o, Tensor)]
    m = sum(o.data.size for o in outs)
    try:
        if fast_mode:
            _check_projection(prepared, chosen, outs, m, evaluate, eps, atol, rtol, seed)
        else:
            _check_full(prepared, chosen, outs, m, evaluate, eps, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(
    func: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    grad_outputs: Sequence[Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check second derivatives: ``gradcheck`` of the gradient computed with
    ``create_graph=True``.

    The function checked maps (inputs, v) to vᵀ ∂func/∂inputs, the first-order VJP with
    its upstream gradient v (random, float64, from ``seed``, unless ``grad_outputs`` is
    given); gradcheck then compares its backward (the second-order VJPs, with respect to
    the inputs and to v) with finite differences, as PyTorch's ``gradgradcheck`` does.
    First, the recorded VJP (each op's ``backward_graph``) must equal the fast one (its
    ``backward``): the finite differences alone could not see a wrong value there.

    Example:
        >>> import chainrule as cr
        >>> x = cr.randn(3, dtype=cr.float64, requires_grad=True)
        >>> cr.autograd.gradgradcheck(lambda t: (t.tanh() * t).sum(), (x,))
        True
    """
    args = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    prepared, chosen = _prepare(args)
    outs = _outputs_of(func(*prepared))
    if grad_outputs is None:
        gen = Generator(seed + 1)
        vs = [Tensor(gen.standard_normal(o.data.shape, float64), device=o.device) for o in outs]
    else:
        vs = [
            Tensor(v.data if isinstance(v, Tensor) else v, dtype=float64, device=o.device)
            for v, o in zip(grad_outputs, outs)
        ]
    vs = [v.requires_grad_(True) for v in vs]
    n = len(prepared)

    def first_order(*xs_and_vs: Any) -> Any:
        xs, v_in = xs_and_vs[:n], xs_and_vs[n:]
        with enable_grad():
            live = [(o, v) for o, v in zip(_outputs_of(func(*xs)), v_in) if o.requires_grad]
            wrt = [xs[i] for i in chosen]
            if not live:
                return tuple(Tensor(_zeros(x.data, x.data.shape)) for x in wrt)
            grads = grad(
                [o for o, _ in live],
                wrt,
                [v for _, v in live],
                create_graph=True,
                allow_unused=True,
            )
        return tuple(
            Tensor(_zeros(x.data, x.data.shape)) if g is None else g for g, x in zip(grads, wrt)
        )

    try:
        _check_graph_matches_fast(func, prepared, chosen, vs, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return gradcheck(
        first_order,
        [*prepared, *vs],
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        fast_mode=fast_mode,
        seed=seed,
    )


def _check_graph_matches_fast(
    func: Callable[..., Any],
    prepared: list[Any],
    chosen: list[int],
    vs: list[Tensor],
    atol: float,
    rtol: float,
) -> None:
    """The recorded gradient (``backward_graph``) must equal the fast one (``backward``):
    finite differences of the recorded gradient cannot see a wrong value that it agrees
    with itself on."""
    wrt = [prepared[i] for i in chosen]
    with enable_grad():
        live = [(o, v) for o, v in zip(_outputs_of(func(*prepared)), vs) if o.requires_grad]
        if not live:
            return
        outs, seeds = [o for o, _ in live], [v.detach() for _, v in live]
        fast = grad(outs, wrt, seeds, retain_graph=True, allow_unused=True)
        graph = grad(outs, wrt, seeds, create_graph=True, allow_unused=True)
    for k, (a, b) in enumerate(zip(fast, graph)):
        if (a is None) != (b is None):
            raise GradcheckError(
                f"gradgradcheck: input {chosen[k]} gets a gradient from one of backward and "
                f"backward_graph but not from the other"
            )
        if a is None or b is None:
            continue
        fast_values, graph_values = backend.to_host(a.data), backend.to_host(b.data)
        if not bool(
            (_host.abs(fast_values - graph_values) <= atol + rtol * _host.abs(fast_values)).all()
        ):
            raise GradcheckError(
                f"gradgradcheck: backward_graph and backward disagree on the gradient of input "
                f"{chosen[k]} (shape {a.shape}): backward gives\n{fast_values}\n"
                f"backward_graph gives\n{graph_values}"
            )


def _outputs_of(out: Any) -> list[Tensor]:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def _analytic_rows(
    outs: list[Tensor], seed_flat: Any, prepared: list[Any], chosen: list[int]
) -> dict[int, Any]:
    """vᵀJ for every checked input, with v = ``seed_flat`` spread over the outputs."""
    seeds, offset, live = [], 0, []
    for o in outs:
        part = seed_flat[offset : offset + o.data.size].reshape(o.data.shape)
        offset += o.data.size
        if o.requires_grad:
            live.append(o)
            seeds.append(part)
    if not live:
        return {}
    wanted = [prepared[i] for i in chosen]
    return run_backward(live, seeds, retain_graph=True, inputs=wanted, accumulate=False)


def _numeric_column(x: Tensor, j: int, evaluate: Callable[[], Any], eps: float) -> Any:
    flat = x.data.reshape(-1)
    original = flat[j]
    flat[j] = original + eps
    plus = evaluate()
    flat[j] = original - eps
    minus = evaluate()
    flat[j] = original
    return (plus - minus) / (2 * eps)


def _check_full(
    prepared: list[Any],
    chosen: list[int],
    outs: list[Tensor],
    m: int,
    evaluate: Callable[[], Any],
    eps: float,
    atol: float,
    rtol: float,
) -> None:
    analytic = {i: _zeros(prepared[i].data, (m, prepared[i].data.size)) for i in chosen}
    out_like = outs[0].data if outs else prepared[chosen[0]].data  # the outputs' device
    for r in range(m):
        unit = _zeros(out_like, (m,))
        unit[r] = 1.0
        captured = _analytic_rows(outs, unit, prepared, chosen)
        for i in chosen:
            g = captured.get(id(prepared[i]))
            if g is not None:
                analytic[i][r] = g.reshape(-1)
    for i in chosen:
        x = prepared[i]
        numeric = _zeros(out_like, (m, x.data.size))
        for j in range(x.data.size):
            numeric[:, j] = _numeric_column(x, j, evaluate, eps)
        _compare(i, x, analytic[i], numeric, atol, rtol, full=True)


def _check_projection(
    prepared: list[Any],
    chosen: list[int],
    outs: list[Tensor],
    m: int,
    evaluate: Callable[[], Any],
    eps: float,
    atol: float,
    rtol: float,
    seed: int,
) -> None:
    gen = Generator(seed)
    out_device = outs[0].device if outs else prepared[chosen[0]].device
    v = backend.to_device(gen.standard_normal((m,), float64), out_device)
    captured = _analytic_rows(outs, v, prepared, chosen)
    for i in chosen:
        x = prepared[i]
        u = backend.to_device(gen.standard_normal(x.data.shape, float64), x.device)
        g = captured.get(id(x))
        analytic = float((g * u).sum()) if g is not None else 0.0
        saved = x.data.copy()
        x.data += eps * u
        plus = evaluate()
        x.data[...] = saved - eps * u
        minus = evaluate()
        x.data[...] = saved
        numeric = float(((plus - minus) / (2 * eps) * v).sum())
        _compare(i, x, _host.asarray([[analytic]]), _host.asarray([[numeric]]), atol, rtol, False)


def _compare(
    i: int, x: Tensor, analytic: Any, numeric: Any, atol: float, rtol: float, full: bool
) -> None:
    """Raise ``GradcheckError`` where |analytic − numeric| > atol + rtol·|numeric| (on host
    copies: the verdict and the message need the values anyway)."""
    xp = _host
    analytic, numeric = backend.to_host(analytic), backend.to_host(numeric)
    excess = xp.abs(analytic - numeric) - (atol + rtol * xp.abs(numeric))
    if not bool((excess <= 0).all()) or not bool(xp.isfinite(analytic).all()):
        r, j = xp.unravel_index(int(xp.nan_to_num(excess, nan=xp.inf).argmax()), excess.shape)
        if full:
            where = (
                f"at output element {int(r)}, input element "
                f"{tuple(int(k) for k in xp.unravel_index(int(j), x.data.shape))}"
            )
        else:
            where = "along a random projection uᵀJv"
        raise GradcheckError(
            f"gradcheck: the gradient of input {i} (shape {x.shape}) is wrong {where}: "
            f"analytic {analytic[r, j]!r}, numeric {numeric[r, j]!r} "
            f"(atol={atol}, rtol={rtol}).\nanalytic Jacobian:\n{analytic}\n"
            f"numeric Jacobian:\n{numeric}"
        )
