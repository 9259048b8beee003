"""Rendered drawings exist, parse and are not trivial (Graphviz's `dot` needed)."""

from __future__ import annotations

import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import chainrule as cr
from chainrule import viz

pytest.importorskip("graphviz", reason="the graphviz Python package is not installed")
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


def drawing() -> viz.Drawing:
    x = cr.randn(4, 3, requires_grad=True)
    w = cr.randn(3, 2, requires_grad=True)
    b = cr.zeros(2, requires_grad=True)
    loss = (x @ w + b).relu().log_softmax(dim=1)[cr.arange(4), [0, 1, 1, 0]].mean().neg()
    return viz.draw(loss, params={"x": x, "w": w, "b": b})


@needs_dot
def test_svg_is_xml_with_every_node(tmp_path: Path) -> None:
    path = drawing().render(tmp_path / "g.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    nodes = [g for g in root.iter() if g.get("class") == "node"]
    assert len(nodes) == 10 + 11  # forward: 3 leaves + 7 ops; gradient: the same + the seed
    text = path.read_text(encoding="utf-8")
    assert "MatMulBackward" in text and "∂Y/∂A: (4·2)×(4·3)" in text


@needs_dot
def test_png_header_and_size(tmp_path: Path) -> None:
    path = drawing().render(tmp_path / "g.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 400 and len(data) > 20_000


@needs_dot
def test_pdf(tmp_path: Path) -> None:
    path = drawing().render(tmp_path / "g.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and len(data) > 5_000


@needs_dot
def test_jupyter_shows_svg() -> None:
    bundle = drawing()._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")


def test_dot_format_and_bad_format(tmp_path: Path) -> None:
    d = drawing()
    path = d.render(tmp_path / "g.dot")
    assert path.read_text(encoding="utf-8") == d.source
    with pytest.raises(ValueError, match="svg, png, pdf, dot"):
        d.pipe("jpeg")
