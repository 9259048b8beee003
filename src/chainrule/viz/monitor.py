"""``Monitor``: gradient flow and activation statistics of a model while it trains.

Attach it to a model; it samples one training step in ``every`` and records, per layer:

- the gradient norm ‖∂L/∂W‖ of every parameter, and its update/weight ratio
  ‖W_after − W_before‖ / ‖W_before‖ (how far one optimiser step moves it; ~1e-3 is the
  folklore healthy value);
- the mean and standard deviation of every leaf module's output, the fraction of dead
  ReLUs (units that output 0 for the whole batch) and of saturated sigmoid/tanh units
  (outputs where the local derivative is below a tenth of its maximum: σ' < 0.025,
  tanh' < 0.1), where gradients vanish.

It flags vanishing gradients (a layer whose weight gradient is ``vanishing`` times the
largest layer's, or less) and exploding ones (a norm above ``exploding``, or not finite)
with a ``GradientFlowWarning`` that names the layers and the step.

How it attaches, and why it costs nothing when it is not attached: a forward pre-hook on
the model counts the training steps (forwards in training mode with gradients enabled),
forward hooks on the leaf modules read their outputs, and hooks on the parameters read
their gradients during backward. On the steps it skips, each hook returns at once; remove
them all with ``monitor.remove()`` (or use it as a context manager).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from chainrule.autograd import is_grad_enabled
from chainrule.nn.activation import ReLU, Sigmoid, Tanh
from chainrule.nn.module import Module
from chainrule.tensor import Tensor


class GradientFlowWarning(UserWarning):
    """Gradients vanish or explode in some layers (see ``Monitor``)."""


@dataclass
class GradientRecord:
    """One parameter at one sampled step."""

    step: int
    name: str  # the parameter's dotted name, e.g. "model.0.weight"
    grad_norm: float
    weight_norm: float
    update_ratio: float | None = None  # filled in once the optimiser step has happened


@dataclass
class ActivationRecord:
    """One leaf module's output at one sampled step."""

    step: int
    name: str  # the module's dotted path, e.g. "model.1"
    kind: str  # the module's class name
    mean: float
    std: float
    dead_fraction: float | None = None  # ReLU only
    saturated_fraction: float | None = None  # Sigmoid and Tanh only


@dataclass
class Flag:
    """A vanishing or exploding gradient seen at one step, in one layer."""

    step: int
    kind: str  # "vanishing" or "exploding"
    layer: str  # the parameter's dotted name
    grad_norm: float
    reference: float  # the largest weight-gradient norm of that step


def _norm(array: Any) -> float:
    """‖a‖₂ by one BLAS dot product (no squared copy): the monitor's hot spot."""
    flat = array.reshape(-1)
    return float(math.sqrt(float(flat @ flat)))


