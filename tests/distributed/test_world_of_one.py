"""Without mpirun: a world of one, where the distributed API still works (no MPI needed)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy
import pytest

import chainrule as cr
from chainrule import distributed as dist
from chainrule import nn, optim
from chainrule.distributed.launch import mpirun_command


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dist.world.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_world_of_one() -> None:
    dist.init()
    assert dist.is_initialized()
    assert (dist.rank(), dist.world_size()) == (0, 1)
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    dist.barrier()


def test_collectives_leave_the_tensor_in_a_world_of_one() -> None:
    t = cr.tensor([1.0, -2.0])
    dist.all_reduce(t)
    assert t.data.tolist() == [1.0, -2.0]
    dist.all_reduce(t, dist.ReduceOp.AVG)
    assert t.data.tolist() == [1.0, -2.0]
    dist.broadcast(t, src=0)
    parts = [cr.zeros(2)]
    dist.all_gather(parts, t)
    assert parts[0].data.tolist() == [1.0, -2.0]


def test_collective_errors_name_the_mistake() -> None:
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 1\), got 3"):
        dist.broadcast(cr.zeros(2), src=3)
    with pytest.raises(ValueError, match=r"tensor_list\[0\] has shape \(3,\)"):
        dist.all_gather([cr.zeros(3)], cr.zeros(2))
    with pytest.raises(ValueError, match="must hold world_size\\(\\)=1 tensors, got 2"):
        dist.all_gather([cr.zeros(2), cr.zeros(2)], cr.zeros(2))


def test_ddp_of_one_trains_like_the_plain_module() -> None:
    cr.manual_seed(3)
    plain = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).double()
    cr.manual_seed(3)
    wrapped = dist.DistributedDataParallel(
        nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).double()
    )
    x = cr.randn(9, 5, dtype=cr.float64)
    for model in (plain, wrapped):
        opt = optim.Adam(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(plain.parameters(), wrapped.module.parameters()):
        numpy.testing.assert_array_equal(a.data, b.data)
    assert list(wrapped.state_dict()) == [f"module.{k}" for k in plain.state_dict()]


def test_ddp_buckets_follow_reverse_order_and_cap() -> None:
    model = nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 512), nn.Linear(512, 4))
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1.5)
    # The first bucket closes past 1 MB (PyTorch's first-bucket cap), the others past 1.5.
    assert ddp.buckets == [
        ["2.bias", "2.weight", "1.bias", "1.weight"],
        ["0.bias", "0.weight"],
    ]
    with pytest.raises(ValueError, match="bucket_cap_mb must be > 0"):
        dist.DistributedDataParallel(model, bucket_cap_mb=0)
    with pytest.raises(TypeError, match=r"wraps an nn\.Module, got function"):
        dist.DistributedDataParallel(lambda x: x)  # type: ignore[arg-type]


def test_mpirun_command_adds_root_and_oversubscribe_flags_where_they_apply() -> None:
    pytest.importorskip("mpi4py")
    command = mpirun_command(64, ["prog", "--x"])
    assert command[1:3] == ["-np", "64"]
    assert command[-2:] == ["prog", "--x"]
    assert "--oversubscribe" in command  # 64 ranks on this machine's few cores
    assert ("--allow-run-as-root" in command) == (os.geteuid() == 0)
    assert "--oversubscribe" not in mpirun_command(1, ["prog"])
    with pytest.raises(ValueError, match="positive integer, got 0"):
        mpirun_command(0, ["prog"])


def test_launcher_without_mpi4py_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['mpi4py'] = None; "
        "from chainrule import distributed; distributed.init()"
    )
    env = {**os.environ, "OMPI_COMM_WORLD_SIZE": "2"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "mpi4py is not installed" in proc.stderr
    assert "pip install 'chainrule[mpi]'" in proc.stderr
