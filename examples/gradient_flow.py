"""Vanishing gradients, seen: a 20-layer sigmoid network against ReLU with Kaiming init.

The lecture's argument: σ'(s) ≤ 1/4, so every sigmoid layer scales the gradient on its way
back by at most a quarter (times the weights); after 20 layers the first layers get
gradients many orders of magnitude smaller than the last, and barely learn. ReLU passes
the gradient through unchanged where it is active, and Kaiming's N(0, 2/fan_in) keeps
its scale from layer to layer. ``viz.Monitor`` records both and flags the first.

Run it from the repository root (writes runs/figures/gradient_flow.png):

    python examples/gradient_flow.py [--out DIR] [--steps N]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import chainrule as cr
from chainrule import nn, optim, viz
from chainrule.viz import plots

DEPTH, WIDTH, BATCH, CLASSES = 20, 64, 64, 10


def network(activation: str) -> nn.Sequential:
    """20 hidden layers; sigmoid keeps PyTorch's default init, ReLU gets Kaiming's."""
    layers: list[nn.Module] = []
    for _ in range(DEPTH):
        linear = nn.Linear(WIDTH, WIDTH)
        if activation == "relu":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU() if activation == "relu" else nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, CLASSES))


def train(activation: str, steps: int) -> viz.Monitor:
    cr.manual_seed(0)
    model = network(activation)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = cr.randn(512, WIDTH)
    y = cr.tensor((x.numpy()[:, :CLASSES]).argmax(1))  # a learnable target
    monitor = viz.Monitor(model, every=5)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        batch = slice((step * BATCH) % 512, (step * BATCH) % 512 + BATCH)
        loss = loss_fn(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    monitor.remove()
    return monitor


def figure(sigmoid: viz.Monitor, relu: viz.Monitor) -> Any:
    plt = plots._pyplot() if False else __import__("matplotlib.pyplot").pyplot
    fig, (layer_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for monitor, label, color in (
        (sigmoid, "sigmoid, default init", "#c44e52"),
        (relu, "ReLU, Kaiming init", "#4c72b0"),
    ):
        names = monitor.weight_names()
        first = monitor.grad_norms(0)
        layer_ax.plot(
            range(1, len(names) + 1),
            [first[n] for n in names],
            "o-",
            ms=4,
            color=color,
            label=label,
        )
        for name, style in ((names[0], "-"), (names[-1], "--")):
            rows = [r for r in monitor.gradients if r.name == name]
            which = "layer 1" if name == names[0] else f"layer {len(names)} (output)"
            time_ax.plot(
                [r.step for r in rows],
                [r.grad_norm for r in rows],
                style,
                color=color,
                label=f"{label}: {which}",
            )
    layer_ax.set(
        yscale="log",
        xlabel="layer (1 = next to the input)",
        ylabel="‖∂L/∂W‖ at step 0 (log scale)",
        title="Gradient norm per layer, 20 hidden layers",
    )
    time_ax.set(
        yscale="log",
        xlabel="training step",
        ylabel="‖∂L/∂W‖ (log scale)",
        title="First and last layer during training",
    )
    for ax in (layer_ax, time_ax):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/figures", help="directory for the PNG")
    parser.add_argument("--steps", type=int, default=60, help="training steps per network")
    args, _ = parser.parse_known_args(argv)  # ignore a test runner's own arguments
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", viz.GradientFlowWarning)
        sigmoid = train("sigmoid", args.steps)
    relu = train("relu", args.steps)
    s0, r0 = sigmoid.grad_norms(0), relu.grad_norms(0)
    print("gradient norm of the first / last weight at step 0:")
    print(
        f"  sigmoid, default init: {s0['model.0.weight']:.2e} / {s0['model.40.weight']:.2e}"
        f"  (ratio {s0['model.0.weight'] / s0['model.40.weight']:.1e})"
    )
    print(
        f"  ReLU, Kaiming init:    {r0['model.0.weight']:.2e} / {r0['model.40.weight']:.2e}"
        f"  (ratio {r0['model.0.weight'] / r0['model.40.weight']:.1e})"
    )
    print(f"monitor flags: sigmoid {len(sigmoid.flags)}, ReLU {len(relu.flags)}")
    if caught:
        print("the monitor's warning:", str(caught[0].message)[:160], "…")
    path = plots.save_figure(figure(sigmoid, relu), Path(args.out) / "gradient_flow.png")
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
