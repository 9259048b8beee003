"""Matplotlib figures of training: curves, gradient flow, activations, confusion, mistakes.

Each function returns a ``matplotlib.figure.Figure`` (Agg backend: no display needed);
``save_figure`` writes it as a PNG atomically. Every axis is labelled, fonts are at
least 9 pt, and layer names are never clipped (``constrained`` layout).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chainrule.atomic import write_bytes_atomic
from chainrule.viz.monitor import Monitor


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "viz plots need Matplotlib: pip install 'chainrule[viz]' (or matplotlib)"
        ) from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10})
    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically and close it."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    path = Path(path)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def curves(history: Sequence[dict[str, Any]]) -> Any:
    """Loss and accuracy per epoch, train and test (``metrics.jsonl`` rows)."""
    plt = pyplot()
    epochs = [m["epoch"] for m in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    loss_ax.plot(epochs, [m["train_loss"] for m in history], "o-", ms=3, label="train")
    loss_ax.plot(epochs, [m["test_loss"] for m in history], "s-", ms=3, label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss", yscale="log")
    acc_ax.plot(epochs, [100 * m["train_accuracy"] for m in history], "o-", ms=3, label="train")
    acc_ax.plot(epochs, [100 * m["test_accuracy"] for m in history], "s-", ms=3, label="test")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        _whole_epochs(ax)
    return fig


def _whole_epochs(ax: Any) -> None:
    """Ticks at whole epochs only (a short run would otherwise show epoch 1.25)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def learning_rate(history: Sequence[dict[str, Any]]) -> Any:
    """The learning rate used in each epoch."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    ax.plot([m["epoch"] for m in history], [m["lr"] for m in history], "o-", ms=3)
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.grid(alpha=0.3)
    _whole_epochs(ax)
    return fig


def gradient_flow(monitor: Monitor, title: str = "Gradient flow") -> Any:
    """Left: ‖∂L/∂W‖ per layer over the sampled steps (log scale). Right: per layer, its
    norm at the first and last sampled step, first layer on the left, so vanishing
    gradients show as a slope down towards the input."""
    plt = pyplot()
    names = monitor.weight_names()
    fig, (time_ax, layer_ax) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    cmap = plt.get_cmap("viridis")
    for i, name in enumerate(names):
        rows = [r for r in monitor.gradients if r.name == name]
        color = cmap(i / max(1, len(names) - 1))
        time_ax.plot(
            [r.step for r in rows],
            [max(r.grad_norm, 1e-30) for r in rows],
            color=color,
            lw=1.2,
            label=name,
        )
    time_ax.set(
        xlabel="training step",
        ylabel="‖∂L/∂W‖ (log scale)",
        yscale="log",
        title=f"{title}: per layer over time",
    )
    time_ax.grid(alpha=0.3, which="both")
    if len(names) <= 8:
        time_ax.legend(fontsize=8)
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, len(names) - 1))
        fig.colorbar(sm, ax=time_ax, label="layer (0 = first)")
    steps = monitor.steps()
    positions = range(len(names))
    for step, marker, label in ((steps[0], "o", "first"), (steps[-1], "s", "last")):
        norms = monitor.grad_norms(step) if steps else {}
        layer_ax.plot(
            positions,
            [max(norms.get(n, 0.0), 1e-30) for n in names],
            marker + "-",
            ms=4,
            label=f"{label} sampled step ({step})",
        )
    layer_ax.set(
        yscale="log",
        ylabel="‖∂L/∂W‖ (log scale)",
        xlabel="layer (input → output)",
        title=f"{title}: per layer",
    )
    layer_ax.set_xticks(list(positions))
    short = [n.removesuffix(".weight") for n in names]
    layer_ax.set_xticklabels(
        short,
        rotation=60 if len(names) > 6 else 0,
        ha="right" if len(names) > 6 else "center",
        fontsize=9,
    )
    layer_ax.grid(alpha=0.3, which="both")
    layer_ax.legend(fontsize=9)
    return fig


def activation_histograms(monitor: Monitor, max_panels: int = 6) -> Any:
    """Histograms of the activation modules' outputs at the last sampled step."""
    plt = pyplot()
    kinds = {"ReLU", "Sigmoid", "Tanh", "LeakyReLU", "GELU", "ELU", "SiLU", "Softplus"}
    names = [n for n in monitor.samples if monitor.layer_types.get(n) in kinds]
    names = names or list(monitor.samples)
    if len(names) > max_panels:  # spread the panels over the depth
        names = [names[round(i * (len(names) - 1) / (max_panels - 1))] for i in range(max_panels)]
    cols = min(3, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.8 * cols, 3.0 * rows), layout="constrained", squeeze=False
    )
    stats = {r.name: r for r in monitor.activations}
    for ax, name in zip(axes.flat, names):
        ax.hist(monitor.samples[name], bins=50, color="#4c72b0")
        record = stats[name]
        note = ""
        if record.dead_fraction is not None:
            note = f", dead {record.dead_fraction:.0%}"
        if record.saturated_fraction is not None:
            note = f", saturated {record.saturated_fraction:.0%}"
        ax.set(
            title=f"{name} ({monitor.layer_types[name]}){note}",
            xlabel="output value",
            ylabel="count",
        )
        ax.title.set_fontsize(10)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if not names:
        axes.flat[0].text(0.5, 0.5, "no activations recorded", ha="center")
    return fig


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Any:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    plt = pyplot()
    n = len(classes)
    size = min(12.0, 2.5 + 0.55 * n)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="examples", shrink=0.8)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    long_names = max(len(c) for c in classes) > 3
    ax.set_xticklabels(
        classes, rotation=45 if long_names else 0, ha="right" if long_names else "center"
    )
    ax.set_yticklabels(classes)
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (test split)")
    peak = max(max(row) for row in matrix) or 1
    for i in range(n):
        for j in range(n):
            value = matrix[i][j]
            if value:
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if value > peak / 2 else "black",
                )
    return fig


def worst_predictions(
    images: Any, labels: Any, probabilities: Any, classes: Sequence[str], count: int = 16
) -> Any:
    """The test images whose true class gets the lowest probability, most confident
    mistakes first, titled with the true class and the prediction."""
    import numpy

    plt = pyplot()
    probs = numpy.asarray(probabilities)
    labels = numpy.asarray(labels)
    p_true = probs[numpy.arange(len(labels)), labels]
    worst = numpy.argsort(p_true)[:count]
    cols = 8 if len(worst) > 8 else max(1, len(worst))
    rows = max(1, math.ceil(len(worst) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.55 * cols, 1.9 * rows), layout="constrained", squeeze=False
    )
    for ax, index in zip(axes.flat, worst):
        image = numpy.asarray(images[index], dtype="float64")
        ax.imshow(image, cmap="gray_r")
        guess = int(probs[index].argmax())
        ax.set_title(
            f"true {classes[labels[index]]}\npred {classes[guess]} ({probs[index, guess]:.0%})",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(worst) :]:
        ax.axis("off")
    fig.suptitle("Test images the model gets most wrong", fontsize=11)
    return fig
