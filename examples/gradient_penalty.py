"""A WGAN-GP gradient penalty: a loss on a gradient, trained through the gradient.

The critic D of a Wasserstein GAN should be 1-Lipschitz. WGAN-GP (Gulrajani et al.,
2017) asks for it softly, at points x̂ drawn on segments between real and fake samples:

    loss = E[D(fake)] − E[D(real)] + λ E[(‖∇ₓD(x̂)‖ − 1)²]

The penalty contains ∇ₓD, so its gradient with respect to the critic's weights is a
second derivative: ``cr.autograd.grad(..., create_graph=True)`` records the backward
pass as a graph, and ``loss.backward()`` then runs through it.

Here the critic (an MLP on 2-D points) learns to tell a ring of eight Gaussians (real)
from one blob at the centre (a fixed, untrained generator). Trained with the penalty, its
input-gradient norms settle near 1; trained without it, they keep growing.

Run it from the repository root:

    python examples/gradient_penalty.py
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy

import chainrule as cr
from chainrule import nn

LAMBDA = 10.0  # the paper's penalty weight
STEPS = 300
BATCH = 128
HIDDEN = 32


class Critic(nn.Module):
    """D: R² → R, an MLP 2-32-32-1 with tanh between its affine maps.

    Written with core ops (x @ W + b) so that it can be differentiated twice; ``nn.Linear``
    does the same once its fused Function has a second-order backward.
    """

    def __init__(self) -> None:
        super().__init__()
        # LeCun initialisation (variance 1/fan_in), right for tanh.
        self.w1 = nn.Parameter(cr.randn(2, HIDDEN) * math.sqrt(1 / 2))
        self.b1 = nn.Parameter(cr.zeros(HIDDEN))
        self.w2 = nn.Parameter(cr.randn(HIDDEN, HIDDEN) * math.sqrt(1 / HIDDEN))
        self.b2 = nn.Parameter(cr.zeros(HIDDEN))
        self.w3 = nn.Parameter(cr.randn(HIDDEN, 1) * math.sqrt(1 / HIDDEN))
        self.b3 = nn.Parameter(cr.zeros(1))

    def weights(self) -> tuple[cr.Tensor, ...]:
        return (self.w1, self.b1, self.w2, self.b2, self.w3, self.b3)

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        return mlp(x, *self.weights())


def mlp(x: cr.Tensor, *weights: cr.Tensor) -> cr.Tensor:
    """The critic as a function of its input and weights, one value per row of x."""
    w1, b1, w2, b2, w3, b3 = weights
    h = (x @ w1 + b1).tanh()
    h = (h @ w2 + b2).tanh()
    return (h @ w3 + b3).reshape(-1)


rng = numpy.random.default_rng(0)


def real_batch(n: int) -> cr.Tensor:
    """Eight Gaussians (standard deviation 0.05) evenly spaced on the circle of radius 2."""
    angle = rng.integers(0, 8, n) * (2 * math.pi / 8)
    centres = 2 * numpy.stack([numpy.cos(angle), numpy.sin(angle)], axis=1)
    return cr.tensor((centres + 0.05 * rng.standard_normal((n, 2))).astype(numpy.float32))


def fake_batch(n: int) -> cr.Tensor:
    """The fixed generator's samples: one blob N(0, 0.5²) at the centre."""
    return cr.tensor((0.5 * rng.standard_normal((n, 2))).astype(numpy.float32))


def interpolates(real: cr.Tensor, fake: cr.Tensor) -> cr.Tensor:
    """x̂ = ε·real + (1 − ε)·fake with ε ~ U(0, 1) per pair: where the penalty looks."""
    eps = cr.tensor(rng.uniform(size=(real.shape[0], 1)).astype(numpy.float32))
    return eps * real + (1 - eps) * fake


def input_gradient_norms(
    critic: Callable[[cr.Tensor], cr.Tensor], x: cr.Tensor, create_graph: bool
) -> cr.Tensor:
    """‖∇ₓD(x)‖ for each row of x (D's outputs are independent across rows, so the
    gradient of their sum holds each row's own gradient)."""
    x = x.detach().requires_grad_()
    (gx,) = cr.autograd.grad(critic(x).sum(), x, create_graph=create_graph)
    return (gx * gx).sum(dim=1).sqrt()


def train(critic: Critic, penalty_weight: float) -> None:
    opt = cr.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    for _ in range(STEPS):
        real, fake = real_batch(BATCH), fake_batch(BATCH)
        loss = critic(fake).mean() - critic(real).mean()
        if penalty_weight:
            # create_graph=True: the norms stay a function of the weights, so backward()
            # below differentiates the penalty through ∇ₓD (a second derivative).
            norms = input_gradient_norms(critic, interpolates(real, fake), create_graph=True)
            loss = loss + penalty_weight * ((norms - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def describe(critic: Critic, x_hat: cr.Tensor) -> str:
    norms = input_gradient_norms(critic, x_hat, create_graph=False).numpy()
    with cr.no_grad():
        gap = (critic(real_test).mean() - critic(fake_test).mean()).item()
    return (
        f"‖∇ₓD(x̂)‖ mean {norms.mean():6.3f}, std {norms.std():5.3f}, "
        f"range [{norms.min():.2f}, {norms.max():.2f}];  E D(real) − E D(fake) = {gap:7.3f}"
    )


cr.manual_seed(0)  # the critics' initial weights; the data come from `rng`
real_test, fake_test = real_batch(1024), fake_batch(1024)
x_hat = interpolates(real_test, fake_test)  # held-out points, the same for every line

# The penalty's gradient with respect to every weight, checked against finite differences
# (float64, 8 points, random projections uᵀJv): second-order autograd, seen to be right.
points = x_hat[:8].double()


def penalty(*weights: cr.Tensor) -> cr.Tensor:
    # gradcheck evaluates its function under no_grad() for the finite differences;
    # enable_grad() lets the inner ∇ₓD be recorded there all the same.
    with cr.enable_grad():
        norms = input_gradient_norms(lambda x: mlp(x, *weights), points, create_graph=True)
        return ((norms - 1) ** 2).mean()


weights64 = [w.detach().double().requires_grad_() for w in Critic().weights()]
ok = cr.autograd.gradcheck(penalty, weights64, fast_mode=True)
print(f"gradcheck of the penalty with respect to the critic's weights: {ok}")

cr.manual_seed(1)
with_penalty = Critic()
without = Critic()
without.load_state_dict(with_penalty.state_dict())  # the same starting critic
print(f"\n{'at initialisation':30s} {describe(with_penalty, x_hat)}")
train(with_penalty, LAMBDA)
print(f"{f'after {STEPS} steps, λ = {LAMBDA:g}':30s} {describe(with_penalty, x_hat)}")
train(without, 0.0)
print(f"{f'after {STEPS} steps, no penalty':30s} {describe(without, x_hat)}")

final = input_gradient_norms(with_penalty, x_hat, create_graph=False).numpy()
unconstrained = input_gradient_norms(without, x_hat, create_graph=False).numpy()
assert abs(final.mean() - 1) < 0.1, f"the penalty did not bring the norms to 1: {final.mean()}"
assert unconstrained.mean() > 2 * final.mean()
