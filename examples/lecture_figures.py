"""The lecture's figures, computed with chainrule's own autograd.

1. The sigmoid and its gradient: flat at both ends, so a saturated unit passes almost no
   gradient back (vanishing gradients).
2. log(1 + eˢ) (softplus): ≈ 0 for very negative s, ≈ s for large s; its gradient is the
   sigmoid.
3. A saturated softmax against log-softmax: with the target class's logit t below the
   largest one, the gradient of the softmax output vanishes like e⁻ᵗ, log(softmax) breaks
   (log 0) once the probability underflows, and the fused log-softmax keeps a gradient of
   norm √2 at any t.

Run it from the repository root (writes three PNGs into runs/figures/):

    python examples/lecture_figures.py [--out DIR]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr
from chainrule.viz import plots


def derivative(fn: Any, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fn(s) and dfn/ds elementwise, by backpropagation through chainrule."""
    x = cr.tensor(s, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    return y.detach().numpy(), x.grad.numpy()


def sigmoid_figure() -> Any:
    s = np.linspace(-10, 10, 401, dtype=np.float32)
    y, dy = derivative(lambda x: x.sigmoid(), s)
    fig, ax = plots.pyplot().subplots(figsize=(6.5, 4), layout="constrained")
    ax.plot(s, y, label="σ(s)")
    ax.plot(s, dy, label="σ'(s) = σ(s)(1 − σ(s)), by backprop")
    ax.axhline(0.25, color="gray", ls=":", lw=1)
    ax.annotate("max 1/4", (0, 0.25), (2.0, 0.4), arrowprops={"arrowstyle": "->"})
    ax.annotate("flat: gradient ≈ 0", (-8, 0.0), (-9.5, 0.55), arrowprops={"arrowstyle": "->"})
    ax.set(xlabel="s", ylabel="value", title="The sigmoid saturates: its gradient vanishes")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def softplus_figure() -> Any:
    s = np.linspace(-8, 8, 401, dtype=np.float32)
    y, dy = derivative(lambda x: x.softplus(), s)
    fig, ax = plots.pyplot().subplots(figsize=(6.5, 4), layout="constrained")
    ax.plot(s, y, lw=2, label="log(1 + eˢ)")
    ax.plot(s, np.maximum(s, 0), "--", color="gray", label="asymptotes: 0 and s")
    ax.plot(s, dy, label="its gradient, by backprop (= σ(s))")
    ax.set(xlabel="s", ylabel="value", title="log(1 + eˢ) ≈ 0 for s ≪ 0, ≈ s for s ≫ 0")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def _softmax_gradient(name: str, t: float) -> float:
    """‖∂L/∂s‖ at logits (t, 0, 0) with class 1 the target; NaN where it is not finite."""
    s = cr.tensor(np.array([[t, 0.0, 0.0]], dtype=np.float32), requires_grad=True)
    if name == "softmax":
        out = s.softmax(dim=1)[0, 1]  # the target's probability: saturated
    elif name == "log(softmax)":
        out = s.softmax(dim=1).log()[0, 1].neg()
    else:
        out = s.log_softmax(dim=1)[0, 1].neg()
    out.backward()
    norm = float(np.linalg.norm(s.grad.numpy()))
    # NaN (a gap in the plot) where it is not finite, or exactly 0 (underflow)
    return norm if np.isfinite(norm) and norm > 0 else float("nan")


def softmax_figure() -> Any:
    margins = np.linspace(0, 120, 241)
    curves: dict[str, list[float]] = {"softmax": [], "log(softmax)": [], "log_softmax": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log 0 is the point here
        for t in margins:
            for name in curves:
                curves[name].append(_softmax_gradient(name, t))
    fig, ax = plots.pyplot().subplots(figsize=(7, 4.2), layout="constrained")
    ax.plot(
        margins, curves["softmax"], label="softmax: ‖∂p/∂s‖ (vanishes like e⁻ᵗ, then exactly 0)"
    )
    ax.plot(
        margins,
        curves["log(softmax)"],
        lw=3,
        alpha=0.6,
        label="log(softmax): ‖∂(−log p)/∂s‖ (NaN/∞ once p underflows)",
    )
    ax.plot(margins, curves["log_softmax"], "--", label="log_softmax: ‖∂(−log p)/∂s‖ = √2")
    ax.set(
        yscale="log",
        ylim=(1e-30, 1e2),
        xlabel="t: how far the target's logit is below the max",
        ylabel="gradient norm (log scale)",
        title="Saturated softmax vs log-softmax, logits (t, 0, 0), float32",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="lower left")
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/figures", help="directory for the PNGs")
    args, _ = parser.parse_known_args(argv)  # ignore a test runner's own arguments
    out = Path(args.out)
    for name, make in (
        ("sigmoid.png", sigmoid_figure),
        ("softplus.png", softplus_figure),
        ("softmax_saturation.png", softmax_figure),
    ):
        print(f"wrote {plots.save_figure(make(), out / name)}")


if __name__ == "__main__":
    main()
