"""Durations shown in a unit that fits (issue 7, item 17: epochs printed as "(0.0 s)")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainrule.training import TrainConfig, train
from chainrule.training.progress import format_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0.0 ms"),
        (0.0042, "4.2 ms"),
        (0.0149, "15 ms"),
        (0.85, "850 ms"),
        (0.9996, "1.0 s"),
        (6.06, "6.1 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 0 s"),
        (125.2, "2 min 5 s"),
        (3599.4, "59 min 59 s"),
        (3790.0, "1 h 3 min"),
    ],
)
def test_format_duration(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_epoch_lines_of_a_fast_run_show_milliseconds(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    lines: list[str] = []
    train(TrainConfig(hidden=(8,), epochs=2, batch_size=256), out=tmp_path, log=lines.append)
    assert len(lines) == 3
    for line in lines[:2]:  # a tiny digits epoch takes milliseconds, not "0.0 s"
        assert re.search(r"\(\d+(\.\d)? ms\)$", line), line
    assert re.search(r"; \d+(\.\d)? ms per epoch;", lines[2]), lines[2]
