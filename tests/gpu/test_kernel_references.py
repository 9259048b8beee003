"""The NumPy references of the CUDA kernels (the math the GPU suite holds the kernels to)
are right: checked against PyTorch and chainrule's own optimisers on the CPU, and the
kernels' CUDA source compiles (with nvcc, where the CUDA toolkit is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import cuda_kernels, cuda_optim

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_reference_matches_torch(
    reduction: str, smoothing: float, weighted: bool
) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5)) * 3
    t = rng.integers(0, 5, 7)
    t[2] = -100  # ignored row
    w = rng.uniform(0.5, 2.0, 5) if weighted else None
    g = rng.standard_normal(7) if reduction == "none" else 0.7
    loss, grad = cuda_kernels.cross_entropy_reference(x, t, w, -100, reduction, smoothing, g)

    xt = torch.tensor(x, requires_grad=True)
    wt = None if w is None else torch.tensor(w)
    theirs = torch.nn.functional.cross_entropy(
        xt, torch.tensor(t), weight=wt, reduction=reduction, label_smoothing=smoothing
    )
    theirs.backward(torch.as_tensor(g, dtype=torch.float64).expand_as(theirs))
    np.testing.assert_allclose(loss, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_relu_references() -> None:
    x = np.array([[-1.0, 0.0, 2.0, np.nan]])
    b = np.array([0.5, 0.0, -3.0, 0.0])
    np.testing.assert_array_equal(cuda_kernels.bias_relu_reference(x, b), [[0.0, 0.0, 0.0, np.nan]])
    y = np.array([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(cuda_kernels.relu_backward_reference(np.ones(3), y), [0, 1, 1])


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("maximize", [False, True])
def test_adam_reference_matches_chainrule_adam(decoupled: bool, maximize: bool) -> None:
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(10)
    grads = [rng.standard_normal(10) for _ in range(3)]
    p = cr.tensor(w0.copy(), requires_grad=True)
    rule = cr.optim.AdamW if decoupled else cr.optim.Adam
    opt = rule([p], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, maximize=maximize)
    w, m, v = w0.copy(), np.zeros(10), np.zeros(10)
    for step, g in enumerate(grads, 1):
        p.grad = cr.tensor(g)
        opt.step()
        cuda_optim.adam_update_reference(
            w, g, m, v, lr=0.01, step=step, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
            decoupled=decoupled, maximize=maximize,
        )  # fmt: skip
    np.testing.assert_allclose(w, p.data, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_reference_matches_chainrule_sgd(nesterov: bool) -> None:
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(3)]
    p = cr.tensor(w0.copy(), requires_grad=True)
    damp = 0.0 if nesterov else 0.3
    opt = cr.optim.SGD(
        [p], lr=0.1, momentum=0.9, dampening=damp, weight_decay=0.01, nesterov=nesterov
    )
    w, buf = w0.copy(), np.zeros(6)
    for step, g in enumerate(grads, 1):
        p.grad = cr.tensor(g)
        opt.step()
        cuda_optim.sgd_update_reference(
            w, g, buf, lr=0.1, momentum=0.9, dampening=damp, weight_decay=0.01,
            nesterov=nesterov, first=step == 1,
        )  # fmt: skip
    np.testing.assert_allclose(w, p.data, rtol=1e-13, atol=1e-15)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) not installed")
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_cross_entropy_kernel_source_compiles(ctype: str, tmp_path: Path) -> None:
    src = tmp_path / "ce.cu"
    src.write_text(cuda_kernels._CE_FORWARD.replace("scalar_t", ctype))
    result = subprocess.run(
        ["nvcc", "--ptx", "-arch=sm_80", str(src), "-o", str(tmp_path / "ce.ptx")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
