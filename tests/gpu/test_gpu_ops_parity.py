"""Every primitive of ``chainrule.ops`` on device "cuda" against PyTorch CUDA (GPU only).

The cases come from the spec table (``tests/ops/op_specs.py``), a few per primitive drawn
with a fixed seed (Hypothesis ``derandomize``): forward values, output dtype and every
input gradient under a random upstream gradient, float32 to 1e-5 and float64 to 1e-10.
Where a case's torch side builds CPU-only constants (index tensors) it runs on torch's CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpu_support import assert_close, host, skip_without_gpu, torch_device

skip_without_gpu(fake_ok=True)
torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "autograd"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from op_specs import SPECS  # noqa: E402
from test_primitives_gradcheck import OPS_PRIMITIVES  # noqa: E402

import chainrule as cr  # noqa: E402


def _torch_side(case: Any, arrays: list[np.ndarray], g_seed: int) -> tuple[Any, list[Any]]:
    """torch's output and input gradients, on CUDA where the case's torch code allows."""
    for device in dict.fromkeys((torch_device(torch), "cpu")):
        inputs = [torch.tensor(a, device=device, requires_grad=True) for a in arrays]
        try:
            out = case.torch_fn(*inputs)
            upstream = np.random.default_rng(g_seed).standard_normal(tuple(out.shape))
            out.backward(torch.tensor(upstream.astype(host(out).dtype), device=out.device))
        except RuntimeError as exc:
            if device == "cuda" and "device" in str(exc):
                continue  # a CPU constant inside the case: compare with torch's CPU
            raise
        return out, [t.grad for t in inputs]
    raise AssertionError("unreachable")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", OPS_PRIMITIVES)
@settings(
    max_examples=3,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_primitive_on_cuda_matches_torch(name: str, dtype: Any, data: st.DataObject) -> None:
    case = data.draw(SPECS[name], label="case")
    arrays = [x.astype(dtype) for x in case.inputs]
    ours_in = [cr.Tensor(a, requires_grad=True, device="cuda") for a in arrays]
    ours = case.cr_fn(*ours_in)
    theirs, their_grads = _torch_side(case, arrays, g_seed=11)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), case.label
    assert_close(ours, theirs, dtype, f"{case.label}: forward on cuda")
    upstream = np.random.default_rng(11).standard_normal(tuple(theirs.shape))
    upstream = upstream.astype(host(theirs).dtype)
    ours.backward(gradient=cr.Tensor(upstream, device=ours.device))
    for i, (o, t) in enumerate(zip(ours_in, their_grads)):
        assert o.grad is not None, f"{case.label}: input {i} got no gradient on cuda"
        assert o.grad.is_cuda, f"{case.label}: the gradient of input {i} left the GPU"
        assert_close(o.grad, t, dtype, f"{case.label}: gradient of input {i} on cuda")
