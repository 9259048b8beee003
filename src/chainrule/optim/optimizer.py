"""``Optimizer``: parameter groups, per-parameter state, and the pieces every rule shares.

An optimizer owns a list of *parameter groups* (dicts holding ``"params"`` and that
group's options, such as ``"lr"``) and a ``state`` dict keyed by parameter (momentum
buffers, moment estimates, step counts). ``step()`` applies the update rule of the
subclass to every parameter that has a gradient; each rule writes into ``param.data``
in place with ``out=`` ufuncs, so a step allocates no arrays after the first one.

Regularisation comes in three kinds, each named for what it does:

* ``weight_decay=λ`` (L2, PyTorch's convention): the gradient becomes ∂C/∂w + λ·w, the
  gradient of C + (λ/2)‖w‖². With the lecture's penalty α‖w‖² this is λ = 2α.
* ``AdamW``'s decoupled decay: w ← (1 − ηλ)·w, applied to the weights and not through the
  adaptive gradient scaling (see ``AdamW`` for when to prefer it).
* ``l1=λ₁`` (L1): a proximal soft-threshold after the gradient step,
  w ← sign(w)·max(|w| − η·λ₁, 0), which sets weights that do not help to exactly zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from chainrule import backend
from chainrule.autograd.grad_mode import enable_grad
from chainrule.backend import xp
from chainrule.errors import DTypeError, ShapeError
from chainrule.tensor import Tensor

ParamsLike = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``zero_grad``, checkpoints.

    Subclasses set their defaults, check a group's options in ``_check_group`` and
    update one group in ``_update_group``.

    Args:
        params: an iterable of tensors, or of dicts each with a ``"params"`` entry and
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
        self._workspace = _Workspace()
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
        _check_nonnegative(type(self).__name__, group, "lr", "weight_decay", "l1")

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

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, by the rule of the subclass.

        Args:
            closure: a function that zeroes the gradients, recomputes the loss, calls
                ``backward`` and returns the loss; run (with grad mode on) before the
                update.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update_group")

    # ---------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data, with parameters named by their index.

        Returns:
            ``{"state": {index: {name: Tensor or number}}, "param_groups": [{option:
            value, "params": [indices]}]}``, as in PyTorch. Indices count parameters
            across groups in order. Tensors are copies, so training on does not change
            a saved dict. ``optimizer_state_to_flat`` turns it into safetensors form.
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
                    k: Tensor._wrap(v.data.copy(), False, None, 0) if isinstance(v, Tensor) else v
                    for k, v in entries.items()
                }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state saved by ``state_dict`` (or ``optimizer_state_from_flat``).

        The optimizer must hold the same parameters in the same groups as the one that was
        saved. Arrays are copied and cast to each parameter's dtype, so training resumed
        from a loaded state is bit-identical to training that was never interrupted.

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
class _Workspace:
    """Scratch arrays shared by all parameters, so an update allocates no temporaries.

    ``get(like, slot)`` returns a view of shape ``like.shape`` into a flat buffer kept per
    (dtype, slot) and sized to the largest parameter seen: a few slots cover every rule,
    and the memory is that of the largest parameter, not of all of them.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[Any, int], Any] = {}

    def get(self, like: Any, slot: int) -> Any:
        key = (like.dtype, slot)
        buf = self._buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = xp.empty(like.size, like.dtype)
            self._buffers[key] = buf
        return buf[: like.size].reshape(like.shape)


def effective_grad(w: Any, g: Any, weight_decay: float, maximize: bool, scratch: Any) -> Any:
    """The gradient a rule follows: d = ±∂C/∂w + λ·w (sign − for ``maximize``).

    Returns ``g`` itself when there is nothing to add (no copy); otherwise writes into
    ``scratch`` and returns it.
    """
    if weight_decay != 0:
        xp.multiply(w, weight_decay, out=scratch)
        if maximize:
            xp.subtract(scratch, g, out=scratch)
        else:
            xp.add(scratch, g, out=scratch)
        return scratch
    if maximize:
        return xp.negative(g, out=scratch)
    return g


def soft_threshold_(w: Any, threshold: Any, scratch: Any) -> None:
    """The L1 proximal step, in place: w ← sign(w)·max(|w| − t, 0).

    This is the exact minimiser of ½‖v − w‖² + t‖v‖₁: every weight within t of zero
    becomes exactly 0.0 (its sign may read −0.0), the others move t towards zero. Adding
    λ₁·sign(w) to the gradient instead overshoots zero every step and leaves the weight
    oscillating around it, never exactly 0.

    Args:
        w: the weights (changed in place).
        threshold: t = η·λ₁, a number or an array of w's shape (per-weight step sizes).
        scratch: an array of w's shape to work in.
    """
    xp.abs(w, out=scratch)
    xp.subtract(scratch, threshold, out=scratch)
    xp.maximum(scratch, 0, out=scratch)
    xp.copysign(scratch, w, out=w)


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


def _check_nonnegative(optimizer: str, group: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = group.get(key, 0)
        if not value >= 0:  # also catches NaN
            raise ValueError(f"{optimizer}: {key} must be >= 0, got {key}={value!r}")


def _restore_value(optimizer: str, index: Any, name: str, value: Any, p: Tensor) -> Any:
    """A saved state entry as it must live in the optimizer: an owned array of p's dtype."""
    if isinstance(value, Tensor):
        value = value.data
    elif not isinstance(value, xp.ndarray):
        return value  # a number, such as a step count
    if value.shape != p.data.shape:
        raise ShapeError(
            f"{optimizer}.load_state_dict: state '{name}' of parameter {index} has shape "
            f"{tuple(value.shape)}, the parameter has shape {p.shape}; the saved state "
            f"belongs to a different model"
        )
    return Tensor._wrap(xp.array(value, dtype=p.data.dtype, copy=True), False, None, 0)


def _like(current: Any, saved: Any) -> Any:
    # JSON turns tuples (betas) into lists; give back the type the option has now.
    if isinstance(current, tuple) and isinstance(saved, list):
        return tuple(saved)
    return saved
