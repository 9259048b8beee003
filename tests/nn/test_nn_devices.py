"""Every nn module and loss on every device: outputs and all gradients equal the CPU's
(float64, 1e-12) and stay on the device; a CNN training step makes no host sync.

Runs over the ``device`` fixture (cpu, fake-cuda, cuda; see tests/conftest.py). The
fake-cuda cases find NumPy-only calls and host syncs on any machine; the cuda cases run
on a real GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from device_cases import assert_close, assert_on, host, on, run_pair

import chainrule as cr
import fake_cupy
from chainrule import nn

F64 = cr.float64
rng = np.random.default_rng(0)


@pytest.fixture
def dev(device: str) -> str:
    return device


def images(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def distinct(*shape: int) -> np.ndarray:
    """No two equal values: max pooling has no ties to break differently."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1


class _Flat(nn.Module):
    """A recurrent layer with its outputs flattened, (output, h_n[, c_n]), for run_pair."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: cr.Tensor) -> tuple[cr.Tensor, ...]:
        out, state = self.inner(x)
        return (out, *(state if isinstance(state, tuple) else (state,)))


# ------------------------------------------------------------------------------- layers
LAYERS: dict[str, tuple[Callable[[], nn.Module], list[np.ndarray]]] = {
    "linear": (lambda: nn.Linear(5, 3, dtype=F64), [images(4, 5)]),
    "linear-3d-no-bias": (lambda: nn.Linear(5, 3, bias=False, dtype=F64), [images(2, 4, 5)]),
    "linear-large-batch": (lambda: nn.Linear(5, 3, dtype=F64), [images(130, 5)]),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, dtype=F64), [images(2, 3, 7, 7)]),
    "conv2d-stride-pad": (
        lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=F64),
        [images(2, 3, 8, 7)],
    ),
    "conv2d-dilation": (lambda: nn.Conv2d(2, 3, 3, dilation=2, dtype=F64), [images(2, 2, 9, 9)]),
    "conv2d-groups-same": (
        lambda: nn.Conv2d(4, 6, (3, 2), padding="same", groups=2, bias=False, dtype=F64),
        [images(2, 4, 6, 5)],
    ),
    "conv1d": (
        lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, dtype=F64),
        [images(2, 4, 11)],
    ),
    "conv-transpose2d": (
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, dtype=F64),
        [images(2, 3, 4, 5)],
    ),
    "conv-transpose1d-groups": (
        lambda: nn.ConvTranspose1d(4, 2, 3, stride=2, groups=2, dtype=F64),
        [images(2, 4, 5)],
    ),
    "maxpool": (lambda: nn.MaxPool2d(2), [distinct(2, 3, 6, 6)]),
    "maxpool-overlapping": (lambda: nn.MaxPool2d(3, stride=2, padding=1), [distinct(2, 2, 7, 7)]),
    "maxpool-indices": (
        lambda: nn.MaxPool2d(2, dilation=2, return_indices=True),
        [distinct(1, 2, 6, 6)],
    ),
    "avgpool": (lambda: nn.AvgPool2d(2), [images(2, 3, 6, 6)]),
    "avgpool-inside": (
        lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        [images(2, 2, 7, 7)],
    ),
    "adaptive-avgpool": (lambda: nn.AdaptiveAvgPool2d((2, 3)), [images(2, 3, 5, 7)]),
    "layernorm": (lambda: nn.LayerNorm((3, 4), dtype=F64), [images(2, 5, 3, 4)]),
    "lstm-bidirectional": (
        lambda: _Flat(nn.LSTM(3, 4, bidirectional=True, dtype=F64)),
        [images(5, 2, 3)],
    ),
    "gru-two-layers-batch-first": (
        lambda: _Flat(nn.GRU(3, 4, num_layers=2, batch_first=True, dtype=F64)),
        [images(2, 5, 3)],
    ),
    "rnn-relu": (lambda: _Flat(nn.RNN(3, 4, nonlinearity="relu", dtype=F64)), [images(4, 3)]),
    "multihead-attention": (
        lambda: nn.MultiheadAttention(8, 2, batch_first=True, dtype=F64),
        [images(2, 5, 8), images(2, 6, 8), images(2, 6, 8)],
    ),
    "groupnorm": (lambda: nn.GroupNorm(2, 4, dtype=F64), [images(2, 4, 3, 3)]),
    "transformer-encoder-layer-pre-norm": (
        lambda: nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, norm_first=True, dtype=F64),
        [images(5, 2, 8)],
    ),
    "transformer-decoder-layer": (
        lambda: nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=True, dtype=F64),
        [images(2, 4, 8), images(2, 6, 8)],
    ),
    "layernorm-no-affine": (
        lambda: nn.LayerNorm(5, elementwise_affine=False, dtype=F64),
        [images(3, 5)],
    ),
    "embedding": (lambda: nn.Embedding(6, 3, dtype=F64), [np.array([[0, 5, 2], [2, 2, 1]])]),
    "flatten": (lambda: nn.Flatten(), [images(2, 3, 2, 2)]),
    "identity": (lambda: nn.Identity(), [images(3)]),
    "sequential": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1, dtype=F64),
            nn.BatchNorm2d(3, dtype=F64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(12, 4, dtype=F64),
        ),
        [images(3, 2, 4, 4)],
    ),
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=1),
    "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "softplus": nn.Softplus,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "elu": lambda: nn.ELU(1.3),
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "gelu-tanh": lambda: nn.GELU("tanh"),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_cpu_on_the_device(dev: str, name: str) -> None:
    build, inputs = LAYERS[name]
    run_pair(dev, build, inputs)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_cpu_on_the_device(dev: str, name: str) -> None:
    run_pair(dev, ACTIVATIONS[name], [images(3, 4) * 3])


@pytest.mark.parametrize("name", ["silu", "gelu", "gelu-tanh"])
def test_float32_activation_keeps_its_exact_left_tail_on_the_device(dev: str, name: str) -> None:
    # float32 inputs far left, where the CPU recomputes a few elements in float64 and a
    # device takes the float64 values through a where (no sync): the same numbers.
    x = np.array([[-120.0, -30.0, -6.0, -1.0, 0.0, 2.0]], dtype=np.float32)
    cpu = ACTIVATIONS[name]()(on("cpu", x))
    out = ACTIVATIONS[name]()(on(dev, x))
    assert_on(dev, out)
    np.testing.assert_allclose(host(out), host(cpu), rtol=1e-6, atol=0)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_trains_and_evaluates_like_the_cpu(dev: str, dims: int, momentum: Any) -> None:
    shape = (6, 3) if dims == 2 else (4, 3, 5)

    def build() -> nn.Module:
        return nn.BatchNorm1d(3, momentum=momentum, dtype=F64)

    cpu, on_dev = run_pair(dev, build, [images(*shape)])
    second = images(*shape)  # a second batch: the running statistics move again
    cpu(on("cpu", second)), on_dev(on(dev, second))
    for name, buf in on_dev.named_buffers():
        assert_on(dev, buf)
        expected = dict(cpu.named_buffers())[name]
        np.testing.assert_allclose(host(buf), host(expected), rtol=1e-12, atol=1e-12)
    assert host(on_dev.num_batches_tracked) == 2
    x = images(*shape)
    cpu.eval(), on_dev.eval()
    assert_close(on_dev(on(dev, x)), cpu(on("cpu", x)), "eval output")


def test_batchnorm2d_eval_gradients_match(dev: str) -> None:
    def build() -> nn.Module:
        bn = nn.BatchNorm2d(2, dtype=F64)
        bn.running_mean.data[...] = np.array([0.5, -1.0])
        bn.running_var.data[...] = np.array([2.0, 0.25])
        return bn.eval()

    run_pair(dev, build, [images(2, 2, 3, 3)])


def test_layers_made_on_the_device_draw_there(dev: str) -> None:
    layers = [
        nn.Linear(4, 3, device=dev),
        nn.Conv2d(2, 3, 3, device=dev),
        nn.Conv1d(2, 3, 3, device=dev),
        nn.BatchNorm2d(3, device=dev),
        nn.Embedding(5, 2, device=dev),
    ]
    for layer in layers:
        for name, t in [*layer.named_parameters(), *layer.named_buffers()]:
            assert_on(dev, t)
            assert np.isfinite(host(t)).all(), name
    bound = 1.0 / np.sqrt(4)
    weight = host(layers[0].weight)
    assert np.abs(weight).max() <= bound and weight.std() > 0  # U(±1/√in), not zeros
    w = cr.Tensor(np.zeros((3, 4), np.float32), device=dev)
    nn.init.kaiming_normal_(w)
    nn.init.eye_(w)
    assert_on(dev, w)
    np.testing.assert_array_equal(host(w), np.eye(3, 4))


# ------------------------------------------------------------------------------ dropout
@pytest.mark.parametrize("kind", ["dropout", "dropout2d"])
def test_dropout_masks_are_drawn_on_the_device(dev: str, kind: str) -> None:
    x = on(dev, np.ones((4, 6, 3, 3)), requires_grad=True)
    layer = nn.Dropout(0.5) if kind == "dropout" else nn.Dropout2d(0.5)
    cr.manual_seed(3)
    y = layer(x)
    assert_on(dev, y)
    values = host(y)
    assert set(np.unique(values)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1 − p)
    if kind == "dropout2d":  # whole channels
        assert (values.min(axis=(2, 3)) == values.max(axis=(2, 3))).all()
    (y * 1.0).sum().backward()
    np.testing.assert_array_equal(host(x.grad), values)  # g times the same scaled mask
    cr.manual_seed(3)
    np.testing.assert_array_equal(host(layer(x)), values)  # the seed repeats the mask


@pytest.mark.parametrize("kind", ["dropout", "dropout2d"])
def test_dropout_is_the_identity_at_p0_and_in_eval(dev: str, kind: str) -> None:
    make = nn.Dropout if kind == "dropout" else nn.Dropout2d
    x = on(dev, images(2, 3, 2, 2))
    assert make(0.0)(x) is x
    assert make(0.5).eval()(x) is x


# ------------------------------------------------------------------------------- losses
LABELS = np.array([0, 2, 1, 3, 2])
IGNORED = np.array([0, -100, 1, 3, 2])
CLASS_W = np.array([0.5, 1.0, 2.0, 1.5])
ELEMENT_W = rng.uniform(0.5, 2, (3, 4))
LOSSES: dict[str, tuple[Callable[[], nn.Module], list[np.ndarray]]] = {
    "ce": (nn.CrossEntropyLoss, [images(5, 4), LABELS]),
    "ce-sum-weights": (
        lambda: nn.CrossEntropyLoss(weight=cr.tensor(CLASS_W), reduction="sum"),
        [images(5, 4), LABELS],
    ),
    "ce-ignore-smoothing-weights": (
        lambda: nn.CrossEntropyLoss(
            weight=cr.tensor(CLASS_W), ignore_index=-100, label_smoothing=0.2
        ),
        [images(5, 4), IGNORED],
    ),
    "ce-none-4d": (
        lambda: nn.CrossEntropyLoss(reduction="none", label_smoothing=0.1),
        [images(2, 4, 3, 3), rng.integers(0, 4, (2, 3, 3))],
    ),
    "ce-probabilities": (
        lambda: nn.CrossEntropyLoss(label_smoothing=0.1, weight=cr.tensor(CLASS_W)),
        [images(5, 4), rng.dirichlet(np.ones(4), 5)],
    ),
    "nll": (lambda: nn.NLLLoss(weight=cr.tensor(CLASS_W)), [images(5, 4), IGNORED]),
    "mse": (nn.MSELoss, [images(3, 4), images(3, 4)]),
    "l1-sum": (lambda: nn.L1Loss(reduction="sum"), [images(3, 4), images(3, 4)]),
    "huber": (lambda: nn.HuberLoss(delta=0.5), [images(3, 4), images(3, 4)]),
    "smooth-l1-none": (
        lambda: nn.SmoothL1Loss(reduction="none", beta=0.7),
        [images(3, 4), images(3, 4)],
    ),
    "bce": (nn.BCELoss, [rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))]),
    "bce-with-logits": (
        lambda: nn.BCEWithLogitsLoss(
            weight=cr.tensor(ELEMENT_W),
            pos_weight=cr.tensor(np.array([1.0, 2.0, 0.5, 3.0])),
        ),
        [images(3, 4) * 4, rng.uniform(0, 1, (3, 4))],
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_cpu_on_the_device(dev: str, name: str) -> None:
    build, inputs = LOSSES[name]
    run_pair(dev, lambda: build().double(), inputs)


def test_losses_take_host_targets_and_weights_on_the_device(dev: str) -> None:
    # Lists and NumPy arrays are data without a device: they go to the input's device.
    x = on(dev, images(5, 4), requires_grad=True)
    loss = cr.nn.functional.cross_entropy(x, LABELS.tolist(), weight=CLASS_W.tolist())
    expected = cr.nn.functional.cross_entropy(
        on("cpu", host(x)), cr.tensor(LABELS), weight=cr.tensor(CLASS_W)
    )
    assert_on(dev, loss)
    assert_close(loss, expected, "loss")


def test_cpu_targets_out_of_range_are_an_error() -> None:
    with pytest.raises(IndexError, match="target class 7 is out of range for 4 classes"):
        nn.CrossEntropyLoss()(cr.randn(2, 4), cr.tensor(np.array([1, 7])))


# ------------------------------------------------------------------------- clip_grad
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
def test_clip_grad_norm_matches_cpu_on_the_device(dev: str, norm_type: float) -> None:
    grads = [images(3, 4) * 5, images(7)]
    results = []
    for where in ("cpu", dev):
        params = [on(where, g, requires_grad=True) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = on(where, g)
        total = nn.utils.clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
        results.append((total, [p.grad for p in params]))
    (cpu_total, cpu_grads), (dev_total, dev_grads) = results
    assert_on(dev, dev_total, *dev_grads)
    assert_close(dev_total, cpu_total, "total norm")
    for a, b in zip(dev_grads, cpu_grads, strict=True):
        assert_close(a, b, "clipped gradient")
    params = [on(dev, g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = on(dev, g)
    nn.utils.clip_grad_value_(params, 0.5)
    np.testing.assert_array_equal(host(params[0].grad), np.clip(grads[0], -0.5, 0.5))


def test_clip_grad_norm_reads_nothing_back_unless_asked(fake_cuda: str) -> None:
    params = [on(fake_cuda, images(3, 4), requires_grad=True) for _ in range(3)]
    for p in params:
        p.grad = on(fake_cuda, images(3, 4))
    fake_cupy.SYNCS[0] = 0
    nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert fake_cupy.SYNCS[0] == 0
    params[1].grad.data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match=r"parameters \[1\]"):
        nn.utils.clip_grad_norm_(params, max_norm=1.0, error_if_nonfinite=True)
    assert fake_cupy.SYNCS[0] > 0  # the user asked: the norm's value was read
