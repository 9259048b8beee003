"""Reverse-mode automatic differentiation: the engine and the tools around it.

- ``Function``: define a differentiable op (forward and backward side by side).
- ``grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``hvp``, ``vhp``, ``backward``:
  gradients on demand, to any order (``create_graph=True``); also reachable as
  ``autograd.functional.*``, as in PyTorch.
- ``gradcheck``, ``gradgradcheck``: compare analytic first and second derivatives with
  finite differences.
- ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``detect_anomaly``: modes.
"""

from chainrule.autograd import functional
from chainrule.autograd.anomaly import detect_anomaly, is_anomaly_enabled
from chainrule.autograd.function import PRIMITIVES, Function
from chainrule.autograd.functional import backward, grad, hessian, hvp, jacobian, jvp, vhp, vjp
from chainrule.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from chainrule.autograd.gradcheck import gradcheck, gradgradcheck

__all__ = [
    "PRIMITIVES",
    "Function",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "hessian",
    "hvp",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "jacobian",
    "jvp",
    "no_grad",
    "set_grad_enabled",
    "vhp",
    "vjp",
]