class Monitor:
    """Record gradient flow and activation statistics of ``model`` every ``every`` steps.

    Args:
        model: the model to watch.
        every: sample one training step in ``every`` (step 0 is always sampled).
        name: the model's name in the layer names (``model.0.weight``).
        vanishing: flag a weight whose gradient norm is at most this fraction of the
            largest weight-gradient norm of the same step.
        exploding: flag a gradient norm above this (or not finite).
        warn: issue a ``GradientFlowWarning`` when a flag is raised (each kind warns again
            only when the set of flagged layers changes).
        histogram_size: how many output values per module to keep for histograms.

    Attributes:
        step: the number of training steps seen.
        gradients, activations, flags: the records (lists of ``GradientRecord``,
            ``ActivationRecord``, ``Flag``).
        samples: module path → a sample of its outputs at the last sampled step.

    Example:
        >>> import chainrule as cr
        >>> from chainrule import nn, viz
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> monitor = viz.Monitor(model, every=1)
        >>> model(cr.randn(16, 4)).sum().backward()
        >>> sorted(monitor.grad_norms())
        ['model.0.bias', 'model.0.weight', 'model.2.bias', 'model.2.weight']
    """

    def __init__(
        self,
        model: Module,
        every: int = 50,
        name: str = "model",
        vanishing: float = 1e-3,
        exploding: float = 1e3,
        warn: bool = True,
        histogram_size: int = 4096,
    ) -> None:
        if every < 1:
            raise ValueError(f"Monitor: every must be at least 1, got {every}")
        self.model = model
        self.every = int(every)
        self.vanishing = vanishing
        self.exploding = exploding
        self.warn = warn
        self.histogram_size = histogram_size
        self.step = 0
        self.gradients: list[GradientRecord] = []
        self.activations: list[ActivationRecord] = []
        self.flags: list[Flag] = []
        self.samples: dict[str, Any] = {}
        self.layer_types: dict[str, str] = {}

        self._sampled: int | None = None  # the step being recorded now, if any
        self._pending: dict[str, GradientRecord] = {}  # gradients of the sampled step
        self._before: dict[str, Any] = {}  # weights before the optimiser step
        self._grad_sums: dict[str, Any] = {}  # gradients of the sampled step so far
        self._checked: int | None = None
        self._warned: dict[str, frozenset[str]] = {}
        self._handles: list[Any] = [model.register_forward_pre_hook(self._on_forward)]
        self._params: dict[str, Tensor] = {}
        for path, module in model.named_modules(name):
            self.layer_types[path] = type(module).__name__
            if not any(True for _ in module.children()):
                self._handles.append(module.register_forward_hook(self._activation_hook(path)))
        for pname, param in model.named_parameters(name):
            if param.requires_grad:
                self._params[pname] = param
                self._handles.append(param.register_hook(self._gradient_hook(pname, param)))

    # ------------------------------------------------------------------------ lifecycle
    def remove(self) -> None:
        """Finish the last sampled step and detach every hook."""
        self.finish()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def finish(self) -> None:
        """Complete the sampled step now: update ratios and the vanishing/exploding check.

        Called by itself at the next forward; call it after the last step to see it.
        """
        self._check()
        for pname, before in self._before.items():
            record = self._pending.get(pname)
            if record is not None:
                change = _norm(self._params[pname].data - before)
                record.update_ratio = change / record.weight_norm if record.weight_norm else 0.0
        self._before.clear()
        self._grad_sums.clear()
        self._pending.clear()

    # ---------------------------------------------------------------------------- hooks
    def _on_forward(self, module: Module, args: tuple[Any, ...]) -> None:
        if self._pending:
            self.finish()  # the optimiser step of the sampled step is done by now
        if not (module.training and is_grad_enabled()):
            self._sampled = None
            return
        self._sampled = self.step if self.step % self.every == 0 else None
        self.step += 1

    def _activation_hook(self, path: str) -> Any:
        def hook(module: Module, args: tuple[Any, ...], output: Any) -> None:
            if self._sampled is None or not isinstance(output, Tensor):
                return
            self._record_activation(path, module, output.data)

        return hook

    def _gradient_hook(self, pname: str, param: Tensor) -> Any:
        def hook(grad: Tensor) -> None:
            if self._sampled is None:
                return
            record = self._pending.get(pname)
            if record is not None:  # another backward in the same step: gradients add up
                self._grad_sums[pname] = self._grad_sums[pname] + grad.data
                record.grad_norm = _norm(self._grad_sums[pname])
                return
            weight = param.data
            record = GradientRecord(self._sampled, pname, _norm(grad.data), _norm(weight))
            self._pending[pname] = record
            self.gradients.append(record)
            self._grad_sums[pname] = grad.data.copy()
            self._before[pname] = weight.copy()

        return hook

    # ------------------------------------------------------------------------- records
    def _record_activation(self, path: str, module: Module, y: Any) -> None:
        y64 = y  # NumPy's pairwise sums keep float32 statistics accurate enough here
        record = ActivationRecord(
            self._sampled or 0, path, type(module).__name__, float(y64.mean()), float(y64.std())
        )
        flat = y64.reshape(y64.shape[0], -1) if y64.ndim > 1 else y64.reshape(1, -1)
        if isinstance(module, ReLU):
            # A dead unit outputs 0 for every example of the batch.
            record.dead_fraction = float((flat <= 0).all(axis=0).mean())
        elif isinstance(module, Sigmoid):
            record.saturated_fraction = float((y64 * (1 - y64) < 0.025).mean())
        elif isinstance(module, Tanh):
            record.saturated_fraction = float((1 - y64 * y64 < 0.1).mean())
        self.activations.append(record)
        values = y64.reshape(-1)
        if values.size > self.histogram_size:
            values = values[:: math.ceil(values.size / self.histogram_size)]
        self.samples[path] = values.copy()

    def _check(self) -> None:
        """Flag the weights of the sampled step whose gradients vanish or explode."""
        weights = [r for r in self._pending.values() if self._params[r.name].ndim >= 2]
        if not weights or self._checked == weights[0].step:
            return
        step = weights[0].step
        self._checked = step
        order = {name: i for i, name in enumerate(self._params)}
        weights.sort(key=lambda r: order[r.name])  # first layer first (backward runs last first)
        top = max(weights, key=lambda r: r.grad_norm)
        reference = top.grad_norm
        found: dict[str, list[GradientRecord]] = {"vanishing": [], "exploding": []}
        for r in weights:
            if not math.isfinite(r.grad_norm) or r.grad_norm > self.exploding:
                found["exploding"].append(r)
            elif r.grad_norm <= self.vanishing * reference:
                found["vanishing"].append(r)
        for kind, records in found.items():
            for r in records:
                self.flags.append(Flag(step, kind, r.name, r.grad_norm, reference))
            layers = frozenset(r.name for r in records)
            if records and self.warn and self._warned.get(kind) != layers:
                self._warned[kind] = layers
                message = self._message(kind, step, records, top)
                warnings.warn(message, GradientFlowWarning, stacklevel=2)

    def _message(
        self, kind: str, step: int, records: list[GradientRecord], top: GradientRecord
    ) -> str:
        def layer(r: GradientRecord) -> str:
            owner = r.name.rpartition(".")[0]
            return f"{r.name} ({self.layer_types.get(owner, '?')}) {r.grad_norm:.2g}"

        shown = ", ".join(layer(r) for r in records[:4])
        more = f" and {len(records) - 4} more" if len(records) > 4 else ""
        if kind == "vanishing":
            return (
                f"vanishing gradients at step {step}: {len(records)} layer(s) get gradient "
                f"norms at most {self.vanishing:g} times the largest, {layer(top)}: "
                f"{shown}{more}. These layers barely learn; ReLU activations with Kaiming "
                f"initialisation keep gradients at one scale through depth."
            )
        return (
            f"exploding gradients at step {step}: {shown}{more} (above {self.exploding:g} or "
            f"not finite). Lower the learning rate, check the initialisation's scale, or clip "
            f"gradients."
        )

    # ------------------------------------------------------------------------- queries
    def grad_norms(self, step: int | None = None) -> dict[str, float]:
        """Parameter name → gradient norm at ``step`` (default: the last sampled step)."""
        self._check()
        if not self.gradients:
            return {}
        step = self.gradients[-1].step if step is None else step
        return {r.name: r.grad_norm for r in self.gradients if r.step == step}

    def weight_names(self) -> list[str]:
        """The weight matrices (parameters with 2 or more dims), in model order: the
        first layer first."""
        return [name for name, p in self._params.items() if p.ndim >= 2]

    def steps(self) -> list[int]:
        """The sampled steps, in order."""
        return sorted({r.step for r in self.gradients})
