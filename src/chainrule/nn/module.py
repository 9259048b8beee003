"""``Module``: a piece of a network with its parameters, its sub-modules and a ``forward``.

Parameters (``Parameter``) and sub-modules (``Module``) assigned as attributes are
registered by name, which gives the dotted names of ``named_parameters()`` and
``state_dict()`` (``"0.weight"``, ``"encoder.fc.bias"``) that PyTorch users know.
Registered values also stay ordinary instance attributes, so reading ``self.weight`` in
``forward`` costs a plain attribute lookup.

Calling a module runs ``forward`` through a thin ``__call__``: forward hooks only when
some are registered, and a shape error raised anywhere inside is rewritten, on its way
out, to name the failing module by its dotted path in the outermost model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from chainrule import backend
from chainrule.device import CPU, Device, as_device, parse_to_args
from chainrule.errors import ShapeError
from chainrule.nn.parameter import Parameter
from chainrule.nn.paths import locate
from chainrule.nn.state import IncompatibleKeys, load_state
from chainrule.tensor import Tensor

M = TypeVar("M", bound="Module")


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._hooks = hooks
        self._key = key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class Module:
    """Base class of layers and models.

    Subclasses set their parameters and sub-modules in ``__init__`` (after calling
    ``super().__init__()``) and define ``forward``.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn
        >>> class TwoLayer(nn.Module):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.fc1 = nn.Linear(4, 8)
        ...         self.fc2 = nn.Linear(8, 2)
        ...     def forward(self, x):
        ...         return self.fc2(self.fc1(x).relu())
        >>> [name for name, _ in TwoLayer().named_parameters()]
        ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = {}
        d["_forward_pre_hooks"] = {}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ------------------------------------------------------------------------------ call
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._forward_hooks or self._forward_pre_hooks:
                return self._call_with_hooks(args, kwargs)
            return self.forward(*args, **kwargs)
        except ShapeError as exc:
            locate(self, exc)
            raise

    def _call_with_hooks(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward; a non-None return value
        replaces the output. Returns a handle whose ``remove()`` unregisters it.
        """
        self._forward_hooks[id(hook)] = hook
        return RemovableHandle(self._forward_hooks, id(hook))

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None return value (a
        tuple, or a single value) replaces the positional arguments.
        """
        self._forward_pre_hooks[id(hook)] = hook
        return RemovableHandle(self._forward_pre_hooks, id(hook))

    # ---------------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run; call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to parameter {name!r} of "
                    f"{type(self).__name__}: wrap it as nn.Parameter(...) or assign None"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} to sub-module {name!r} of "
                    f"{type(self).__name__}: assign a Module or None"
                )
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None")
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: entries added by add_module() or
        # register_parameter() under names that are not instance attributes.
        d = self.__dict__
        for registry in ("_parameters", "_modules", "_buffers"):
            entries = d.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        if name in self.__dict__:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a declared but absent parameter) under ``name``."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"register_parameter({name!r}): expected a Parameter or None, "
                f"got {type(param).__name__}"
            )
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not learned (running statistics, a class
        weight); it follows ``to(dtype)`` and, if ``persistent``, is in ``state_dict``.
        """
        _check_name(self, name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (reachable as an attribute unless the class
        already uses the name).
        """
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module of the tree (self first, as ``prefix``), each once, with its
        dotted name.
        """
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
                if child is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Each parameter once (a shared one under its first name), with its dotted name."""
        seen: set[int] = set()
        tree = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in tree:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        tree = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in tree:
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``""`` is self)."""
        module: Module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(
                    f"{type(module).__name__} has no sub-module {part!r} (looking up {target!r})"
                )
            module = child
        return module

    def apply(self: M, fn: Callable[[Module], Any]) -> M:
        """Call ``fn`` on every sub-module (children first) and then on self; returns self.

        Example:
            >>> from chainrule import nn
            >>> def init(m):
            ...     if isinstance(m, nn.Linear):
            ...         nn.init.zeros_(m.bias)
            >>> _ = nn.Sequential(nn.Linear(2, 2)).apply(init)
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -------------------------------------------------------------------------- modes
    def train(self: M, mode: bool = True) -> M:
        """Set training mode (Dropout active) on self and every sub-module."""
        for module in self.modules():
            module.__dict__["training"] = bool(mode)
        return self

    def eval(self: M) -> M:
        """Set evaluation mode (Dropout is the identity); same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self: M, requires_grad: bool = True) -> M:
        """Freeze (False) or unfreeze every parameter."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (to None by default, as PyTorch 2)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def to(self: M, *args: Any, **kwargs: Any) -> M:
        """Move and/or convert every parameter, gradient and buffer in place; returns self.

        As PyTorch: ``model.to("cuda")``, ``model.to(cr.float64)``,
        ``model.to("cuda", cr.float16)``, ``model.to(device=..., dtype=...)``,
        ``model.to(tensor)`` (the tensor's device and dtype). A dtype converts only the
        floating-point tensors (``num_batches_tracked`` stays int64); a device moves all.
        The Parameter objects (and their ``.grad`` tensors) stay the same objects, their
        ``.data`` replaced, so an optimiser made before ``to`` keeps working.

        Raises:
            TypeError: the dtype is not a floating-point dtype.

        Example:
            >>> import chainrule as cr
            >>> from chainrule import nn
            >>> layer = nn.Linear(2, 2)
            >>> w = layer.weight
            >>> layer.to(cr.float64).weight is w, w.dtype
            (True, dtype('float64'))
        """
        args = tuple(
            v for a in args for v in ((a.device, a.dtype) if isinstance(a, Tensor) else (a,))
        )
        device, dtype = parse_to_args(args, dict(kwargs))
        target = None
        if dtype is not None:
            target = backend.DType(dtype)
            if target.kind != "f":
                raise TypeError(
                    f"{type(self).__name__}.to({dtype!r}): modules convert only to a "
                    f"floating-point dtype (cr.float32, cr.float64, cr.float16)"
                )
        for tensor in [*self.parameters(), *self.buffers()]:
            _move(tensor, device, target)
            if tensor.grad is not None:
                _move(tensor.grad, device, target)
        return self

    def cuda(self: M, device: Any = None) -> M:
        """``to`` a GPU: ``device`` an index or a device, default the current GPU."""
        if device is None or isinstance(device, int):
            return self.to(Device("cuda", device))
        target = as_device(device)
        if target.type != "cuda":
            raise ValueError(f"cuda({device!r}): not a GPU; use .to({str(target)!r})")
        return self.to(target)

    def cpu(self: M) -> M:
        """``to("cpu")``: every parameter, gradient and buffer into host memory."""
        return self.to(CPU)

    def float(self: M) -> M:
        return self.to("float32")

    def double(self: M) -> M:
        return self.to("float64")

    # --------------------------------------------------------------------- state dicts
    def state_dict(self, prefix: str = "") -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, as detached tensors that
        share memory with the module (save them with ``cr.save``).
        """
        state: OrderedDict[str, Tensor] = OrderedDict()
        for module_name, module in self.named_modules():
            base = f"{prefix}{module_name}." if module_name else prefix
            for name, param in module._parameters.items():
                if param is not None:
                    state[base + name] = param.detach()
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent:
                    state[base + name] = buf.detach()
        return state

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers, in place.

        Args:
            state_dict: name -> Tensor or array, as from ``state_dict()`` or ``cr.load``.
            strict: a missing or unexpected key is an error. A shape mismatch is always
                an error.

        Returns:
            ``(missing_keys, unexpected_keys)``.

        Raises:
            KeyError: strict and some keys are missing or unexpected (all are listed).
            ShapeError: a value's shape differs from the parameter's (all are listed).
        """
        return load_state(self, state_dict, strict)

    # -------------------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def short_repr(self) -> str:
        """One line: the class and its settings, without sub-modules."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._parameters, *self._modules, *self._buffers})


def _move(tensor: Tensor, device: Device | None, dtype: Any) -> None:
    """Replace ``tensor.data`` by its copy on ``device`` and/or in ``dtype`` (floats only),
    in place, bumping the version when it changed."""
    data = tensor.data
    if dtype is not None and data.dtype.kind == "f" and data.dtype != dtype:
        data = data.astype(dtype)
    if device is not None:
        data = backend.to_device(data, device)
    if data is not tensor.data:
        tensor.data = data
        tensor.increment_version()


def _check_name(module: Module, name: str) -> None:
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(
            f"{type(module).__name__}: a parameter, buffer or module name must be "
            f"a non-empty string without '.', got {name!r}"
        )
