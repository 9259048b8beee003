"""``Tensor``: an array, the gradient it receives, and the node that made it.

A tensor holds its values in ``data`` (an array of the backend), and, when it takes part
in a differentiable computation, ``grad_fn``: the node (a ``Function`` instance) that
produced it. Methods are one-line calls into ``chainrule.ops``, where each operation's
forward and backward live side by side.

The dependency runs one way: ``ops`` and ``autograd`` import this module, never the
reverse. The functions behind the methods are looked up in ``_impl``, a table that
``chainrule.ops`` and ``chainrule.autograd`` fill when they are imported (``bind``);
``import chainrule`` imports both, so every method works from the first line of user code.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from chainrule import backend
from chainrule.backend import xp
from chainrule.errors import DTypeError, GraphError
from chainrule.inplace import InPlaceMethods, array_of

Scalar = int | float | bool
TensorLike = Any  # a Tensor, an array, a Python number or a nested list of numbers


class Tensor(InPlaceMethods):
    """A multi-dimensional array that records the operations applied to it.

    Args:
        data: a number, a nested list, an array or a Tensor. Python floats become float32
            (the default float dtype); arrays keep their dtype, so float64 stays float64;
            integer and bool data stay integer and bool.
        requires_grad: record operations on this tensor so ``backward`` can compute its
            gradient. Only floating-point tensors can require gradients.
        dtype: convert the data to this dtype.

    Example:
        >>> import chainrule as cr
        >>> x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4., 6.])
    """

    # Hot fields in slots; rarely set ones (grad, hooks, name) in the instance dict with
    # class-level defaults, so making a tensor sets only four attributes.
    __slots__ = ("data", "requires_grad", "_node", "_version", "__dict__", "__weakref__")
    data: Any  # the values: an array of the backend
    requires_grad: bool
    _node: Any  # the Function node that made this tensor, None for a leaf
    _version: list[int]  # shared with views: the clock tick of the last in-place change

    grad: Tensor | None = None
    _out_index: int = 0
    _hooks: list[Callable[[Tensor], Any]] | None = None
    _post_accumulate_hooks: list[Callable[[Tensor], Any]] | None = None
    name: str | None = None

    # NumPy must hand `array * tensor` to Tensor.__rmul__ instead of looping over it.
    __array_ufunc__ = None

    def __init__(self, data: TensorLike, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data = _as_array(data, dtype)
        self._node = None
        self._version = [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data: Any, requires_grad: bool, node: Any, index: int) -> Tensor:
        """Make a tensor around an array that is already right (the ops' fast path)."""
        t = Tensor.__new__(Tensor)
        t.data = data
        t.requires_grad = requires_grad
        t._node = node
        t._version = [0]
        if index:
            t._out_index = index
        return t

    # ------------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        return int(self.data.ndim)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def grad_fn(self) -> Any:
        """The node that produced this tensor, or None for a leaf."""
        return self._node

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def T(self) -> Tensor:  # noqa: N802 (PyTorch's name)
        """The tensor with its dimensions reversed (the transpose for a matrix)."""
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802 (PyTorch's name)
        """The last two dimensions swapped (a batch of matrices transposed)."""
        return self.transpose(-2, -1)

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return int(self.data.shape[0])

    # ------------------------------------------------------------------ leaving autograd
    def numpy(self) -> Any:
        """The values as a NumPy array (shares memory with the tensor)."""
        if self.requires_grad:
            raise GraphError(
                "numpy() on a tensor that requires grad would let the array escape the "
                "graph; call tensor.detach().numpy() instead"
            )
        return backend.to_host(self.data)

    def item(self) -> Any:
        """The single value of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, got shape {self.shape}; "
                f"reduce it first (e.g. .sum() or .mean())"
            )
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                f"use .any() or .all()"
            )
        return bool(self.data.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        arr = backend.to_host(self.data)
        return arr if dtype is None else arr.astype(dtype)

    def detach(self) -> Tensor:
        """The same values (shared memory) cut off from the graph."""
        t = Tensor._wrap(self.data, False, None, 0)
        t._version = self._version  # shares memory, so shares the version counter
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording ops on this leaf tensor; returns self."""
        if requires_grad and not backend.is_floating(self.data.dtype):
            raise DTypeError(
                f"only floating-point tensors can require gradients, got dtype "
                f"{self.data.dtype}; convert first with .float() or .double()"
            )
        if not requires_grad and self._node is not None:
            raise GraphError(
                "requires_grad_(False) on a non-leaf tensor; use .detach() to get a tensor "
                "outside the graph"
            )
        self.requires_grad = bool(requires_grad)
        return self

    # --------------------------------------------------------------------------- autograd
    def backward(
        self,
        gradient: TensorLike | None = None,
        retain_graph: bool = False,
        create_graph: bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Compute the gradient of this tensor with respect to the graph's leaves.

        Each leaf that requires grad gets the gradient added to its ``.grad`` (gradients
        accumulate across calls, as in PyTorch: zero them between steps).

        Args:
            gradient: ∂C/∂self for a non-scalar tensor (same shape as self). Defaults to
                1 for a scalar.
            retain_graph: keep the graph so backward can run through it again (defaults
                to ``create_graph``).
            create_graph: record the backward pass itself, so the gradients (``.grad``)
                are Tensors with a graph and can be differentiated again.
            inputs: accumulate only into these leaves.

        Example:
            >>> import chainrule as cr
            >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
            >>> (x ** 3).sum().backward(create_graph=True)
            >>> x.grad.sum().backward()     # adds d/dx Σ 3x² = 6x to x.grad
        """
        _autograd.backward(
            [self], None if gradient is None else [gradient], retain_graph, create_graph, inputs
        )

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook may return a tensor to use instead of the gradient. Returns a handle
        whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise GraphError("cannot register a hook on a tensor that does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
            hooks.append(hook)
        else:
            self._node.register_hook(self._out_index, hook)
            assert self._node._hooks is not None
            hooks = self._node._hooks[self._out_index]
        return _HookHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> Any:
        """Call ``hook(self)`` as soon as this leaf's ``.grad`` is final during backward.

        PyTorch's hook of the same name: it runs while the backward pass is still
        computing the gradients of earlier layers, which is when data-parallel training
        starts sending this gradient to the other processes, and where a per-parameter
        clipping or logging step can act. The hook sees the accumulated ``.grad``; its
        return value is ignored. Returns a handle whose ``remove()`` unregisters it.

        Example:
            >>> import chainrule as cr
            >>> w = cr.ones(3, requires_grad=True)
            >>> handle = w.register_post_accumulate_grad_hook(lambda p: print(p.grad))
            >>> (w * 2).sum().backward()
            tensor([2., 2., 2.])
        """
        if self._node is not None:
            raise GraphError(
                "register_post_accumulate_grad_hook works on leaf tensors only (those with "
                "no grad_fn, such as parameters); use register_hook on computed tensors"
            )
        if not self.requires_grad:
            raise GraphError(
                "cannot register a post-accumulate hook on a tensor that does not require grad"
            )
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        _POST_ACCUMULATE_HOOKS[0] += 1
        return _HookHandle(self._post_accumulate_hooks, hook, _POST_ACCUMULATE_HOOKS)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if self._node is None:
            return
        # The hook lives on the node that made this tensor; a strong reference back to the
        # tensor would make a cycle (tensor -> node -> hook -> tensor) that keeps the whole
        # graph alive until the cyclic garbage collector happens to run.
        ref = weakref.ref(self)

        def keep(g: Tensor) -> None:
            t = ref()
            if t is not None:
                t.grad = g if t.grad is None else Tensor(t.grad.data + g.data)

        self.register_hook(keep)

    # ------------------------------------------------------------------------- printing
    def __repr__(self) -> str:
        body = xp.array2string(backend.to_host(self.data), separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype not in (backend.float32, backend.int64, backend.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    __hash__ = object.__hash__  # __eq__ is elementwise, yet tensors key dicts by identity

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    # -------------------------------------------------------------- operators (ops/*.py)
    def __add__(self, other: TensorLike) -> Tensor:
        return _ops.Add.apply(self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        return _ops.Add.apply(other, self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return _ops.Sub.apply(self, other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        return _ops.Sub.apply(other, self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return _ops.Mul.apply(self, other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        return _ops.Mul.apply(other, self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return _ops.Div.apply(self, other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return _ops.Div.apply(other, self)

    def __pow__(self, other: TensorLike) -> Tensor:
        return _ops.Pow.apply(self, other)

    def __rpow__(self, other: TensorLike) -> Tensor:
        return _ops.Pow.apply(other, self)

    def __neg__(self) -> Tensor:
        return _ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.Abs.apply(self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # Comparisons give bool tensors and are not differentiable.
    def __lt__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data < array_of(other), False, None, 0)

    def __le__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data <= array_of(other), False, None, 0)

    def __gt__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data > array_of(other), False, None, 0)

    def __ge__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data >= array_of(other), False, None, 0)

    def __eq__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data == array_of(other), False, None, 0)

    def __ne__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data != array_of(other), False, None, 0)

    def __invert__(self) -> Tensor:
        return Tensor._wrap(~self.data, False, None, 0)

    def __and__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data & array_of(other), False, None, 0)

    def __or__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data | array_of(other), False, None, 0)

    # ----------------------------------------------------------------------------- math
    def add(self, other: TensorLike) -> Tensor:
        return _ops.Add.apply(self, other)

    def sub(self, other: TensorLike) -> Tensor:
        return _ops.Sub.apply(self, other)

    def mul(self, other: TensorLike) -> Tensor:
        return _ops.Mul.apply(self, other)

    def div(self, other: TensorLike) -> Tensor:
        return _ops.Div.apply(self, other)

    def pow(self, exponent: TensorLike) -> Tensor:
        return _ops.Pow.apply(self, exponent)

    def neg(self) -> Tensor:
        return _ops.Neg.apply(self)

    def exp(self) -> Tensor:
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        return _ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return _ops.Abs.apply(self)

    def relu(self) -> Tensor:
        return _ops.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return _ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _ops.Tanh.apply(self)

    def softplus(self) -> Tensor:
        return _ops.Softplus.apply(self)

    def maximum(self, other: TensorLike) -> Tensor:
        return _ops.maximum(self, other)

    def minimum(self, other: TensorLike) -> Tensor:
        return _ops.minimum(self, other)

    def clamp(self, min: Scalar | None = None, max: Scalar | None = None) -> Tensor:
        return _ops.clamp(self, min, max)

    clip = clamp

    def matmul(self, other: Tensor) -> Tensor:
        return _ops.matmul(self, other)

    def softmax(self, dim: int = -1) -> Tensor:
        return _ops.softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        return _ops.log_softmax(self, dim)

    def logsumexp(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.logsumexp(self, dim, keepdim)

    # ------------------------------------------------------------------------ reductions
    # ``axis`` and ``keepdims`` are accepted too, as in PyTorch, so that code written for
    # arrays (the engine's un-broadcast) runs unchanged on tensors.
    def sum(
        self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None
    ) -> Tensor:
        if axis is not None:
            dim = axis
        return _ops.sum(self, dim, keepdim if keepdims is None else keepdims)

    def mean(
        self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: Any = None
    ) -> Tensor:
        if axis is not None:
            dim = axis
        return _ops.mean(self, dim, keepdim if keepdims is None else keepdims)

    def var(self, dim: Any = None, unbiased: bool = True, keepdim: bool = False) -> Tensor:
        return _ops.var(self, dim, unbiased, keepdim)

    def std(self, dim: Any = None, unbiased: bool = True, keepdim: bool = False) -> Tensor:
        return _ops.std(self, dim, unbiased, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        return _ops.max(self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        return _ops.min(self, dim, keepdim)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.amax(self, dim, keepdim)

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.amin(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return _ops.argmin(self, dim, keepdim)

    def all(self) -> bool:
        return bool(self.data.all())

    def any(self) -> bool:
        return bool(self.data.any())

    # ------------------------------------------------------------------------ movement
    def reshape(self, *shape: Any) -> Tensor:
        return _ops.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def unsqueeze(self, dim: int) -> Tensor:
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim: int | None = None) -> Tensor:
        return _ops.squeeze(self, dim)

    def permute(self, *dims: Any) -> Tensor:
        return _ops.permute(self, *dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return _ops.transpose(self, dim0, dim1)

    def expand(self, *sizes: Any) -> Tensor:
        return _ops.expand(self, *sizes)

    def expand_as(self, other: Tensor) -> Tensor:
        return _ops.expand(self, other.shape)

    def clone(self) -> Tensor:
        return _ops.clone(self)

    def contiguous(self) -> Tensor:
        return self

    # --------------------------------------------------------------------------- dtypes
    def to(self, dtype: Any) -> Tensor:
        """A tensor of ``dtype`` (self if it already is); differentiable for floats."""
        return _ops.cast(self, dtype)

    astype = to

    def float(self) -> Tensor:
        return _ops.cast(self, backend.float32)

    def double(self) -> Tensor:
        return _ops.cast(self, backend.float64)

    def long(self) -> Tensor:
        return _ops.cast(self, backend.int64)

    def int(self) -> Tensor:
        return _ops.cast(self, backend.int32)

    def bool(self) -> Tensor:
        return _ops.cast(self, backend.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return _ops.cast(self, other.dtype)


class _HookHandle:
    """Returned by the ``register_*hook`` methods; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list[Any], hook: Any, counter: list[int] | None = None) -> None:
        self._hooks = hooks
        self._hook = hook
        self._counter = counter

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
            if self._counter is not None:
                self._counter[0] -= 1


# How many post-accumulate hooks exist, over all tensors: the engine counts each leaf's
# consumers (a pass over the graph) only while some exist, so they cost nothing otherwise.
_POST_ACCUMULATE_HOOKS = [0]


def post_accumulate_hook_count() -> int:
    """How many post-accumulate-grad hooks are registered on any tensor."""
    return _POST_ACCUMULATE_HOOKS[0]


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


class MaxResult(NamedTuple):
    """What ``max(dim)`` and ``min(dim)`` return, as in PyTorch: values and their indices."""

    values: Tensor
    indices: Tensor


def _as_array(data: TensorLike, dtype: Any = None) -> Any:
    """Convert user data to a backend array with chainrule's dtype rules."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, xp.ndarray):
        arr = data
    else:
        try:
            arr = xp.asarray(data)
        except OverflowError:
            raise DTypeError(
                f"cannot make a tensor from {data!r}: the integer does not fit in int64 "
                f"(the largest integer dtype); pass it as a float (float({data!r})) if an "
                f"approximate value will do"
            ) from None
        except ValueError as exc:  # ragged nested lists
            raise DTypeError(
                f"cannot make a tensor from this {type(data).__name__}: {exc}; nested lists "
                f"must have the same length at each level"
            ) from None
        # Python floats (and lists of them) get the default float dtype, not float64.
        if arr.dtype == backend.float64 and dtype is None and not isinstance(data, xp.generic):
            arr = arr.astype(backend.default_float)
    if arr.dtype.kind == "O" and isinstance(data, int):
        raise DTypeError(
            f"cannot make a tensor from {data!r}: the integer does not fit in int64 (the "
            f"largest integer dtype); pass float({data!r}) if an approximate value will do"
        )
    if arr.dtype.kind not in "biuf":
        what = {
            "U": "strings",
            "S": "bytes",
            "O": "Python objects or integers too large for int64",
            "c": "complex numbers",
            "M": "dates",
            "m": "time spans",
        }
        kind = what.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise DTypeError(
            f"cannot make a tensor from {type(data).__name__} data holding {kind}: tensors "
            f"hold bool, integer or floating-point numbers; convert the data first "
            f"(e.g. float(s) for a numeric string)"
        )
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


# The modules behind the methods, filled in when they are imported (the dependency runs
# ops -> tensor and autograd -> tensor, never back): `chainrule.ops` calls `bind_ops`,
# `chainrule.autograd.functional` calls `bind_autograd`.
_ops: Any = None
_autograd: Any = None


def bind_ops(module: Any) -> None:
    """Give Tensor's math methods their implementation: the ``chainrule.ops`` module."""
    global _ops
    _ops = module


def bind_autograd(module: Any) -> None:
    """Give ``Tensor.backward`` its implementation: ``chainrule.autograd.functional``."""
    global _autograd
    _autograd = module
