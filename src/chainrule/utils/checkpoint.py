"""Gradient checkpointing: trade compute for memory (PyTorch's ``torch.utils.checkpoint``).

A forward pass keeps, for the backward, every array its ops save: a deep network's
activations are most of a training step's memory. ``checkpoint(f, x)`` runs f without
recording its graph, so the arrays inside f are freed as soon as f returns, and keeps
only f's inputs. The backward pass then runs f again, this time recording, and
backpropagates through that graph; the gradients are the same numbers, for the price of
a second forward pass of f. Chen et al. (2016, "Training deep nets with sublinear memory
cost") checkpoint every √n layers of n: memory O(√n), one extra forward in all.

The node it records is a ``Function`` like any other: its inputs are f's tensor
arguments and the parameters f reads, its VJP is the engine's chain rule through the
recomputed graph (``autograd.grad`` with the upstream gradient, so nothing is written to
any ``.grad`` on the way), and under ``create_graph=True`` the recomputation is recorded
too, so gradients of gradients go through a checkpoint.

Random draws repeat: dropout inside f draws the same masks in the recomputation, because
the default generator (and the ``generator`` of every submodule of a Module f) is put
back to its state at the forward pass while f runs again, then restored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chainrule.autograd import functional as autograd
from chainrule.autograd.function import Function
from chainrule.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from chainrule.errors import GraphError
from chainrule.nn.containers import Sequential
from chainrule.nn.module import Module
from chainrule.random import Generator, default_generator
from chainrule.tensor import Tensor


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    params: Iterable[Tensor] | None = None,
    preserve_rng_state: bool = True,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)``, its graph dropped after the forward pass and
    recomputed in the backward pass (module docstring).

    Args:
        function: a Module, a Module's bound method, or any function of Tensors that
            returns a Tensor or a tuple of Tensors.
        args, kwargs: its arguments; the Tensors among ``args`` get gradients.
        params: the other tensors ``function`` reads that need gradients. A Module's
            parameters (or the bound method's Module's) are found without it; a plain
            function that reads weights must name them here, else the backward pass
            stops with a GraphError naming them rather than leave them without a gradient.
        preserve_rng_state: replay the random draws of the forward pass in the
            recomputation (dropout masks).
        use_reentrant: accepted for PyTorch compatibility; there is one implementation,
            which works with ``backward``, ``autograd.grad`` and double backward alike.

    Returns:
        What ``function`` returns.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> from chainrule.utils.checkpoint import checkpoint
        >>> block = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
        >>> x = cr.randn(4, 8, requires_grad=True)
        >>> checkpoint(block, x).sum().backward()
        >>> x.grad.shape, block[0].weight.grad.shape
        ((4, 8), (8, 8))
    """
    owner = _owner(function)
    declared: list[Tensor] = list(owner.parameters()) if owner is not None else []
    declared += [p for p in params or () if all(p is not q for q in declared)]
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not is_grad_enabled() or not any(t.requires_grad for t in [*tensors, *declared]):
        return function(*args, **kwargs)  # nothing to differentiate: nothing to save
    generators = _generators(owner) if preserve_rng_state else []
    run = _Run(function, args, kwargs, len(tensors), generators)
    outputs = CheckpointFunction.apply(run, *tensors, *declared)
    return outputs


