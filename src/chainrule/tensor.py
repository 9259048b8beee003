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

from collections.abc import Iterator, Sequence
from typing import Any

from chainrule import backend
from chainrule.autograd.hooks import HookMethods
from chainrule.device import CPU, Device, parse_to_args
from chainrule.errors import DTypeError, GraphError, warn_graph_growth
from chainrule.host_values import HostValueMethods
from chainrule.inplace import InPlaceMethods, array_of

Scalar = int | float | bool
TensorLike = Any  # a Tensor, an array, a Python number or a nested list of numbers


class Tensor(InPlaceMethods, HookMethods, HostValueMethods):
    """A multi-dimensional array that records the operations applied to it.

    Args:
        data: a number, a nested list, an array or a Tensor. Python floats become float32
            (the default float dtype); arrays keep their dtype, so float64 stays float64;
            integer and bool data stay integer and bool.
        requires_grad: record operations on this tensor so ``backward`` can compute its
            gradient. Only floating-point tensors can require gradients.
        dtype: convert the data to this dtype.
        device: put the data on this device ("cpu", "cuda", "cuda:1" or a
            ``cr.device``); default: where the data is (the CPU for numbers and lists).

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
    name: str | None = None

    # NumPy must hand `array * tensor` to Tensor.__rmul__ instead of looping over it.
    __array_ufunc__ = None

    def __init__(
        self,
        data: TensorLike,
        requires_grad: bool = False,
        dtype: Any = None,
        device: Any = None,
    ) -> None:
        self.data = backend.as_array(data.data if isinstance(data, Tensor) else data, dtype, device)
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
    def device(self) -> Device:
        """Where the values live: ``device(type='cpu')`` or ``device(type='cuda', index=0)``."""
        return backend.device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return backend.is_device_array(self.data)

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
    # numpy(), item(), tolist(), float(t)…: HostValueMethods (host_values.py).
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

    # ------------------------------------------------------------------------- printing
    def __repr__(self) -> str:
        host = backend.to_host(self.data)
        # A GPU tensor is printed from a host copy, by NumPy.
        body = backend.xp.array2string(host, separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype not in (backend.float32, backend.int64, backend.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if backend.is_device_array(self.data):
            extras.append(f"device='{self.device}'")
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
    # Addition is how losses get summed over iterations (`total = total + loss` after
    # `loss.backward()`), which keeps every iteration's graph alive. The sign of it is an
    # operand whose node a backward pass has already freed: spotting it costs one check.
    def __add__(self, other: TensorLike) -> Tensor:
        node = self._node
        if (node is not None and node.saved_tensors is None) or (
            type(other) is Tensor and other._node is not None and other._node.saved_tensors is None
        ):
            warn_graph_growth()
        return _ops.Add.apply(self, other)

    def __radd__(self, other: TensorLike) -> Tensor:
        node = self._node
        if node is not None and node.saved_tensors is None:
            warn_graph_growth()
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

    def sin(self) -> Tensor:
        return _ops.Sin.apply(self)

    def cos(self) -> Tensor:
        return _ops.Cos.apply(self)

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

    def cumsum(self, dim: int) -> Tensor:
        return _ops.cumsum(self, dim)

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

    def prod(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        return _ops.prod(self, dim, keepdim, dtype=dtype)

    def norm(self, p: float | str = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
        return _ops.norm(self, p, dim, keepdim)

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

    def gather(self, dim: int, index: Any) -> Tensor:
        return _ops.gather(self, dim, index)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        return _ops.sort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        return _ops.topk(self, k, dim, largest, sorted)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        return _ops.masked_fill(self, mask, value)

    def split(self, split_size: Any, dim: int = 0) -> tuple[Tensor, ...]:
        return _ops.split(self, split_size, dim)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        return _ops.chunk(self, chunks, dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        return _ops.unbind(self, dim)

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

    def flip(self, *dims: Any) -> Tensor:
        return _ops.flip(self, dims[0] if len(dims) == 1 else dims)

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return _ops.roll(self, shifts, dims)

    def repeat(self, *sizes: Any) -> Tensor:
        return _ops.repeat(self, *sizes)

    def tile(self, *dims: Any) -> Tensor:
        return _ops.tile(self, dims[0] if len(dims) == 1 else dims)

    def repeat_interleave(self, repeats: Any, dim: int | None = None) -> Tensor:
        return _ops.repeat_interleave(self, repeats, dim)

    def tril(self, diagonal: int = 0) -> Tensor:
        return _ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return _ops.triu(self, diagonal)

    def index_select(self, dim: int, index: Any) -> Tensor:
        return _ops.index_select(self, dim, index)

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        return _ops.narrow(self, dim, start, length)

    def clone(self) -> Tensor:
        return _ops.clone(self)

    def contiguous(self) -> Tensor:
        return self

    # ------------------------------------------------------------------ dtypes, devices
    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """This tensor on another device and/or of another dtype; self when it already is.

        As PyTorch: ``x.to("cuda")``, ``x.to(cr.float64)``, ``x.to("cuda", cr.float16)``,
        ``x.to(device=..., dtype=...)``, ``x.to(other)`` (other's device and dtype).
        Differentiable: the gradient flows back to the source device and dtype.
        """
        # other tensor: its device and dtype
        args = tuple(
            v for a in args for v in ((a.device, a.dtype) if isinstance(a, Tensor) else (a,))
        )
        device, dtype = parse_to_args(args, kwargs)
        out = self
        if dtype is not None:
            out = _ops.cast(out, dtype)
        if device is not None:
            out = _ops.to_device(out, device)
        return out

    def astype(self, dtype: Any) -> Tensor:
        """A tensor of ``dtype`` (self if it already is); differentiable for floats."""
        return _ops.cast(self, dtype)

    def cpu(self) -> Tensor:
        """This tensor in host memory (self if it is there already)."""
        return _ops.to_device(self, CPU)

    def cuda(self, device: Any = None) -> Tensor:
        """This tensor on a GPU: ``device`` an index or a device, default the current GPU."""
        if device is None or isinstance(device, int):
            return _ops.to_device(self, Device("cuda", device))
        target = Device(device)
        if target.type != "cuda":
            raise ValueError(f"cuda({device!r}): not a GPU; use .to({str(target)!r})")
        return _ops.to_device(self, target)

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
