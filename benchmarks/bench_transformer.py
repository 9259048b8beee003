"""Transformer benchmark: chainrule against PyTorch eager (CPU) and raw NumPy.

    python benchmarks/bench_transformer.py    # prints medians and ratios; --json FILE

Tasks (float32, training mode with dropout 0, the step timed from the forward pass to
the gradients of every parameter):

- ``encoder_layer``: one ``TransformerEncoderLayer`` (post-norm, ReLU; PyTorch's default
  layer) with E=128, 4 heads, feed-forward 512, on a batch of 32 sequences of 64
  positions, forward and backward of Σ out ⊙ G for a fixed G. All three contenders: raw
  NumPy runs the same math with the backward written by hand, the floor for a NumPy
  implementation.
- ``vit_step``: one training step (forward, cross-entropy, backward, AdamW) of
  ``chainrule train --model transformer``'s network on a Fashion-MNIST-sized batch (128
  images of 28×28: 16 patches, 2 pre-norm GELU layers of width 64, 4 heads).
- ``seq2seq_step``: one training step (Adam) of ``examples/transformer_sort.py``'s
  encoder–decoder ``nn.Transformer`` (d=64, 4 heads, 2+2 layers, feed-forward 128), 64
  sequences of 8 tokens with the causal target mask.

Each library runs in a process of its own, in alternating rounds (``harness``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

N, S, E, HEADS, FF = 32, 64, 128, 4, 512
TASKS = ["encoder_layer", "vit_step", "seq2seq_step"]
CONTENDERS = {"vit_step": ["chainrule", "torch"], "seq2seq_step": ["chainrule", "torch"]}


def _encoder_data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The input, the upstream gradient and the layer's parameters under PyTorch's names."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, S, E)).astype(np.float32)
    g = rng.standard_normal((N, S, E)).astype(np.float32)

    def uniform(*shape: int) -> np.ndarray:
        bound = 1 / math.sqrt(shape[-1])
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    params = {
        "self_attn.in_proj_weight": uniform(3 * E, E),
        "self_attn.in_proj_bias": np.zeros(3 * E, np.float32),
        "self_attn.out_proj.weight": uniform(E, E),
        "self_attn.out_proj.bias": np.zeros(E, np.float32),
        "linear1.weight": uniform(FF, E),
        "linear1.bias": uniform(FF),
        "linear2.weight": uniform(E, FF),
        "linear2.bias": uniform(E),
        "norm1.weight": np.ones(E, np.float32),
        "norm1.bias": np.zeros(E, np.float32),
        "norm2.weight": np.ones(E, np.float32),
        "norm2.bias": np.zeros(E, np.float32),
    }
    return x, g, params


def _images(batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch)


def _sequences(batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    digits = rng.integers(0, 10, (batch, 8))
    target = np.sort(digits, axis=1)
    decoder_input = np.concatenate([np.full((batch, 1), 10), target[:, :-1]], axis=1)
    return digits, decoder_input, target


def chainrule_tasks() -> dict[str, harness.Task]:
    import chainrule as cr
    import chainrule.nn.functional as F
    from chainrule import nn, optim
    from chainrule.training import TrainConfig
    from chainrule.training.model import build_model

    def encoder_layer() -> Callable[[], None]:
        x, g, params = _encoder_data()
        layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
        layer.load_state_dict(params)
        xc, gc = cr.tensor(x, requires_grad=True), cr.tensor(g)

        def step() -> None:
            (layer(xc) * gc).sum().backward()
            xc.grad = None
            for p in layer.parameters():
                p.grad = None

        return step

    def vit_step() -> Callable[[], None]:
        cr.manual_seed(0)
        cfg = TrainConfig(model="transformer", hidden=(64, 64), dropout=0.0)
        model = build_model(cfg, (1, 28, 28), 10)
        opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        images, labels = _images()
        x, y = cr.tensor(images), cr.tensor(labels)

        def step() -> None:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    def seq2seq_step() -> Callable[[], None]:
        import runpy

        example = os.path.join(os.path.dirname(__file__), "..", "examples", "transformer_sort.py")
        cr.manual_seed(0)
        model = runpy.run_path(example, run_name="benchmark")["Sorter"]()
        opt = optim.Adam(model.parameters(), lr=1e-3)
        digits, decoder_input, target = (cr.tensor(a) for a in _sequences())

        def step() -> None:
            logits = model(digits, decoder_input)
            loss = F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    return {"encoder_layer": encoder_layer, "vit_step": vit_step, "seq2seq_step": seq2seq_step}


def torch_tasks() -> dict[str, harness.Task]:
    import torch

    def encoder_layer() -> Callable[[], None]:
        x, g, params = _encoder_data()
        layer = torch.nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
        layer.load_state_dict({k: torch.tensor(v) for k, v in params.items()})
        xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def step() -> None:
            (layer(xt) * gt).sum().backward()
            xt.grad = None
            for p in layer.parameters():
                p.grad = None

        return step

    class PatchTransformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(49, 64)
            self.position = torch.nn.Parameter(torch.zeros(1, 16, 64))
            layer = torch.nn.TransformerEncoderLayer(
                64, 4, 128, 0.0, "gelu", batch_first=True, norm_first=True
            )
            self.encoder = torch.nn.TransformerEncoder(
                layer, 2, torch.nn.LayerNorm(64), enable_nested_tensor=False
            )
            self.head = torch.nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            patches = torch.nn.functional.unfold(x, kernel_size=7, stride=7).transpose(1, 2)
            return self.head(self.encoder(self.embed(patches) + self.position).mean(1))

    def vit_step() -> Callable[[], None]:
        torch.manual_seed(0)
        model = PatchTransformer()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        images, labels = _images()
        x, y = torch.tensor(images), torch.tensor(labels)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    class Sorter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(11, 64)
            self.position = torch.nn.Embedding(8, 64)
            self.transformer = torch.nn.Transformer(64, 4, 2, 2, 128, 0.0, batch_first=True)
            self.head = torch.nn.Linear(64, 10)
            self.causal = torch.nn.Transformer.generate_square_subsequent_mask(8)

        def tokens(self, codes: torch.Tensor) -> torch.Tensor:
            return self.embed(codes) + self.position(torch.arange(codes.shape[1]))

        def forward(self, digits: torch.Tensor, decoder_input: torch.Tensor) -> Any:
            out = self.transformer(
                self.tokens(digits), self.tokens(decoder_input), tgt_mask=self.causal
            )
            return self.head(out)

    def seq2seq_step() -> Callable[[], None]:
        torch.manual_seed(0)
        model = Sorter()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        digits, decoder_input, target = (torch.tensor(a) for a in _sequences())

        def step() -> None:
            logits = model(digits, decoder_input)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), target.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    return {"encoder_layer": encoder_layer, "vit_step": vit_step, "seq2seq_step": seq2seq_step}


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    mean = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    xhat = (x - mean) * rstd
    return xhat * w + b, (xhat, rstd, w)


def _layer_norm_backward(g: np.ndarray, saved: Any) -> np.ndarray:
    xhat, rstd, w = saved
    gh = g * w  # the weight's and bias's gradients are the sums below, kept for the cost
    _dw, _db = (g * xhat).sum((0, 1)), g.sum((0, 1))
    return rstd * (gh - gh.mean(-1, keepdims=True) - xhat * (gh * xhat).mean(-1, keepdims=True))


def numpy_tasks() -> dict[str, harness.Task]:
    def encoder_layer() -> Callable[[], None]:
        """The post-norm ReLU encoder layer's forward and backward, written by hand."""
        x, g, p = _encoder_data()
        w_in, b_in = p["self_attn.in_proj_weight"], p["self_attn.in_proj_bias"]
        w_o, b_o = p["self_attn.out_proj.weight"], p["self_attn.out_proj.bias"]
        w1, b1, w2, b2 = (
            p["linear1.weight"],
            p["linear1.bias"],
            p["linear2.weight"],
            p["linear2.bias"],
        )
        d = E // HEADS

        def heads(t: np.ndarray) -> np.ndarray:  # (N, S, E) → (N, h, S, d)
            return t.reshape(N, S, HEADS, d).transpose(0, 2, 1, 3)

        def merge(t: np.ndarray) -> np.ndarray:  # (N, h, S, d) → (N, S, E)
            return t.transpose(0, 2, 1, 3).reshape(N, S, E)

        def step() -> None:
            flat = x.reshape(N * S, E)
            qkv = flat @ w_in.T + b_in
            q, k, v = (heads(t.reshape(N, S, E)) for t in np.split(qkv, 3, axis=1))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            a = scores / scores.sum(-1, keepdims=True)
            o = merge(a @ v).reshape(N * S, E)
            n1, ln1 = _layer_norm(
                x + (o @ w_o.T + b_o).reshape(N, S, E), p["norm1.weight"], p["norm1.bias"]
            )
            h1 = n1.reshape(N * S, E) @ w1.T + b1
            f = np.maximum(h1, 0)
            _, ln2 = _layer_norm(
                n1 + (f @ w2.T + b2).reshape(N, S, E), p["norm2.weight"], p["norm2.bias"]
            )
            # backward
            dy2 = _layer_norm_backward(g, ln2).reshape(N * S, E)
            _dw2, _db2 = dy2.T @ f, dy2.sum(0)
            dh1 = (dy2 @ w2) * (h1 > 0)
            _dw1, _db1 = dh1.T @ n1.reshape(N * S, E), dh1.sum(0)
            dn1 = dy2 + dh1 @ w1
            dy1 = _layer_norm_backward(dn1.reshape(N, S, E), ln1).reshape(N * S, E)
            _dwo, _dbo = dy1.T @ o, dy1.sum(0)
            do = heads((dy1 @ w_o).reshape(N, S, E))
            da = do @ v.transpose(0, 1, 3, 2)
            dv = a.transpose(0, 1, 3, 2) @ do
            ds = a * (da - (da * a).sum(-1, keepdims=True)) / math.sqrt(d)
            dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
            dqkv = np.concatenate([merge(t).reshape(N * S, E) for t in (dq, dk, dv)], axis=1)
            _dw_in, _db_in = dqkv.T @ flat, dqkv.sum(0)
            _dx = dy1 + dqkv @ w_in

        return step

    return {"encoder_layer": encoder_layer}


WORKERS = {"chainrule": chainrule_tasks, "torch": torch_tasks, "numpy": numpy_tasks}


def report(results: harness.Results) -> None:
    print(harness.table(results, "torch", unit=1e3, unit_name="ms"))


if __name__ == "__main__":
    harness.run(__file__, __doc__, WORKERS, TASKS, report, contenders=CONTENDERS)
