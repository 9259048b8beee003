"""DistributedDataParallel under ``mpirun -np 2`` and ``-np 4`` (see scripts/ddp_checks.py)."""

from __future__ import annotations

from typing import Any

import pytest
from mpi_launch import mpirun, requires_mpi, results

pytestmark = requires_mpi


@pytest.fixture(scope="module", params=[2, 4])
def checks(request: pytest.FixtureRequest) -> dict[str, Any]:
    return results(mpirun(request.param, "ddp_checks.py", timeout=180))


def test_collectives(checks: dict[str, Any]) -> None:
    R = checks["world_size"]
    assert checks["sum"] == [R * (R - 1) / 2, float(R), float(R * (R - 1))]
    assert checks["max"] == [float(R - 1)]
    assert checks["avg"] == [(R + 1) / 2]
    assert checks["broadcast"] == [10.0 * (R - 1), 7.0]
    assert checks["gather"] == [[float(r), -float(r)] for r in range(R)]


@pytest.mark.parametrize("case", ["sgd-float64", "adam-float64", "sgd-float32", "adam-float32"])
def test_ranks_at_batch_b_over_n_match_one_process_at_batch_b(
    checks: dict[str, Any], case: str
) -> None:
    result = checks["parity"][case]
    tolerance = 1e-10 if case.endswith("float64") else 1e-5
    assert result["moved"] > 1e-2  # the steps changed the weights: the check has teeth
    assert result["to_one_process"] < tolerance
    assert result["across_ranks"] == 0.0  # bit-identical on every rank


def test_weights_identical_on_every_rank_with_dropout_on(checks: dict[str, Any]) -> None:
    assert checks["dropout_across_ranks"] == 0.0


def test_first_all_reduce_is_issued_before_backward_reaches_the_first_layer(
    checks: dict[str, Any],
) -> None:
    timeline = checks["timeline"]
    assert len(checks["buckets"]) >= 2
    assert checks["buckets"][-1] == ["0.bias", "0.weight"]
    assert timeline.index("launch") < timeline.index("first_layer")
    assert timeline.count("launch") == len(checks["buckets"])
    assert timeline[-1] == "synced"


def test_unused_parameters_average_with_zeros(checks: dict[str, Any]) -> None:
    R = checks["world_size"]
    # d(sum of 3 rows)/d(bias) = 3 on the ranks using the head, 0 on the others.
    assert checks["unused_grad_a"] == pytest.approx(3.0 / R)
    assert checks["unused_grad_b"] == pytest.approx(3.0 * (R - 1) / R)