def checkpoint_sequential(
    functions: Sequence[Module] | Module,
    segments: int,
    input: Tensor,
    preserve_rng_state: bool = True,
    use_reentrant: bool | None = None,
) -> Tensor:
    """A chain of modules (an ``nn.Sequential`` or a list) in ``segments`` runs of
    consecutive modules, each run checkpointed but the last (its graph is needed at once
    by the backward pass anyway), as PyTorch's ``checkpoint_sequential``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> from chainrule.utils.checkpoint import checkpoint_sequential
        >>> model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(6)])
        >>> checkpoint_sequential(model, 3, cr.randn(4, 8)).shape
        (4, 8)
    """
    modules = list(functions)
    if not 1 <= segments <= max(1, len(modules)):
        raise ValueError(
            f"checkpoint_sequential: segments must be between 1 and the {len(modules)} "
            f"modules, got {segments}"
        )
    bounds = [len(modules) * i // segments for i in range(segments + 1)]
    x = input
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        run = Sequential(*modules[lo:hi])
        last = i == segments - 1
        x = run(x) if last else checkpoint(run, x, preserve_rng_state=preserve_rng_state)
    return x


class CheckpointFunction(Function):
    """y = f(x, θ) with f's graph not kept: f's tensor arguments x and the parameters θ it
    reads are the node's inputs.

    VJP: (x̄, θ̄) = J_f(x, θ)ᵀ ȳ, by the engine's chain rule through f recomputed from x
    with recording on (``autograd.grad`` of f's outputs, weighted by ȳ).
    """

    @staticmethod
    def forward(ctx: Any, run: _Run, *arrays: Any) -> Any:
        inputs = [Tensor(a) for a in arrays[: run.tensors]]  # without gradients
        # Saved so that changing an input in place before the backward is caught (the
        # recomputation would read the new values) as for any op's saved arrays.
        ctx.save_for_backward(*arrays[: run.tensors])
        run.states = [g.get_state() for g in run.generators]
        with no_grad():
            outputs = run(inputs)
        run.single = isinstance(outputs, Tensor)
        results = (outputs,) if run.single else outputs
        if not isinstance(results, tuple) or not all(isinstance(r, Tensor) for r in results):
            raise TypeError(
                f"checkpoint: the function must return a Tensor or a tuple of Tensors, got "
                f"{type(outputs).__name__}"
            )
        return results[0].data if run.single else tuple(r.data for r in results)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple[Any, ...]:
        upstream = [None if g is None else Tensor(g) for g in grads]
        found = _recompute_vjp(ctx, upstream, create_graph=False)
        return (None, *(None if g is None else g.data for g in found))

    @staticmethod
    def backward_graph(ctx: Any, *grads: Any) -> tuple[Any, ...]:
        return (None, *_recompute_vjp(ctx, list(grads), create_graph=True))


class _Run:
    """The call a checkpoint replays: the function, its arguments with the tensors taken
    out (``tensors`` of them, given back in order), and the random streams to replay."""

    def __init__(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tensors: int,
        generators: list[Generator],
    ) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs
        self.tensors, self.generators = tensors, generators
        self.states: list[Any] = []
        self.single = True

    def __call__(self, tensors: Sequence[Tensor]) -> Any:
        given = iter(tensors)
        args = [next(given) if isinstance(a, Tensor) else a for a in self.args]
        return self.function(*args, **self.kwargs)


def _recompute_vjp(ctx: Any, grads: list[Any], create_graph: bool) -> list[Any]:
    """Run f again from fresh leaves holding the inputs' values, recording, and return
    the gradients of its inputs and parameters weighted by ``grads`` (None where an
    input needs none)."""
    run: _Run = ctx.inputs[0]
    inputs: list[Tensor] = list(ctx.inputs[1:])
    # f runs again on its own input tensors: the recomputed graph joins the graph that
    # made them, so under create_graph the gradient is a function of x, as a second order
    # needs. ``autograd.grad`` stops at them (the engine runs only the nodes between the
    # outputs and the tensors asked for), so the outer graph is neither walked nor freed.
    outer = [g.get_state() for g in run.generators]
    for generator, state in zip(run.generators, run.states, strict=True):
        generator.set_state(state)
    try:
        with enable_grad():
            outputs = run(inputs[: run.tensors])
    finally:
        for generator, state in zip(run.generators, outer, strict=True):
            generator.set_state(state)
    results = [outputs] if run.single else list(outputs)
    pairs = [
        (y, g) for y, g in zip(results, grads, strict=True) if g is not None and y.requires_grad
    ]
    wrt = [t for t in inputs if t.requires_grad]
    _check_no_undeclared_leaf([y for y, _ in pairs], inputs)
    found: list[Any] = [None] * len(inputs)
    if not pairs or not wrt:
        return found
    grads_wrt = autograd.grad(
        [y for y, _ in pairs],
        wrt,
        grad_outputs=[g for _, g in pairs],
        create_graph=create_graph,
        allow_unused=True,
    )
    by_id = {id(t): g for t, g in zip(wrt, grads_wrt, strict=True)}
    return [by_id.get(id(t)) for t in inputs]


def _check_no_undeclared_leaf(outputs: list[Tensor], declared: list[Tensor]) -> None:
    """Raise if the recomputed graph reaches a leaf that needs a gradient but is not among
    the checkpoint's inputs or parameters: that tensor would silently get none. The walk
    stops at the inputs, where the recomputed graph joins the one that made them."""
    known = {id(t) for t in declared}
    seen: set[int] = set()
    stack = list(outputs)
    missing: list[Tensor] = []
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = t._node
        if node is None:
            if t.requires_grad and id(t) not in known:
                missing.append(t)
            continue
        if id(t) in known:  # an input: what made it is not f's
            continue
        stack.extend(a for a in node.inputs if isinstance(a, Tensor) and a.requires_grad)
    if missing:
        shapes = ", ".join(str(t.shape) for t in missing[:5])
        raise GraphError(
            f"checkpoint: the function reads {len(missing)} tensor(s) that need gradients "
            f"but were not passed to checkpoint (shapes {shapes}); pass them as arguments "
            f"or as params=[...] (a Module's own parameters are found by themselves)"
        )


def _owner(function: Callable[..., Any]) -> Module | None:
    """The Module whose parameters ``function`` reads: itself, or a bound method's self."""
    if isinstance(function, Module):
        return function
    owner = getattr(function, "__self__", None)
    return owner if isinstance(owner, Module) else None


def _generators(owner: Module | None) -> list[Generator]:
    """The random streams a recomputation must replay: the default generator and every
    distinct ``generator`` of the owner's submodules."""
    found: dict[int, Generator] = {id(default_generator): default_generator}
    for module in owner.modules() if owner is not None else ():
        generator = getattr(module, "generator", None)
        if isinstance(generator, Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())
