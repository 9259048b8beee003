"""``Optimizer``: parameter groups, per-parameter state, and the pieces every rule shares.

An optimizer owns a list of *parameter groups* (dicts holding ``"params"`` and that
group's options, such as ``"lr"``) and a ``state`` dict keyed by parameter (momentum
buffers, moment estimates, step counts). ``step()`` applies the update rule of the
subclass to every parameter that has a gradient; each rule writes into ``param.data``
in place with ``out=`` ufuncs, so a step allocates no arrays after the first one.

Devices: a parameter's state is made on the parameter's device with its array module
(NumPy on the CPU, CuPy on a GPU), and ``step()`` reads no value back to the host, so it
never waits for the GPU. ``state_dict()`` gives host copies (for files) and
``load_state_dict`` puts each entry back on its parameter's device.

Regularisation comes in three kinds, each named for what it does:

* ``weight_decay=λ`` (L2, PyTorch's convention): the gradient becomes ∂C/∂w + λ·w, the
  gradient of C + (λ/2)‖w‖². With the lecture's penalty α‖w‖² this is λ = 2α.
* ``AdamW``'s decoupled decay: w ← (1 − ηλ)·w, applied to the weights and not through the
  adaptive gradient scaling (see ``AdamW`` for when to prefer it).
* ``l1=λ₁`` (L1): a proximal soft-threshold after the gradient step,
  w ← sign(w)·max(|w| − η·λ₁, 0), which sets weights that do not help to exactly zero.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from chainrule import backend
from chainrule.autograd.grad_mode import enable_grad
from chainrule.errors import DeviceError, DTypeError, ShapeError
from chainrule.nn.module import RemovableHandle
from chainrule.optim.hooks import (
    StepHooks,
    StepPostHook,
    StepPreHook,
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from chainrule.optim.kernels import Workspace
from chainrule.optim.options import check_nonnegative
from chainrule.tensor import Tensor

# PyTorch users find the global hooks here: torch.optim.optimizer.register_optimizer_*.
__all__ = [
    "Optimizer",
    "ParamsLike",
    "register_optimizer_step_post_hook",
    "register_optimizer_step_pre_hook",
]

ParamsLike = Iterable[Tensor] | Iterable[tuple[str, Tensor]] | Iterable[dict[str, Any]]

_Step = TypeVar("_Step", bound=Callable[..., Any])


def _with_step_hooks(step: _Step) -> _Step:
    """Wrap a ``step`` method so the registered hooks run around it (see ``optim.hooks``)."""

    @functools.wraps(step)
    def hooked(*args: Any, **kwargs: Any) -> Any:
        return args[0]._step_hooks.call(step, args, kwargs)

    return hooked  # type: ignore[return-value]


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``zero_grad``, checkpoints.

    ``step()`` owns the loop over parameters: for each parameter with a gradient it
    checks the gradient (a Tensor of the parameter's shape, floating point), makes the
    parameter's state on its first step, applies the rule and records the in-place
    change. A subclass sets its defaults, checks a group's options in ``_check_group``
    and writes its rule for one parameter in ``_init_state`` and ``_update``.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs (such as
            ``model.named_parameters()``; the names appear in errors and in
            ``state_dict()``), or of dicts each with a ``"params"`` entry and
            per-group options that override ``defaults`` (e.g. a smaller ``lr`` for a
            pretrained part).
        defaults: the options used where a group gives none.

    Attributes:
        param_groups: list of dicts, one per group: ``"params"`` (list of tensors) and
            every option.
        state: ``{parameter: {name: Tensor or number}}``, filled on the first step.
        defaults: the default options.
    """

    def __init__(self, params: ParamsLike, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._workspace = Workspace()
        self._step_hooks = StepHooks()
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__} takes an iterable of tensors (or of param-group "
                f"dicts), got a single Tensor; pass [tensor] or model.parameters()"
            )
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass with a step of its own still runs the step hooks, as in PyTorch.
        if "step" in cls.__dict__:
            cls.step = _with_step_hooks(cls.__dict__["step"])  # type: ignore[method-assign]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v!r}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {options}")
        return "\n".join([*lines, ")"])

    # --------------------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones take defaults).

        Raises:
            TypeError: an entry of ``"params"`` is not a Tensor.
            DTypeError: a parameter is not floating point.
            ValueError: a parameter does not require grad, is not a leaf, or is already
                in another group; or an option is out of range.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("a param group needs a 'params' entry (a list of tensors)")
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        name = type(self).__name__
        if group["params"] and all(_is_named(p) for p in group["params"]):
            group["param_names"] = [str(n) for n, _ in group["params"]]
            group["params"] = [p for _, p in group["params"]]
        for i, p in enumerate(group["params"]):
            _check_param(name, i, p)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(
                f"{name}: a parameter appears twice (within a group or in two groups); "
                f"each tensor must be in exactly one param group"
            )
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for an option out of range (subclasses extend)."""
        check_nonnegative(type(self).__name__, group, "lr", "weight_decay", "l1")

    # ------------------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter before the next backward.

        Args:
            set_to_none: drop ``.grad`` (the default, as in PyTorch: saves memory and a
                pass over the arrays, and the next backward writes a fresh gradient).
                With False, the existing gradient arrays are filled with zeros in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad.data.fill(0)
                    grad.increment_version()

    @_with_step_hooks
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, by the rule of the subclass.

        The registered step hooks run around it (``register_step_pre_hook``).

        Args:
            closure: a function that zeroes the gradients, recomputes the loss, calls
                ``backward`` and returns the loss; run (with grad mode on) before the
                update.

        Returns:
            The closure's loss, or None without a closure.

        Raises:
            ShapeError: a gradient does not have its parameter's shape.
            DTypeError: a gradient is not floating point.
            TypeError: a ``.grad`` is not a Tensor.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        """The loop every rule shares: check, make state, update, record the change."""
        state = self.state
        init_state, update = self._init_state, self._update
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            w = p.data
            # Cheap tests on the hot path (builtin dtypes are singletons, so `is not` is
            # the common case's answer); the full diagnosis only when one fails.
            if not isinstance(grad, Tensor) or grad.data.shape != w.shape:
                self._reject_grad(p, grad)
            g = grad.data
            if type(g) is not type(w):  # a gradient on another device than its parameter
                self._reject_grad(p, grad)
            if g.dtype is not w.dtype and not backend.is_floating(g.dtype):
                self._reject_grad(p, grad)
            entries = state[p]
            if not entries:
                init_state(entries, w, group)
            update(w, g, entries, group)
            p.increment_version()

    def _init_state(self, state: dict[str, Any], w: Any, group: dict[str, Any]) -> None:
        """Fill the empty ``state`` of a parameter with data ``w`` before its first update."""

    def _update(self, w: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Apply the rule to one parameter: ``w`` (written in place) with gradient ``g``."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def _reject_grad(self, p: Tensor, grad: Any) -> None:
        """Raise the error that says what is wrong with ``p.grad`` and how to fix it."""
        where = f"{type(self).__name__}.step: the gradient of parameter {self._describe(p)}"
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{where} is a {type(grad).__name__}, not a Tensor; assign p.grad a Tensor "
                f"of the parameter's shape and dtype (e.g. cr.tensor(array))"
            )
        grad_device, param_device = grad.device, p.device
        if grad_device != param_device:
            raise DeviceError(
                f"{where} is on {grad_device}, the parameter on {param_device}; a gradient "
                f"must live on its parameter's device: move the model with model.to(device) "
                f"before making the optimizer, or the gradient with .to({str(param_device)!r})"
            )
        if grad.shape != p.shape:
            raise ShapeError(
                f"{where} has shape {grad.shape}, the parameter has shape {p.shape}; a "
                f"gradient must have its parameter's shape: check what set .grad (a "
                f"hook, or an assignment such as p.grad = ...)"
            )
        raise DTypeError(
            f"{where} has dtype {grad.dtype}, the parameter has dtype {p.dtype}; a "
            f"gradient must be floating point: assign p.grad a tensor of dtype {p.dtype}"
        )

    def _describe(self, p: Tensor) -> str:
        """``index ('name') (shape (…))``: the index counts across groups, as in state_dict."""
        index = 0
        for group in self.param_groups:
            for i, q in enumerate(group["params"]):
                if q is p:
                    names = group.get("param_names")
                    label = f" ({names[i]!r})" if names else ""
                    return f"{index}{label}"
                index += 1
        return "?"

    # --------------------------------------------------------------------------- hooks
    def register_step_pre_hook(self, hook: StepPreHook) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)``, run before every ``step()``.

        ``args`` are the positional arguments of the call, the optimizer first (as in
        PyTorch), and ``kwargs`` the keyword ones. The hook may return a new
        ``(args, kwargs)`` for ``step`` to run with, or None to leave them. Hooks run in
        the order they were registered, after the global ones
        (``chainrule.optim.optimizer.register_optimizer_step_pre_hook``).

        Returns:
            A handle whose ``remove()`` unregisters the hook.

        Example:
            >>> import chainrule as cr
            >>> w = cr.tensor([1.0], requires_grad=True)
            >>> opt = cr.optim.SGD([w], lr=0.5)
            >>> seen = []
            >>> handle = opt.register_step_pre_hook(lambda o, a, k: seen.append(w.item()))
            >>> (w * w).sum().backward(); opt.step()
            >>> handle.remove(); opt.step()
            >>> seen, w.item()
            ([1.0], -1.0)
        """
        return self._step_hooks.add_pre(hook)

    def register_step_post_hook(self, hook: StepPostHook) -> RemovableHandle:
        """Register ``hook(optimizer, args, kwargs)``, run after every ``step()``.

        The arguments are those of ``register_step_pre_hook`` (as a pre-hook left them);
        the return value is ignored. Post-hooks run in the order they were registered,
        before the global ones.

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        return self._step_hooks.add_post(hook)

    # ---------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data, with parameters named by their index.

        Returns:
            ``{"state": {index: {name: Tensor or number}}, "param_groups": [{option:
            value, "params": [indices]}]}``, as in PyTorch. Indices count parameters
            across groups in order. Tensors are host (CPU) copies, so training on does
            not change a saved dict, and a GPU's state can be written to a file (this
            waits for the GPU). ``optimizer_state_to_flat`` turns it into safetensors
            form.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for p, entries in self.state.items():
            if id(p) in index and entries:
                state[index[id(p)]] = {
                    k: Tensor(_host_copy(v.data)) if isinstance(v, Tensor) else v
                    for k, v in entries.items()
                }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state saved by ``state_dict`` (or ``optimizer_state_from_flat``).

        The optimizer must hold the same parameters in the same groups as the one that was
        saved. Arrays are copied, cast to each parameter's dtype and put on its device
        (host arrays go to the GPU of a GPU parameter), so training resumed from a loaded
        state is bit-identical to training that was never interrupted.

        Raises:
            ValueError: the number of groups or of parameters in a group differs.
            ShapeError: a saved state array does not have its parameter's shape.
        """
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the saved state has {len(saved_groups)} param "
                f"groups, this optimizer has {len(self.param_groups)}; build the optimizer "
                f"with the same groups as the one that was saved"
            )
        by_index: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} has {len(group['params'])} "
                    f"parameters, the saved group has {len(saved['params'])}"
                )
            by_index.update(zip((int(j) for j in saved["params"]), group["params"]))

        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, entries in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter {key}")
            new_state[p] = {k: _restore_value(name, key, k, v, p) for k, v in entries.items()}

        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = {k: _like(group.get(k), v) for k, v in saved.items() if k != "params"}
            restored["params"] = group["params"]
            self._check_group(restored)
            new_groups.append(restored)
        self.state = new_state
        self.param_groups = new_groups


