"""The Optimizer base: param groups, zero_grad, step bookkeeping, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import DTypeError, GraphError


def _leaf(*values: float) -> cr.Tensor:
    return cr.tensor(np.array(values), requires_grad=True)


def test_param_groups_use_their_own_lr() -> None:
    a, b = _leaf(1.0, 2.0), _leaf(3.0)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01}], lr=0.1)
    ((a * a).sum() + (b * b).sum()).backward()
    opt.step()
    assert np.allclose(a.data, [1.0 - 0.1 * 2.0, 2.0 - 0.1 * 4.0], rtol=0, atol=1e-15)
    assert np.allclose(b.data, [3.0 - 0.01 * 6.0], rtol=0, atol=1e-15)
    assert opt.param_groups[1]["momentum"] == 0.0  # defaults fill what a group leaves out


def test_add_param_group() -> None:
    a, b = _leaf(1.0), _leaf(1.0)
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.2]
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="appears twice"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.add_param_group({"params": [_leaf(0.0)], "lr": -1.0})


def test_zero_grad_set_to_none() -> None:
    w = _leaf(1.0, 2.0)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad()
    assert w.grad is None


def test_zero_grad_in_place() -> None:
    w = _leaf(1.0, 2.0)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    assert grad is not None
    stamp = grad._version[0]
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad
    assert np.array_equal(grad.data, [0.0, 0.0])
    assert grad._version[0] > stamp  # recorded as an in-place change
    (3 * w).sum().backward()  # accumulates onto the zeros
    assert np.array_equal(w.grad.data, [3.0, 3.0])


def test_step_skips_parameters_without_grad() -> None:
    used, unused = _leaf(1.0), _leaf(5.0)
    opt = optim.Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    opt.step()
    assert np.array_equal(unused.data, [5.0])
    assert unused not in opt.state
    assert opt.state[used]["step"] == 1


def test_step_bumps_the_version_so_stale_graphs_are_caught() -> None:
    w = _leaf(1.0, 2.0)
    opt = optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    stamp = w._version[0]
    opt.step()
    assert w._version[0] > stamp
    with pytest.raises(GraphError, match="modified by an in-place operation"):
        loss.backward()


def test_step_with_closure_returns_its_loss() -> None:
    w = _leaf(2.0)
    opt = optim.SGD([w], lr=0.25)

    def closure() -> cr.Tensor:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with cr.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == 4.0
    assert np.array_equal(w.data, [1.0])


def test_nesterov_and_sgd_known_step() -> None:
    # Two steps of Nesterov SGD on C = w², by hand: d = 2w, b = μb + d, w -= η(d + μb).
    w = _leaf(1.0)
    opt = optim.SGD([w], lr=0.1, momentum=0.5, nesterov=True)
    expected, buf = 1.0, None
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        d = 2 * expected
        buf = d if buf is None else 0.5 * buf + d
        expected -= 0.1 * (d + 0.5 * buf)
    assert abs(w.data[0] - expected) < 1e-15


def test_adamw_decay_is_decoupled() -> None:
    # With a zero gradient, Adam's L2 still moves w by ≈ lr·sign(w) (the normalised
    # penalty gradient), while AdamW only shrinks it by the factor (1 − lr·λ).
    a, b = _leaf(2.0), _leaf(2.0)
    adam = optim.Adam([a], lr=0.1, weight_decay=0.5)
    adamw = optim.AdamW([b], lr=0.1, weight_decay=0.5)
    for p, opt in ((a, adam), (b, adamw)):
        (p * 0.0).sum().backward()
        opt.step()
    assert abs(a.data[0] - (2.0 - 0.1)) < 1e-6
    assert b.data[0] == 2.0 * (1 - 0.1 * 0.5)


def test_float32_parameters_stay_float32() -> None:
    w = cr.randn(3, 4, requires_grad=True)
    opt = optim.Adam([w], lr=0.1, weight_decay=0.1, l1=0.01)
    (w * w).sum().backward()
    opt.step()
    assert w.dtype == cr.float32
    assert opt.state[w]["exp_avg"].dtype == cr.float32


def test_repr_names_groups() -> None:
    opt = optim.SGD([_leaf(1.0)], lr=0.1)
    assert "SGD" in repr(opt) and "lr=0.1" in repr(opt)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda w: optim.SGD([w], lr=-0.1), "lr must be >= 0"),
        (lambda w: optim.SGD([w], lr=0.1, momentum=-1), "momentum must be >= 0"),
        (lambda w: optim.SGD([w], lr=0.1, l1=-1), "l1 must be >= 0"),
        (lambda w: optim.SGD([w], lr=0.1, nesterov=True), "nesterov=True needs momentum"),
        (
            lambda w: optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "dampening = 0",
        ),
        (lambda w: optim.Adam([w], betas=(0.9, 1.0)), "betas"),
        (lambda w: optim.Adam([w], eps=-1.0), "eps must be >= 0"),
        (lambda w: optim.AdamW([w], weight_decay=-0.1), "weight_decay must be >= 0"),
        (lambda w: optim.RMSprop([w], alpha=-0.5), "alpha must be >= 0"),
        (lambda w: optim.Adagrad([w], lr_decay=-0.5), "lr_decay must be >= 0"),
        (lambda w: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda w: optim.SGD([w, w], lr=0.1), "appears twice"),
        (lambda w: optim.SGD([w * 2], lr=0.1), "not a leaf"),
    ],
)
def test_bad_arguments_raise_value_error(make: object, match: str) -> None:
    w = _leaf(1.0)
    with pytest.raises(ValueError, match=match):
        make(w)  # type: ignore[operator]


def test_frozen_parameter_is_accepted_and_left_alone() -> None:
    frozen = cr.tensor([1.0], dtype=cr.float64)
    w = _leaf(1.0)
    opt = optim.SGD([w, frozen], lr=0.1)
    (w * frozen).sum().backward()
    opt.step()
    assert frozen.item() == 1.0 and w.item() == 0.9


def test_bad_parameter_types() -> None:
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(_leaf(1.0), lr=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        optim.SGD([_leaf(1.0), np.ones(2)], lr=0.1)  # type: ignore[list-item]
    with pytest.raises(DTypeError, match="dtype int64"):
        optim.SGD([cr.tensor(np.array([1, 2]))], lr=0.1)
