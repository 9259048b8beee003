"""Every primitive of ``chainrule.ops`` against PyTorch: forward values, output dtype and
every input gradient under a random upstream gradient, in float64 and float32.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))

from op_specs import SPECS  # noqa: E402
from test_primitives_gradcheck import OPS_PRIMITIVES  # noqa: E402

import chainrule as cr  # noqa: E402

# (rtol, atol) per dtype: float64 agrees to rounding; float32 to a few ulps.
TOLERANCES = {np.float64: (1e-10, 1e-12), np.float32: (1e-5, 1e-6)}


def _assert_close(ours: Any, theirs: Any, dtype: type, what: str) -> None:
    rtol, atol = TOLERANCES[dtype]
    theirs = theirs.detach().numpy()
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch's {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_primitive_matches_torch(name: str, dtype: type, data: st.DataObject, seed: int) -> None:
    case = data.draw(SPECS[name], label="case")
    arrays = [x.astype(dtype) for x in case.inputs]
    ours_in = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]

    ours = case.cr_fn(*ours_in)
    theirs = case.torch_fn(*theirs_in)
    _assert_close(ours.data, theirs, dtype, f"{case.label}: forward")

    upstream = np.random.default_rng(seed).standard_normal(theirs.shape)
    upstream = upstream.astype(theirs.detach().numpy().dtype)
    ours.backward(gradient=cr.tensor(upstream))
    theirs.backward(gradient=torch.from_numpy(upstream))
    for i, (o, t) in enumerate(zip(ours_in, theirs_in)):
        assert o.grad is not None, f"{case.label}: input {i} got no gradient"
        _assert_close(o.grad.data, t.grad, dtype, f"{case.label}: gradient of input {i}")


@pytest.mark.parametrize("method", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_dim_indices_match_torch(method: str, keepdim: bool) -> None:
    x = np.random.default_rng(0).permutation(24).reshape(2, 3, 4).astype(np.float64)
    for dim in range(-3, 3):
        ours = getattr(cr.tensor(x), method)(dim=dim, keepdim=keepdim)
        theirs = getattr(torch.tensor(x), method)(dim=dim, keepdim=keepdim)
        np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.data, theirs.values.numpy())
        assert ours.indices.dtype == np.int64


@pytest.mark.parametrize(
    "expr",
    [
        lambda f, i: f + i,
        lambda f, i: i * f,
        lambda f, i: f - i,
        lambda f, i: f / i,
        lambda f, i: i / i,
        lambda f, i: i / 2,
        lambda f, i: i + 1.5,
        lambda f, i: f**i,
        lambda f, i: f * np.sqrt(np.float64(2.0)),
        lambda f, i: f.maximum(i) if hasattr(f, "maximum") else torch.maximum(f, i),
    ],
)
def test_int_tensors_mixed_in_keep_torch_dtypes(expr: Any) -> None:
    """Integer tensors (labels, indices) and NumPy scalars do not widen float32 to float64."""
    f, i = np.array([1.5, -2.0, 3.0], np.float32), np.array([1, 2, 3])
    ours = expr(cr.tensor(f), cr.tensor(i))
    theirs = expr(torch.tensor(f), torch.tensor(i))
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


def test_int_tensor_in_a_graph_gives_float32_gradients() -> None:
    w = cr.tensor(np.array([0.5, -1.0, 2.0], np.float32), requires_grad=True)
    counts = cr.tensor(np.array([1, 2, 3]))
    y = (w * counts + counts).sum()
    y.backward()
    assert y.dtype == np.float32 and w.grad is not None and w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.data, [1.0, 2.0, 3.0])
