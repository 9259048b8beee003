"""Read back the DOT that chainrule.viz writes: node titles and wires, per half."""

from __future__ import annotations

import html
import re
from collections import Counter

NODE = re.compile(r"^\s*([fg])_(\w+) \[label=<<B>(.*?)</B>(.*?)>, fillcolor")
WIRE = re.compile(r"^\s*([fg])_(\w+) -> ([fg])_(\w+)( \[.*\])?;$")


def parse(source: str) -> dict[str, object]:
    """Titles per half ({key: title}), details per node, and wires as title pairs."""
    titles: dict[str, dict[str, str]] = {"f": {}, "g": {}}
    details: dict[str, str] = {}
    for line in source.splitlines():
        m = NODE.match(line)
        if m:
            half, key, title, rest = m.groups()
            titles[half][key] = html.unescape(title)
            details[f"{half}_{key}"] = html.unescape(re.sub(r"<[^>]+>", "\n", rest))
    forward: Counter[tuple[str, str]] = Counter()
    gradient: Counter[tuple[str, str]] = Counter()
    for line in source.splitlines():
        m = WIRE.match(line)
        if not m:
            continue
        h1, k1, h2, k2, attrs = m.groups()
        if h1 != h2:
            continue  # the dotted Jacobian links between twins
        if h1 == "f":
            forward[(titles["f"][k1], titles["f"][k2])] += 1
        else:
            assert attrs is not None and "dir=back" in attrs
            # written in the forward direction with dir=back: the gradient flows k2 -> k1
            gradient[(titles["g"][k2], titles["g"][k1])] += 1
    return {
        "forward_nodes": sorted(titles["f"].values()),
        "gradient_nodes": sorted(titles["g"].values()),
        "forward": forward,
        "gradient": gradient,
        "details": details,
        "titles": titles,
    }


def detail(parsed: dict[str, object], half: str, title: str) -> str:
    """The smaller lines under the node titled ``title`` in ``half`` ("f" or "g")."""
    titles = parsed["titles"][half]  # type: ignore[index]
    (key,) = [k for k, t in titles.items() if t == title]
    return parsed["details"][f"{half}_{key}"]  # type: ignore[index,no-any-return]
