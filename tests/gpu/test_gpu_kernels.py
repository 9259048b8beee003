"""The fused CUDA kernels against their NumPy references and PyTorch CUDA (GPU only):
float32 to 1e-5, float64 to 1e-10."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gpu_support import assert_close, host, skip_without_gpu

skip_without_gpu()

import cupy  # noqa: E402

from chainrule import cuda_flat, cuda_kernels, cuda_optim  # noqa: E402

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("PyTorch here has no CUDA: the torch side needs it", allow_module_level=True)

DTYPES = [np.float32, np.float64]


def _dev(a: np.ndarray) -> Any:
    return cupy.asarray(a)


def _torch(a: np.ndarray, grad: bool = False) -> Any:
    return torch.tensor(a, device="cuda", requires_grad=grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_relu_and_backward(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    xw = rng.standard_normal((300, 70)).astype(dtype)
    b = rng.standard_normal(70).astype(dtype)
    g = rng.standard_normal((300, 70)).astype(dtype)
    y = cuda_kernels.bias_relu_forward(_dev(xw), _dev(b))
    assert y.dtype == dtype
    assert_close(y, cuda_kernels.bias_relu_reference(xw, b), dtype, "bias_relu vs NumPy")
    assert_close(y, torch.relu(_torch(xw) + _torch(b)), dtype, "bias_relu vs torch")
    dx, db = cuda_kernels.relu_bias_backward(_dev(g), y)
    ref_dx = cuda_kernels.relu_backward_reference(g, host(y))
    assert_close(dx, ref_dx, dtype, "relu_backward vs NumPy")
    assert_close(db, ref_dx.sum(0), dtype, "db vs NumPy", scale=10)
    xt, bt = _torch(xw, True), _torch(b, True)
    torch.relu(xt + bt).backward(_torch(g))
    assert_close(dx, xt.grad, dtype, "relu_backward vs torch")
    assert_close(db, bt.grad, dtype, "db vs torch", scale=10)
    inplace = _dev(xw)
    out = cuda_kernels.bias_relu_forward(inplace, _dev(b), out=inplace)
    assert out is inplace
    assert_close(inplace, host(y), dtype, "bias_relu in place")


def test_relu_forward_propagates_nan_as_numpy() -> None:
    x = np.array([-1.0, 0.0, 3.0, np.nan], np.float32)
    np.testing.assert_array_equal(host(cuda_kernels.relu_forward(_dev(x))), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("smoothing", "weighted"), [(0.0, False), (0.1, False), (0.2, True)])
@pytest.mark.parametrize("shape", [(1000, 10), (37, 300)])
def test_cross_entropy(
    dtype: Any, reduction: str, smoothing: float, weighted: bool, shape: tuple[int, int]
) -> None:
    rng = np.random.default_rng(1)
    n, c = shape
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, c, n)
    t[::7] = -100
    w = rng.uniform(0.5, 2.0, c).astype(dtype) if weighted else None
    g = rng.standard_normal(n).astype(dtype) if reduction == "none" else np.asarray(0.5, dtype)
    wd = None if w is None else _dev(w)
    loss, saved = cuda_kernels.cross_entropy_forward(
        _dev(x), _dev(t), wd, -100, reduction, smoothing
    )
    dx = cuda_kernels.cross_entropy_backward(_dev(g), _dev(x), saved)
    assert loss.dtype == dtype and dx.dtype == dtype
    ref_loss, ref_dx = cuda_kernels.cross_entropy_reference(
        x, t, w, -100, reduction, smoothing, g if reduction == "none" else float(g)
    )
    assert_close(loss, ref_loss, dtype, "loss vs NumPy")
    assert_close(dx, ref_dx, dtype, "dx vs NumPy")

    xt = _torch(x, True)
    theirs = torch.nn.functional.cross_entropy(
        xt, torch.tensor(t, device="cuda"), weight=None if w is None else _torch(w),
        reduction=reduction, label_smoothing=smoothing,
    )  # fmt: skip
    theirs.backward(_torch(g).expand_as(theirs))
    assert_close(loss, theirs, dtype, "loss vs torch")
    assert_close(dx, xt.grad, dtype, "dx vs torch")


def test_cross_entropy_runs_twice_and_flags_bad_targets() -> None:
    """The ticket counter resets itself; a target out of range gives NaN, not a crash."""
    x = _dev(np.zeros((3, 4), np.float32))
    for _ in range(3):
        loss, _ = cuda_kernels.cross_entropy_forward(x, _dev(np.array([0, 1, 2])))
        np.testing.assert_allclose(float(loss), np.log(4), rtol=1e-6)
    loss, _ = cuda_kernels.cross_entropy_forward(x, _dev(np.array([0, 9, 2])))
    assert np.isnan(float(loss))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("decoupled", "maximize"), [(False, False), (True, False), (False, True)])
def test_adam_update(dtype: Any, decoupled: bool, maximize: bool) -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal(5000).astype(dtype)
    m, v = np.zeros_like(w), np.zeros_like(w)
    dw, dm, dv = _dev(w), _dev(m), _dev(v)
    tw = _torch(w, True)
    rule = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = rule([tw], lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, maximize=maximize)
    options = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)
    for step in range(1, 4):
        g = rng.standard_normal(5000).astype(dtype)
        cuda_optim.adam_update(
            dw, _dev(g), dm, dv, step=step, decoupled=decoupled, maximize=maximize, **options
        )
        cuda_optim.adam_update_reference(
            w, g, m, v, step=step, decoupled=decoupled, maximize=maximize, **options
        )
        tw.grad = _torch(g)
        opt.step()
    assert_close(dw, w, dtype, "adam vs NumPy", scale=5)
    assert_close(dm, m, dtype, "exp_avg vs NumPy")
    assert_close(dv, v, dtype, "exp_avg_sq vs NumPy")
    assert_close(dw, tw, dtype, "adam vs torch", scale=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update(dtype: Any, momentum: float, nesterov: bool) -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal(3000).astype(dtype)
    buf = np.zeros_like(w)
    dw, dbuf = _dev(w), _dev(buf)
    tw = _torch(w, True)
    opt = torch.optim.SGD([tw], lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=0.01)
    for step in range(1, 4):
        g = rng.standard_normal(3000).astype(dtype)
        options = dict(lr=0.1, momentum=momentum, weight_decay=0.01, nesterov=nesterov)
        cuda_optim.sgd_update(dw, _dev(g), dbuf, first=step == 1, **options)
        cuda_optim.sgd_update_reference(w, g, buf, first=step == 1, **options)
        tw.grad = _torch(g)
        opt.step()
    assert_close(dw, w, dtype, "sgd vs NumPy", scale=5)
    assert_close(dw, tw, dtype, "sgd vs torch", scale=5)


@pytest.mark.parametrize("rule", ["adam", "adamw", "sgd"])
def test_fused_optimiser_steps_match_torch(rule: str) -> None:
    """FusedAdam/FusedSGD over FlatParams, as optim.Adam/SGD will call them, vs torch."""
    import chainrule as cr

    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(20, 16), cr.nn.ReLU(), cr.nn.Linear(16, 3))
    init = [p.data.copy() for p in model.parameters()]
    model.to("cuda")
    params = list(model.parameters())
    tparams = [torch.tensor(a, device="cuda", requires_grad=True) for a in init]
    if rule == "sgd":
        opt = cr.optim.SGD(params, lr=0.1, momentum=0.9)
        topt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9)
    else:
        rules = {
            "adam": (cr.optim.Adam, torch.optim.Adam),
            "adamw": (cr.optim.AdamW, torch.optim.AdamW),
        }
        ours_rule, their_rule = rules[rule]
        opt, topt = (
            ours_rule(params, lr=1e-2, weight_decay=0.1),
            their_rule(tparams, lr=1e-2, weight_decay=0.1),
        )
    group = opt.param_groups[0]
    fused: Any = None
    rng = np.random.default_rng(4)
    for _ in range(3):
        grads = [rng.standard_normal(a.shape).astype(np.float32) for a in init]
        for p, t, g in zip(params, tparams, grads):
            p.grad = cr.Tensor(g, device="cuda")  # a fresh array, as the engine hands over
            t.grad = _torch(g)
        assert (cuda_flat.FusedSGD if rule == "sgd" else cuda_flat.FusedAdam).applies(
            group, opt.state
        )
        if rule == "sgd":
            fused = fused or cuda_flat.FusedSGD(params, opt.state)
            fused.step(group, opt.state)
        else:
            fused = fused or cuda_flat.FusedAdam(params, opt.state)
            fused.step(group, opt.state, decoupled=rule == "adamw")
        topt.step()
    for p, t in zip(params, tparams):
        assert p.is_cuda
        assert_close(p.data, t, np.float32, f"{rule}: fused step vs torch", scale=5)
        if rule != "sgd":
            assert_close(opt.state[p]["exp_avg"], topt.state[t]["exp_avg"], np.float32, "exp_avg")
