"""``Function``: one differentiable operation, its forward and its backward side by side.

Every primitive of chainrule and every op a user writes has the same shape, the one
PyTorch users know::

    class Exp(Function):
        '''y = exp(x).   VJP: dx = g * y'''

        @staticmethod
        def forward(ctx, x):
            y = xp.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    y = Exp.apply(x)          # x is a Tensor; y is a Tensor with y.grad_fn the Exp node

``forward`` receives the arrays inside the input tensors (other arguments as they were
given) and returns an array, or a tuple of arrays for several outputs. ``backward``
receives one upstream gradient per output and returns one gradient per input of
``forward`` (``None`` where there is none, such as for a ``dim`` argument). Both work on
arrays of the backend (``chainrule.backend.xp``), which keeps an op's cost close to the
raw array library's. A gradient may have the broadcast shape of the forward computation:
the engine sums it back to each input's shape in one place, so no op undoes broadcasting
by itself.

The ``ctx`` is the node of the graph: ``Function.apply`` makes one instance per call,
the output tensors point to it (``y.grad_fn``), and the engine walks these nodes
backwards.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.errors import DTypeError, GraphError, ShapeError

# Every Function subclass defined inside chainrule, by name: the registry that lets one
# test gradient-check every primitive.
PRIMITIVES: dict[str, type[Function]] = {}


class Function:
    """Base class of differentiable operations (see the module docstring for the shape).

    Attributes available on ``ctx`` inside ``forward`` and ``backward``:
        needs_input_grad: one bool per argument of ``forward``; backward may skip the
            work for inputs that do not need a gradient.
        saved_tensors: the arrays given to ``save_for_backward``.
    Any other attribute set on ``ctx`` in ``forward`` (a ``dim``, a shape) is available
    in ``backward``.
    """

    # Fields owned by the engine live in slots (fast to set on every call); attributes an
    # op sets on ctx go to the instance dict.
    __slots__ = (
        "_edges",
        "_in_shapes",
        "_saved",
        "_saved_versions",
        "_n_out",
        "_out_meta",
        "_freed",
        "_hooks",
        "_trace",
        "needs_input_grad",
        "__dict__",
        "__weakref__",
    )

    # An op whose output is a view of input ``_view_of`` (reshape, transpose, slicing)
    # shares that input's version counter, so an in-place change through either is seen.
    _view_of: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("chainrule."):
            PRIMITIVES[cls.__name__] = cls

    @staticmethod
    def forward(ctx: Any, *args: Any) -> Any:
        """Compute the output array(s) from the input arrays."""
        raise NotImplementedError("a Function must define a static forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """Map upstream gradients to one gradient per forward input (the VJP)."""
        raise NotImplementedError("a Function must define a static backward(ctx, *grads)")

    # ----------------------------------------------------------------------------- ctx API
    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward. Changing them in place afterwards is detected."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._freed:
            raise GraphError(_FREED_MESSAGE.format(op=self.name()))
        for counter, version in self._saved_versions:
            if counter[0] != version:
                raise GraphError(
                    f"a tensor that {self.name()} saved for backward was modified in place "
                    f"after the forward pass (its version is {counter[0]}, the graph needs "
                    f"version {version}). Use an out-of-place op (y = y + 1 instead of "
                    f"y += 1), or .clone() the tensor before changing it."
                )
        return self._saved

    def mark_non_differentiable(self, *arrays: Any) -> None:
        """Accepted for PyTorch compatibility; integer outputs never carry gradients."""

    @classmethod
    def name(cls) -> str:
        """The node's name as shown in errors and drawings, e.g. ``MulBackward``."""
        return cls.__name__ + "Backward"

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        """Where gradients go next: (node, output index) or (leaf tensor, -1) per input."""
        return tuple(e if e is not None else (None, 0) for e in self._edges)

    def register_hook(self, index: int, fn: Any) -> None:
        """Call ``fn(grad)`` on the gradient of output ``index`` before this node runs."""
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(index, []).append(fn)

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    # ----------------------------------------------------------------------------- apply
    @classmethod
    def apply(cls, *args: Any) -> Any:
        """Run the op on tensors (and plain arguments) and record it in the graph."""
        ctx = cls.__new__(cls)
        ctx._saved = ()
        arrays = []
        record = False
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                if a.requires_grad:
                    record = True
            else:
                arrays.append(a)
        record = record and _grad_state.enabled
        try:
            raw = cls.forward(ctx, *arrays)
        except (ShapeError, DTypeError, GraphError):
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise _forward_error(cls, args, exc) from exc

        if type(raw) is tuple:
            outs = tuple(Tensor._wrap(r, record, ctx if record else None, i)
                         for i, r in enumerate(raw))
            version_out = None
        else:
            outs = Tensor._wrap(raw, record, ctx if record else None, 0)
            version_out = outs
            if cls._view_of is not None:
                outs._version = args[cls._view_of]._version
        if not record:
            return outs

        edges = []
        shapes = []
        needs = []
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                node = a._node
                edges.append((node, a._out_index) if node is not None else (a, -1))
                shapes.append(a.data.shape)
                needs.append(True)
            else:
                edges.append(None)
                shapes.append(None)
                needs.append(False)
        ctx._edges = edges
        ctx._in_shapes = shapes
        ctx.needs_input_grad = tuple(needs)
        ctx._freed = False
        ctx._hooks = None
        if type(raw) is tuple:
            ctx._n_out = len(raw)
            ctx._out_meta = tuple((r.shape, r.dtype) for r in raw)
        else:
            ctx._n_out = 1
        ctx._saved_versions = _versions_of_saved(ctx._saved, args, version_out) \
            if ctx._saved else ()
        ctx._trace = traceback.extract_stack()[:-1] if _grad_state.anomaly else None
        return outs


_FREED_MESSAGE = (
    "{op} is part of a graph whose saved values were already freed by a backward pass. "
    "Pass retain_graph=True to the first backward() if you need to run backward through "
    "the same graph again, or recompute the forward pass."
)


def _versions_of_saved(saved: tuple[Any, ...], args: tuple[Any, ...], out: Any) -> tuple:
    """The version counters of the tensors whose arrays were saved, and their values now."""
    found = []
    for arr in saved:
        if out is not None and arr is out.data:
            found.append((out._version, out._version[0]))
            continue
        for a in args:
            if isinstance(a, Tensor) and a.data is arr:
                found.append((a._version, a._version[0]))
                break
    return tuple(found)


def _forward_error(cls: type[Function], args: tuple[Any, ...], exc: Exception) -> Exception:
    """Re-raise an array library error with the op's name and every input's shape."""
    described = ", ".join(
        f"Tensor(shape={tuple(a.shape)}, dtype={a.dtype})" if isinstance(a, Tensor) else repr(a)
        for a in args
    )
    message = f"{cls.__name__}: {exc} (inputs: {described})"
    if isinstance(exc, ValueError):
        return ShapeError(message)
    if isinstance(exc, TypeError):
        return DTypeError(message)
    return type(exc)(message)


from chainrule.tensor import Tensor  # noqa: E402  (Tensor's methods call back into ops)
