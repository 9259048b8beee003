"""User-defined Functions: the same shape as the library's own primitives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function


class Cube(Function):
    """y = x³.   VJP: dx = 3x² g."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


class ScaledSplit(Function):
    """Two outputs (a·x, x + b), with a plain-number argument."""

    @staticmethod
    def forward(ctx: Any, x: Any, a: float, b: Any) -> Any:
        ctx.a = a
        return a * x, x + b

    @staticmethod
    def backward(ctx: Any, g1: Any, g2: Any) -> Any:
        return ctx.a * g1 + g2, None, g2


def test_custom_function_forward_backward_and_gradcheck() -> None:
    x = cr.tensor([1.0, -2.0, 0.5], dtype=cr.float64, requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is not None and y.grad_fn.name() == "CubeBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.0, -2.0, 0.5]) ** 2)
    assert cr.autograd.gradcheck(lambda v: Cube.apply(v), (x,))


def test_multi_output_function_and_unused_output() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([0.5, 0.5], dtype=cr.float64, requires_grad=True)
    p, q = ScaledSplit.apply(x, 3.0, b)
    (p * q).sum().backward()
    # d/dx (3x (x + b)) = 6x + 3b ; d/db = 3x
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([1.0, 2.0]) + 1.5)
    np.testing.assert_allclose(b.grad.numpy(), [3.0, 6.0])

    x.grad = None
    p, _ = ScaledSplit.apply(x, 3.0, b)  # the second output gets a zero gradient
    p.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_needs_input_grad() -> None:
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx: Any, a: Any, b: Any) -> Any:
            return a * b

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            seen.append(ctx.needs_input_grad)
            return g, g

    Probe.apply(cr.ones(2, requires_grad=True), cr.ones(2)).sum().backward()
    assert seen == [(True, False)]


def test_backward_returning_too_few_gradients_is_a_clear_error() -> None:
    class Bad(Function):
        @staticmethod
        def forward(ctx: Any, a: Any, b: Any) -> Any:
            return a + b

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return (g,)

    with pytest.raises(cr.GraphError, match=r"BadBackward.*1 gradients.*2 inputs"):
        Bad.apply(cr.ones(2, requires_grad=True), cr.ones(2)).sum().backward()


def test_backward_returning_wrong_shape_names_the_op() -> None:
    class WrongShape(Function):
        @staticmethod
        def forward(ctx: Any, a: Any) -> Any:
            return a * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return np.ones((5,))

    with pytest.raises(cr.ShapeError, match="WrongShapeBackward"):
        WrongShape.apply(cr.ones(3, requires_grad=True)).sum().backward()


def test_forward_error_names_op_and_shapes() -> None:
    with pytest.raises(cr.ShapeError, match=r"Add.*\(2, 3\).*\(4,\)"):
        cr.ones(2, 3) + cr.ones(4)
    with pytest.raises(ValueError):  # ShapeError is a ValueError
        cr.ones(2, 3) * cr.ones(4)


def test_next_functions_describe_the_graph() -> None:
    a = cr.ones(2, requires_grad=True)
    b = a.exp()
    c = b * 2.0
    edges = c.grad_fn.next_functions
    assert edges[0] == (b.grad_fn, 0)
    assert edges[1] == (None, 0)
    assert b.grad_fn.next_functions[0] == (a, -1)
