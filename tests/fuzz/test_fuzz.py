"""The differential fuzzer in CI: a seeded, few-second budget of random graphs replayed in
chainrule and torch must agree everywhere, and the fuzzer must be able to fail."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch", reason="the differential fuzzer compares chainrule with PyTorch")

from chainrule.ops.elementwise import Sigmoid

from .campaign import fuzz
from .ops import label

# Every public primitive, under the names the campaign counts them by.
PUBLIC_OPS = {
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "relu",
    "sigmoid", "tanh", "softplus", "maximum", "minimum", "where", "clamp", "matmul",
    "sum", "mean", "amax", "amin", "max", "min", "max(dim)", "min(dim)", "logsumexp",
    "var", "std", "softmax", "log_softmax", "reshape", "permute", "expand",
    "index_basic", "index_advanced", "cat", "stack", "cast", "clone",
    "roll", "flip", "tril", "triu", "repeat", "tile", "repeat_interleave", "index_select",
    "narrow", "prod", "norm", "pad", "interpolate", "max_pool1d", "avg_pool1d",
}  # fmt: skip


def test_ci_budget_agrees_with_torch() -> None:
    figures = fuzz(seed=0, graphs=100, n_ops=8)
    assert not figures.invalid, figures.report()
    assert not figures.failures, figures.report()
    assert set(figures.kinds) >= PUBLIC_OPS, sorted(PUBLIC_OPS - set(figures.kinds))
    assert figures.second_order >= 15 and figures.float32 >= 15, figures.report()


@pytest.mark.parametrize("method", ["backward", "backward_graph"])
def test_fuzzer_catches_a_wrong_gradient(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """A sigmoid VJP off by 0.1% (first order, or only its create_graph form) is found,
    shrunk to the sigmoid alone, and its script fails until the bug goes."""
    right = getattr(Sigmoid, method)

    def wrong(ctx: Any, g: Any) -> Any:
        return right(ctx, g) * 1.001

    monkeypatch.setattr(Sigmoid, method, staticmethod(wrong))
    figures = fuzz(seed=0, graphs=40, n_ops=8, max_failures=1)
    assert figures.failures, "the injected bug went unnoticed"
    failure = figures.failures[0]
    assert failure.mismatches[0].category in ("grad", "grad2")
    kinds = [label(n.kind, n.params) for n in failure.graph.nodes]
    assert "sigmoid" in kinds and len(kinds) <= 2, failure.script
    with pytest.raises(AssertionError):
        exec(failure.script, {})
    monkeypatch.undo()
    exec(failure.script, {})
