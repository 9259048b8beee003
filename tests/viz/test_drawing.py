"""viz.draw: both halves of known small graphs, node for node and wire for wire."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np
import pytest
from dot_parse import detail, parse

import chainrule as cr
from chainrule import nn, viz


def readme_graph() -> tuple[cr.Tensor, dict[str, cr.Tensor]]:
    """The README's autograd example."""
    x = cr.randn(4, 3, requires_grad=True)
    w = cr.randn(3, 2, requires_grad=True)
    b = cr.zeros(2, requires_grad=True)
    loss = (x @ w + b).relu().log_softmax(dim=1)[cr.arange(4), [0, 1, 1, 0]].mean().neg()
    return loss, {"x": x, "w": w, "b": b}


def test_readme_example_both_halves() -> None:
    loss, params = readme_graph()
    p = parse(viz.draw(loss, params=params).source)
    ops = ["MatMul", "Add", "ReLU", "LogSoftmax", "Gather", "Mean", "Neg"]
    assert p["forward_nodes"] == sorted(["x", "w", "b", *ops])
    assert p["gradient_nodes"] == sorted(
        ["∂L/∂x", "∂L/∂w", "∂L/∂b", "∂L/∂L = 1", *(op + "Backward" for op in ops)]
    )
    chain = ["MatMul", "Add", "ReLU", "LogSoftmax", "Gather", "Mean", "Neg"]
    assert p["forward"] == Counter(
        [("x", "MatMul"), ("w", "MatMul"), ("b", "Add"), *itertools.pairwise(chain)]
    )
    back = [op + "Backward" for op in reversed(chain)]
    assert p["gradient"] == Counter(
        [
            ("∂L/∂L = 1", "NegBackward"),
            *itertools.pairwise(back),
            ("MatMulBackward", "∂L/∂x"),
            ("MatMulBackward", "∂L/∂w"),
            ("AddBackward", "∂L/∂b"),
        ]
    )
    # Jacobian sizes, the lecture's M×N, and the VJP from the op's docstring
    matmul = detail(p, "g", "MatMulBackward")
    assert "∂Y/∂A: (4·2)×(4·3)" in matmul and "∂Y/∂B: (4·2)×(3·2)" in matmul
    assert "dA = G Bᵀ, dB = Aᵀ G" in matmul
    assert "∂y/∂b: (4·2)×2" in detail(p, "g", "AddBackward")
    assert "∂y/∂x: 1×4" in detail(p, "g", "MeanBackward")
    assert "∂y/∂x: 4×(4·2)" in detail(p, "g", "GatherBackward")
    assert "(4, 2) float32" in detail(p, "f", "LogSoftmax")
    assert "() float32" in detail(p, "f", "Neg")


def test_fan_out_is_duplicate_forward_and_sum_backward() -> None:
    x = cr.randn(4, 3, requires_grad=True)
    p = parse(viz.draw((x * x + x).sum(), params={"x": x}).source)
    assert p["forward_nodes"] == sorted(["x", "Duplicate ×3", "Mul", "Add", "Sum"])
    assert p["forward"] == Counter(
        {
            ("x", "Duplicate ×3"): 1,
            ("Duplicate ×3", "Mul"): 2,
            ("Duplicate ×3", "Add"): 1,
            ("Mul", "Add"): 1,
            ("Add", "Sum"): 1,
        }
    )
    assert p["gradient"] == Counter(
        {
            ("∂L/∂L = 1", "SumBackward"): 1,
            ("SumBackward", "AddBackward"): 1,
            ("AddBackward", "MulBackward"): 1,
            ("MulBackward", "Σ"): 2,
            ("AddBackward", "Σ"): 1,
            ("Σ", "∂L/∂x"): 1,
        }
    )
    assert "g = g₁ + … + g₃" in detail(p, "g", "Σ")


def test_inputs_without_grad_are_forward_only() -> None:
    x = cr.randn(5, 3)
    w = cr.randn(3, 2, requires_grad=True)
    p = parse(viz.draw((x @ w).sum(), params={"w": w}).source)
    assert "input" in p["forward_nodes"] and "∂L/∂input" not in p["gradient_nodes"]
    assert "∂Y/∂B: (5·2)×(3·2)" in detail(p, "g", "MatMulBackward")
    assert "∂Y/∂A" not in detail(p, "g", "MatMulBackward")


def mlp_trace() -> tuple[cr.Tensor, viz.record]:
    model = nn.Sequential(nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 10))
    loss_fn = nn.CrossEntropyLoss()
    with viz.record({"model": model, "loss": loss_fn}) as trace:
        loss = loss_fn(model(cr.randn(32, 256)), cr.tensor(np.arange(32) % 10))
    return loss, trace


def clusters(source: str) -> list[str]:
    """The captions of the module clusters (the two halves' frames excluded)."""
    return re.findall(r'subgraph cluster_[fg]\d+ \{\n\s*label="([^"]*)"', source)


def test_clusters_by_module_and_parameter_names() -> None:
    loss, trace = mlp_trace()
    d = viz.draw(loss, trace=trace)
    p = parse(d.source)
    assert "model.0.weight" in p["forward_nodes"] and "∂L/∂model.2.bias" in p["gradient_nodes"]
    caps = clusters(d.source)
    assert "model.0 · Linear(in_features=256, out_features=32, bias=True)" in caps
    assert "model.1 · ReLU()" in caps and "loss · CrossEntropyLoss()" in caps
    assert {"model backward", "model.0 backward", "model.2 backward", "loss backward"} <= set(caps)
    # the lecture's example size: (32, 32) → (32, 10)
    grads = p["details"]
    assert any("∂Y/∂X: (32·10)×(32·32)" in v for v in grads.values())
    # each op sits in the cluster of the module that created it
    assert d.picture is not None
    where = {b.title: b.module for b in d.picture.boxes}
    assert where["ReLU"] == "model.1" and where["CrossEntropyFunction"] == "loss"
    assert where["model.0.weight"] == "model.0" and where["input"] is None


