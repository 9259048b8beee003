"""Define-by-run: the graph is whatever the Python code did, loops and branches included.

A tiny recurrent network reads sequences of different lengths; each sequence builds a
graph as deep as the sequence is long, and backward follows it.

    python examples/define_by_run.py
"""

from __future__ import annotations

import chainrule as cr

cr.manual_seed(0)
hidden = 8
w_h = (cr.randn(hidden, hidden) * 0.3).requires_grad_()
w_x = (cr.randn(1, hidden) * 0.3).requires_grad_()
w_out = (cr.randn(hidden, 1) * 0.3).requires_grad_()
params = [w_h, w_x, w_out]


def predict_sum(sequence: list[float]) -> cr.Tensor:
    """Run the RNN over the sequence; the number of steps depends on the data."""
    h = cr.zeros(1, hidden)
    for value in sequence:
        h = (h @ w_h + cr.tensor([[value]]) @ w_x).tanh()
    return (h @ w_out).reshape(())


gen = cr.Generator(1)
for step in range(301):
    length = int(gen.integers(1, 8, ()))  # a different graph depth every step
    seq = [float(v) for v in gen.random((length,)) * 0.2]
    loss = (predict_sum(seq) - sum(seq)) ** 2
    loss.backward()
    with cr.no_grad():
        for p in params:
            p -= 0.05 * p.grad
            p.grad = None
    if step % 100 == 0:
        print(f"step {step:3d}  length {length}  loss {loss.item():.5f}")

print("prediction for [0.1, 0.05, 0.15]:", predict_sum([0.1, 0.05, 0.15]).item(), "(target 0.3)")
