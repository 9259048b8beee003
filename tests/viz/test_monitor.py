"""viz.Monitor: its numbers against the same numbers computed by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim, viz


def small() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Tanh())


def test_gradient_norms_and_update_ratios_match_hand_computation() -> None:
    model = small()
    opt = optim.SGD(model.parameters(), lr=0.1)
    monitor = viz.Monitor(model, every=1)
    x = cr.randn(16, 4)
    loss = (model(x) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    before = {n: p.detach().numpy().copy() for n, p in model.named_parameters("model")}
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters("model")}
    opt.step()
    model(x)  # the next step's forward completes the update ratios
    rows = [r for r in monitor.gradients if r.step == 0]
    assert {r.name for r in rows} == set(grads)
    for r in rows:
        assert r.grad_norm == pytest.approx(np.linalg.norm(grads[r.name]), rel=1e-5)
        assert r.weight_norm == pytest.approx(np.linalg.norm(before[r.name]), rel=1e-5)
        expected = 0.1 * np.linalg.norm(grads[r.name]) / np.linalg.norm(before[r.name])
        assert r.update_ratio == pytest.approx(expected, rel=1e-4)


def test_activation_statistics_match_hand_computation() -> None:
    model = small()
    monitor = viz.Monitor(model, every=1)
    x = cr.randn(16, 4)
    model(x)
    w0, b0 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    w2, b2 = model[2].weight.detach().numpy(), model[2].bias.detach().numpy()
    h = np.maximum(x.numpy() @ w0.T + b0, 0)
    y = np.tanh(h @ w2.T + b2)
    stats = {r.name: r for r in monitor.activations}
    relu, tanh = stats["model.1"], stats["model.3"]
    assert relu.kind == "ReLU" and relu.mean == pytest.approx(h.mean(), rel=1e-5)
    assert relu.std == pytest.approx(h.std(), rel=1e-5)
    assert relu.dead_fraction == pytest.approx((h <= 0).all(axis=0).mean())
    assert tanh.saturated_fraction == pytest.approx((1 - y**2 < 0.1).mean())
    assert stats["model.0"].dead_fraction is None and relu.saturated_fraction is None


def test_dead_relu_units_are_counted() -> None:
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    with cr.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(cr.tensor([-1.0, -1.0, 1.0, -1.0]))
    monitor = viz.Monitor(model, every=1)
    model(cr.randn(8, 2))
    assert monitor.activations[-1].dead_fraction == 0.75


def test_samples_every_n_training_steps_only() -> None:
    model = small()
    monitor = viz.Monitor(model, every=3)
    for _ in range(7):
        model(cr.randn(2, 4)).sum().backward()
    model.eval()
    model(cr.randn(2, 4))  # evaluation is not a training step
    with cr.no_grad():
        model.train()
        model(cr.randn(2, 4))  # neither is a forward without gradients
    assert monitor.step == 7 and monitor.steps() == [0, 3, 6]
    monitor.remove()
    model(cr.randn(2, 4)).sum().backward()
    assert monitor.step == 7


def deep(activation: type[nn.Module], kaiming: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(20):
        linear = nn.Linear(32, 32)
        if kaiming:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
    return nn.Sequential(*layers, nn.Linear(32, 10))


def one_step(model: nn.Module) -> viz.Monitor:
    monitor = viz.Monitor(model, every=1)
    loss = nn.CrossEntropyLoss()(model(cr.randn(64, 32)), cr.tensor(np.arange(64) % 10))
    loss.backward()
    monitor.finish()
    return monitor


def test_vanishing_flag_fires_on_deep_sigmoid_net() -> None:
    with pytest.warns(viz.GradientFlowWarning, match=r"vanishing gradients at step 0.*model\.0"):
        monitor = one_step(deep(nn.Sigmoid, kaiming=False))
    flagged = {f.layer for f in monitor.flags if f.kind == "vanishing"}
    assert "model.0.weight" in flagged and "model.40.weight" not in flagged
    norms = monitor.grad_norms()
    assert norms["model.0.weight"] < 1e-6 * norms["model.40.weight"]


def test_no_flag_on_relu_kaiming_net() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", viz.GradientFlowWarning)
        monitor = one_step(deep(nn.ReLU, kaiming=True))
    assert monitor.flags == []
    norms = monitor.grad_norms()
    assert norms["model.0.weight"] > 1e-2 * norms["model.40.weight"]


def test_exploding_flag() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    monitor = viz.Monitor(model, every=1, exploding=10.0)
    with pytest.warns(viz.GradientFlowWarning, match="exploding gradients at step 0"):
        (model(cr.randn(8, 4)) * 1e4).sum().backward()
        monitor.finish()
    assert [f.kind for f in monitor.flags] == ["exploding"]


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every must be at least 1"):
        viz.Monitor(small(), every=0)
