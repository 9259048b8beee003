"""Newton's method with conjugate gradient on Hessian-vector products (Newton-CG).

L2-regularised logistic regression on the 8x8 digits that scikit-learn ships (offline),
binary task "is it an 8?", trained by Newton's method. Each Newton step solves

    H(θ) p = −∇L(θ)

by conjugate gradient, which needs only products H v: ``cr.autograd.hvp`` gives them by
differentiating the gradient once more (a backward pass through the recorded backward
pass), so the 65×65 Hessian is never formed. Gradient descent with the classic safe step
gets the same budget of gradient evaluations, for comparison.

Run it from the repository root:

    python examples/newton_cg_logistic.py
"""

from __future__ import annotations

import numpy

import chainrule as cr
from chainrule.data.datasets import Digits

LAMBDA = 1e-3  # L2 strength on the weights (not on the bias)
POSITIVE = 8  # the digit told apart from the other nine
NEWTON_STEPS = 20
GRAD_TOL = 1e-10
HVP_COST = 2  # an H v costs about two gradients: backward with graph, then its backward

images, labels = Digits(train=True).arrays()
n = len(labels)
# Pixels in [0, 1] and a constant column for the bias; float64 so Newton's quadratic
# convergence shows down to the last digits.
features = numpy.concatenate([images.reshape(n, -1), numpy.ones((n, 1))], axis=1)
X = cr.tensor(features.astype(numpy.float64))
t = cr.tensor((labels == POSITIVE).astype(numpy.float64))
penalised = cr.tensor(numpy.r_[numpy.ones(64), 0.0])  # 1 for a weight, 0 for the bias


def loss_fn(theta: cr.Tensor) -> cr.Tensor:
    """Mean logistic loss plus λ/2 ‖w‖².

    With z = Xθ, the negative log-likelihood of t ∈ {0, 1} is softplus(z) − t z
    (−log σ(z) for t = 1, −log(1 − σ(z)) for t = 0), written with core ops only so that
    it can be differentiated twice.
    """
    z = X @ theta
    nll = (z.softplus() - t * z).mean()
    return nll + 0.5 * LAMBDA * (penalised * theta * theta).sum()


def gradient(theta: cr.Tensor) -> cr.Tensor:
    leaf = theta.detach().requires_grad_()
    (g,) = cr.autograd.grad(loss_fn(leaf), leaf)
    return g


def dot(a: cr.Tensor, b: cr.Tensor) -> float:
    return float((a * b).sum().item())


def conjugate_gradient(theta: cr.Tensor, g: cr.Tensor, tol: float) -> tuple[cr.Tensor, int]:
    """Solve H p = −g approximately; H enters only through Hessian-vector products.

    Returns the step p and the number of products used. Stops when ‖H p + g‖ ≤ tol
    (an inexact Newton step: early steps need not be solved exactly).
    """
    p = cr.zeros_like(g)
    r = -g  # the residual −g − H p at p = 0
    d = r
    rr = dot(r, r)
    max_products = 2 * g.numel()  # in exact arithmetic CG ends within numel() products
    for k in range(1, max_products + 1):
        _, hd = cr.autograd.hvp(loss_fn, theta, d)
        alpha = rr / dot(d, hd)
        p = p + alpha * d
        r = r - alpha * hd
        rr_next = dot(r, r)
        if rr_next**0.5 <= tol:
            return p, k
        d = r + (rr_next / rr) * d
        rr = rr_next
    return p, max_products


def backtrack(theta: cr.Tensor, p: cr.Tensor, g: cr.Tensor, loss: float) -> float:
    """Armijo backtracking: the largest α in 1, ½, ¼… that decreases L enough."""
    alpha, slope = 1.0, dot(g, p)
    with cr.no_grad():
        while loss_fn(theta + alpha * p).item() > loss + 1e-4 * alpha * slope and alpha > 1e-8:
            alpha *= 0.5
    return alpha


# A Hessian-vector product agrees with the closed form Xᵀ diag(σ(z)(1 − σ(z))) X / N + λD.
theta = cr.zeros(65, dtype=cr.float64)
probe = cr.randn(65, generator=cr.Generator().manual_seed(0), dtype=cr.float64)
_, hv = cr.autograd.hvp(loss_fn, theta, probe)
s = (X @ theta).sigmoid().numpy()
H = features.T @ (features * (s * (1 - s))[:, None]) / n + LAMBDA * numpy.diag(penalised.numpy())
print(f"hvp vs closed-form H v: max |difference| = {abs(hv.numpy() - H @ probe.numpy()).max():.1e}")

print(f"\nNewton-CG, {n} digits, '{POSITIVE}' vs the rest, λ = {LAMBDA:g}")
print(f"{'step':>4s} {'loss':>20s} {'‖∇L‖':>10s} {'CG its':>7s} {'α':>6s}")
evaluations = 0
for step in range(NEWTON_STEPS):
    g = gradient(theta)
    evaluations += 1
    loss = loss_fn(theta).item()
    gnorm = dot(g, g) ** 0.5
    if gnorm <= GRAD_TOL:
        print(f"{step:4d} {loss:20.15f} {gnorm:10.2e}   converged")
        break
    # Forcing term min(½, √‖g‖)·‖g‖: loose solves far away, exact ones near the answer,
    # which keeps Newton's superlinear convergence (Nocedal & Wright, Algorithm 7.1).
    p, its = conjugate_gradient(theta, g, min(0.5, gnorm**0.5) * gnorm)
    evaluations += HVP_COST * its
    alpha = backtrack(theta, p, g, loss)
    print(f"{step:4d} {loss:20.15f} {gnorm:10.2e} {its:7d} {alpha:6.3f}")
    theta = theta + alpha * p
g = gradient(theta)
newton_loss, newton_gnorm = loss_fn(theta).item(), dot(g, g) ** 0.5

# Gradient descent with step 1/L, L = λ_max(XᵀX)/(4N) + λ bounding the Hessian's largest
# eigenvalue (σ' ≤ ¼): the textbook step that always decreases the loss.
lipschitz = numpy.linalg.eigvalsh(features.T @ features).max() / (4 * n) + LAMBDA
w = cr.zeros(65, dtype=cr.float64)
for _ in range(evaluations):
    w = w - (1 / lipschitz) * gradient(w)
g = gradient(w)
gd_loss, gd_gnorm = loss_fn(w).item(), dot(g, g) ** 0.5

print(f"\nsame budget of {evaluations} gradient evaluations (an H v counted as {HVP_COST}):")
print(f"  Newton-CG        loss {newton_loss:.15f}   ‖∇L‖ = {newton_gnorm:.1e}")
print(f"  gradient descent loss {gd_loss:.15f}   ‖∇L‖ = {gd_gnorm:.1e}")
accuracy = ((X @ theta > 0).numpy() == (t.numpy() > 0.5)).mean()
print(f"training accuracy of the Newton solution: {accuracy:.1%}")
assert newton_gnorm < 1e-8, f"Newton-CG did not converge: ‖∇L‖ = {newton_gnorm:.1e}"
assert newton_loss < gd_loss
