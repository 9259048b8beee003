"""``Function``: one differentiable operation, its forward and its backward side by side.

Every primitive of chainrule and every op a user writes has the same shape, the one
PyTorch users know::

    class Exp(Function):
        '''y = exp(x).   VJP: dx = g * y'''

        @staticmethod
        def forward(ctx, x):
            y = ctx.xp.exp(x)
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
arrays, which keeps an op's cost close to the raw array library's; ``ctx.xp`` is the
library of the op's inputs (NumPy on the CPU, CuPy on a GPU), so one implementation runs
on either device. A gradient may have the broadcast shape of the forward computation:
the engine sums it back to each input's shape in one place, so no op undoes broadcasting
by itself.

The ``ctx`` is the node of the graph: ``Function.apply`` makes one instance per call,
the output tensors point to it (``y.grad_fn``), and the engine walks these nodes
backwards.

Gradients of gradients. ``backward`` runs on arrays, which is what keeps first-order
training fast, but an array has no graph, so its result cannot be differentiated again.
Beside it, a Function that can be differentiated twice defines ``backward_graph``: the
same VJP written with chainrule ops on Tensors::

        @staticmethod
        def backward_graph(ctx, g):
            (y,) = ctx.saved_tensors
            return g * ctx.output(y)     # y as the Tensor this node produced

With ``create_graph=True`` the engine calls it instead of ``backward``, with recording on:
the gradients it returns are Tensors with a graph, differentiable to any order. Inside it,
``ctx.inputs`` holds the arguments of ``apply`` (tensors as Tensors), ``ctx.output(array)``
turns a saved output array back into the output Tensor, and saved arrays that are neither
serve as constants (masks, indices). A registry test checks, for every chainrule
Function, that both forms give the same first-order gradients and that ``backward_graph``
passes ``gradgradcheck``. A Function without it works to first order and says so when
asked for a second.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

from chainrule import backend
from chainrule.autograd.grad_mode import clock
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.errors import DeviceError, DTypeError, GraphError, ShapeError
from chainrule.tensor import Tensor

# Every Function subclass defined inside chainrule, by name: the registry that lets one
# test gradient-check every primitive.
PRIMITIVES: dict[str, type[Function]] = {}


def make_output(data: Any, node: Any, index: int, version: list[int]) -> Tensor:
    """The tensor that output ``index`` of ``node`` is: for ``Function`` and the engine.

    ``version`` is the output's in-place counter (shared with the node, which checks it).
    """
    t = Tensor.__new__(Tensor)
    t.data = data
    t.requires_grad = True
    t._node = node
    t._version = version
    if index:
        t._out_index = index
    return t


class Function:
    """Base class of differentiable operations (see the module docstring for the shape).

    Attributes available on ``ctx`` inside ``forward`` and ``backward``:
        needs_input_grad: one bool per argument of ``forward``; backward may skip the
            work for inputs that do not need a gradient.
        saved_tensors: the arrays given to ``save_for_backward``.
        xp: the array library of the inputs (``numpy`` or ``cupy``): call ``ctx.xp.exp``,
            never NumPy directly, and the op runs on every device.
    Any other attribute set on ``ctx`` in ``forward`` (a ``dim``, a shape) is available
    in ``backward``.
    """

    # Fields set on every call live in slots (fast); an op's own attributes go to the
    # instance dict, and rarely changed fields fall back to the class defaults below.
    __slots__ = (
        "_inputs",
        "saved_tensors",
        "_seq",
        "_out_version",
        "_out_id",
        "__dict__",
        "__weakref__",
    )

    _inputs: tuple[Any, ...]  # the arguments of forward, tensors included
    # The arrays given to save_for_backward; None once backward has freed the node. A plain
    # slot, read on every backward: the engine checks it is still valid (not freed, not
    # changed in place) before it calls the node's backward.
    saved_tensors: tuple[Any, ...] | None
    _seq: int  # the clock tick at creation (see _Clock)
    _out_version: list[int]  # the output's version counter (shared list)
    _out_id: int  # id() of the output array, to spot it among the saved ones

    _n_out: int = 1  # number of outputs; multi-output nodes also set _out_meta
    _out_meta: tuple[tuple[Any, Any], ...] = ()
    _hooks: dict[int, list[Any]] | None = None
    _trace: Any = None  # the creating stack, under detect_anomaly
    # The array library of the inputs. NumPy as a class default costs the CPU nothing;
    # apply sets it on the instance only once a GPU library is loaded.
    xp: Any = backend.xp

    # An op whose output is a view of input ``_view_of`` (reshape, transpose, slicing)
    # shares that input's version counter, so an in-place change through either is seen.
    _view_of: ClassVar[int | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("chainrule."):
            if cls.__name__ in PRIMITIVES and PRIMITIVES[cls.__name__] is not cls:
                raise TypeError(
                    f"two chainrule Functions are named {cls.__name__} "
                    f"({PRIMITIVES[cls.__name__].__module__} and {cls.__module__}); "
                    f"the registry of primitives needs unique names"
                )
            PRIMITIVES[cls.__name__] = cls

    @staticmethod
    def forward(ctx: Any, *args: Any) -> Any:
        """Compute the output array(s) from the input arrays."""
        raise NotImplementedError("a Function must define a static forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """Map upstream gradients to one gradient per forward input (the VJP)."""
        raise NotImplementedError("a Function must define a static backward(ctx, *grads)")

    @staticmethod
    def backward_graph(ctx: Any, *grad_outputs: Any) -> Any:
        """The VJP in chainrule ops on Tensors, recorded so it can be differentiated again.

        Called instead of ``backward`` when ``create_graph=True``. Functions that are
        differentiable only once keep this default, which says so.
        """
        raise GraphError(
            f"{ctx.name()}: its backward runs on arrays only, so its gradient cannot be "
            f"differentiated again (create_graph=True). Give {type(ctx).__name__} a "
            f"`backward_graph(ctx, *grads)` written with chainrule ops on Tensors (see "
            f"chainrule.autograd.function), or compute this derivative without "
            f"create_graph."
        )

    @classmethod
    def has_backward_graph(cls) -> bool:
        """True when this Function can be differentiated more than once."""
        return cls.backward_graph is not Function.backward_graph

    # ----------------------------------------------------------------------------- ctx API
    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays for backward. Changing them in place afterwards is detected."""
        self.saved_tensors = arrays

    def _check_saved_unchanged(self) -> None:
        """Raise if a saved array's tensor was changed in place after this node was made."""
        seq = self._seq
        for arr in self.saved_tensors or ():
            if id(arr) == self._out_id:
                stamp = self._out_version[0]
            else:
                owner = next(
                    (a for a in self._inputs if isinstance(a, Tensor) and a.data is arr), None
                )
                if owner is None:
                    continue  # an array private to this node: nobody else can change it
                stamp = owner._version[0]
            if stamp > seq:
                raise GraphError(
                    f"an array that {self.name()} saved for backward (shape "
                    f"{tuple(arr.shape)}) was modified by an in-place operation after the "
                    f"forward pass, so its gradient would be wrong. Use an out-of-place op "
                    f"(y = y + 1 instead of y += 1), or .clone() the tensor before changing it."
                )

    def output(self, array: Any, index: int = 0) -> Tensor:
        """The output array ``array`` of this node (saved in forward) as the Tensor it
        produced: differentiating through it reaches this node's inputs. For use in
        ``backward_graph``.
        """
        if self._n_out == 1:
            return make_output(array, self, 0, self._out_version)
        return make_output(array, self, index, [0])

    @property
    def inputs(self) -> tuple[Any, ...]:
        """The arguments this node's op was applied to: tensors as tensors, plain values
        (a ``dim``, a shape) as given. Empty once a backward pass has freed the node."""
        return self._inputs

    @property
    def is_freed(self) -> bool:
        """True once a backward pass without ``retain_graph`` has released this node."""
        return self.saved_tensors is None

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        inputs = self._inputs
        if len(inputs) == 2:  # binary ops ask on every backward: skip the comprehension
            a, b = inputs
            return (
                isinstance(a, Tensor) and a.requires_grad,
                isinstance(b, Tensor) and b.requires_grad,
            )
        return tuple([isinstance(a, Tensor) and a.requires_grad for a in inputs])

    def mark_non_differentiable(self, *arrays: Any) -> None:
        """Accepted for PyTorch compatibility; integer outputs never carry gradients."""

    @classmethod
    def name(cls) -> str:
        """The node's name as shown in errors and drawings, e.g. ``MulBackward``."""
        return cls.__name__ + "Backward"

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        """Where gradients go next, one pair per input: (node, output index) for a computed
        tensor, (leaf tensor, -1) for a leaf that requires grad, (None, 0) otherwise."""
        edges: list[tuple[Any, int]] = []
        for a in self._inputs:
            if not (isinstance(a, Tensor) and a.requires_grad):
                edges.append((None, 0))
            elif a._node is None:
                edges.append((a, -1))
            else:
                edges.append((a._node, a._out_index))
        return tuple(edges)

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
        """Run the op on tensors (and plain arguments) and record it in the graph.

        This is the hot path of the library: every op of every forward pass runs it, so it
        does the least it can. The node keeps its input tensors (``_inputs``); which of them
        need gradients, their shapes and their nodes are read from them during backward.
        """
        ctx = _new(cls)
        ctx.saved_tensors = ()
        record = False
        # Most ops take one or two arguments: unpacking them by hand saves building a list.
        if len(args) == 2:
            a, b = args
            if isinstance(a, Tensor):
                record = a.requires_grad
                a = a.data
            if isinstance(b, Tensor):
                record = record or b.requires_grad
                b = b.data
            arrays: Any = (a, b)
        elif len(args) == 1:
            a = args[0]
            if isinstance(a, Tensor):
                record = a.requires_grad
                a = a.data
            arrays = (a,)
        else:
            arrays = []
            for a in args:
                if isinstance(a, Tensor):
                    arrays.append(a.data)
                    record = record or a.requires_grad
                else:
                    arrays.append(a)
        if backend.state.gpu_loaded:  # one flag read is all the CPU pays for devices
            ctx.xp = backend.array_module(*arrays)
        try:
            raw = cls.forward(ctx, *arrays)
        except (ShapeError, DTypeError, GraphError, DeviceError):
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise _forward_error(cls, args, exc) from exc
        record = record and _grad_state.enabled

        if type(raw) is not _ndarray:
            if type(raw) is tuple:
                return _wrap_outputs(
                    cls, ctx, args, tuple(_as_array(r, ctx.xp) for r in raw), record
                )
            raw = _as_array(raw, ctx.xp)
        out: Tensor = _new(Tensor)
        out.data = raw
        out.requires_grad = record
        out._version = args[cls._view_of]._version if cls._view_of is not None else [0]
        if not record:
            out._node = None
            return out
        out._node = ctx
        ctx._inputs = args
        ctx._seq = _next_tick()
        ctx._out_version = out._version
        ctx._out_id = id(raw)
        if clock.anomaly_blocks and _grad_state.anomaly:
            ctx._trace = traceback.extract_stack()[:-1]
        return out


