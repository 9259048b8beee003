"""``--model transformer``: a small vision transformer over a grid of patches, trained
end to end on the digits, resumed bit for bit, and equal to the same model written
independently with PyTorch's layers (outputs and every gradient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from resume_cases import assert_resume_is_bit_identical

import chainrule as cr
from chainrule.cli import _config, _describe_model, build_parser
from chainrule.training import TrainConfig, train
from chainrule.training.model import PatchTransformer, build_model

pytest.importorskip("sklearn")

VIT = {"model": "transformer", "hidden": (32,), "batch_size": 64, "lr": 3e-3, "dropout": 0.0}


def test_it_learns_the_digits_from_patches(tmp_path: Path) -> None:
    summary = train(TrainConfig(**VIT, epochs=15), out=tmp_path, log=None)
    assert summary["test_accuracy"] >= 0.85  # 16 patches of 2×2 pixels; chance is 10%


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    cfg = TrainConfig(**{**VIT, "dropout": 0.2}, epochs=3)
    assert_resume_is_bit_identical(cfg, tmp_path)


def test_shapes_layers_and_the_cli_option() -> None:
    model = build_model(TrainConfig(model="transformer", hidden=(16, 16)), (1, 28, 28), 10)
    assert isinstance(model, PatchTransformer) and len(model.encoder.layers) == 2
    assert model.patch == (7, 7) and model.embed.in_features == 49
    assert model(cr.randn(3, 1, 28, 28)).shape == (3, 10)
    assert model(cr.randn(3, 28, 28)).shape == (3, 10)  # (N, H, W): one channel
    rgb = build_model(TrainConfig(model="transformer", hidden=(8,)), (3, 8, 8), 4)
    assert rgb.embed.in_features == 12  # a 2×2 patch of three channels
    with pytest.raises(ValueError, match=r"needs examples .* multiples of 4, got \(1, 6, 6\)"):
        build_model(TrainConfig(model="transformer"), (1, 6, 6), 10)
    with pytest.raises(ValueError, match="--hidden 30 must be a multiple of 4"):
        build_model(TrainConfig(model="transformer", hidden=(30,)), (1, 8, 8), 10)
    args = build_parser().parse_args(["train", "--model", "transformer", "--hidden", "64,64"])
    assert _config(args).model == "transformer" and _config(args).hidden == (64, 64)
    assert _describe_model(_config(args)) == "transformer 2 layers of 64, 4 heads, 16 patches"


def test_matches_the_same_model_written_with_torch() -> None:
    torch = pytest.importorskip("torch")
    cr.manual_seed(0)
    ours = build_model(TrainConfig(model="transformer", hidden=(8, 8)), (1, 8, 8), 10)
    ours = ours.to(dtype=cr.float64)
    ours.eval()

    class TorchPatchTransformer(torch.nn.Module):  # written out independently
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(4, 8)
            self.position = torch.nn.Parameter(torch.zeros(1, 16, 8))
            layer = torch.nn.TransformerEncoderLayer(
                8, 4, 16, 0.0, "gelu", batch_first=True, norm_first=True
            )
            self.encoder = torch.nn.TransformerEncoder(
                layer, 2, torch.nn.LayerNorm(8), enable_nested_tensor=False
            )
            self.head = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # 2×2 patches in row-major grid order, each patch's pixels row by row
            patches = torch.nn.functional.unfold(x, kernel_size=2, stride=2).transpose(1, 2)
            return self.head(self.encoder(self.embed(patches) + self.position).mean(1))

    theirs = TorchPatchTransformer().double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((4, 1, 8, 8))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, t_out = ours(xc), theirs(xt)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10)
    out.logsumexp(1).sum().backward()
    t_out.logsumexp(1).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )
