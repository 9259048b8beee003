"""A character-level language model: an LSTM learns to continue the Zen of Python.

The text comes with Python itself (``import this``, stored ROT13-encoded), so the example
runs offline. Each training batch is 32 windows of 48 characters; the model (an
embedding, one LSTM layer of 128 units, a linear layer to the 30-odd characters) learns to
predict every next character, trained by backpropagation through the 48 steps of each
window, with the gradient norm clipped (``nn.utils.clip_grad_norm_``), as recurrent
networks usually need.

It reports the loss in bits per character (log₂ of the number of characters for a
uniform guess, lower is better) and prints a sample continued from a prompt, drawn one
character at a time from the model's own predictions.

Run it from the repository root:

    python examples/char_lstm.py
"""

from __future__ import annotations

import codecs
import math

import numpy

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

STEPS = 200
WINDOW = 48
BATCH = 32


def zen() -> str:
    import this  # prints the Zen once on import; its text is kept ROT13-encoded

    return codecs.decode(this.s, "rot13")


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, codes: cr.Tensor, state: object = None) -> tuple[cr.Tensor, object]:
        out, state = self.lstm(self.embed(codes), state)
        return self.head(out), state


def sample(model: CharLSTM, prompt: str, chars: list[str], length: int = 80) -> str:
    """Continue ``prompt`` one character at a time, each drawn from the predicted
    distribution (temperature 0.5), the LSTM state carried from step to step."""
    index = {c: i for i, c in enumerate(chars)}
    rng = numpy.random.default_rng(1)
    with cr.no_grad():
        logits, state = model(cr.tensor(numpy.array([[index[c] for c in prompt]])))
        text = prompt
        for _ in range(length):
            p = (logits[0, -1] / 0.5).softmax(-1).numpy().astype(numpy.float64)
            code = int(rng.choice(len(chars), p=p / p.sum()))
            text += chars[code]
            logits, state = model(cr.tensor(numpy.array([[code]])), state)
    return text


def main() -> None:
    cr.manual_seed(0)
    text = zen()
    chars = sorted(set(text))
    codes = numpy.array([chars.index(c) for c in text])
    model = CharLSTM(len(chars))
    opt = cr.optim.Adam(model.parameters(), lr=1e-2)
    rng = numpy.random.default_rng(0)
    uniform = math.log2(len(chars))
    print(
        f"{len(text)} characters, {len(chars)} distinct: a uniform guess costs {uniform:.2f} bits"
    )
    for step in range(1, STEPS + 1):
        starts = rng.integers(0, len(codes) - WINDOW - 1, BATCH)
        windows = numpy.stack([codes[s : s + WINDOW + 1] for s in starts])
        x, y = cr.tensor(windows[:, :-1]), cr.tensor(windows[:, 1:])
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step == 1 or step % 100 == 0:
            print(f"step {step:3d}: {loss.item() / math.log(2):.2f} bits per character")
    bits = loss.item() / math.log(2)
    print("sample:", repr(sample(model, "Beautiful is ", chars)))
    assert bits < 0.6 * uniform, "the model should learn far better than a uniform guess"


if __name__ == "__main__":
    main()
