"""``nn.Graph``: wiring by name, topological order, errors that name the culprit."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def issue_example() -> nn.Graph:
    g = nn.Graph(inputs=["x"], outputs=["out"])
    g.add("split", nn.Duplicate(2), "x")
    g.add("a", nn.Sequential(nn.Linear(8, 16), nn.ReLU()), "split.0")
    g.add("b", nn.Sequential(nn.Linear(8, 16), nn.Tanh()), "split.1")
    g.add("m", nn.Max(), "a", "b")
    g.add("out", nn.LogSoftmax(dim=1), "m")
    return g


def test_issue_example_matches_hand_written_forward_and_backward() -> None:
    g = issue_example()
    x = cr.randn(4, 8, dtype=cr.float64, requires_grad=True)
    g.to(cr.float64)
    y = g(x)
    a, b = g.nodes["a"], g.nodes["b"]
    x2 = cr.tensor(x.detach().numpy(), requires_grad=True)
    expected = cr.log_softmax(cr.maximum(a(x2), b(x2)), 1)
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    grad = cr.tensor(np.random.default_rng(0).standard_normal((4, 16)))
    y.backward(grad)
    w_grad = a[0].weight.grad.numpy().copy()
    g.zero_grad()
    expected.backward(grad)
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(w_grad, a[0].weight.grad.numpy(), rtol=1e-10)
    assert [n for n, _ in g.named_parameters()] == [
        "a.0.weight",
        "a.0.bias",
        "b.0.weight",
        "b.0.bias",
    ]


def test_nodes_declared_in_any_order_run_topologically() -> None:
    g = nn.Graph(inputs=["x"], outputs=["out"])
    g.add("out", nn.LogSoftmax(dim=1), "m")
    g.add("m", nn.Add(), "a", "b")
    g.add("b", nn.Tanh(), "split.1")
    g.add("a", nn.ReLU(), "split.0")
    g.add("split", nn.Duplicate(2), "x")
    assert g.order == ["split", "b", "a", "m", "out"]
    order = g.order
    for edge in g.edges:
        if edge.source in order:
            assert order.index(edge.source) < order.index(edge.target)
    x = cr.randn(3, 5)
    expected = cr.log_softmax(x.relu() + x.tanh(), 1)
    np.testing.assert_allclose(g(x).numpy(), expected.numpy(), rtol=1e-6)


def test_structure_is_exposed() -> None:
    g = issue_example()
    assert list(g.nodes) == ["split", "a", "b", "m", "out"]
    assert nn.Edge("split", 0, "a", 0) in g.edges
    assert nn.Edge("b", None, "m", 1) in g.edges
    assert nn.Edge("x", None, "split", 0) in g.edges
    assert len(g.edges) == 6
    assert g.inputs_of("m") == ["a", "b"]
    assert "(m) <- a, b: Max()" in repr(g)


def test_several_inputs_and_outputs_by_keyword() -> None:
    g = nn.Graph(inputs=["u", "v"], outputs=["s", "p"])
    g.add("s", nn.Add(), "u", "v")
    g.add("p", nn.Max(), "u", "v", "s")
    u, v = cr.tensor([1.0, -2.0]), cr.tensor([0.5, -3.0])
    s, p = g(v=v, u=u)
    np.testing.assert_allclose(s.numpy(), [1.5, -5.0])
    np.testing.assert_allclose(p.numpy(), [1.5, -2.0])


def test_cycle_is_named() -> None:
    g = nn.Graph(inputs=["x"], outputs=["c"])
    g.add("a", nn.Add(), "x", "c")
    g.add("b", nn.ReLU(), "a")
    g.add("c", nn.Tanh(), "b")
    with pytest.raises(cr.GraphError, match=r"cycle: a -> b -> c -> a"):
        g(cr.randn(2))


def test_self_loop_is_a_cycle() -> None:
    g = nn.Graph(inputs=["x"], outputs=["a"])
    g.add("a", nn.Add(), "x", "a")
    with pytest.raises(cr.GraphError, match=r"cycle: a -> a"):
        _ = g.order


def test_missing_input_is_named() -> None:
    g = nn.Graph(inputs=["x"], outputs=["b"])
    g.add("b", nn.ReLU(), "typo")
    with pytest.raises(cr.GraphError, match=r"node 'b' reads 'typo'"):
        g(cr.randn(2))


def test_unused_node_and_input_are_named() -> None:
    g = nn.Graph(inputs=["x"], outputs=["a"])
    g.add("a", nn.ReLU(), "x")
    g.add("dangling", nn.Tanh(), "x")
    with pytest.raises(cr.GraphError, match="dangling"):
        g(cr.randn(2))
    g2 = nn.Graph(inputs=["x", "unused"], outputs=["a"])
    g2.add("a", nn.ReLU(), "x")
    with pytest.raises(cr.GraphError, match="unused"):
        _ = g2.order


def test_bad_output_index_and_bad_names() -> None:
    g = nn.Graph(inputs=["x"], outputs=["a"])
    g.add("split", nn.Duplicate(2), "x")
    g.add("a", nn.Add(), "split.0", "split.5")
    with pytest.raises(cr.GraphError, match=r"'split.5'.*2 output"):
        g(cr.randn(2))
    with pytest.raises(cr.GraphError, match="already"):
        g.add("a", nn.ReLU(), "x")
    with pytest.raises(cr.GraphError, match=r"without '\.'"):
        g.add("a.b", nn.ReLU(), "x")
    with pytest.raises(cr.GraphError, match="takes 1 inputs"):
        g(cr.randn(2), cr.randn(2))


def test_graph_state_dict_round_trip() -> None:
    g1, g2 = issue_example(), issue_example()
    g2.load_state_dict(g1.state_dict())
    x = cr.randn(2, 8)
    np.testing.assert_array_equal(g1(x).detach().numpy(), g2(x).detach().numpy())
