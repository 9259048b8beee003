"""A tour of chainrule's autograd: the README's first example, step by step.

Run it from the repository root:

    python examples/autograd_tour.py
"""

from __future__ import annotations

import chainrule as cr

cr.manual_seed(0)
x = cr.randn(4, 3, requires_grad=True)
w = cr.randn(3, 2, requires_grad=True)
b = cr.zeros(2, requires_grad=True)

# Forward: each op records a node; `loss.grad_fn` is the last one.
logits = (x @ w + b).relu()
loss = logits.log_softmax(dim=1)[cr.arange(4), [0, 1, 1, 0]].mean().neg()
print("loss:", loss.item(), "made by", loss.grad_fn)

# Backward: the engine walks the nodes newest-first, chaining vector-Jacobian products.
loss.backward()
print("dloss/dw, shape", w.grad.shape, "\n", w.grad)

# Full Jacobian with the lecture's shape: out.shape + in.shape.
J = cr.autograd.jacobian(lambda v: (v @ w).tanh(), x)
print("Jacobian of tanh(x @ w) w.r.t. x:", J.shape)

# Finite differences agree with the analytic gradient (checked in float64).
ok = cr.autograd.gradcheck(lambda v: (v @ w).sigmoid().sum(), (x.double(),))
print("gradcheck:", ok)
