"""Run under mpirun: one rank fails in the middle of training (``--mode``):

- ``kill``: rank 1 sends itself SIGKILL at step 3;
- ``raise``: rank 1 raises a ValueError at step 3;
- ``mismatch``: rank 1 builds a different model;
- ``stall``: rank 1 stops calling collectives (sleeps); the others must time out.
"""

from __future__ import annotations

import argparse
import os
import signal
import time

import chainrule as cr
from chainrule import distributed as dist
from chainrule import nn, optim

parser = argparse.ArgumentParser()
parser.add_argument("--mode", choices=["kill", "raise", "mismatch", "stall"], required=True)
mode = parser.parse_args().mode

dist.init(timeout=5 if mode == "stall" else 60)
r = dist.rank()
width = 9 if (mode == "mismatch" and r == 1) else 8
model = dist.DistributedDataParallel(
    nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))
)
opt = optim.SGD(model.parameters(), lr=0.1)
for step in range(1000):
    if step == 3 and r == 1:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "raise":
            raise ValueError("a bad batch on purpose")
        elif mode == "stall":
            time.sleep(600)
    opt.zero_grad()
    model(cr.randn(8, 4)).sum().backward()
    opt.step()
    time.sleep(0.01)
print(f"rank {r} finished all steps", flush=True)
