"""The shared loop checks each gradient before any rule touches it."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim

OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _params() -> list[cr.Tensor]:
    return [cr.zeros(3, requires_grad=True), cr.zeros(3, 8, requires_grad=True)]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_wrongly_shaped_gradient_is_a_shape_error(name: str) -> None:
    # Adam used to fail with NumPy's "operands could not be broadcast together".
    a, b = _params()
    opt = getattr(optim, name)([a, b], lr=0.1)
    a.grad = cr.ones(3)
    b.grad = cr.ones(8, 3)
    with pytest.raises(
        cr.ShapeError,
        match=rf"{name}\.step: the gradient of parameter 1 has shape \(8, 3\), the parameter "
        r"has shape \(3, 8\); a gradient must have its parameter's shape",
    ):
        opt.step()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_broadcastable_gradient_is_caught_not_spread(name: str) -> None:
    # A (8,) gradient broadcasts over a (3, 8) parameter: before, every row silently took
    # the same step.
    _, b = _params()
    opt = getattr(optim, name)([b], lr=0.1)
    b.grad = cr.ones(8)
    with pytest.raises(cr.ShapeError, match=r"shape \(8,\), the parameter has shape \(3, 8\)"):
        opt.step()
    assert np.array_equal(b.data, np.zeros((3, 8)))  # nothing moved


def test_the_index_counts_across_groups_and_names_are_given() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model[2].bias.grad = cr.ones(3)
    with pytest.raises(cr.ShapeError, match=r"parameter 3 \('2.bias'\) has shape \(3,\)"):
        opt.step()

    a, b = _params()
    groups = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
    b.grad = cr.ones(3)
    with pytest.raises(cr.ShapeError, match="parameter 1 has shape"):
        groups.step()


def test_named_parameters_train_and_save_like_plain_ones() -> None:
    w_named, w_plain = cr.ones(2, requires_grad=True), cr.ones(2, requires_grad=True)
    named = optim.Adam([("w", w_named)], lr=0.1)
    plain = optim.Adam([w_plain], lr=0.1)
    for w, opt in ((w_named, named), (w_plain, plain)):
        (w * w).sum().backward()
        opt.step()
    assert np.array_equal(w_named.data, w_plain.data)
    saved = named.state_dict()
    assert saved["param_groups"][0]["param_names"] == ["w"]
    again = optim.Adam([("w", cr.ones(2, requires_grad=True))], lr=0.1)
    again.load_state_dict(saved)
    assert again.param_groups[0]["param_names"] == ["w"]


def test_integer_gradient_is_a_dtype_error() -> None:
    a, _ = _params()
    opt = optim.Adam([a], lr=0.1)
    a.grad = cr.tensor(np.array([1, 2, 3]))
    with pytest.raises(cr.DTypeError, match=r"Adam\.step: .*parameter 0 has dtype int64"):
        opt.step()


def test_gradient_that_is_not_a_tensor_is_a_type_error() -> None:
    a, _ = _params()
    opt = optim.SGD([a], lr=0.1)
    a.grad = np.ones(3)  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"SGD\.step: .*parameter 0 is a ndarray, not a Tensor"):
        opt.step()


def test_float64_gradient_of_a_float32_parameter_still_steps() -> None:
    a, _ = _params()
    opt = optim.SGD([a], lr=0.5)
    a.grad = cr.tensor(np.ones(3))  # float64
    opt.step()
    assert a.dtype == cr.float32 and np.array_equal(a.data, [-0.5, -0.5, -0.5])
