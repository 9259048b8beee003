"""Every ```python block of README.md runs as written (issue 7, item 16).

The blocks run in the order they appear, in one namespace, as a reader pasting them
into one Python session would; the working directory is a temporary folder, so files
they write (a model, a run) land there. Shell blocks (```bash) are not run.

A block that needs something optional a test machine may lack (a dataset download, a
GPU, mpirun) is skipped by an HTML comment on the line right before it, which the
rendered README does not show:

    <!-- readme-test: skip (needs the Fashion-MNIST files) -->
    ```python
    ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b.*?-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip: str | None  # the skip comment, when there is one


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with any skip marker just before them."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, language = opening.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md:{i + 1}: a code block is never closed")
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP.search(before)
        blocks.append(Block(i + 1, language, "\n".join(body) + "\n", marker and marker.group()))
        i = end + 1
    return blocks


def python_blocks(text: str) -> list[Block]:
    return [b for b in code_blocks(text) if b.language in ("python", "py")]


def test_the_extractor_finds_blocks_and_markers() -> None:
    text = (
        "# t\n```python\na = 1\n```\n\n```bash\nls\n```\n"
        "<!-- readme-test: skip (needs a GPU) -->\n\n```python\nraise SystemExit\n```\n"
        "  ```py\n  b = a + 1\n  ```\n"
    )
    blocks = python_blocks(text)
    assert [(b.line, b.code, b.skip is not None) for b in blocks] == [
        (2, "a = 1\n", False),
        (11, "raise SystemExit\n", True),
        (14, "b = a + 1\n", False),
    ]
    with pytest.raises(ValueError, match="never closed"):
        code_blocks("```python\nx = 1\n")


def test_readme_python_blocks_run_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    ran = 0
    for block in blocks:
        if block.skip:
            continue
        code = compile(block.code, f"README.md:{block.line}", "exec")
        try:
            exec(code, namespace)  # the README is the project's own text, run as a user would
        except Exception as exc:
            pytest.fail(
                f"the python block at README.md:{block.line} fails when the blocks are run "
                f"in order: {type(exc).__name__}: {exc}"
            )
        ran += 1
    assert ran >= len(blocks) // 2, "most blocks are skipped: the README is not tested"
    capsys.readouterr()
