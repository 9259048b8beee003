"""Helpers of the nn device tests: run a module (or a loss) on the CPU and on a device
from the same seed and inputs, and compare outputs and every gradient on the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn

TOL = {"rtol": 1e-12, "atol": 1e-12}  # float64: the same formulas give the same numbers


def on(device: str, array: Any, requires_grad: bool = False) -> cr.Tensor:
    """``array`` as a tensor on ``device`` (a leaf that requires grad when asked)."""
    return cr.Tensor(np.array(array), device=device, requires_grad=requires_grad)  # a copy


def host(t: cr.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def assert_on(device: str, *tensors: cr.Tensor) -> None:
    for t in tensors:
        assert t.device.type == cr.device(device).type, f"{t.device} is not {device}"


def assert_close(actual: cr.Tensor, expected: cr.Tensor, what: str) -> None:
    np.testing.assert_allclose(host(actual), host(expected), err_msg=what, **TOL)


def run_pair(
    device: str,
    build: Callable[[], nn.Module],
    inputs: list[np.ndarray],
    grad_inputs: bool = True,
    seed: int = 0,
) -> tuple[nn.Module, nn.Module]:
    """Build the module twice from ``seed`` (one moved to ``device``), run forward and
    backward on both with the same inputs and the same random output weights, and assert
    that outputs and every gradient match and stay on the device. Returns both modules.
    """
    cr.manual_seed(seed)
    cpu_module = build()
    cr.manual_seed(seed)
    dev_module = build().to(device)
    results = []
    for module, where in ((cpu_module, "cpu"), (dev_module, device)):
        xs = [on(where, a, grad_inputs and a.dtype.kind == "f") for a in inputs]
        out = module(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        first = outs[0]
        weights = np.random.default_rng(1).standard_normal(first.shape)
        (first * on(where, weights.astype(first.data.dtype))).sum().backward()
        results.append((xs, outs, module))
    (cpu_xs, cpu_outs, _), (dev_xs, dev_outs, _) = results
    for i, (a, b) in enumerate(zip(dev_outs, cpu_outs, strict=True)):
        assert_on(device, a)
        if a.dtype.kind == "f":
            assert_close(a, b, f"output {i}")
        else:
            np.testing.assert_array_equal(host(a), host(b), err_msg=f"output {i}")
    for i, (a, b) in enumerate(zip(dev_xs, cpu_xs, strict=True)):
        if b.grad is not None:
            assert a.grad is not None
            assert_on(device, a.grad)
            assert_close(a.grad, b.grad, f"gradient of input {i}")
    cpu_params = dict(cpu_module.named_parameters())
    for name, param in dev_module.named_parameters():
        assert_on(device, param, param.grad)
        assert_close(param.grad, cpu_params[name].grad, f"gradient of {name}")
    return cpu_module, dev_module
