"""A short training run on "cuda" follows the CPU run's loss curve (GPU only).

An MLP 64-32-10 (dropout 0) on the bundled digits (scikit-learn's; a fixed synthetic set of
the same shape where scikit-learn is missing), 3 epochs of SGD with momentum in fixed
batch order from the same initial weights: every batch's loss on the GPU within 1e-4
(relative) of the CPU's, in float32.
"""

from __future__ import annotations

import numpy as np
from gpu_support import skip_without_gpu

skip_without_gpu(fake_ok=True)

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402

EPOCHS, BATCH = 3, 64


def _data() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # the GPU machine may lack scikit-learn: same shape, fixed values
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, 1797)
        centres = rng.standard_normal((10, 64))
        x = centres[labels] + 0.8 * rng.standard_normal((1797, 64))
        return x.astype(np.float32), labels.astype(np.int64)
    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _losses(device: str, x: np.ndarray, y: np.ndarray) -> list[float]:
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.0), nn.Linear(32, 10)
    )  # initialised on the CPU, then moved: the same start on both devices
    model.to(device)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    xs, ys = cr.Tensor(x, device=device), cr.Tensor(y, device=device)
    kept = []
    for _ in range(EPOCHS):
        for start in range(0, len(x), BATCH):
            loss = loss_fn(model(xs[start : start + BATCH]), ys[start : start + BATCH])
            opt.zero_grad()
            loss.backward()
            opt.step()
            kept.append(loss.detach())  # no host sync inside the loop
    return [float(v.item()) for v in kept]


def test_mlp_on_cuda_follows_the_cpu_loss_curve() -> None:
    x, y = _data()
    cpu = _losses("cpu", x, y)
    gpu = _losses("cuda", x, y)
    assert len(cpu) == len(gpu) == EPOCHS * -(-len(x) // BATCH)
    last_epoch = float(np.mean(cpu[-len(cpu) // EPOCHS :]))
    assert last_epoch < 0.5 * cpu[0], f"the CPU run did not learn: {cpu[0]:.3f} -> {last_epoch:.3f}"
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, err_msg="GPU loss curve vs CPU")
