"""Every primitive on every device: the same values and gradients as on the CPU.

Each test takes the ``device`` fixture (tests/conftest.py): ``cpu``; ``fake-cuda``, the
NumPy stand-in for CuPy that refuses NumPy functions, host arrays mixed into device ops
and NumPy-only names (so any op that still calls NumPy directly fails here, on a machine
without a GPU); and ``cuda`` on a real GPU (skipped without one).

The cases are drawn from the spec table (``op_specs.SPECS``) with a fixed seed, two per
primitive: forward values and first- and second-order gradients must equal the CPU's in
float64 (1e-12), stay on the device, and cost no host read (``fake_cupy.SYNCS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_specs import SPECS, graph_ops

import chainrule as cr
import fake_cupy
from chainrule.autograd.function import PRIMITIVES

OPS_PRIMITIVES = sorted(
    name for name, fn in PRIMITIVES.items() if fn.__module__.startswith("chainrule.ops")
)
TOL = {"rtol": 1e-12, "atol": 1e-12}
# Two fixed examples per primitive; the fixture is entered once per test, which is right.
TWO_FIXED = settings(
    max_examples=2,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _host(t: cr.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _on(values: Any, device: str, **kwargs: Any) -> cr.Tensor:
    """A leaf tensor with ``values`` (dtype kept) on ``device``."""
    return cr.Tensor(np.asarray(values), device=device, **kwargs)


def _run(case: Any, device: str, create_graph: bool) -> tuple[cr.Tensor, list[Any]]:
    """``case.cr_fn`` on leaves placed on ``device``, and its VJP with a fixed seed."""
    leaves = [_on(x, device, requires_grad=True) for x in case.inputs]
    out = case.cr_fn(*leaves)
    seed = np.random.default_rng(7).standard_normal(out.shape)
    grads = cr.autograd.grad(
        out,
        leaves,
        [cr.Tensor(seed, dtype=out.dtype, device=out.device)],
        create_graph=create_graph,
        allow_unused=True,
    )
    return out, list(grads)


def _expected_output_device(name: str, device: str) -> str:
    # The spec of ToDevice moves its input to the CPU; every other op stays where it is.
    return "cpu" if name == "ToDevice" else device


def test_every_ops_primitive_is_covered() -> None:
    assert sorted(SPECS) == OPS_PRIMITIVES


@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@TWO_FIXED
@given(data=st.data())
def test_primitive_matches_cpu_on_device(name: str, device: str, data: st.DataObject) -> None:
    case = data.draw(SPECS[name], label="case")
    ref_out, ref_grads = _run(case, "cpu", create_graph=False)
    fake_cupy.SYNCS[0] = 0
    out, grads = _run(case, device, create_graph=False)
    if name != "ToDevice":  # a copy to the host is a read by definition
        assert fake_cupy.SYNCS[0] == 0, f"{case.label}: the op read device values on the host"
    assert name in graph_ops(out), f"{case.label} did not go through {name}"
    assert str(out.device.type) == _expected_output_device(name, device).split(":")[0]
    assert out.dtype == ref_out.dtype
    np.testing.assert_allclose(_host(out), _host(ref_out), **TOL, err_msg=case.label)
    for g, ref in zip(grads, ref_grads):
        assert (g is None) == (ref is None), case.label
        if g is not None:
            assert g.device.type == device, f"{case.label}: gradient left the device"
            assert g.dtype == ref.dtype
            np.testing.assert_allclose(_host(g), _host(ref), **TOL, err_msg=case.label)


@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@TWO_FIXED
@given(data=st.data())
def test_primitive_backward_graph_on_device(name: str, device: str, data: st.DataObject) -> None:
    """create_graph=True runs each op's backward_graph (Tensor ops) on the device: the
    gradients equal the CPU's, stay on the device and can be differentiated again."""
    case = data.draw(SPECS[name], label="case")
    _, ref_grads = _run(case, "cpu", create_graph=True)
    _, grads = _run(case, device, create_graph=True)
    recorded = []
    for g, ref in zip(grads, ref_grads):
        if g is None:
            continue
        assert g.device.type == device, f"{case.label}: recorded gradient left the device"
        np.testing.assert_allclose(_host(g), _host(ref), **TOL, err_msg=case.label)
        if g.requires_grad:
            recorded.append((g * g).sum())
    if recorded:  # a second backward, through the recorded gradients, on the device
        sum(recorded[1:], recorded[0]).backward()


# --------------------------------------------------------------------------- devices mixed
MIXED = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "pow": lambda a, b: a**b,
    "maximum": cr.maximum,
    "matmul": lambda a, b: a @ b,
    "cat": lambda a, b: cr.cat([a, b]),
    "stack": lambda a, b: cr.stack([a, b]),
    "where": lambda a, b: cr.where(a > 0, a, b),
}


