"""Errors that help: a wrong shape names the module by its dotted path in the model."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def test_issue_example_message() -> None:
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    feature = nn.Sequential(nn.Linear(784, 100))
    with pytest.raises(cr.ShapeError) as info:
        model[2](feature(cr.randn(32, 784)))
    assert str(info.value) == (
        "model (Linear(in_features=256, out_features=10, bias=True)) "
        "expected input (..., 256), got (32, 100)"
    )
    broken = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(100, 10))
    with pytest.raises(cr.ShapeError) as info:
        broken(cr.randn(32, 784))
    assert str(info.value) == (
        "model.2 (Linear(in_features=100, out_features=10, bias=True)) "
        "expected input (..., 100), got (32, 256)"
    )


def test_nested_path_and_valueerror_compatibility() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
            self.heads = nn.ModuleDict({"cls": nn.Linear(5, 2)})

        def forward(self, x: cr.Tensor) -> cr.Tensor:
            return self.heads["cls"](self.encoder(x))

    with pytest.raises(
        ValueError,
        match=r"^model\.heads\.cls \(Linear\(in_features=5, "
        r"out_features=2, bias=True\)\) expected input "
        r"\(\.\.\., 5\), got \(3, 8\)$",
    ):
        Net()(cr.randn(3, 4))


def test_error_inside_a_custom_module_names_it() -> None:
    class Bad(nn.Module):
        def forward(self, x: cr.Tensor) -> cr.Tensor:
            return x @ cr.randn(3, 3)

    model = nn.Sequential(nn.Identity(), Bad())
    with pytest.raises(cr.ShapeError, match=r"^model\.1 \(Bad\(\)\): .*matmul.*\(2, 4\)"):
        model(cr.randn(2, 4))


def test_graph_node_path() -> None:
    g = nn.Graph(inputs=["x"], outputs=["b"])
    g.add("a", nn.Sequential(nn.Linear(3, 4)), "x")
    g.add("b", nn.Linear(5, 1), "a")
    with pytest.raises(cr.ShapeError, match=r"^model\.b \(Linear"):
        g(cr.randn(2, 3))


def test_loss_shape_errors_name_both_shapes() -> None:
    with pytest.raises(cr.ShapeError, match=r"\(4, 3\).*\(5,\)"):
        nn.CrossEntropyLoss()(cr.randn(4, 3), cr.tensor(np.zeros(5, dtype=np.int64)))
    with pytest.raises(cr.ShapeError, match=r"\(2, 3\).*\(3, 2\)"):
        nn.MSELoss()(cr.randn(2, 3), cr.randn(3, 2))
    with pytest.raises(IndexError, match="target class 3 is out of range for 3 classes"):
        nn.CrossEntropyLoss()(cr.randn(2, 3), cr.tensor(np.array([0, 3])))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_error_does_not_break_later_calls() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(cr.ShapeError):
        model(cr.randn(1, 4))
    assert model(cr.randn(1, 3)).shape == (1, 2)


@pytest.mark.parametrize("size", [2.5, "3", None, True])
def test_linear_rejects_sizes_that_are_not_ints(size: object) -> None:
    # Issue 7, item 12: Linear(2.5, 3) silently made a layer with 2 input features.
    with pytest.raises(TypeError, match="in_features must be an int"):
        nn.Linear(size, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="out_features must be an int"):
        nn.Linear(3, size)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="embedding_dim must be an int"):
        nn.Embedding(3, size)  # type: ignore[arg-type]


def test_linear_sizes_accept_numpy_ints_and_reject_negatives() -> None:
    layer = nn.Linear(np.int64(3), np.int32(2))
    assert (layer.in_features, layer.out_features) == (3, 2)
    assert type(layer.in_features) is int
    with pytest.raises(ValueError, match="in_features must be >= 0, got -1"):
        nn.Linear(-1, 3)