def test_depth_collapses_each_module_to_one_box() -> None:
    loss, trace = mlp_trace()
    p = parse(viz.draw(loss, trace=trace, depth=1).source)
    assert p["forward_nodes"] == sorted(
        ["input", "model.0 · Linear", "model.1 · ReLU", "model.2 · Linear", "CrossEntropyFunction"]
    )
    assert p["forward"] == Counter(
        [
            ("input", "model.0 · Linear"),
            ("model.0 · Linear", "model.1 · ReLU"),
            ("model.1 · ReLU", "model.2 · Linear"),
            ("model.2 · Linear", "CrossEntropyFunction"),
        ]
    )
    box = detail(p, "g", "model.2 backward")
    assert "∂y/∂x: (32·10)×(32·32)" in box and "∂y/∂weight: (32·10)×(10·32)" in box
    assert "∂y/∂bias: (32·10)×10" in box
    assert "∂y/∂x" not in detail(p, "g", "model.0 backward")  # the data needs no gradient
    top = parse(viz.draw(loss, trace=trace, depth=0).source)
    assert top["forward_nodes"] == sorted(
        ["input", "model · Sequential", "loss · CrossEntropyLoss"]
    )


def test_twenty_layers_at_depth_one_stay_twenty_boxes() -> None:
    layers: list[nn.Module] = []
    for _ in range(20):
        layers += [nn.Linear(8, 8), nn.Sigmoid()]
    model = nn.Sequential(*layers)
    with viz.record(model) as trace:
        out = model(cr.randn(2, 8)).sum()
    p = parse(viz.draw(out, trace=trace, depth=1).source)
    assert len(p["forward_nodes"]) == 40 + 2  # modules, the input, the Sum


def test_graph_module_declared_structure() -> None:
    g = nn.Graph(inputs=["x"], outputs=["out"])
    g.add("split", nn.Duplicate(2), "x")
    g.add("a", nn.Sequential(nn.Linear(8, 16), nn.ReLU()), "split.0")
    g.add("b", nn.Sequential(nn.Linear(8, 16), nn.Tanh()), "split.1")
    g.add("m", nn.Max(), "a", "b")
    g.add("out", nn.LogSoftmax(dim=1), "m")
    p = parse(viz.draw_graph(g).source)
    names = ["split · Duplicate", "a · Sequential", "b · Sequential", "m · Max", "out · LogSoftmax"]
    assert p["forward_nodes"] == sorted(["x", *names])
    assert p["forward"] == Counter(
        [
            ("x", "split · Duplicate"),
            ("split · Duplicate", "a · Sequential"),
            ("split · Duplicate", "b · Sequential"),
            ("a · Sequential", "m · Max"),
            ("b · Sequential", "m · Max"),
            ("m · Max", "out · LogSoftmax"),
        ]
    )
    assert p["gradient"] == Counter(
        [
            ("∂L/∂output = g", "out backward"),
            ("out backward", "m backward"),
            ("m backward", "a backward"),
            ("m backward", "b backward"),
            ("a backward", "split backward"),
            ("b backward", "split backward"),
            ("split backward", "∂L/∂x"),
        ]
    )
    assert "Linear → ReLU" in detail(p, "f", "a · Sequential")


def test_graph_module_fan_out_by_reference() -> None:
    g = nn.Graph(inputs=["x"], outputs=["s"])
    g.add("a", nn.ReLU(), "x")
    g.add("b", nn.Tanh(), "x")
    g.add("s", nn.Add(), "a", "b")
    p = parse(viz.draw_graph(g).source)
    assert p["forward"][("x", "Duplicate ×2")] == 1
    assert p["gradient"][("a backward", "Σ")] == 1 and p["gradient"][("Σ", "∂L/∂x")] == 1


def test_graph_module_with_example_inputs_has_shapes() -> None:
    g = nn.Graph(inputs=["x"], outputs=["y"])
    g.add("y", nn.Linear(8, 3), "x")
    p = parse(viz.draw_graph(g, cr.randn(4, 8)).source)
    assert "∂y/∂weight: (4·3)×(3·8)" in detail(p, "g", "model.y backward")


def test_values_show_norms_of_values_and_gradients() -> None:
    loss, params = readme_graph()
    p = parse(viz.draw(loss, params=params, values=True).source)
    loss.backward()
    w_grad = float(np.linalg.norm(params["w"].grad.numpy()))
    assert f"‖∂L/∂y‖ = {w_grad:.3g}" in detail(p, "g", "∂L/∂w")
    assert f"‖y‖ = {abs(loss.item()):.3g}" in detail(p, "f", "Neg")


def test_freed_graph_is_a_clear_error() -> None:
    loss, params = readme_graph()
    loss.backward()
    with pytest.raises(cr.GraphError, match="retain_graph=True"):
        viz.draw(loss, params=params)


def test_depth_needs_a_trace() -> None:
    loss, _ = readme_graph()
    with pytest.raises(ValueError, match=r"viz\.record"):
        viz.draw(loss, depth=1)