@pytest.mark.parametrize("op", sorted(MIXED))
@pytest.mark.parametrize("cpu_first", [True, False])
def test_mixing_cpu_and_cuda_names_both_devices(fake_cuda: str, op: str, cpu_first: bool) -> None:
    a = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = _on([[0.5, 1.0], [1.5, 2.0]], fake_cuda)
    args = (a, b) if cpu_first else (b, a)
    with pytest.raises(cr.DeviceError, match=r"cpu and cuda:0"):
        MIXED[op](*args)


def test_in_place_arithmetic_with_another_device_raises(fake_cuda: str) -> None:
    x = _on([1.0, 2.0], fake_cuda)
    with pytest.raises(cr.DeviceError, match=r"cuda:0.*cpu"):
        x += cr.tensor([1.0, 1.0])
    x += np.float64(1.0)  # numbers (and host scalars) are fine
    np.testing.assert_array_equal(_host(x), [2.0, 3.0])


# --------------------------------------------------------------------------- moving
def test_to_device_is_differentiable_both_ways(fake_cuda: str) -> None:
    x = cr.tensor([1.0, -2.0, 3.0], dtype=cr.float64, requires_grad=True)
    y = x.to(fake_cuda)
    assert y.device.type == "cuda" and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad is not None and x.grad.device.type == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])

    d = _on([1.0, -2.0, 3.0], fake_cuda, requires_grad=True)
    h = d.cpu()
    assert h.device.type == "cpu"
    (h**3).sum().backward()
    assert d.grad is not None and d.grad.device.type == "cuda"
    np.testing.assert_array_equal(_host(d.grad), [3.0, 12.0, 27.0])


def test_to_device_second_order_returns_to_the_source(fake_cuda: str) -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad((x.to(fake_cuda) ** 3).sum(), x, create_graph=True)
    assert g.device.type == "cpu"
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 12.0])
    (h,) = cr.autograd.grad(g.sum(), x)
    assert h.device.type == "cpu"
    np.testing.assert_allclose(h.numpy(), [6.0, 12.0])


# --------------------------------------------------------------------------- indexing
def test_host_indices_move_to_the_data_device(device: str) -> None:
    values = np.arange(12.0).reshape(3, 4)
    x = _on(values, device, requires_grad=True)
    rows = np.array([2, 0, 2])
    picked = x[rows] + x[[1, 1]].sum(0) + x[cr.tensor([True, False, True])].sum(0)
    picked.sum().backward()
    assert picked.device.type == device and x.grad.device.type == device
    expected = values[rows] + values[[1, 1]].sum(0) + values[[0, 2]].sum(0)
    np.testing.assert_array_equal(_host(picked), expected)
    # Over the 3 rows of the sum: row 2 picked twice and row 0 once by `rows`, plus 3 each
    # from the mask; row 1 twice by the list, 3 times over.
    np.testing.assert_array_equal(_host(x.grad), np.repeat([[4.0], [6.0], [5.0]], 4, axis=1))


def test_device_index_gathers_and_scatters_without_host_reads(device: str) -> None:
    x = _on(np.arange(6.0), device, requires_grad=True)
    index = _on(np.array([5, 1, 5]), device)
    fake_cupy.SYNCS[0] = 0
    y = x[index]
    (y * y).sum().backward()
    assert fake_cupy.SYNCS[0] == 0
    assert y.device.type == device and x.grad.device.type == device
    np.testing.assert_array_equal(_host(y), [5.0, 1.0, 5.0])
    np.testing.assert_array_equal(_host(x.grad), [0.0, 2.0, 0.0, 0.0, 0.0, 20.0])


def test_item_assignment_and_copy_across_devices(device: str) -> None:
    x = _on(np.zeros((2, 3), np.float32), device)
    x[np.array([0, 0, 1]), 1] = 5.0
    x[cr.tensor([False, True])] += 1.0
    x.copy_(x + _on(np.ones((2, 3), np.float32), device))
    y = _on(np.zeros((2, 3), np.float32), device)
    y.copy_(cr.tensor(np.full((2, 3), 2.0, dtype=np.float32)))  # from the host
    assert x.device.type == device and y.device.type == device
    np.testing.assert_array_equal(_host(x), [[1.0, 6.0, 1.0], [2.0, 7.0, 2.0]])
    np.testing.assert_array_equal(_host(y), np.full((2, 3), 2.0))


def test_device_index_into_cpu_tensor_raises(fake_cuda: str) -> None:
    x = cr.tensor([1.0, 2.0, 3.0])
    with pytest.raises(cr.DeviceError, match="cpu"):
        x[_on([0, 2], fake_cuda)]
