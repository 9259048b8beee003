"""``nn.init``: the scales, the seeded generator, and the lecture's variance claim."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.random import Generator


def test_calculate_gain() -> None:
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert nn.init.calculate_gain("linear") == 1.0
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        nn.init.calculate_gain("swishy")


@pytest.mark.parametrize(
    ("fn", "kwargs", "std"),
    [
        (nn.init.kaiming_normal_, {"nonlinearity": "relu"}, math.sqrt(2 / 400)),
        (nn.init.kaiming_normal_, {"nonlinearity": "relu", "mode": "fan_out"}, math.sqrt(2 / 300)),
        (nn.init.kaiming_uniform_, {"nonlinearity": "relu"}, math.sqrt(2 / 400)),
        (nn.init.xavier_normal_, {}, math.sqrt(2 / 700)),
        (nn.init.xavier_uniform_, {"gain": 2.0}, 2 * math.sqrt(2 / 700)),
        (nn.init.normal_, {"std": 0.3}, 0.3),
        (nn.init.uniform_, {"a": -1.0, "b": 1.0}, 1 / math.sqrt(3)),
    ],
)
def test_scales(fn, kwargs, std: float) -> None:
    w = cr.empty(300, 400, dtype=cr.float64)
    before = w._version[0]
    fn(w, generator=Generator(0), **kwargs)
    assert w._version[0] > before  # a graph that saved w notices the change
    assert abs(w.numpy().mean()) < 0.02 * std + 1e-3
    assert w.numpy().std() == pytest.approx(std, rel=0.02)


def test_uniform_bounds_and_constants() -> None:
    w = cr.empty(50, 60)
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / 60)
    assert np.abs(w.numpy()).max() <= bound
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert (w.numpy() == 1).all()
    nn.init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()


def test_init_is_reproducible_from_the_seed() -> None:
    cr.manual_seed(123)
    a = nn.Linear(5, 4)
    cr.manual_seed(123)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())


def test_linear_default_init_is_pytorchs_bound() -> None:
    layer = nn.Linear(256, 300)
    bound = 1 / math.sqrt(256)
    w = layer.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert np.abs(layer.bias.detach().numpy()).max() <= bound


def test_init_on_parameters_is_not_recorded() -> None:
    layer = nn.Linear(3, 3)
    nn.init.kaiming_normal_(layer.weight)
    assert layer.weight.is_leaf and layer.weight.requires_grad


def _variance_ratio(init_weight, seed: int, depth: int = 20, width: int = 256) -> float:
    gen = Generator(seed)
    x = cr.tensor(gen.standard_normal((512, width), np.float32))
    h = x
    with cr.no_grad():
        for _ in range(depth):
            layer = nn.Linear(width, width, bias=False)
            init_weight(layer.weight, gen)
            h = layer(h).relu()
    # The variance about zero (mean square), the quantity He et al. keep constant: ReLU
    # outputs are not centred, and Kaiming's σ² = 2/fan_in makes E[h²] equal E[x²].
    return float((h.numpy() ** 2).mean() / (x.numpy() ** 2).mean())


def test_kaiming_keeps_variance_and_small_normal_collapses_it() -> None:
    seeds = range(8)  # one 256-wide stack alone ranges over ~0.3 to ~2.6

    def kaiming(w, gen):
        nn.init.kaiming_normal_(w, nonlinearity="relu", generator=gen)

    def small(w, gen):
        nn.init.normal_(w, 0.0, 0.01, generator=gen)

    kaiming_ratio = np.mean([_variance_ratio(kaiming, s) for s in seeds])
    small_ratio = np.mean([_variance_ratio(small, s) for s in seeds])
    assert 0.5 < kaiming_ratio < 2.0, kaiming_ratio
    # N(0, 0.01²): each layer multiplies the mean square by 256 · 1e-4 / 2 ≈ 0.0128.
    assert small_ratio < 1e-20, small_ratio


@pytest.mark.parametrize(
    "fn",
    [
        nn.init.kaiming_normal_,
        nn.init.kaiming_uniform_,
        nn.init.xavier_normal_,
        nn.init.xavier_uniform_,
    ],
)
@pytest.mark.parametrize("shape", [(3, 0), (0, 4), (0, 0)])
def test_zero_element_weights_warn_and_are_left_alone(fn, shape) -> None:  # type: ignore[no-untyped-def]
    # Issue 7, item 12: these divided by a fan of 0 (ZeroDivisionError); PyTorch warns.
    w = cr.empty(*shape)
    with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
        assert fn(w) is w
    assert w.shape == shape


def test_linear_with_no_inputs_works_like_pytorch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="no-op"):
        layer = nn.Linear(0, 3)
    with pytest.warns(UserWarning, match="no-op"):
        reference = torch.nn.Linear(0, 3)
    assert layer.weight.shape == tuple(reference.weight.shape) == (3, 0)
    # Bias bound 1/sqrt(0) is taken as 0, as in PyTorch: the bias starts at zero.
    np.testing.assert_array_equal(layer.bias.detach().numpy(), reference.bias.detach().numpy())
    np.testing.assert_array_equal(layer(cr.randn(2, 0)).detach().numpy(), np.zeros((2, 3)))
