"""Every parameter in one flat buffer, and the optimisers' one-launch steps over it (CuPy).

``FlatParams`` puts all parameters of one dtype and device in one contiguous buffer and
their gradients in another, each parameter's ``.data`` and ``.grad`` a view into them.
``FusedAdam`` and ``FusedSGD`` are what ``optim.Adam``/``AdamW``/``SGD`` call for a param
group on the GPU: one kernel (``chainrule.cuda_optim``) per buffer updates every parameter,
and the per-parameter state entries (``exp_avg``…) stay views of the flat state, so
``state_dict`` and ``load_state_dict`` work as before.

Example (on a GPU, inside ``Adam.step``, for one param group):
    >>> if FusedAdam.applies(group, self.state):                    # doctest: +SKIP
    ...     fused = FusedAdam(group["params"], self.state)          # once, then kept
    ...     fused.step(group, self.state, decoupled=False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chainrule import backend
from chainrule.cuda_kernels import FUSED_DTYPES, on_cupy
from chainrule.cuda_optim import adam_update, sgd_update
from chainrule.tensor import Tensor


@dataclass
class FlatBuffer:
    """The parameters of one dtype and device: ``data`` and ``grad`` flat, and each
    parameter's views into them (``data_views[i]``, ``grad_views[i]`` for ``params[i]``)."""

    data: Any
    grad: Any
    params: list[Tensor] = field(default_factory=list)
    data_views: list[Any] = field(default_factory=list)
    grad_views: list[Any] = field(default_factory=list)

    def split(self, flat: Any) -> list[Any]:
        """Views of ``flat`` (an array of ``data``'s size) in the parameters' shapes."""
        views, offset = [], 0
        for view in self.data_views:
            views.append(flat[offset : offset + view.size].reshape(view.shape))
            offset += view.size
        return views


class FlatParams:
    """All parameters in one contiguous buffer per (dtype, device), gradients in another.

    Each parameter's ``.data`` becomes a view into ``buffers[k].data`` (its values are
    copied in once) and its ``.grad`` a view into ``buffers[k].grad`` (zeros, or its
    current gradient), so an update kernel over the buffer updates every parameter.

    The autograd engine may hand a parameter a new ``.grad`` array instead of adding into
    the view; ``gather_grads()`` copies such gradients back into the buffer before the
    update (one copy each; none while the views are kept).

    Args:
        params: the parameters (Tensors); duplicates are kept once.
    """

    def __init__(self, params: Iterable[Tensor]) -> None:
        groups: dict[tuple[Any, Any], list[Tensor]] = {}
        seen: set[int] = set()
        for p in params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            groups.setdefault((p.data.dtype, str(p.device)), []).append(p)
        self.buffers: list[FlatBuffer] = []
        for members in groups.values():
            xp = backend.get_array_module(members[0].data)
            total = sum(int(p.data.size) for p in members)
            dtype = members[0].data.dtype
            buf = FlatBuffer(xp.empty(total, dtype), xp.zeros(total, dtype))
            offset = 0
            for p in members:
                size, shape = int(p.data.size), tuple(p.data.shape)
                data_view = buf.data[offset : offset + size].reshape(shape)
                grad_view = buf.grad[offset : offset + size].reshape(shape)
                data_view[...] = p.data
                if p.grad is not None:
                    grad_view[...] = p.grad.data
                p.data = data_view
                buf.params.append(p)
                buf.data_views.append(data_view)
                buf.grad_views.append(grad_view)
                offset += size
            self.buffers.append(buf)
        self._point_grads()

    def _point_grads(self) -> None:
        for buf in self.buffers:
            for p, view in zip(buf.params, buf.grad_views):
                p.grad = Tensor(view)

    def gather_grads(self) -> None:
        """Copy into the flat buffer each gradient the engine replaced (a parameter that
        got no gradient gets zeros), and point ``.grad`` at the views again."""
        for buf in self.buffers:
            for p, view in zip(buf.params, buf.grad_views):
                g = p.grad
                if g is not None and g.data is view:
                    continue
                if g is None:
                    view.fill(0)
                else:
                    view[...] = g.data
                p.grad = Tensor(view)

    def check_data(self) -> None:
        """Raise if some code replaced a parameter's ``.data`` (the update would miss it)."""
        for buf in self.buffers:
            for i, (p, view) in enumerate(zip(buf.params, buf.data_views)):
                if p.data is not view:
                    raise RuntimeError(
                        f"FlatParams: parameter {i} of shape {tuple(view.shape)} no longer "
                        f"views the flat buffer (its .data was replaced); assign in place "
                        f"(p.data[...] = new) or build FlatParams again"
                    )

    def zero_grad(self) -> None:
        """All gradients to zero: one fill per buffer."""
        for buf in self.buffers:
            buf.grad.fill(0)
        self._point_grads()

    def zeros_like_data(self) -> list[Any]:
        """One zero array per buffer, of its size (optimiser state: Adam's m and v)."""
        out = []
        for buf in self.buffers:
            xp = backend.get_array_module(buf.data)
            out.append(xp.zeros_like(buf.data))
        return out


def _usable(params: list[Tensor], state: Mapping[Tensor, dict[str, Any]]) -> bool:
    """Every parameter on a GPU in a fused dtype, with a gradient, and all at one step."""
    steps = set()
    for p in params:
        if p.grad is None or not on_cupy(p.data) or p.data.dtype not in FUSED_DTYPES:
            return False
        entries = state.get(p)
        steps.add(entries.get("step", 0) if entries else 0)
    return len(steps) == 1


