"""The workloads of ``bench_gpu.py``, one builder per library (each runs in its own process).

Every library gets the same three workloads:

- ``mlp-<batch>``: one training step of an MLP 784-512-256-10 (forward, cross-entropy,
  backward, Adam), the batch on the device;
- ``ops-200``: a chain of 200 small elementwise ops (1,024 floats), the per-op overhead;
- ``epoch``: an epoch of 60,000 examples (Fashion-MNIST, or synthetic data of its shape)
  held on the device, batches of 128 drawn by a device permutation.

A builder returns a callable that runs the workload once; ``time_it`` runs it ``iters``
times between two device synchronisations, ``repeats`` times, and keeps the medians.
``Env`` says where arrays live: the GPU, or (``--dry-run``) NumPy and torch's CPU, which
checks the plumbing on a machine without a GPU.
"""

from __future__ import annotations

import gzip
import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"
LAYERS = (784, 512, 256, 10)
LR = 1e-3


@dataclass
class Env:
    """Sizes and device of one run (the GPU's, or the tiny dry run's)."""

    dry_run: bool
    batches: tuple[int, ...] = (128, 1024, 8192)
    chain: int = 200
    epoch_rows: int = 60_000
    epoch_batch: int = 128
    iters: dict[int, int] = field(default_factory=lambda: {128: 20, 1024: 20, 8192: 10})
    repeats: int = 7
    epoch_repeats: int = 3

    @staticmethod
    def make(dry_run: bool) -> Env:
        if not dry_run:
            return Env(False)
        return Env(True, (8, 32), 20, 256, 64, {8: 2, 32: 2}, 2, 1)


def time_it(
    run: Callable[[], Any], sync: Callable[[], None], iters: int, repeats: int, warmup: int
) -> dict[str, Any]:
    """Median seconds of one ``run`` (``iters`` runs between synchronisations)."""
    for _ in range(warmup):
        run()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            run()
        sync()
        samples.append((time.perf_counter() - start) / iters)
    return {"seconds": statistics.median(samples), "samples": samples}


def load_epoch_data(env: Env) -> tuple[np.ndarray, np.ndarray, str]:
    """(x float32 (n, 784) in [0, 1], y int64 (n,), where they came from)."""
    images = os.path.join(FASHION, "train-images-idx3-ubyte.gz")
    labels = os.path.join(FASHION, "train-labels-idx1-ubyte.gz")
    if not env.dry_run and os.path.exists(images) and os.path.exists(labels):
        with gzip.open(images, "rb") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
        with gzip.open(labels, "rb") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
        return (x / np.float32(255)).astype(np.float32), y, "Fashion-MNIST train (60000x784)"
    rng = np.random.default_rng(0)
    x = rng.random((env.epoch_rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, env.epoch_rows)
    why = "dry run" if env.dry_run else f"files absent under {FASHION}"
    return x, y, f"synthetic {env.epoch_rows}x784 ({why})"


def init_params(dtype: Any = np.float32) -> list[np.ndarray]:
    """W1, b1, W2, b2, W3, b3 with PyTorch's default (Kaiming-uniform-like) ranges."""
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in itertools.pairwise(LAYERS):
        bound = 1 / np.sqrt(n_in)
        params.append(rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype))
        params.append(rng.uniform(-bound, bound, n_out).astype(dtype))
    return params


def batch_data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.random((batch, 784), dtype=np.float32), rng.integers(0, 10, batch)


class Library:
    """One contender: builds the workloads it offers (None: not offered)."""

    name = ""

    def __init__(self, env: Env) -> None:
        self.env = env

    def sync(self) -> None:
        pass

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        return None

    def ops_chain(self) -> Callable[[], Any] | None:
        return None

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        return None


class Torch(Library):
    """PyTorch eager on CUDA (its CPU in the dry run), default Adam (foreach)."""

    name = "torch"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        import torch

        self.torch = torch
        self.device = "cpu" if env.dry_run else "cuda"
        if env.dry_run:  # tiny sizes on a shared CPU: threads only get in each other's way
            torch.set_num_threads(1)

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def model(self, **adam: Any) -> tuple[Any, Any]:
        torch = self.torch
        layers: list[Any] = []
        for n_in, n_out in itertools.pairwise(LAYERS):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1]).to(self.device)
        return model, torch.optim.Adam(model.parameters(), lr=LR, **adam)

    def tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        t = self.torch
        return t.tensor(x, device=self.device), t.tensor(y, device=self.device)

    def train_step(self, model: Any, opt: Any) -> Callable[[Any, Any], Any]:
        cross_entropy = self.torch.nn.functional.cross_entropy

        def step(x: Any, y: Any) -> Any:
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        step = self.train_step(*self.model())
        x, y = self.tensors(*batch_data(batch))
        return lambda: step(x, y)

    def ops_chain(self) -> Callable[[], Any] | None:
        x = self.torch.rand(1024, device=self.device)
        half = self.env.chain // 2

        def run() -> Any:
            v = x
            for _ in range(half):
                v = v * 1.0001
                v = v + 0.0001
            return v

        return run

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        step = self.train_step(*self.model())
        xs, ys = self.tensors(x, y)
        n, b = len(x), self.env.epoch_batch

        def run() -> None:
            perm = self.torch.randperm(n, device=self.device)
            for start in range(0, n - b + 1, b):
                idx = perm[start : start + b]
                step(xs[idx], ys[idx])

        return run


class TorchGraph(Torch):
    """The whole PyTorch step captured in one CUDA graph (torch.cuda.graph, capturable
    Adam), PyTorch's documented whole-network capture."""

    name = "torch-graph"

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        torch = self.torch
        model, opt = self.model(capturable=True)
        step = self.train_step(model, opt)
        x, y = self.tensors(*batch_data(batch))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step(x, y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        cross_entropy = torch.nn.functional.cross_entropy
        with torch.cuda.graph(graph):
            loss = cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return graph.replay

    def ops_chain(self) -> Callable[[], Any] | None:
        return None

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        return None


class TorchCompile(Torch):
    """torch.compile(mode="reduce-overhead") on forward + loss (CUDA graphs inside), the
    backward it compiles with it, and Adam(fused=True)."""

    name = "torch-compile"

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        torch = self.torch
        model, opt = self.model(fused=True)
        cross_entropy = torch.nn.functional.cross_entropy

        @torch.compile(mode="reduce-overhead")
        def forward(x: Any, y: Any) -> Any:
            return cross_entropy(model(x), y)

        x, y = self.tensors(*batch_data(batch))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            forward(x, y).backward()
            opt.step()

        return step

    def ops_chain(self) -> Callable[[], Any] | None:
        return None

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        return None