_new = object.__new__
_ndarray = backend.ndarray


def _as_array(raw: Any, xp: Any) -> Any:
    """An op's result as an array of ``xp``, the op's array library: NumPy gives scalars
    for 0-d results (CuPy never does, but a scalar from a GPU op must stay on the GPU)."""
    if isinstance(raw, _ndarray) or backend.is_device_array(raw):
        return raw
    return xp.asarray(raw)


_next_tick = clock.next_tick


def _wrap_outputs(
    cls: type[Function], ctx: Function, args: tuple[Any, ...], raw: tuple[Any, ...], record: bool
) -> tuple[Any, ...]:
    """The outputs of a multi-output op; integer outputs (indices) never require grad."""
    outs = tuple(
        make_output(r, ctx, i, [0]) if record and r.dtype.kind == "f" else Tensor(r)
        for i, r in enumerate(raw)
    )
    if record:
        ctx._inputs = args
        ctx._seq = clock.next_tick()
        ctx._out_version = [0]  # outputs are fresh arrays; their stamps are checked below
        ctx._out_id = -1
        ctx._n_out = len(raw)
        ctx._out_meta = tuple((r.shape, r.dtype) for r in raw)
        if clock.anomaly_blocks and _grad_state.anomaly:
            ctx._trace = traceback.extract_stack()[:-2]
    return outs


FREED_MESSAGE = (
    "{op} is part of a graph whose saved values were already freed by a backward pass. "
    "Pass retain_graph=True to the first backward() if you need to run backward through "
    "the same graph again, or recompute the forward pass."
)


def _forward_error(cls: type[Function], args: tuple[Any, ...], exc: Exception) -> Exception:
    """Re-raise an array library error with the op's name and every input's shape; for
    inputs on different devices, a ``DeviceError`` naming both."""
    arrays = [a.data if isinstance(a, Tensor) else a for a in args]
    devices = {
        backend.device_of(a)
        for a in arrays
        if isinstance(a, _ndarray) or backend.is_device_array(a)
    }
    if len(devices) > 1:
        names = " and ".join(sorted(str(d) for d in devices))
        return DeviceError(
            f"{cls.__name__}: the inputs are on different devices ({names}); move them to "
            f"one device first, e.g. x.to('{max(devices, key=lambda d: d.type != 'cpu')}')"
        )
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
