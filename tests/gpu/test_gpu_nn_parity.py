"""The nn modules and losses on device "cuda" against PyTorch CUDA (GPU only): the same
weights and inputs give the same outputs, input gradients and parameter gradients,
float32 to 1e-5 and float64 to 1e-10 (convolutions and batch statistics a few ulps more:
cuDNN and chainrule sum in different orders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gpu_support import assert_close, skip_without_gpu, torch_device

skip_without_gpu(fake_ok=True)
torch = pytest.importorskip("torch")

import chainrule as cr  # noqa: E402
from chainrule import nn  # noqa: E402

tnn = torch.nn
TORCH_DEVICE = torch_device(torch)
DTYPES = [np.float32, np.float64]


def _to_torch_dtype(dtype: Any) -> Any:
    return torch.float32 if dtype == np.float32 else torch.float64


def _pair(ours: nn.Module, theirs: Any, dtype: Any) -> None:
    """Same weights on both sides, then each on its GPU."""
    ours.to(dtype)
    theirs.to(_to_torch_dtype(dtype))
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    ours.to("cuda")
    theirs.to(TORCH_DEVICE)


# name, chainrule module, torch module, input shape, tolerance scale
MODULES: list[tuple[str, Callable[[], Any], Callable[[], Any], tuple[int, ...], float]] = [
    ("Linear", lambda: nn.Linear(20, 7), lambda: tnn.Linear(20, 7), (9, 20), 1),
    ("Linear-3d", lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (2, 4, 5), 1),
    (
        "MLP",
        lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)),
        lambda: tnn.Sequential(tnn.Linear(12, 16), tnn.ReLU(), tnn.Linear(16, 4)),
        (8, 12),
        1,
    ),
    ("Conv2d", lambda: nn.Conv2d(3, 5, 3), lambda: tnn.Conv2d(3, 5, 3), (2, 3, 9, 9), 10),
    (
        "Conv2d-stride-pad",
        lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1),
        lambda: tnn.Conv2d(2, 4, 3, stride=2, padding=1),
        (2, 2, 8, 8),
        10,
    ),
    (
        "ConvTranspose2d",
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
        lambda: tnn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
        (2, 3, 5, 5),
        10,
    ),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), lambda: tnn.MaxPool2d(2), (2, 3, 8, 8), 1),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: tnn.BatchNorm2d(3), (4, 3, 5, 5), 10),
    ("LayerNorm", lambda: nn.LayerNorm((4, 5)), lambda: tnn.LayerNorm((4, 5)), (3, 4, 5), 10),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), lambda: tnn.GroupNorm(2, 4), (3, 4, 5, 5), 10),
    (
        "TransformerEncoderLayer",
        lambda: nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True),
        lambda: tnn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True),
        (3, 7, 16),
        10,
    ),
    ("ReLU", nn.ReLU, tnn.ReLU, (4, 6), 1),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=1), lambda: tnn.LogSoftmax(dim=1), (4, 6), 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "make_ours", "make_theirs", "shape", "scale"), MODULES, ids=[m[0] for m in MODULES]
)
def test_module_on_cuda_matches_torch(
    name: str, make_ours: Any, make_theirs: Any, shape: Any, scale: float, dtype: Any
) -> None:
    ours, theirs = make_ours(), make_theirs()
    _pair(ours, theirs, dtype)
    x = (np.random.default_rng(0).standard_normal(shape) * 2).astype(dtype)
    xc = cr.Tensor(x, requires_grad=True, device="cuda")
    xt = torch.tensor(x, requires_grad=True, device=TORCH_DEVICE)
    yc, yt = ours(xc), theirs(xt)
    assert yc.is_cuda, f"{name}: the output left the GPU"
    assert_close(yc, yt, dtype, f"{name}: forward", scale)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(dtype)
    yc.backward(cr.Tensor(g, device="cuda"))
    yt.backward(torch.tensor(g, device=TORCH_DEVICE))
    assert_close(xc.grad, xt.grad, dtype, f"{name}: input gradient", scale)
    theirs_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        assert p.grad is not None and p.grad.is_cuda, f"{name}.{pname}: no gradient on cuda"
        assert_close(p.grad, theirs_params[pname].grad, dtype, f"{name}.{pname}.grad", scale)
    theirs_buffers = dict(theirs.named_buffers())
    for bname, b in ours.named_buffers():
        if bname in theirs_buffers and theirs_buffers[bname].is_floating_point():
            assert_close(b, theirs_buffers[bname], dtype, f"{name}.{bname}", scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_multihead_attention_on_cuda_matches_torch(dtype: Any) -> None:
    """Self-attention with padded keys and the causal mask: outputs, weights, gradients."""
    ours = nn.MultiheadAttention(16, 4, batch_first=True)
    theirs = tnn.MultiheadAttention(16, 4, batch_first=True)
    _pair(ours, theirs, dtype)
    x = np.random.default_rng(2).standard_normal((3, 7, 16)).astype(dtype)
    pad = np.zeros((3, 7), bool)
    pad[1, -3:] = True
    causal = np.triu(np.ones((7, 7), bool), k=1)  # True: not allowed (PyTorch's MHA rule)
    xc = cr.Tensor(x, requires_grad=True, device="cuda")
    xt = torch.tensor(x, requires_grad=True, device=TORCH_DEVICE)
    yc, wc = ours(xc, xc, xc, key_padding_mask=pad, attn_mask=causal)
    masks = {
        "key_padding_mask": torch.tensor(pad, device=TORCH_DEVICE),
        "attn_mask": torch.tensor(causal, device=TORCH_DEVICE),
    }
    yt, wt = theirs(xt, xt, xt, **masks)
    assert yc.is_cuda and wc.is_cuda
    assert_close(yc, yt, dtype, "attention: forward", 10)
    assert_close(wc, wt, dtype, "attention: weights", 10)
    yc.sum().backward()
    yt.sum().backward()
    assert_close(xc.grad, xt.grad, dtype, "attention: input gradient", 10)
    theirs_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[pname].grad, dtype, f"attention.{pname}.grad", 10)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_layer_on_cuda_matches_torch(kind: str, dtype: Any) -> None:
    """A two-layer bidirectional LSTM or GRU: outputs, final states, every gradient."""
    ours = getattr(nn, kind)(6, 8, num_layers=2, bidirectional=True, batch_first=True)
    theirs = getattr(tnn, kind)(6, 8, num_layers=2, bidirectional=True, batch_first=True)
    _pair(ours, theirs, dtype)
    x = np.random.default_rng(3).standard_normal((3, 9, 6)).astype(dtype)
    xc = cr.Tensor(x, requires_grad=True, device="cuda")
    xt = torch.tensor(x, requires_grad=True, device=TORCH_DEVICE)
    (yc, state_c), (yt, state_t) = ours(xc), theirs(xt)
    states_c = state_c if isinstance(state_c, tuple) else (state_c,)
    states_t = state_t if isinstance(state_t, tuple) else (state_t,)
    assert yc.is_cuda and all(s.is_cuda for s in states_c)
    assert_close(yc, yt, dtype, f"{kind}: output", 10)
    for a, b in zip(states_c, states_t, strict=True):
        assert_close(a, b, dtype, f"{kind}: final state", 10)
    (yc.sum() + sum(s.sum() for s in states_c)).backward()
    (yt.sum() + sum(s.sum() for s in states_t)).backward()
    assert_close(xc.grad, xt.grad, dtype, f"{kind}: input gradient", 10)
    theirs_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[pname].grad, dtype, f"{kind}.{pname}.grad", 10)


RNG = np.random.default_rng(7)
LOGITS = RNG.standard_normal((16, 5)) * 3
LABELS = RNG.integers(0, 5, 16)
LABELS[3] = -100
W5 = np.array([0.3, 1.0, 2.0, 0.5, 1.5])

# name, chainrule loss, torch loss, input, target
LOSSES: list[tuple[str, Callable[[], Any], Callable[[], Any], np.ndarray, np.ndarray]] = [
    ("CrossEntropy", nn.CrossEntropyLoss, tnn.CrossEntropyLoss, LOGITS, LABELS),
    (
        "CrossEntropy-weight-smoothing",
        lambda: nn.CrossEntropyLoss(weight=cr.Tensor(W5, device="cuda"), label_smoothing=0.1),
        lambda: tnn.CrossEntropyLoss(
            weight=torch.tensor(W5, device=TORCH_DEVICE), label_smoothing=0.1
        ),
        LOGITS,
        LABELS,
    ),
    (
        "CrossEntropy-sum",
        lambda: nn.CrossEntropyLoss(reduction="sum"),
        lambda: tnn.CrossEntropyLoss(reduction="sum"),
        LOGITS,
        LABELS,
    ),
    ("NLLLoss", nn.NLLLoss, tnn.NLLLoss, LOGITS, LABELS),
    ("MSELoss", nn.MSELoss, tnn.MSELoss, LOGITS, RNG.standard_normal((16, 5))),
    (
        "BCEWithLogits",
        nn.BCEWithLogitsLoss,
        tnn.BCEWithLogitsLoss,
        LOGITS,
        RNG.uniform(0, 1, (16, 5)),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "make_ours", "make_theirs", "x", "target"), LOSSES, ids=[c[0] for c in LOSSES]
)
def test_loss_on_cuda_matches_torch(
    name: str, make_ours: Any, make_theirs: Any, x: np.ndarray, target: np.ndarray, dtype: Any
) -> None:
    x = x.astype(dtype)
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    ours, theirs = make_ours(), make_theirs()
    # The class weights follow the input's dtype (torch refuses a float64 weight with
    # float32 logits).
    ours.to(np.dtype(dtype))
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    xc = cr.Tensor(x, requires_grad=True, device="cuda")
    xt = torch.tensor(x, requires_grad=True, device=TORCH_DEVICE)
    lc = ours(xc, cr.Tensor(target, device="cuda"))
    lt = theirs(xt, torch.tensor(target, device=TORCH_DEVICE))
    assert lc.is_cuda, f"{name}: the loss left the GPU"
    assert_close(lc, lt, dtype, f"{name}: loss")
    lc.backward()
    lt.backward()
    assert_close(xc.grad, xt.grad, dtype, f"{name}: input gradient")
