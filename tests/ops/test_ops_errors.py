"""Error messages name the op, the shapes involved, and what to do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import chainrule as cr

x = cr.ones(2, 3)


@pytest.mark.parametrize(
    ("call", "op", "shapes"),
    [
        (lambda: x + cr.ones(4), "Add", ["(2, 3)", "(4,)"]),
        (lambda: x * cr.ones(3, 2), "Mul", ["(2, 3)", "(3, 2)"]),
        (lambda: x @ cr.ones(4, 5), "matmul", ["(2, 3)", "(4, 5)"]),
        (lambda: cr.ones(3) @ cr.ones(4), "matmul", ["(3,)", "(4,)"]),
        (lambda: cr.cat([x, cr.ones(2, 4)], dim=0), "cat", ["(2, 3)", "(2, 4)"]),
        (lambda: cr.cat([x, cr.ones(3)], dim=0), "cat", ["(2, 3)", "(3,)"]),
        (lambda: cr.stack([x, cr.ones(3, 2)]), "stack", ["(2, 3)", "(3, 2)"]),
        (lambda: x.reshape(4, 2), "reshape", ["(2, 3)", "(4, 2)"]),
        (lambda: x.view(-1, 4), "reshape", ["(2, 3)", "(-1, 4)"]),
        (lambda: x.expand(3, 3), "Expand", ["(2, 3)", "(3, 3)"]),
        (lambda: x.permute(1, 1), "permute", ["(2, 3)"]),
    ],
)
def test_shape_mismatch_names_the_op_and_both_shapes(
    call: Callable[[], Any], op: str, shapes: list[str]
) -> None:
    with pytest.raises(cr.ShapeError) as info:
        call()
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert op in message
    for shape in shapes:
        assert shape in message


@pytest.mark.parametrize(
    ("call", "op", "dim"),
    [
        (lambda: x.sum(dim=2), "sum", "2"),
        (lambda: x.mean(dim=(0, -3)), "mean", "-3"),
        (lambda: x.amax(dim=5), "amax", "5"),
        (lambda: x.max(dim=2), "max", "2"),
        (lambda: x.softmax(dim=-3), "softmax", "-3"),
        (lambda: x.log_softmax(dim=2), "log_softmax", "2"),
        (lambda: x.logsumexp(dim=3), "logsumexp", "3"),
        (lambda: x.transpose(0, 2), "transpose", "2"),
        (lambda: x.permute(0, 5), "permute", "5"),
        (lambda: x.unsqueeze(4), "unsqueeze", "4"),
        (lambda: x.unsqueeze(-4), "unsqueeze", "-4"),
        (lambda: x.squeeze(2), "squeeze", "2"),
        (lambda: x.flatten(0, 3), "flatten", "3"),
        (lambda: cr.cat([x, x], dim=2), "cat", "2"),
        (lambda: cr.stack([x, x], dim=4), "stack", "4"),
    ],
)
def test_dim_out_of_range_is_an_index_error_naming_op_dim_and_shape(
    call: Callable[[], Any], op: str, dim: str
) -> None:
    with pytest.raises(IndexError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{op}: dim {dim} is out of range")
    assert "(2, 3)" in message


def test_edge_dims_that_are_in_range_still_work() -> None:
    assert x.unsqueeze(2).shape == (2, 3, 1)
    assert x.unsqueeze(-3).shape == (1, 2, 3)
    assert cr.stack([x, x], dim=-3).shape == (2, 2, 3)
    assert x.flatten(-2, -1).shape == (6,)


def test_repeated_dims_in_a_reduction_are_refused() -> None:
    with pytest.raises(cr.ShapeError, match="same dim more than once"):
        x.sum(dim=(0, -2))


def test_clamp_without_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="min and max"):
        cr.clamp(x)