# ------------------------------------------------------------------------------- helpers
def _check_param(optimizer: str, index: int, p: Any) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(
            f"{optimizer}: parameter {index} is a {type(p).__name__}, not a Tensor; an "
            f"optimizer updates tensors made with requires_grad=True"
        )
    if not backend.is_floating(p.dtype):
        raise DTypeError(
            f"{optimizer}: parameter {index} has dtype {p.dtype}; only floating-point "
            f"tensors can be optimized (use .double() or .float() when making it)"
        )
    # A frozen parameter (requires_grad=False) is accepted, as in PyTorch: it never gets a
    # gradient, so step() leaves it alone, and unfreezing it later needs no new optimizer.
    if not p.is_leaf:
        raise ValueError(
            f"{optimizer}: parameter {index} (shape {p.shape}) is the result of an op, not "
            f"a leaf tensor; optimize the leaf it was computed from"
        )


def _restore_value(optimizer: str, index: Any, name: str, value: Any, p: Tensor) -> Any:
    """A saved state entry as it must live in the optimizer: an owned array of p's dtype."""
    if isinstance(value, Tensor):
        value = value.data
    elif not (isinstance(value, backend.ndarray) or backend.is_device_array(value)):
        return value  # a number, such as a step count
    if value.shape != p.data.shape:
        raise ShapeError(
            f"{optimizer}.load_state_dict: state '{name}' of parameter {index} has shape "
            f"{tuple(value.shape)}, the parameter has shape {p.shape}; the saved state "
            f"belongs to a different model"
        )
    device = backend.device_of(p.data)
    if backend.device_of(value) == device:
        return Tensor(value.astype(p.data.dtype, copy=True))
    # Another device (a host array from a file, for a GPU parameter): the move copies.
    return Tensor(backend.to_device(value.astype(p.data.dtype, copy=False), device))


def _host_copy(array: Any) -> Any:
    """A NumPy copy of ``array`` that training on does not change."""
    host = backend.to_host(array)
    return host.copy() if host is array else host


def _like(current: Any, saved: Any) -> Any:
    # JSON turns tuples (betas) into lists; give back the type the option has now.
    if isinstance(current, tuple) and isinstance(saved, list):
        return tuple(saved)
    return saved


def _is_named(entry: Any) -> bool:
    return (
        isinstance(entry, tuple)
        and len(entry) == 2
        and isinstance(entry[0], str)
        and isinstance(entry[1], Tensor)
    )
