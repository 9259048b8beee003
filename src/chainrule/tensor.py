"""``Tensor``: an array, the gradient it receives, and the node that made it.

A tensor holds its values in ``data`` (an array of the backend), and, when it takes part
in a differentiable computation, ``grad_fn``: the node (a ``Function`` instance) that
produced it. Methods are one-line calls into ``chainrule.ops``, where each operation's
forward and backward live side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from chainrule import backend
from chainrule.autograd.grad_mode import state as _grad_state
from chainrule.backend import xp
from chainrule.errors import DTypeError, GraphError

Scalar = int | float | bool
TensorLike = Any  # a Tensor, an array, a Python number or a nested list of numbers


class Tensor:
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
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

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
            retain_graph: keep the graph so backward can run through it again.
            create_graph: reserved for second-order gradients (not yet available).
            inputs: accumulate only into these leaves.
        """
        from chainrule.autograd.functional import backward as _backward

        _backward(
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

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if self._node is None:
            return

        def keep(g: Tensor) -> None:
            self.grad = (
                g if self.grad is None else Tensor._wrap(self.grad.data + g.data, False, None, 0)
            )

        self.register_hook(keep)

    # ------------------------------------------------------------------------- in place
    def _check_inplace(self, op: str, other: Any = None) -> None:
        if _grad_state.enabled and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        ):
            what = (
                "a leaf tensor that requires grad"
                if self._node is None and self.requires_grad
                else "a tensor that takes part in the graph"
            )
            raise GraphError(
                f"in-place {op} on {what} (shape {self.shape}) would make gradients wrong; "
                f"use the out-of-place form (x = x + y), or wrap parameter updates in "
                f"`with cr.no_grad():`"
            )

    def increment_version(self) -> None:
        """Record that ``.data`` was changed in place (PyTorch's ``increment_version``).

        The ops of this class do it themselves. Code that writes into ``tensor.data``
        directly (an optimiser step, an initialiser) calls it afterwards, so a backward
        that saved the old values raises instead of computing a wrong gradient.
        """
        self._version[0] = _clock.stamp_inplace()

    def _inplace(self, op: str, fn: Callable[..., Any], other: Any) -> Tensor:
        self._check_inplace(op, other)
        value = other.data if isinstance(other, Tensor) else other
        fn(self.data, value, out=self.data)
        self.increment_version()
        return self

    def __iadd__(self, other: TensorLike) -> Tensor:
        return self._inplace("+=", xp.add, other)

    def __isub__(self, other: TensorLike) -> Tensor:
        return self._inplace("-=", xp.subtract, other)

    def __imul__(self, other: TensorLike) -> Tensor:
        return self._inplace("*=", xp.multiply, other)

    def __itruediv__(self, other: TensorLike) -> Tensor:
        return self._inplace("/=", xp.true_divide, other)

    def add_(self, other: TensorLike, alpha: Scalar = 1) -> Tensor:
        return self._inplace("add_", xp.add, other if alpha == 1 else _value(other) * alpha)

    def sub_(self, other: TensorLike, alpha: Scalar = 1) -> Tensor:
        return self._inplace("sub_", xp.subtract, other if alpha == 1 else _value(other) * alpha)

    def mul_(self, other: TensorLike) -> Tensor:
        return self._inplace("mul_", xp.multiply, other)

    def div_(self, other: TensorLike) -> Tensor:
        return self._inplace("div_", xp.true_divide, other)

    def copy_(self, src: TensorLike) -> Tensor:
        """Overwrite the values with ``src`` (broadcast to this shape); returns self."""
        self._check_inplace("copy_", src)
        self.data[...] = _value(src)
        self.increment_version()
        return self

    def fill_(self, value: Scalar) -> Tensor:
        self._check_inplace("fill_")
        self.data.fill(value)
        self.increment_version()
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def clamp_(self, min: Scalar | None = None, max: Scalar | None = None) -> Tensor:
        self._check_inplace("clamp_")
        xp.clip(self.data, min, max, out=self.data)
        self.increment_version()
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
        """Fill with draws from N(mean, std²) taken from the seeded generator."""
        from chainrule.random import resolve

        draw = resolve(generator).standard_normal(self.shape, self.data.dtype)
        return self.copy_(draw * std + mean)

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
        """Fill with draws from U(a, b) taken from the seeded generator."""
        from chainrule.random import resolve

        draw = resolve(generator).random(self.shape, self.data.dtype)
        return self.copy_(draw * (b - a) + a)

    def __setitem__(self, index: Any, value: TensorLike) -> None:
        self._check_inplace("item assignment", value)
        self.data[_index(index)] = _value(value)
        self.increment_version()

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
        return _ew.Add.apply(self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        return _ew.Add.apply(other, self)

    def __sub__(self, other: TensorLike) -> Tensor:
        return _ew.Sub.apply(self, other)

    def __rsub__(self, other: TensorLike) -> Tensor:
        return _ew.Sub.apply(other, self)

    def __mul__(self, other: TensorLike) -> Tensor:
        return _ew.Mul.apply(self, other)

    def __rmul__(self, other: TensorLike) -> Tensor:
        return _ew.Mul.apply(other, self)

    def __truediv__(self, other: TensorLike) -> Tensor:
        return _ew.Div.apply(self, other)

    def __rtruediv__(self, other: TensorLike) -> Tensor:
        return _ew.Div.apply(other, self)

    def __pow__(self, other: TensorLike) -> Tensor:
        return _ew.Pow.apply(self, other)

    def __rpow__(self, other: TensorLike) -> Tensor:
        return _ew.Pow.apply(other, self)

    def __neg__(self) -> Tensor:
        return _ew.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ew.Abs.apply(self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # Comparisons give bool tensors and are not differentiable.
    def __lt__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data < _value(other), False, None, 0)

    def __le__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data <= _value(other), False, None, 0)

    def __gt__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data > _value(other), False, None, 0)

    def __ge__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data >= _value(other), False, None, 0)

    def __eq__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data == _value(other), False, None, 0)

    def __ne__(self, other: TensorLike) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(self.data != _value(other), False, None, 0)

    def __invert__(self) -> Tensor:
        return Tensor._wrap(~self.data, False, None, 0)

    def __and__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data & _value(other), False, None, 0)

    def __or__(self, other: TensorLike) -> Tensor:
        return Tensor._wrap(self.data | _value(other), False, None, 0)

    # ----------------------------------------------------------------------------- math
    def add(self, other: TensorLike) -> Tensor:
        return _ew.Add.apply(self, other)

    def sub(self, other: TensorLike) -> Tensor:
        return _ew.Sub.apply(self, other)

    def mul(self, other: TensorLike) -> Tensor:
        return _ew.Mul.apply(self, other)

    def div(self, other: TensorLike) -> Tensor:
        return _ew.Div.apply(self, other)

    def pow(self, exponent: TensorLike) -> Tensor:
        return _ew.Pow.apply(self, exponent)

    def neg(self) -> Tensor:
        return _ew.Neg.apply(self)

    def exp(self) -> Tensor:
        return _ew.Exp.apply(self)

    def log(self) -> Tensor:
        return _ew.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ew.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return _ew.Abs.apply(self)

    def relu(self) -> Tensor:
        return _ew.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        return _ew.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _ew.Tanh.apply(self)

    def softplus(self) -> Tensor:
        return _ew.Softplus.apply(self)

    def maximum(self, other: TensorLike) -> Tensor:
        return _ew.Maximum.apply(self, other)

    def minimum(self, other: TensorLike) -> Tensor:
        return _ew.Minimum.apply(self, other)

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
    def sum(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.sum(self, dim, keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.mean(self, dim, keepdim)

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
    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


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
        arr = xp.asarray(data)
        # Python floats (and lists of them) get the default float dtype, not float64.
        if arr.dtype == backend.float64 and dtype is None and not isinstance(data, xp.generic):
            arr = arr.astype(backend.default_float)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr.dtype.kind == "O":
        raise DTypeError(f"cannot make a tensor from {type(data).__name__} data of mixed types")
    return arr


def _value(x: TensorLike) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _index(index: Any) -> Any:
    """Turn Tensors inside an index expression into arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# Imported last: the ops need the Tensor class defined above.
from chainrule import ops as _ops  # noqa: E402
from chainrule.autograd.function import clock as _clock  # noqa: E402
from chainrule.ops import elementwise as _ew  # noqa: E402
