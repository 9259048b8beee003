"""The engine and the functional tools on every device (the ``device`` fixture).

Seeds, gradient buffers, the zeros of unused outputs and the leaves' ``.grad`` are made
on the output's device with its array library; on ``fake-cuda`` any NumPy-only call
(``add.at``, ``flags.writeable``…) or a host array slipped into the graph raises. Values
are compared with the CPU's in float64 and known answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
import fake_cupy

TOL = {"rtol": 1e-12, "atol": 1e-12}


def _on(values: Any, device: str, **kwargs: Any) -> cr.Tensor:
    return cr.Tensor(np.asarray(values, dtype=np.float64), device=device, **kwargs)


def _host(t: cr.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _dag(x: cr.Tensor, w: cr.Tensor) -> cr.Tensor:
    """A DAG with fan-out: ``a`` feeds three branches, ``x`` two, ``w`` a matmul and a
    reduction; multi-output MaxDim, broadcasting and indexing take part."""
    a = x @ w
    b = a.exp() * a.sigmoid()
    c = a.tanh() + a[:, :1]  # broadcast back over the columns
    d = x.max(dim=1).values.unsqueeze(1) * a
    return (b + c * d).sum() + (x * x).mean() + w.logsumexp(dim=0).sum()


def test_fan_out_dag_backward_matches_cpu(device: str) -> None:
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((4, 2)) * 0.5
    ref_x, ref_w = _on(xv, "cpu", requires_grad=True), _on(wv, "cpu", requires_grad=True)
    _dag(ref_x, ref_w).backward()
    fake_cupy.SYNCS[0] = 0
    x, w = _on(xv, device, requires_grad=True), _on(wv, device, requires_grad=True)
    loss = _dag(x, w)
    loss.backward()
    assert fake_cupy.SYNCS[0] == 0, "forward + backward read device values on the host"
    assert loss.device.type == device
    for leaf, ref in ((x, ref_x), (w, ref_w)):
        assert leaf.grad is not None and leaf.grad.device.type == device
        assert leaf.grad.dtype == cr.float64
        np.testing.assert_allclose(_host(leaf.grad), _host(ref.grad), **TOL)
    # Gradients accumulate on the device (the second pass adds the same again).
    _dag(x, w).backward()
    np.testing.assert_allclose(_host(x.grad), 2 * _host(ref_x.grad), **TOL)


def test_second_order_on_device(device: str) -> None:
    x = _on([1.0, -2.0, 0.5], device, requires_grad=True)
    w = _on([2.0, 1.0, 3.0], device, requires_grad=True)
    (g,) = cr.autograd.grad((x**3 * w).sum(), x, create_graph=True)  # 3x²w
    assert g.device.type == device and g.requires_grad
    gx, gw = cr.autograd.grad(g.sum(), [x, w])  # 6xw and 3x²
    assert gx.device.type == device and gw.device.type == device
    np.testing.assert_allclose(_host(gx), [12.0, -12.0, 9.0], **TOL)
    np.testing.assert_allclose(_host(gw), [3.0, 12.0, 0.75], **TOL)
    # Tensor.backward(create_graph=True): .grad is a graph on the device.
    y = _on([1.0, 2.0], device, requires_grad=True)
    (y.tanh() * y).sum().backward(create_graph=True)
    assert y.grad is not None and y.grad.device.type == device and y.grad.requires_grad


def test_functional_tools_on_device(device: str) -> None:
    a = np.array([[2.0, 1.0], [0.0, 3.0]])
    x0 = np.array([1.0, -1.0])
    matrix = _on(a, device)

    def quadratic(t: cr.Tensor) -> cr.Tensor:
        return t @ matrix @ t

    def cube(t: cr.Tensor) -> cr.Tensor:
        return t * t * t

    x = _on(x0, device)
    v = _on([1.0, 2.0], device)
    hessian = cr.autograd.hessian(quadratic, x)
    _, hv = cr.autograd.hvp(quadratic, x, v)
    _, vj = cr.autograd.vjp(cube, x, v)
    _, jv = cr.autograd.jvp(cube, x, v)
    jacobian = cr.autograd.jacobian(cube, x)
    jacobian_graph = cr.autograd.jacobian(cube, x, create_graph=True)
    for t in (hessian, hv, vj, jv, jacobian, jacobian_graph):
        assert t.device.type == device
    np.testing.assert_allclose(_host(hessian), a + a.T, **TOL)
    np.testing.assert_allclose(_host(hv), (a + a.T) @ [1.0, 2.0], **TOL)
    np.testing.assert_allclose(_host(vj), 3 * x0**2 * [1.0, 2.0], **TOL)
    np.testing.assert_allclose(_host(jv), 3 * x0**2 * [1.0, 2.0], **TOL)
    np.testing.assert_allclose(_host(jacobian), np.diag(3 * x0**2), **TOL)
    np.testing.assert_allclose(_host(jacobian_graph), np.diag(3 * x0**2), **TOL)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_accepts_device_inputs(device: str, fast_mode: bool) -> None:
    x = _on(np.random.default_rng(1).standard_normal((2, 3)), device, requires_grad=True)

    def fn(t: cr.Tensor) -> cr.Tensor:
        assert t.device.type == device  # the check runs where the inputs are
        return (t.tanh() @ t.T).softmax(-1) * t[:, :2].sum()

    assert cr.autograd.gradcheck(fn, [x], fast_mode=fast_mode)
    assert cr.autograd.gradgradcheck(fn, [x], fast_mode=fast_mode)


def test_gradcheck_catches_a_wrong_vjp_on_device(device: str) -> None:
    class WrongExp(cr.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return ctx.xp.exp(x)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g  # should be g * exp(x)

    x = _on([0.5, 1.0], device, requires_grad=True)
    assert WrongExp.apply(x).device.type == device
    for fast_mode in (False, True):
        assert not cr.autograd.gradcheck(
            WrongExp.apply, [x], raise_exception=False, fast_mode=fast_mode
        )


def test_seeds_are_made_or_moved_on_the_output_device(device: str) -> None:
    x = _on([1.0, 2.0], device, requires_grad=True)
    (x * x).backward(gradient=[1.0, -1.0])  # host data: copied to the output's device
    assert x.grad is not None and x.grad.device.type == device
    np.testing.assert_allclose(_host(x.grad), [2.0, -4.0], **TOL)
    (g,) = cr.autograd.grad(x * 3, x, grad_outputs=[np.array([1.0, 1.0])])
    np.testing.assert_allclose(_host(g), [3.0, 3.0], **TOL)


def test_seed_tensor_on_another_device_raises(fake_cuda: str) -> None:
    x = _on([1.0, 2.0], fake_cuda, requires_grad=True)
    with pytest.raises(cr.DeviceError, match=r"cpu.*cuda:0"):
        (x * x).backward(gradient=cr.tensor([1.0, 1.0], dtype=cr.float64))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # sqrt′(0) = inf, wanted
def test_hooks_and_anomaly_mode_on_device(device: str) -> None:
    x = _on([1.0, 4.0], device, requires_grad=True)
    h = x.sqrt()
    h.register_hook(lambda g: g * 2)
    h.sum().backward()
    assert x.grad is not None and x.grad.device.type == device
    np.testing.assert_allclose(_host(x.grad), [1.0, 0.5], **TOL)
    z = _on([0.0, 1.0], device, requires_grad=True)
    with pytest.raises(cr.AnomalyError, match="SqrtBackward"), cr.autograd.detect_anomaly():
        z.sqrt().sum().backward()
