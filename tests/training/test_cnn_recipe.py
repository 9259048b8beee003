"""``--model cnn``: the default CNN's shape for each dataset, its state_dict in PyTorch,
and a short training run on the bundled 8×8 digits through ``train`` and the CLI parser.

The full recipe (README, "Convolutional networks") is

    chainrule train --dataset fashion-mnist --model cnn --epochs 15 --batch-size 128 \\
        --optimizer adam --lr 1e-3 --schedule cosine --dropout 0.3

which is too long for CI; here the digits run for 2 epochs instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.cli import _config, build_parser
from chainrule.training import TrainConfig, train
from chainrule.training.model import build_cnn, build_model


def _torch_cnn(torch: object, in_channels: int, flat: int, classes: int) -> object:
    """The same architecture written with torch.nn, layer for layer (same indices)."""
    tnn = torch.nn  # type: ignore[attr-defined]
    return tnn.Sequential(
        tnn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
        tnn.BatchNorm2d(32),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1, bias=False),
        tnn.BatchNorm2d(64),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Dropout(0.3),
        tnn.Linear(flat, 128),
        tnn.ReLU(),
        tnn.Dropout(0.3),
        tnn.Linear(128, classes),
    )


@pytest.mark.parametrize(("side", "flat"), [(28, 64 * 7 * 7), (8, 64 * 2 * 2)])
def test_default_cnn_state_dict_loads_into_torch_with_the_same_outputs(
    side: int, flat: int
) -> None:
    torch = pytest.importorskip("torch")
    cr.manual_seed(0)
    model = build_cnn(TrainConfig(model="cnn"), (1, side, side), 10)
    # A few training steps, so the BatchNorm buffers hold real statistics.
    x = cr.randn(16, 1, side, side)
    for _ in range(2):
        model(x).sum().backward()
    model.eval()
    theirs = _torch_cnn(torch, 1, flat, 10)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    theirs.load_state_dict(state)  # strict: every key and shape matches
    theirs.eval()
    expected = theirs(torch.from_numpy(x.numpy())).detach().numpy()
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    assert int(model[1].num_batches_tracked.numpy()) == 2


def test_build_model_picks_by_option_and_refuses_flat_data_for_the_cnn() -> None:
    assert isinstance(build_model(TrainConfig(), (1, 8, 8), 10)[0], nn.Flatten)
    assert isinstance(build_model(TrainConfig(model="cnn"), (1, 8, 8), 10)[0], nn.Conv2d)
    with pytest.raises(ValueError, match=r"--model cnn with 2 blocks .* needs images"):
        build_model(TrainConfig(model="cnn"), (64,), 10)
    with pytest.raises(ValueError, match="--model must be one of mlp, cnn"):
        TrainConfig(model="resnet").validate()


def test_cli_model_option() -> None:
    args = build_parser().parse_args(["train", "--model", "cnn", "--epochs", "2"])
    assert _config(args).model == "cnn"
    assert _config(build_parser().parse_args(["train"])).model == "mlp"


def test_cnn_learns_the_digits(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    summary = train(TrainConfig(model="cnn", epochs=2, seed=0), out=tmp_path / "run", log=None)
    # 2 epochs reach 93% (measured: 93.0% with seed 0); an untrained net is near 10% and
    # the MLP default needs about 5 epochs for this.
    assert summary["test_accuracy"] >= 0.88
    assert "Conv2d" in summary["model"]


class _StopError(Exception):
    pass


def test_cnn_resume_is_bit_identical_with_the_batchnorm_buffers(tmp_path: Path) -> None:
    """The running statistics and num_batches_tracked travel in the checkpoint."""
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    from chainrule.serialization import load

    cfg = TrainConfig(model="cnn", epochs=2, seed=3)
    train(cfg, out=tmp_path / "full", log=None)

    def stop(metrics: dict[str, object]) -> None:
        raise _StopError

    with pytest.raises(_StopError):
        train(cfg, out=tmp_path / "cut", log=None, on_epoch_end=stop)
    train(out=tmp_path / "cut", resume=True, log=None)
    full = load(tmp_path / "full" / "model.safetensors")
    cut = load(tmp_path / "cut" / "model.safetensors")
    assert "1.running_var" in full and "5.num_batches_tracked" in full
    for key in full:
        assert np.array_equal(full[key].numpy(), cut[key].numpy()), key
