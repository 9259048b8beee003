"""An encoder–decoder Transformer learns to sort: ``nn.Transformer`` as in the paper.

Each example is a sequence of 8 digits (0–9); the target is the same digits sorted. The
encoder reads the digits; the decoder writes the sorted sequence one digit at a time,
each step attending to what it has written (masked by
``nn.Transformer.generate_square_subsequent_mask``, so that no position sees the future)
and to the encoder's output. Training is teacher-forced: the decoder reads the true
sorted prefix, after a start token, and learns every next digit at once. At test time
the model decodes greedily from its own predictions, the way it would be used.

It reports the share of 500 test sequences sorted exactly (all 8 digits right), before
and after training, and shows one sequence with, for each digit written, the input digit
the last decoder layer's attention to the encoder weighs most (averaged over its heads):
after training, a copy of the digit it writes.

Run it from the repository root:

    python examples/transformer_sort.py
"""

from __future__ import annotations

import numpy

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn, optim

LENGTH, DIGITS, START = 8, 10, 10  # token 10 starts the decoder's sequence
STEPS, BATCH = 500, 64


class Sorter(nn.Module):
    def __init__(self, d_model: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(DIGITS + 1, d_model)
        self.position = nn.Embedding(LENGTH, d_model)
        self.transformer = nn.Transformer(
            d_model,
            nhead=4,
            num_encoder_layers=2,
            num_decoder_layers=2,
            dim_feedforward=128,
            dropout=0.0,
            batch_first=True,
        )
        self.head = nn.Linear(d_model, DIGITS)
        self.causal = nn.Transformer.generate_square_subsequent_mask(LENGTH)

    def tokens(self, codes: cr.Tensor) -> cr.Tensor:
        positions = cr.arange(codes.shape[1])
        return self.embed(codes) + self.position(positions)

    def forward(self, digits: cr.Tensor, decoder_input: cr.Tensor) -> cr.Tensor:
        length = decoder_input.shape[1]
        out = self.transformer(
            self.tokens(digits),
            self.tokens(decoder_input),
            tgt_mask=self.causal[:length, :length],
        )
        return self.head(out)  # (N, length, 10): each next digit's logits


def batch(rng: numpy.random.Generator, size: int) -> tuple[cr.Tensor, cr.Tensor, cr.Tensor]:
    digits = rng.integers(0, DIGITS, (size, LENGTH))
    target = numpy.sort(digits, axis=1)
    decoder_input = numpy.concatenate([numpy.full((size, 1), START), target[:, :-1]], axis=1)
    return cr.tensor(digits), cr.tensor(decoder_input), cr.tensor(target)


def greedy_sort(model: Sorter, digits: cr.Tensor) -> numpy.ndarray:
    """Write the sorted sequence one digit at a time from the model's own output."""
    written = numpy.full((digits.shape[0], 1), START)
    with cr.no_grad():
        for _ in range(LENGTH):
            logits = model(digits, cr.tensor(written))
            following = logits[:, -1].argmax(-1).numpy()
            written = numpy.concatenate([written, following[:, None]], axis=1)
    return written[:, 1:]


def sorted_share(model: Sorter, rng: numpy.random.Generator) -> float:
    digits, _, target = batch(rng, 500)
    return float((greedy_sort(model, digits) == target.numpy()).all(axis=1).mean())


def main() -> None:
    cr.manual_seed(0)
    rng = numpy.random.default_rng(0)
    model = Sorter()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    schedule = optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=STEPS)
    model.eval()
    before = sorted_share(model, numpy.random.default_rng(1))
    model.train()
    for step in range(1, STEPS + 1):
        digits, decoder_input, target = batch(rng, BATCH)
        logits = model(digits, decoder_input)
        loss = F.cross_entropy(logits.reshape(-1, DIGITS), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if step % 100 == 0:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    model.eval()
    after = sorted_share(model, numpy.random.default_rng(1))
    print(f"test sequences sorted exactly: {before:.1%} before training, {after:.1%} after")

    digits, _, _ = batch(numpy.random.default_rng(2), 1)
    output = greedy_sort(model, digits)
    print(f"input  {digits.numpy()[0].tolist()}")
    print(f"sorted {output[0].tolist()}")
    # Where the last decoder layer's cross-attention looks for each digit it writes: its
    # queries are what its first residual block (post-norm self-attention) makes.
    layer = model.transformer.decoder.layers[-1]
    with cr.no_grad():
        memory = model.transformer.encoder(model.tokens(digits))
        written = cr.tensor(numpy.concatenate([[[START]], output[:, :-1]], axis=1))
        tgt = model.tokens(written)
        for earlier in model.transformer.decoder.layers[:-1]:
            tgt = earlier(tgt, memory, tgt_mask=model.causal)
        query = layer.norm1(tgt + layer.self_attn(tgt, tgt, tgt, attn_mask=model.causal)[0])
        _, weights = layer.multihead_attn(query, memory, memory)
    looked_at = weights.numpy()[0].argmax(-1)
    pairs = ", ".join(
        f"{d}←{digits.numpy()[0][i]}" for d, i in zip(output[0], looked_at, strict=True)
    )
    print(f"each output digit ← the input digit it attends to most: {pairs}")


if __name__ == "__main__":
    main()
