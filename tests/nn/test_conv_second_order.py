"""Second order for the image layers: every Function's ``backward_graph`` agrees with its
``backward`` and passes ``gradgradcheck`` (float64), over drawn convolution geometries
and the fixed cases of ``conv_cases.py``; and a Hessian-vector product through a small
CNN matches PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conv_cases import conv_cases
from hypothesis import HealthCheck, given, settings
from test_conv import _inputs, _ours
from test_conv import conv_cases as drawn_convs

import chainrule as cr
from chainrule import nn

CASES = conv_cases(np.random.default_rng(0))


@pytest.mark.parametrize(
    ("name", "fn", "inputs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_gradgradcheck(name: str, fn: Any, inputs: list[Any]) -> None:
    assert type(fn(*inputs).grad_fn).__name__ == name
    assert cr.autograd.gradgradcheck(fn, inputs, atol=1e-5, rtol=1e-4)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=drawn_convs())
def test_conv2d_gradgradcheck_over_geometries(case: dict[str, Any]) -> None:
    inputs = [cr.tensor(a, requires_grad=True) for a in _inputs(case, np.float64)]
    assert cr.autograd.gradgradcheck(_ours(case), inputs, atol=1e-5, rtol=1e-4)


def test_hessian_vector_product_through_a_cnn_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    cr.manual_seed(0)
    ours = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(3, 2, 2, stride=2),
        nn.Flatten(),
    ).double()
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.Tanh(),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(3, 2, 2, stride=2),
        torch.nn.Flatten(),
    ).double()
    theirs.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    )
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 8, 8))
    v = rng.standard_normal(x.shape)

    xc = cr.tensor(x, requires_grad=True)
    (gx,) = cr.autograd.grad((ours(xc) ** 2).sum(), xc, create_graph=True)
    (hv,) = cr.autograd.grad((gx * cr.tensor(v)).sum(), xc)

    xt = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad((theirs(xt) ** 2).sum(), xt, create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), xt)
    np.testing.assert_allclose(hv.numpy(), hvt.numpy(), rtol=1e-8, atol=1e-10)
