"""Core benchmark (issue: Tensor and autograd): per-op overhead and one MLP training step.

    python benchmarks/bench_core.py            # prints medians and ratios, writes JSON

On a shared, loaded machine, multi-threaded BLAS makes the medians wander (one run on a
2-core VM at load 6 had NumPy's MLP step at batch 128 ten times its batch-32 time); one
thread per library gives steady figures there:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_core.py

Workloads, each written three times with the same math (chainrule, PyTorch eager on the
CPU, and raw NumPy with the backward pass written by hand):

- ``chain200``: a chain of 200 tiny elementwise ops (×0.9, +c, tanh, −0.1 repeated on a
  16-element float32 vector), forward and backward. Per-op time = total / 200.
- ``mlp_B``: one SGD step of an MLP 784-512-256-10 (ReLU, log-softmax + NLL from core ops,
  update by hand), float32, batch B in 32, 128, 1024.

Second order (chainrule and PyTorch only; NumPy has no autograd to differentiate twice),
on the same MLP and loss at batch 128, H the Hessian of the loss w.r.t. all six weights:

- ``fwdbwd_128``: one forward + backward (gradients only, no update): the unit.
- ``hvp_128``: one Hessian-vector product H v by double backward: g = grad(loss, params,
  create_graph=True), then grad(⟨g, v⟩, params); forward included.
- ``hvp_functional_128`` / ``vhp_functional_128``: ``autograd.functional.hvp`` / ``vhp``
  on the loss as a function of the weights. PyTorch's hvp takes a double-vjp detour
  (its docs: "significantly slower than vhp"); chainrule's hvp is its vhp (H = Hᵀ).

Targets: chainrule's per-op time at most half of PyTorch's; the MLP step at most 1.15×
raw NumPy at batch 32 and 128 and no slower than PyTorch at 1024. An HVP costs about 4×
a forward + backward in HIPS autograd; PyTorch's figure is printed beside chainrule's.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness

SIZES = (784, 512, 256, 10)
BATCHES = (32, 128, 1024)
CHAIN_LEN = 200  # 50 repetitions of the four ops
LR = 0.01
HVP_BATCH = 128
HVP_TASKS = [
    f"{name}_{HVP_BATCH}" for name in ("fwdbwd", "hvp", "hvp_functional", "vhp_functional")
]


def _directions() -> list[Any]:
    """The fixed vectors v of the Hessian-vector products, one per weight."""
    import numpy as np

    rng = np.random.default_rng(1)
    return [rng.standard_normal(p.shape).astype(np.float32) for p in _data(HVP_BATCH)[2]]


def _data(batch: int) -> tuple[Any, Any, list[Any]]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], batch)
    params = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        params.append(
            (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(np.float32)
        )
        params.append(np.zeros(fan_out, np.float32))
    return x, y, params


# ---------------------------------------------------------------------------- chainrule
def chainrule_tasks() -> dict[str, harness.Task]:
    import chainrule as cr

    def chain() -> Callable[[], None]:
        x = cr.randn(16, requires_grad=True)
        c = cr.randn(16)

        def step() -> None:
            h = x
            for _ in range(CHAIN_LEN // 4):
                h = (h * 0.9 + c).tanh() - 0.1
            h.sum().backward()
            x.grad = None

        return step

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            xn, yn, pn = _data(batch)
            x, rows, y = cr.tensor(xn), cr.arange(batch), cr.tensor(yn)
            w1, b1, w2, b2, w3, b3 = (cr.tensor(p, requires_grad=True) for p in pn)
            params = (w1, b1, w2, b2, w3, b3)

            def step() -> None:
                logits = ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
                loss = -logits.log_softmax(dim=1)[rows, y].mean()
                loss.backward()
                with cr.no_grad():
                    for p in params:
                        p -= LR * p.grad
                        p.grad = None

            return step

        return build

    tasks: dict[str, harness.Task] = {"chain200": chain}
    tasks.update({f"mlp_{b}": mlp(b) for b in BATCHES})
    tasks.update(zip(HVP_TASKS, chainrule_second_order()))
    return tasks


def chainrule_second_order() -> list[harness.Task]:
    """fwd+bwd, HVP by double backward, functional hvp and vhp (the order of HVP_TASKS)."""
    import chainrule as cr

    xn, yn, pn = _data(HVP_BATCH)
    x, rows, y = cr.tensor(xn), cr.arange(HVP_BATCH), cr.tensor(yn)
    params = [cr.tensor(p, requires_grad=True) for p in pn]
    vs = [cr.tensor(v) for v in _directions()]

    def loss_of(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any) -> Any:
        logits = ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
        return -logits.log_softmax(dim=1)[rows, y].mean()

    def fwdbwd() -> Callable[[], None]:
        def step() -> None:
            loss_of(*params).backward()
            for p in params:
                p.grad = None

        return step

    def double_backward() -> Callable[[], None]:
        def step() -> None:
            grads = cr.autograd.grad(loss_of(*params), params, create_graph=True)
            inner = sum((g * v).sum() for g, v in zip(grads, vs))
            cr.autograd.grad(inner, params)

        return step

    def functional(tool: Callable[..., Any]) -> harness.Task:
        def build() -> Callable[[], None]:
            def step() -> None:
                tool(loss_of, tuple(params), tuple(vs))

            return step

        return build

    return [
        fwdbwd,
        double_backward,
        functional(cr.autograd.hvp),
        functional(cr.autograd.vhp),
    ]


# ------------------------------------------------------------------------------- torch
def torch_tasks() -> dict[str, harness.Task]:
    import torch

    def chain() -> Callable[[], None]:
        x = torch.randn(16, requires_grad=True)
        c = torch.randn(16)

        def step() -> None:
            h = x
            for _ in range(CHAIN_LEN // 4):
                h = (h * 0.9 + c).tanh() - 0.1
            h.sum().backward()
            x.grad = None

        return step

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            xn, yn, pn = _data(batch)
            x, rows, y = torch.tensor(xn), torch.arange(batch), torch.tensor(yn)
            params = [torch.tensor(p, requires_grad=True) for p in pn]
            w1, b1, w2, b2, w3, b3 = params

            def step() -> None:
                logits = ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
                loss = -logits.log_softmax(dim=1)[rows, y].mean()
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        p -= LR * p.grad
                        p.grad = None

            return step

        return build

    tasks: dict[str, harness.Task] = {"chain200": chain}
    tasks.update({f"mlp_{b}": mlp(b) for b in BATCHES})
    tasks.update(zip(HVP_TASKS, torch_second_order()))
    return tasks


def torch_second_order() -> list[harness.Task]:
    """The same four workloads as ``chainrule_second_order``, in PyTorch."""
    import torch

    xn, yn, pn = _data(HVP_BATCH)
    x, rows, y = torch.tensor(xn), torch.arange(HVP_BATCH), torch.tensor(yn)
    params = [torch.tensor(p, requires_grad=True) for p in pn]
    vs = [torch.tensor(v) for v in _directions()]

    def loss_of(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any) -> Any:
        logits = ((x @ w1 + b1).relu() @ w2 + b2).relu() @ w3 + b3
        return -logits.log_softmax(dim=1)[rows, y].mean()

    def fwdbwd() -> Callable[[], None]:
        def step() -> None:
            loss_of(*params).backward()
            for p in params:
                p.grad = None

        return step

    def double_backward() -> Callable[[], None]:
        def step() -> None:
            grads = torch.autograd.grad(loss_of(*params), params, create_graph=True)
            inner = sum((g * v).sum() for g, v in zip(grads, vs))
            torch.autograd.grad(inner, params)

        return step

    def functional(tool: Callable[..., Any]) -> harness.Task:
        def build() -> Callable[[], None]:
            def step() -> None:
                tool(loss_of, tuple(params), tuple(vs))

            return step

        return build

    return [
        fwdbwd,
        double_backward,
        functional(torch.autograd.functional.hvp),
        functional(torch.autograd.functional.vhp),
    ]


# ------------------------------------------------------------------------------- numpy
def numpy_tasks() -> dict[str, harness.Task]:
    import numpy as np

    def chain() -> Callable[[], None]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal(16).astype(np.float32)
        c = rng.standard_normal(16).astype(np.float32)

        def step() -> None:
            outs = []
            h = x
            for _ in range(CHAIN_LEN // 4):
                h = np.tanh(h * 0.9 + c)
                outs.append(h)
                h = h - 0.1
            h.sum()
            g = np.ones_like(h)
            for t in reversed(outs):  # d(tanh)/dz = 1 - tanh², then ×0.9
                g = g * (1 - t * t) * 0.9
            return None

        return step

    def mlp(batch: int) -> harness.Task:
        def build() -> Callable[[], None]:
            x, y, params = _data(batch)
            rows = np.arange(batch)
            w1, b1, w2, b2, w3, b3 = params

            def step() -> None:
                h1 = x @ w1 + b1
                a1 = np.maximum(h1, 0)
                h2 = a1 @ w2 + b2
                a2 = np.maximum(h2, 0)
                z = a2 @ w3 + b3
                m = z.max(axis=1, keepdims=True)
                logp = z - (np.log(np.exp(z - m).sum(axis=1, keepdims=True)) + m)
                float(-logp[rows, y].mean())
                dz = np.exp(logp)
                dz[rows, y] -= 1
                dz /= batch
                dw3, db3 = a2.T @ dz, dz.sum(0)
                dh2 = (dz @ w3.T) * (h2 > 0)
                dw2, db2 = a1.T @ dh2, dh2.sum(0)
                dh1 = (dh2 @ w2.T) * (h1 > 0)
                dw1, db1 = x.T @ dh1, dh1.sum(0)
                for p, g in zip(params, (dw1, db1, dw2, db2, dw3, db3)):
                    p -= LR * g

            return step

        return build

    tasks: dict[str, harness.Task] = {"chain200": chain}
    tasks.update({f"mlp_{b}": mlp(b) for b in BATCHES})
    return tasks


WORKERS = {"chainrule": chainrule_tasks, "torch": torch_tasks, "numpy": numpy_tasks}


def report(results: harness.Results) -> None:
    per_op = {"chain200": results["chain200"]}
    print("per-op overhead (forward + backward, µs per op):")
    print(harness.table(per_op, "torch", extra={"chain200": CHAIN_LEN}))
    print()
    mlp = {t: r for t, r in results.items() if t.startswith("mlp")}
    print("MLP 784-512-256-10 training step (ms):")
    print(harness.table(mlp, "numpy", unit=1e3, unit_name="ms"))
    print()
    ops = results["chain200"]
    print(f"per-op: chainrule/torch = {ops['chainrule'] / ops['torch']:.2f} (target <= 0.50)")
    for b in BATCHES:
        r = results[f"mlp_{b}"]
        print(
            f"mlp batch {b:4d}: chainrule/numpy = {r['chainrule'] / r['numpy']:.2f}, "
            f"chainrule/torch = {r['chainrule'] / r['torch']:.2f}, "
            f"torch/numpy = {r['torch'] / r['numpy']:.2f}"
        )
    print()
    second = {t: results[t] for t in HVP_TASKS}
    print(f"second order, MLP 784-512-256-10 at batch {HVP_BATCH} (ms):")
    print(harness.table(second, "torch", unit=1e3, unit_name="ms"))
    print()
    unit = second[HVP_TASKS[0]]
    for task in HVP_TASKS[1:]:
        r = second[task]
        print(
            f"{task:22s}: chainrule HVP/fwd+bwd = {r['chainrule'] / unit['chainrule']:.2f}, "
            f"torch HVP/fwd+bwd = {r['torch'] / unit['torch']:.2f}, "
            f"chainrule/torch = {r['chainrule'] / r['torch']:.2f}"
        )
    print("(HIPS autograd's figure: an HVP costs about 4x a forward + backward)")


def main() -> None:
    tasks = ["chain200", *(f"mlp_{b}" for b in BATCHES), *HVP_TASKS]
    contenders = {task: ["chainrule", "torch"] for task in HVP_TASKS}
    harness.run(__file__, __doc__, WORKERS, tasks, report, contenders)


if __name__ == "__main__":
    main()
