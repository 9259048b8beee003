"""Reverse-mode automatic differentiation: the engine and the tools around it.

- ``Function``: define a differentiable op (forward and backward side by side).
- ``grad``, ``vjp``, ``jacobian``, ``backward``: gradients on demand.
- ``gradcheck``: compare analytic gradients with finite differences.
- ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``detect_anomaly``: modes.
"""

from chainrule.autograd.anomaly import detect_anomaly, is_anomaly_enabled
from chainrule.autograd.function import PRIMITIVES, Function
from chainrule.autograd.functional import backward, grad, jacobian, vjp
from chainrule.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from chainrule.autograd.gradcheck import gradcheck

__all__ = [
    "PRIMITIVES",
    "Function",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "gradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "jacobian",
    "no_grad",
    "set_grad_enabled",
    "vjp",
]
