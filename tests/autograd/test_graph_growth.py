"""The warning users need: a tensor summed across iterations keeps every graph alive."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import chainrule as cr
from chainrule.errors import GraphGrowthWarning


def test_summing_losses_across_iterations_warns_and_names_the_line() -> None:
    w = cr.ones(3, requires_grad=True)
    total: object = 0
    with pytest.warns(GraphGrowthWarning, match=r"loss\.item\(\)") as record:
        for _ in range(3):
            loss = (w * 2).sum()
            loss.backward()
            total = total + loss  # the line the warning must name
    assert record[0].filename == __file__
    assert "total = total + loss" in Path(__file__).read_text().splitlines()[record[0].lineno - 1]


def test_loss_first_then_total_warns_too() -> None:
    w = cr.ones(3, requires_grad=True)
    total = cr.zeros(())
    with pytest.warns(GraphGrowthWarning):
        for _ in range(2):
            loss = (w * 2).sum()
            loss.backward()
            total = loss + total


def test_inplace_accumulation_error_says_to_add_numbers() -> None:
    w = cr.ones(3, requires_grad=True)
    total = (w * 2).sum()
    with pytest.raises(cr.GraphError, match=r"total \+= loss\.item\(\)"):
        total += (w * 3).sum()


def test_no_warning_for_ordinary_graphs_and_the_training_loop(tmp_path: Path) -> None:
    from chainrule.training import TrainConfig, train

    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphGrowthWarning)
        w = cr.ones(3, requires_grad=True)
        for _ in range(3):  # a fresh graph each iteration, numbers accumulated
            total = 0.0
            h = w * 2
            loss = (h + h).sum() + 1.0
            loss.backward()
            total += loss.item()
        train(TrainConfig(dataset="digits", epochs=1, hidden=(16,)), out=tmp_path / "r", log=None)