class _FusedRule:
    """The flat buffers of one param group and its flat state arrays."""

    slots: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], state: Mapping[Tensor, dict[str, Any]]) -> None:
        self.params = list(params)
        self.flat = FlatParams(self.params)
        self.slot_arrays = {name: self.flat.zeros_like_data() for name in self.slots}
        self.slot_views: dict[str, list[Any]] = {name: [] for name in self.slots}
        for name in self.slots:
            for buf, array in zip(self.flat.buffers, self.slot_arrays[name]):
                self.slot_views[name].extend(buf.split(array))
        self.order = [p for buf in self.flat.buffers for p in buf.params]
        first = state.get(self.order[0]) if self.order else None
        self.step_count = int(first.get("step", 0)) if first else 0

    def _sync(self, state: Any, slots: tuple[str, ...]) -> None:
        """Point each parameter's state entries ``slots`` at the flat views (copying in
        what an earlier step or ``load_state_dict`` left there), the gradients at the
        buffer."""
        self.flat.check_data()
        self.flat.gather_grads()
        # The step count lives in the state (``load_state_dict`` may have replaced it).
        first = state.get(self.order[0]) if self.order else None
        self.step_count = int(first.get("step", 0)) if first else 0
        for name in slots:
            for p, view in zip(self.order, self.slot_views[name]):
                entries = state[p]
                current = entries.get(name)
                if current is None or current.data is not view:
                    if current is not None:
                        view[...] = current.data
                    entries[name] = Tensor(view)

    def _finish(self, state: Any) -> None:
        for p in self.order:
            state[p]["step"] = self.step_count
            p.increment_version()


class FusedAdam(_FusedRule):
    """Adam or AdamW (``decoupled``) over flat buffers: one launch per buffer.

    The rule is ``optim.Adam``'s (see its docstring) without AMSGrad and L1, which
    ``applies`` leaves to the per-parameter path.
    """

    slots = ("exp_avg", "exp_avg_sq")

    @staticmethod
    def applies(group: Mapping[str, Any], state: Mapping[Tensor, dict[str, Any]]) -> bool:
        """True when this group can take the fused step."""
        if group.get("amsgrad") or group.get("l1"):
            return False
        return _usable(list(group["params"]), state)

    def step(self, group: Mapping[str, Any], state: Any, decoupled: bool) -> None:
        self._sync(state, self.slots)
        self.step_count += 1
        m_all, v_all = self.slot_arrays["exp_avg"], self.slot_arrays["exp_avg_sq"]
        for buf, m, v in zip(self.flat.buffers, m_all, v_all):
            adam_update(
                buf.data, buf.grad, m, v, lr=group["lr"], step=self.step_count,
                betas=tuple(group["betas"]), eps=group["eps"],
                weight_decay=group["weight_decay"], decoupled=decoupled,
                maximize=group["maximize"],
            )  # fmt: skip
        self._finish(state)


class FusedSGD(_FusedRule):
    """SGD with optional momentum over flat buffers: one launch per buffer (no L1)."""

    slots = ("momentum_buffer",)

    @staticmethod
    def applies(group: Mapping[str, Any], state: Mapping[Tensor, dict[str, Any]]) -> bool:
        """True when this group can take the fused step."""
        if group.get("l1"):
            return False
        return _usable(list(group["params"]), state)

    def step(self, group: Mapping[str, Any], state: Any) -> None:
        first = any("momentum_buffer" not in state[p] for p in self.order)
        # Plain SGD keeps no buffer in its state (as optim.SGD): the kernel ignores it.
        self._sync(state, self.slots if group["momentum"] else ())
        self.step_count += 1
        for buf, b in zip(self.flat.buffers, self.slot_arrays["momentum_buffer"]):
            sgd_update(
                buf.data, buf.grad, b, lr=group["lr"], momentum=group["momentum"],
                dampening=group["dampening"], weight_decay=group["weight_decay"],
                nesterov=group["nesterov"], maximize=group["maximize"], first=first,
            )  # fmt: skip
        self._finish(state)


def fused_adam_step(
    cache: dict[int, Any], group: Mapping[str, Any], state: Any, decoupled: bool
) -> bool:
    """``optim.Adam``/``AdamW``'s GPU path for one param group: the fused step if it
    applies (see ``FusedAdam.applies``), keeping the flat buffers in ``cache`` (a dict the
    optimiser owns) between steps. Returns False, doing nothing, when it does not apply."""
    if not FusedAdam.applies(group, state):
        return False
    fused = _cached(cache, group, state, FusedAdam)
    assert isinstance(fused, FusedAdam)
    fused.step(group, state, decoupled)
    return True


def fused_sgd_step(cache: dict[int, Any], group: Mapping[str, Any], state: Any) -> bool:
    """``optim.SGD``'s GPU path for one param group (see ``fused_adam_step``)."""
    if not FusedSGD.applies(group, state):
        return False
    fused = _cached(cache, group, state, FusedSGD)
    assert isinstance(fused, FusedSGD)
    fused.step(group, state)
    return True


def _cached(cache: dict[int, Any], group: Mapping[str, Any], state: Any, kind: type) -> Any:
    """The group's fused rule, made again when its parameters changed."""
    params = list(group["params"])
    fused = cache.get(id(group))
    if fused is None or [id(p) for p in fused.params] != [id(p) for p in params]:
        fused = cache[id(group)] = kind(params, state)
    return fused
