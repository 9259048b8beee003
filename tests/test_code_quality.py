"""The codebase stays lint-clean, typed, and behind its one array seam."""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "chainrule"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy")
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


# The code that runs on tensors of any device: it must reach the array library through
# the arrays it holds (ctx.xp in a Function, backend.get_array_module elsewhere).
DEVICE_CODE = [
    "autograd",
    "ops",
    "nn",
    "optim",
    "tensor.py",
    "creation.py",
    "inplace.py",
    "data/dataloader.py",
    "data/dataset.py",
    "data/transforms.py",
    "data/augment.py",
    "training/loop.py",
]
# What only NumPy has: these silently break, or cannot run, on a GPU (CuPy).
NUMPY_ONLY = [
    (r"\.flags\.writeable", "backend.is_writeable / set_readonly"),
    (r"\bxp\.errstate\b|\bnumpy\.errstate\b", "backend.errstate(array, ...)"),
    (r"\.add\.at\(", "backend.scatter_add"),
    (r"^\s*(import scipy|from scipy)", "backend.erfc (CuPy's cupyx.scipy on a GPU)"),
    (r"^\s*(import numpy|from numpy)", "the array's module (ctx.xp, backend.get_array_module)"),
]


def _device_code() -> list[pathlib.Path]:
    files: list[pathlib.Path] = []
    for part in DEVICE_CODE:
        path = SRC / part
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def test_device_code_makes_no_numpy_only_calls() -> None:
    """A CPU-side check of what the fake-cuda tests cannot see (numpy.asarray on a device
    array silently works on the stand-in): device code never names NumPy itself."""
    offenders = []
    for f in _device_code():
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for pattern, instead in NUMPY_ONLY:
                if re.search(pattern, line):
                    offenders.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}  -> {instead}")
    assert not offenders, "NumPy-only code where tensors of any device pass:\n" + "\n".join(
        offenders
    )


def test_device_code_names_numpy_only_for_host_data_and_says_so() -> None:
    """``backend.xp`` is NumPy: in device code it may only touch host data (shapes, Python
    lists, host copies), and each such line (or the line above it) says why in a comment."""
    offenders = []
    for f in _device_code():
        lines = f.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            numpy_named = re.search(
                r"\bbackend\.xp\b|from chainrule\.backend import .*\bxp\b", line
            )
            explained = "#" in line or lines[n - 2].strip().startswith("#")
            if numpy_named and not explained:
                offenders.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "uncommented uses of NumPy (backend.xp) in device code:\n" + "\n".join(
        offenders
    )


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for f in sorted(SRC.rglob("*.py")):
        parts = list(f.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _module_level_imports(tree: Any) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import at module level (not in functions)."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
    return found


def test_no_source_file_over_600_lines() -> None:
    long = {
        str(f.relative_to(ROOT)): n
        for f in SRC.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > 600
    }
    assert not long, f"split these by concept: {long}"


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for name, path in _modules().items():
        for line, module, names in _module_level_imports(ast.parse(path.read_text())):
            if module.startswith("chainrule"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    offenders.append(f"{name}:{line} imports {private} from {module}")
    assert not offenders, "\n".join(offenders)


def test_module_imports_form_no_cycle_and_sit_at_the_top() -> None:
    """Modules of chainrule import each other one way only, at the top of the file: no
    cycle held together by imports placed at the bottom."""
    mods = _modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    late = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        first_code = next(
            (
                n.lineno
                for n in tree.body
                if not isinstance(n, (ast.Import, ast.ImportFrom))
                and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
            ),
            None,
        )
        for line, module, names in _module_level_imports(tree):
            if not module.startswith("chainrule"):
                continue
            if first_code is not None and line > first_code:
                late.append(f"{name}:{line} imports {module} below code")
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods] or [module]
            graph[name].update(t for t in targets if t in mods and t != name)
    assert not late, "\n".join(late)

    # Depth-first search for a back edge, reporting the cycle it closes.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_layers_make_tensors_through_public_names() -> None:
    """``Tensor(array)`` wraps an array and ``increment_version()`` marks an in-place write;
    the private fast path of tensor.py stays inside it."""
    offenders = [
        str(f.relative_to(ROOT))
        for f in SRC.rglob("*.py")
        if f.name != "tensor.py" and re.search(r"Tensor\._wrap\(|_bump_version", f.read_text())
    ]
    assert not offenders, f"private Tensor internals used in: {offenders}"
