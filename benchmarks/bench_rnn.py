"""Recurrent benchmark: one LSTM layer and one plain (tanh) RNN layer, forward and backward
through time, float32.

    python benchmarks/bench_rnn.py            # prints medians and ratios, writes JSON

Workloads (T steps, batch N, input I, hidden H), the timed step being the forward pass,
the loss Σ out ⊙ G (G fixed, random) and the backward pass to every weight and the input:

- ``mnist_rows``: T=28, N=128, I=28, H=128, the classic row-by-row MNIST LSTM;
- ``seq50``: T=50, N=32, I=64, H=128, a longer sequence at a small batch;
- ``rnn_mnist_rows``, ``rnn_seq50``: the same shapes with ``nn.RNN`` (tanh), whose step is
  a single product and a tanh, so the per-step overhead weighs most there.

Three contenders, each in a process of its own:

- ``chainrule``: ``nn.LSTM`` / ``nn.RNN`` (one node per sequence, ``LSTMLayerFunction`` /
  ``RNNLayerFunction``, the input projections of all steps in one product);
- ``torch``: ``torch.nn.LSTM`` / ``torch.nn.RNN``, eager, CPU (its fused CPU kernels);
- ``numpy``: the same math in raw NumPy with backpropagation through time written by
  hand, the floor for any NumPy implementation that runs step by step.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

SHAPES = {"mnist_rows": (28, 128, 28, 128), "seq50": (50, 32, 64, 128)}
# Every task: (layer kind, shape); the LSTM keeps its original task names.
TASKS = {
    **{task: ("lstm", shape) for task, shape in SHAPES.items()},
    **{f"rnn_{task}": ("rnn", shape) for task, shape in SHAPES.items()},
}
GATES = {"lstm": 4, "rnn": 1}  # blocks of W_ih and W_hh rows


def _data(task: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    kind, (steps, batch, inputs, hidden) = TASKS[task]
    rows = GATES[kind] * hidden
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    g = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    bound = 1 / np.sqrt(hidden)
    params = {
        name: rng.uniform(-bound, bound, shape).astype(np.float32)
        for name, shape in (
            ("weight_ih_l0", (rows, inputs)),
            ("weight_hh_l0", (rows, hidden)),
            ("bias_ih_l0", (rows,)),
            ("bias_hh_l0", (rows,)),
        )
    }
    return x, g, params


def chainrule_tasks() -> dict[str, harness.Task]:
    import chainrule as cr
    from chainrule import nn

    def make(task: str) -> harness.Task:
        def build() -> Callable[[], None]:
            x, g, params = _data(task)
            layer = {"lstm": nn.LSTM, "rnn": nn.RNN}[TASKS[task][0]]
            model = layer(x.shape[2], g.shape[2])
            model.load_state_dict(params)
            xc, gc = cr.tensor(x, requires_grad=True), cr.tensor(g)

            def step() -> None:
                out, _ = model(xc)
                (out * gc).sum().backward()
                xc.grad = None
                for p in model.parameters():
                    p.grad = None

            return step

        return build

    return {task: make(task) for task in TASKS}


def torch_tasks() -> dict[str, harness.Task]:
    import torch

    def make(task: str) -> harness.Task:
        def build() -> Callable[[], None]:
            x, g, params = _data(task)
            layer = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[TASKS[task][0]]
            model = layer(x.shape[2], g.shape[2])
            model.load_state_dict({k: torch.tensor(v) for k, v in params.items()})
            xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)

            def step() -> None:
                out, _ = model(xt)
                (out * gt).sum().backward()
                xt.grad = None
                for p in model.parameters():
                    p.grad = None

            return step

        return build

    return {task: make(task) for task in TASKS}


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _numpy_lstm(task: str) -> Callable[[], None]:
    x, g, p = _data(task)
    w_ih, w_hh = p["weight_ih_l0"], p["weight_hh_l0"]
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]

    def step() -> None:
        projected = (x.reshape(steps * batch, -1) @ w_ih.T + b).reshape(steps, batch, -1)
        h = np.zeros((batch, hidden), np.float32)
        c = np.zeros_like(h)
        saved = []
        for t in range(steps):
            pre = projected[t] + h @ w_hh.T
            i, f, o = (_sigmoid(pre[:, k * hidden : (k + 1) * hidden]) for k in (0, 1, 3))
            gg = np.tanh(pre[:, 2 * hidden : 3 * hidden])
            c_prev, h_prev = c, h
            c = f * c + i * gg
            tc = np.tanh(c)
            h = o * tc
            saved.append((i, f, o, gg, c_prev, tc, h_prev))
        d_pre_all = np.empty_like(projected)
        dw_hh = np.zeros_like(w_hh)
        dh_next = np.zeros((batch, hidden), np.float32)
        dc_next = np.zeros_like(dh_next)
        for t in range(steps - 1, -1, -1):
            i, f, o, gg, c_prev, tc, h_prev = saved[t]
            dh = g[t] + dh_next
            dc = dc_next + dh * o * (1 - tc * tc)
            d_pre = d_pre_all[t]
            d_pre[:, :hidden] = dc * gg * i * (1 - i)
            d_pre[:, hidden : 2 * hidden] = dc * c_prev * f * (1 - f)
            d_pre[:, 2 * hidden : 3 * hidden] = dc * i * (1 - gg * gg)
            d_pre[:, 3 * hidden :] = dh * tc * o * (1 - o)
            dw_hh += d_pre.T @ h_prev
            dh_next = d_pre @ w_hh
            dc_next = dc * f
        flat = d_pre_all.reshape(steps * batch, -1)
        _dw_ih = flat.T @ x.reshape(steps * batch, -1)
        _db = flat.sum(axis=0)
        _dx = flat @ w_ih

    return step


def _numpy_rnn(task: str) -> Callable[[], None]:
    x, g, p = _data(task)
    w_ih, w_hh = p["weight_ih_l0"], p["weight_hh_l0"]
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]

    def step() -> None:
        projected = (x.reshape(steps * batch, -1) @ w_ih.T + b).reshape(steps, batch, -1)
        # states[t] is h_{t-1}: states[0] the zero initial state, states[1:] the outputs
        states = np.zeros((steps + 1, batch, hidden), np.float32)
        for t in range(steps):
            states[t + 1] = np.tanh(projected[t] + states[t] @ w_hh.T)
        out = states[1:]
        d_pre_all = np.empty_like(projected)
        dh_next = np.zeros((batch, hidden), np.float32)
        for t in range(steps - 1, -1, -1):
            d_pre = d_pre_all[t]
            np.multiply(g[t] + dh_next, 1 - out[t] * out[t], out=d_pre)
            dh_next = d_pre @ w_hh
        flat = d_pre_all.reshape(steps * batch, -1)
        _dw_hh = flat.T @ states[:-1].reshape(steps * batch, -1)
        _dw_ih = flat.T @ x.reshape(steps * batch, -1)
        _db = flat.sum(axis=0)
        _dx = flat @ w_ih

    return step


def numpy_tasks() -> dict[str, harness.Task]:
    def make(task: str) -> harness.Task:
        builder = {"lstm": _numpy_lstm, "rnn": _numpy_rnn}[TASKS[task][0]]
        return lambda: builder(task)

    return {task: make(task) for task in TASKS}


WORKERS = {"chainrule": chainrule_tasks, "torch": torch_tasks, "numpy": numpy_tasks}


def report(results: harness.Results) -> None:
    print("LSTM and RNN (tanh) layers, forward + backward through time (ms):")
    print(harness.table(results, "numpy", unit=1e3, unit_name="ms"))
    print()
    for task, (kind, (steps, batch, inputs, hidden)) in TASKS.items():
        r = results[task]
        print(
            f"{task} ({kind.upper()}, T={steps}, N={batch}, I={inputs}, H={hidden}): "
            f"chainrule/torch = {r['chainrule'] / r['torch']:.2f}, "
            f"chainrule/numpy = {r['chainrule'] / r['numpy']:.2f}, "
            f"torch/numpy = {r['torch'] / r['numpy']:.2f}"
        )


def main() -> None:
    harness.run(__file__, __doc__, WORKERS, list(TASKS), report)


if __name__ == "__main__":
    main()
