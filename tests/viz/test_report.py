"""``chainrule train --report`` and ``chainrule graph`` as a user runs them."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import chainrule

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

PNGS = [
    "curves.png",
    "lr.png",
    "gradient_flow.png",
    "activations.png",
    "confusion.png",
    "worst.png",
]


def _chainrule(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The subprocess runs in another directory: point it at the chainrule under test.
    source = str(Path(chainrule.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_train_report_writes_every_file_and_a_self_contained_page(tmp_path: Path) -> None:
    result = _chainrule(
        "train",
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--out",
        "run",
        "--report",
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "run" / "report"
    for name in PNGS:
        width, height = _png_size((folder / name).read_bytes())
        assert width >= 400 and height >= 200, name
    page = (folder / "report.html").read_text(encoding="utf-8")
    # every image is embedded, and nothing else is fetched
    sources = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert len(sources) == len(PNGS)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page and "url(" not in page
    assert "test accuracy" in page and "&quot;digits&quot;" not in page and "digits" in page
    assert "report.html" in result.stdout


def test_graph_command_default_options(tmp_path: Path) -> None:
    result = _chainrule("graph", "--format", "dot", "--out", "g.dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    source = (tmp_path / "g.dot").read_text(encoding="utf-8")
    assert "model.1 · Linear(in_features=64, out_features=256, bias=True)" in source
    assert "∂Y/∂W: (32·10)×(10·128)" in source  # the output layer's weight Jacobian
    assert "DropoutFunctionBackward" in source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_command_on_a_run_directory(tmp_path: Path) -> None:
    trained = _chainrule(
        "train", "--epochs", "1", "--hidden", "16,8", "--out", "run", "--no-progress", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    result = _chainrule("graph", "run", "--depth", "1", "--out", "g.svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    svg = ET.parse(tmp_path / "g.svg").getroot()
    text = "".join(svg.itertext())
    assert "model.1 · Linear" in text and "model.4 · Linear" in text
    assert "∂y/∂weight: (32·8)×(8·16)" in text
    png = _chainrule("graph", "run", "--out", "g.png", cwd=tmp_path)
    assert png.returncode == 0 and _png_size((tmp_path / "g.png").read_bytes())[0] > 500


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("cnn", ["model.0 · Conv2d", "model.1 · BatchNorm2d"]),
        ("lstm", ["model.lstm · LSTM", "model.head · Linear"]),
        ("transformer", ["model.embed · Linear", "model.encoder · TransformerEncoder"]),
    ],
)
def test_graph_command_draws_every_model_kind(
    tmp_path: Path, model: str, expected: list[str]
) -> None:
    # The CNN, LSTM and transformer runs are rebuilt from their options (it once assumed
    # an MLP's numbered layers and failed on them).
    options = ["--model", model, "--hidden", "16", "--channels", "4,8", "--epochs", "1"]
    trained = _chainrule("train", *options, "--out", "run", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    result = _chainrule(
        "graph", "run", "--depth", "1", "--format", "dot", "--out", "g.dot", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    source = (tmp_path / "g.dot").read_text(encoding="utf-8")
    for label in expected:
        assert label in source


def test_graph_command_names_a_missing_run(tmp_path: Path) -> None:
    result = _chainrule("graph", "nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "nowhere: no config.json" in result.stderr
