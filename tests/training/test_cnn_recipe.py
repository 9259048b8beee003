"""``--model cnn``: the default CNN's shape for each dataset, its state_dict in PyTorch,
and a short training run on the bundled 8×8 digits through ``train`` and the CLI parser.

The full recipe (README, "chainrule train --model cnn") is

    chainrule train --dataset fashion-mnist --model cnn

(15 epochs of 128, Adam 1e-3 with a cosine decay, dropout 0.3), which is too long for
CI; here the digits run for 2 epochs instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from resume_cases import assert_resume_is_bit_identical

import chainrule as cr
from chainrule import nn
from chainrule.cli import _config, build_parser
from chainrule.training import TrainConfig, train
from chainrule.training.model import build_cnn, build_model

DEFAULT = TrainConfig(model="cnn")


def _torch_cnn(torch: object, in_channels: int, flat: int, classes: int, convs: int) -> object:
    """The same architecture written with torch.nn, layer for layer (same indices)."""
    tnn = torch.nn  # type: ignore[attr-defined]
    layers: list[object] = []
    for out_channels in (32, 64):
        for _ in range(convs):
            layers += [
                tnn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                tnn.BatchNorm2d(out_channels),
                tnn.ReLU(),
            ]
            in_channels = out_channels
        layers.append(tnn.MaxPool2d(2))
    layers += [
        tnn.Flatten(),
        tnn.Dropout(0.3),
        tnn.Linear(flat, 128),
        tnn.ReLU(),
        tnn.Dropout(0.3),
        tnn.Linear(128, classes),
    ]
    return tnn.Sequential(*layers)


@pytest.mark.parametrize("convs", sorted({DEFAULT.convs_per_block, 1, 2}))
@pytest.mark.parametrize(("side", "flat"), [(28, 64 * 7 * 7), (8, 64 * 2 * 2)])
def test_default_cnn_state_dict_loads_into_torch_with_the_same_outputs(
    side: int, flat: int, convs: int
) -> None:
    torch = pytest.importorskip("torch")
    cr.manual_seed(0)
    model = build_cnn(TrainConfig(model="cnn", convs_per_block=convs), (1, side, side), 10)
    # A few training steps, so the BatchNorm buffers hold real statistics.
    x = cr.randn(16, 1, side, side)
    for _ in range(2):
        model(x).sum().backward()
    model.eval()
    theirs = _torch_cnn(torch, 1, flat, 10, convs)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    theirs.load_state_dict(state)  # strict: every key and shape matches
    theirs.eval()
    expected = theirs(torch.from_numpy(x.numpy())).detach().numpy()
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    assert int(model[1].num_batches_tracked.numpy()) == 2


def test_the_conv_benchmark_measures_the_default_cnn() -> None:
    """benchmarks/bench_conv.py writes the defaults out (its PyTorch worker must not import
    chainrule); it must time the CNN that ``chainrule train --model cnn`` builds."""
    import importlib.util

    path = Path(__file__).parents[2] / "benchmarks" / "bench_conv.py"
    spec = importlib.util.spec_from_file_location("bench_conv", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert (DEFAULT.channels, DEFAULT.convs_per_block) == (bench.CHANNELS, bench.CONVS)
    torch = pytest.importorskip("torch")
    theirs = bench.torch_model(torch)
    ours = build_cnn(DEFAULT, (1, 28, 28), 10)
    assert [type(m).__name__ for m in theirs] == [type(m).__name__ for m in ours]


def test_build_model_picks_by_option_and_refuses_flat_data_for_the_cnn() -> None:
    assert isinstance(build_model(TrainConfig(), (1, 8, 8), 10)[0], nn.Flatten)
    assert isinstance(build_model(TrainConfig(model="cnn"), (1, 8, 8), 10)[0], nn.Conv2d)
    with pytest.raises(ValueError, match=r"--model cnn with 2 blocks .* needs images"):
        build_model(TrainConfig(model="cnn"), (64,), 10)
    # Each block halves the maps: three fit 8x8 (8 -> 4 -> 2 -> 1), four do not.
    three = build_model(TrainConfig(model="cnn", channels=(4, 4, 4)), (1, 8, 8), 10)
    assert sum(isinstance(m, nn.Conv2d) for m in three.modules()) == 3 * DEFAULT.convs_per_block
    with pytest.raises(ValueError, match="at least 16x16 pixels"):
        build_model(TrainConfig(model="cnn", channels=(4, 4, 4, 4)), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="--channels must be one or more positive sizes"):
        TrainConfig(model="cnn", channels=()).validate()
    with pytest.raises(ValueError, match="--model must be one of mlp, cnn"):
        TrainConfig(model="resnet").validate()


def test_cli_model_option() -> None:
    args = build_parser().parse_args(["train", "--model", "cnn", "--epochs", "2"])
    assert _config(args).model == "cnn"
    assert _config(build_parser().parse_args(["train"])).model == "mlp"
    args = build_parser().parse_args(
        ["train", "--channels", "32,64,128", "--label-smoothing", "0.1"]
    )
    assert _config(args).channels == (32, 64, 128)
    assert _config(args).label_smoothing == 0.1


def test_convs_per_block_stacks_that_many_conv_batchnorm_relu_before_each_pool() -> None:
    model = build_cnn(TrainConfig(model="cnn", convs_per_block=3), (1, 8, 8), 10)
    kinds = [type(m).__name__ for m in model]
    assert kinds[:10] == ["Conv2d", "BatchNorm2d", "ReLU"] * 3 + ["MaxPool2d"]
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 32),
        (32, 32),
        (32, 32),
        (32, 64),
        (64, 64),
        (64, 64),
    ]
    assert model(cr.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="--convs-per-block must be"):
        TrainConfig(model="cnn", convs_per_block=0).validate()
    args = build_parser().parse_args(["train", "--convs-per-block", "3"])
    assert _config(args).convs_per_block == 3


def test_a_config_saved_before_convs_per_block_rebuilds_its_one_conv_blocks() -> None:
    saved = json.loads(TrainConfig(model="cnn").to_json())
    del saved["convs_per_block"]
    assert TrainConfig.from_json(json.dumps(saved)).convs_per_block == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # The bundled digits: TrainConfig's own defaults.
        ([], {"epochs": 40, "batch_size": 32, "hidden": (256, 128)}),
        (["--model", "cnn"], {"epochs": 40, "batch_size": 32}),
        # The MNIST family: the README's recipes.
        (["--dataset", "fashion-mnist", "--model", "cnn"], {"epochs": 15, "batch_size": 128}),
        (
            ["--dataset", "mnist"],
            {"epochs": 20, "batch_size": 128, "hidden": (1024, 512)},
        ),
        # What the command line gives wins over the recipe.
        (
            ["--dataset", "fashion-mnist", "--epochs", "3", "--hidden", "64"],
            {"epochs": 3, "batch_size": 128, "hidden": (64,)},
        ),
        (
            ["--dataset", "fashion-mnist", "--model", "cnn", "--batch-size", "64"],
            {"batch_size": 64},
        ),
    ],
)
def test_options_left_out_come_from_the_recipe_for_the_dataset_and_model(
    argv: list[str], expected: dict[str, object]
) -> None:
    cfg = _config(build_parser().parse_args(["train", *argv]))
    assert {name: getattr(cfg, name) for name in expected} == expected
    assert cfg == TrainConfig.recipe(
        **{n: getattr(cfg, n) for n in ("dataset", "model")},
        **{n: getattr(cfg, n) for n in expected},
    )


def test_cnn_learns_the_digits(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    summary = train(TrainConfig(model="cnn", epochs=2, seed=0), out=tmp_path / "run", log=None)
    # 2 epochs reach 93% (measured: 93.0% with seed 0); an untrained net is near 10% and
    # the MLP default needs about 5 epochs for this.
    assert summary["test_accuracy"] >= 0.88
    assert "Conv2d" in summary["model"]


def test_cnn_resume_is_bit_identical_with_the_batchnorm_buffers(tmp_path: Path) -> None:
    """The running statistics and num_batches_tracked travel in the checkpoint."""
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    full = assert_resume_is_bit_identical(TrainConfig(model="cnn", epochs=2, seed=3), tmp_path)
    assert "1.running_var" in full and "8.num_batches_tracked" in full
