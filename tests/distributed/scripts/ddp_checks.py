"""Run under mpirun: collectives, DDP parity with one process, overlap, unused parameters.

Rank 0 prints one line ``RESULT {json}`` that the tests read.
"""

from __future__ import annotations

import json

import numpy

import chainrule as cr
from chainrule import distributed as dist
from chainrule import nn, optim

dist.init(timeout=60)
R, r = dist.world_size(), dist.rank()
out: dict[str, object] = {"world_size": R}

# -- collectives --------------------------------------------------------------------------
t = cr.tensor([float(r), 1.0, 2.0 * r], dtype=cr.float64)
dist.all_reduce(t)
out["sum"] = t.data.tolist()
t = cr.tensor([float(r)])
dist.all_reduce(t, dist.ReduceOp.MAX)
out["max"] = t.data.tolist()
t = cr.tensor([float(r + 1)])
dist.all_reduce(t, dist.ReduceOp.AVG)
out["avg"] = t.data.tolist()
t = cr.tensor([float(r) * 10, 7.0])
dist.broadcast(t, src=R - 1)
out["broadcast"] = t.data.tolist()
parts = [cr.zeros(2) for _ in range(R)]
dist.all_gather(parts, cr.tensor([float(r), -float(r)]))
out["gather"] = [p.data.tolist() for p in parts]
dist.barrier()


def make_model(dtype: object) -> nn.Module:
    # The seed differs per rank: DDP must make the weights equal by broadcasting rank 0's.
    cr.manual_seed(100 + r)
    model = nn.Sequential(
        nn.Linear(6, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    )
    return model.to(dtype)


def reference_model(dtype: object) -> nn.Module:
    cr.manual_seed(100)  # rank 0's initial weights
    model = nn.Sequential(
        nn.Linear(6, 16),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    )
    return model.to(dtype)


def data(dtype: object, step: int) -> tuple[cr.Tensor, cr.Tensor]:
    rng = numpy.random.default_rng(step)
    x = rng.standard_normal((24, 6)).astype(dtype)
    y = rng.integers(0, 3, 24)
    return cr.tensor(x), cr.tensor(y)


def train(model: nn.Module, opt_name: str, dtype: object, steps: int, share: bool) -> None:
    params = list(model.parameters())
    opt = (
        optim.SGD(params, lr=0.1, momentum=0.9)
        if opt_name == "sgd"
        else optim.Adam(params, lr=0.01)
    )
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        x, y = data(dtype, step)
        if share:  # this rank's block of the global batch of 24
            b = 24 // R
            x, y = x[r * b : (r + 1) * b], y[r * b : (r + 1) * b]
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def flat(model: nn.Module) -> numpy.ndarray:
    return numpy.concatenate([p.data.reshape(-1).astype(numpy.float64) for p in model.parameters()])


def spread_over_ranks(vector: numpy.ndarray) -> float:
    """The largest difference between any rank's vector and rank 0's."""
    parts = [cr.zeros(len(vector), dtype=cr.float64) for _ in range(R)]
    dist.all_gather(parts, cr.tensor(vector))
    return max(float(numpy.abs(p.data - parts[0].data).max()) for p in parts)


# -- parity: R ranks at batch 24/R against one process at batch 24 ------------------------
parity = {}
for dtype_name in ("float64", "float32"):
    dtype = numpy.dtype(dtype_name)
    for opt_name in ("sgd", "adam"):
        ddp = dist.DistributedDataParallel(make_model(dtype), bucket_cap_mb=0.001).eval()
        train(ddp, opt_name, dtype, steps=5, share=True)
        ref = reference_model(dtype).eval()
        train(ref, opt_name, dtype, steps=5, share=False)
        parity[f"{opt_name}-{dtype_name}"] = {
            "to_one_process": float(numpy.abs(flat(ddp.module) - flat(ref)).max()),
            "moved": float(numpy.abs(flat(ref) - flat(reference_model(dtype))).max()),
            "across_ranks": spread_over_ranks(flat(ddp.module)),
        }
out["parity"] = parity

# -- dropout on: the masks differ per rank, the weights must still agree ------------------
cr.manual_seed(1000 + r)  # a dropout stream of its own on each rank
ddp = dist.DistributedDataParallel(make_model(numpy.dtype("float64"))).train()
train(ddp, "adam", numpy.dtype("float64"), steps=3, share=True)
out["dropout_across_ranks"] = spread_over_ranks(flat(ddp.module))

# -- overlap: the first all-reduce is issued before backward reaches the first layer -----
cr.manual_seed(0)
big = nn.Sequential(
    nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
)
ddp = dist.DistributedDataParallel(big, bucket_cap_mb=0.5, record_timeline=True)


def mark_first_layer(module: nn.Module, args: object, output: cr.Tensor) -> None:
    # The gradient of the first layer's output is ready just before its backward runs.
    output.register_hook(lambda g: ddp.timeline.append((0.0, "first_layer", -1)))


big[0].register_forward_hook(mark_first_layer)
x = cr.randn(256, 64)
ddp(x).sum().backward()
out["timeline"] = [event for _, event, _ in ddp.timeline]
out["buckets"] = ddp.buckets

# -- unused parameters --------------------------------------------------------------------


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head_a = nn.Linear(4, 2)
        self.head_b = nn.Linear(4, 2)

    def forward(self, x: cr.Tensor, head: str) -> cr.Tensor:
        return (self.head_a if head == "a" else self.head_b)(self.body(x))


cr.manual_seed(5)
ddp = dist.DistributedDataParallel(TwoHeads().double(), find_unused_parameters=True)
# Rank 0 uses head a, the others head b: every head's gradient is the average of the
# ranks that used it, divided by all ranks (unused ranks contribute zero).
ddp(cr.ones(3, 4, dtype=cr.float64), "a" if r == 0 else "b").sum().backward()
out["unused_grad_a"] = float(ddp.module.head_a.bias.grad.data[0])
out["unused_grad_b"] = float(ddp.module.head_b.bias.grad.data[0])

if r == 0:
    print("RESULT " + json.dumps(out), flush=True)
