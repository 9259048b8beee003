"""``--model lstm``: the image read row by row by an LSTM, trained end to end on the
digits, resumed bit for bit, and its state_dict loads into the same PyTorch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from resume_cases import assert_resume_is_bit_identical

import chainrule as cr
from chainrule.cli import _config, _describe_model, build_parser
from chainrule.training import TrainConfig, train
from chainrule.training.model import RowLSTM, build_model

pytest.importorskip("sklearn")

LSTM = {"model": "lstm", "hidden": (32,), "batch_size": 64, "lr": 3e-3}


def test_it_learns_the_digits_row_by_row(tmp_path: Path) -> None:
    summary = train(TrainConfig(**LSTM, epochs=12), out=tmp_path, log=None)
    assert summary["test_accuracy"] >= 0.85  # 8 steps of 8 pixels each; chance is 10%


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    cfg = TrainConfig(**LSTM, epochs=3, dropout=0.2)
    assert_resume_is_bit_identical(cfg, tmp_path)


def test_shapes_layers_and_the_cli_option() -> None:
    model = build_model(TrainConfig(model="lstm", hidden=(16, 16)), (1, 28, 28), 10)
    assert isinstance(model, RowLSTM) and model.lstm.num_layers == 2
    assert model.lstm.input_size == 28 and model.rows == 28
    assert model(cr.randn(3, 1, 28, 28)).shape == (3, 10)
    rgb = build_model(TrainConfig(model="lstm"), (3, 8, 8), 4)
    assert rgb.lstm.input_size == 24  # a row of three channels: C·W features per step
    with pytest.raises(ValueError, match="--model lstm reads images row by row"):
        build_model(TrainConfig(model="lstm"), (64,), 10)
    args = build_parser().parse_args(["train", "--model", "lstm", "--hidden", "64"])
    assert _config(args).model == "lstm" and _config(args).hidden == (64,)
    assert _describe_model(_config(args)) == "lstm 1 layer of 64 over rows"


def test_the_state_dict_loads_into_torch_with_the_same_outputs() -> None:
    torch = pytest.importorskip("torch")
    cr.manual_seed(0)
    ours = build_model(TrainConfig(model="lstm", hidden=(12,)), (1, 8, 8), 10)
    ours.eval()

    class TorchRowLSTM(torch.nn.Module):  # written out independently of RowLSTM
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(8, 12, batch_first=True)
            self.dropout = torch.nn.Identity()
            self.head = torch.nn.Linear(12, 10)

        def forward(self, x: object) -> object:
            out, _ = self.lstm(x.reshape(x.shape[0], 8, 8))
            return self.head(out[:, -1])

    theirs = TorchRowLSTM()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        ours(cr.tensor(x)).detach().numpy(),
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
