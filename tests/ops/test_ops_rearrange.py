"""flip, roll, tril, triu, repeat, tile, repeat_interleave, index_select, narrow, prod,
norm and F.one_hot against PyTorch: values, dtypes and gradients in float32 and float64,
the argument spellings torch takes, prod's gradient with zeros (first and second order),
the norms' gradient at 0, copies versus views, and errors that say what to do.
(Drawn shapes, gradcheck, second order and devices: the specs in
``op_specs_rearrange.py``.)"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")

TOLERANCES = {np.float64: (1e-12, 1e-12), np.float32: (1e-5, 1e-6)}
X = np.random.default_rng(0).standard_normal((2, 3, 4))


def _check_against_torch(
    cr_fn: Callable[[Any], Any], torch_fn: Callable[[Any], Any], x: np.ndarray, dtype: type
) -> None:
    """Same values, dtype and input gradient (under a random upstream gradient) as torch."""
    rtol, atol = TOLERANCES[dtype]
    ours, theirs = (
        cr.tensor(x.astype(dtype), requires_grad=True),
        torch.tensor(x.astype(dtype), requires_grad=True),
    )
    y, ty = cr_fn(ours), torch_fn(theirs)
    expected = ty.detach().numpy()
    assert y.shape == expected.shape and str(y.dtype) == str(expected.dtype)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(expected.shape).astype(dtype)
    y.backward(cr.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)


# Each: (label, chainrule call, torch call); the same spelling where torch has it.
SAME = [
    ("flip varargs", lambda t: t.flip(0, 2)),
    ("flip tuple", lambda t: t.flip((-1,))),
    ("flip list", lambda t: t.flip([1, 0, 2])),
    ("roll flat", lambda t: t.roll(5)),
    ("roll one dim", lambda t: t.roll(-1, 1)),
    ("roll dims", lambda t: t.roll((1, 7, -2), (0, 2, 1))),
    ("roll same dim twice", lambda t: t.roll((1, 1), (2, 2))),
    ("tril", lambda t: t.tril()),
    ("tril above", lambda t: t.tril(1)),
    ("tril below", lambda t: t.tril(-2)),
    ("triu", lambda t: t.triu()),
    ("triu beyond", lambda t: t.triu(9)),
    ("triu below", lambda t: t.triu(-1)),
    ("repeat", lambda t: t.repeat(2, 1, 3)),
    ("repeat new dims", lambda t: t.repeat(2, 1, 1, 2)),
    ("repeat tuple", lambda t: t.repeat((1, 2, 1))),
    ("repeat zero", lambda t: t.repeat(1, 0, 2)),
    ("tile", lambda t: t.tile((2,))),
    ("tile varargs", lambda t: t.tile(2, 1, 1, 1)),
    ("repeat_interleave flat", lambda t: t.repeat_interleave(2)),
    ("repeat_interleave dim", lambda t: t.repeat_interleave(3, dim=1)),
    ("repeat_interleave zero", lambda t: t.repeat_interleave(0, -1)),
    ("narrow", lambda t: t.narrow(2, 1, 2)),
    ("narrow negative start", lambda t: t.narrow(-1, -3, 3)),
    ("narrow empty", lambda t: t.narrow(1, 3, 0)),
    ("prod", lambda t: t.prod()),
    ("prod dim", lambda t: t.prod(1)),
    ("prod keepdim", lambda t: t.prod(-1, keepdim=True)),
    ("norm", lambda t: t.norm()),
    ("norm p=1 dim", lambda t: t.norm(1, 2)),
    ("norm p=3 dims", lambda t: t.norm(3, (0, 2), True)),
    ("norm p=0.5", lambda t: t.norm(0.5)),
    ("norm p=-1.5", lambda t: t.norm(-1.5, 1)),
    ("norm inf", lambda t: t.norm(math.inf, 0)),
    ("norm -inf", lambda t: t.norm(-math.inf, -1)),
    ("norm fro", lambda t: t.norm("fro", (1, 2))),
]
# Functions: chainrule's and torch's spelling (indices are tensors of each library).
FUNCTIONS = [
    ("cr.flip", lambda t: cr.flip(t, (0, 1)), lambda t: torch.flip(t, (0, 1))),
    ("cr.roll", lambda t: cr.roll(t, 2, -1), lambda t: torch.roll(t, 2, -1)),
    ("cr.tril batch", lambda t: cr.tril(t, 1), lambda t: torch.tril(t, 1)),
    ("cr.triu batch", lambda t: cr.triu(t, -1), lambda t: torch.triu(t, -1)),
    ("cr.tile", lambda t: cr.tile(t, (2, 1)), lambda t: torch.tile(t, (2, 1))),
    (
        "index_select repeats",
        lambda t: cr.index_select(t, 1, cr.tensor([2, 0, 2, 2])),
        lambda t: torch.index_select(t, 1, torch.tensor([2, 0, 2, 2])),
    ),
    (
        "index_select int32 list",
        lambda t: t.index_select(-1, np.array([3, 1], np.int32)),
        lambda t: t.index_select(-1, torch.tensor([3, 1], dtype=torch.int32)),
    ),
    (
        "index_select 0-d index",
        lambda t: t.index_select(0, cr.tensor(1)),
        lambda t: t.index_select(0, torch.tensor(1)),
    ),
    (
        "repeat_interleave counts",
        lambda t: cr.repeat_interleave(t, cr.tensor([0, 2, 1]), dim=1),
        lambda t: torch.repeat_interleave(t, torch.tensor([0, 2, 1]), dim=1),
    ),
    (
        "repeat_interleave 0-d count",
        lambda t: cr.repeat_interleave(t, cr.tensor(2), dim=0),
        lambda t: torch.repeat_interleave(t, torch.tensor(2), dim=0),
    ),
    ("cr.narrow", lambda t: cr.narrow(t, 0, 1, 1), lambda t: torch.narrow(t, 0, 1, 1)),
    ("cr.prod", lambda t: cr.prod(t, 2), lambda t: torch.prod(t, 2)),
    (
        "cr.norm",
        lambda t: cr.norm(t, 2, (0, 1), True),
        lambda t: torch.norm(t, 2, (0, 1), True),
    ),
]
CASES = [(label, fn, fn) for label, fn in SAME] + FUNCTIONS


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("label", "ours", "theirs"), CASES, ids=[c[0] for c in CASES])
def test_values_dtypes_and_gradients_match_torch(
    label: str, ours: Any, theirs: Any, dtype: type
) -> None:
    _check_against_torch(ours, theirs, X, dtype)


SCALAR_CASES = [
    *(
        (fn, fn)
        for fn in (
            lambda t: t.flip(0),
            lambda t: t.roll(1),
            lambda t: t.repeat(2),
            lambda t: t.tile((3,)),
            lambda t: t.repeat_interleave(2),
            lambda t: t.prod(),
            lambda t: t.prod(0),
            lambda t: t.norm(),
        )
    ),
    (lambda t: t.index_select(0, [0]), lambda t: t.index_select(0, torch.tensor([0]))),
]


@pytest.mark.parametrize(("ours", "theirs"), SCALAR_CASES)
def test_0d_tensors_as_torch(ours: Any, theirs: Any) -> None:
    _check_against_torch(ours, theirs, np.array(1.5), np.float64)


@pytest.mark.parametrize(
    ("cr_dtype", "torch_dtype"),
    [(cr.int32, torch.int32), (cr.int64, torch.int64), (cr.bool, torch.bool)],
)
def test_integer_and_bool_tensors_keep_torch_dtypes(cr_dtype: Any, torch_dtype: Any) -> None:
    values = np.array([[1, 0, 3], [2, 5, 1]])
    ours, theirs = cr.tensor(values, dtype=cr_dtype), torch.tensor(values, dtype=torch_dtype)
    for fn in (
        lambda t: t.tril(),
        lambda t: t.triu(1),
        lambda t: t.flip(1),
        lambda t: t.roll(1, 1),
        lambda t: t.repeat(2, 1),
        lambda t: t.repeat_interleave(2, 0),
        lambda t: t.narrow(1, 1, 2),
        lambda t: t.prod(),
        lambda t: t.prod(1),
    ):
        y, ty = fn(ours), fn(theirs)
        assert str(y.dtype) == str(ty.dtype).removeprefix("torch."), (y.dtype, ty.dtype)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
    assert cr.tensor(values, dtype=cr.uint8).prod().dtype == cr.int64  # NumPy: uint64


def test_prod_dtype_casts_first() -> None:
    x = cr.tensor([[1.5, 2.0], [3.0, -1.0]], dtype=cr.float32)
    assert x.prod(dtype=cr.float64).dtype == cr.float64
    assert cr.prod(cr.tensor([1, 2, 3]), dtype=cr.float32).dtype == cr.float32


# ----------------------------------------------------------------------- prod and zeros
ZEROS = {
    "one zero": np.array([[2.0, 0.0, 3.0, -1.5], [1.0, 2.0, 3.0, 4.0]]),
    "two zeros": np.array([[0.0, 2.0, 0.0, 5.0], [1.0, 0.0, -3.0, 4.0]]),
    "all zeros": np.zeros((2, 4)),
}


@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("name", sorted(ZEROS))
def test_prod_gradients_with_zeros_match_torch_to_second_order(name: str, dim: Any) -> None:
    x = ZEROS[name]
    ours, theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = ours.prod() if dim is None else ours.prod(dim)
    ty = theirs.prod() if dim is None else theirs.prod(dim)
    (g,) = cr.autograd.grad(y.sum(), ours, create_graph=True)
    (tg,) = torch.autograd.grad(ty.sum(), theirs, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    # The second derivative: d/dx of Σ g·w, for a fixed w.
    w = np.arange(1.0, 9.0).reshape(2, 4)
    (h,) = cr.autograd.grad((g * cr.tensor(w)).sum(), ours)
    (th,) = torch.autograd.grad((tg * torch.tensor(w)).sum(), theirs)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-12)
    # The array backward (first order without create_graph) agrees with the Tensor one.
    fast = cr.tensor(x, requires_grad=True)
    (fast.prod() if dim is None else fast.prod(dim)).sum().backward()
    np.testing.assert_allclose(fast.grad.numpy(), tg.detach().numpy(), rtol=1e-12)


def test_prod_gradient_is_the_product_of_the_others() -> None:
    x = cr.tensor([2.0, 0.0, 3.0, -1.5], dtype=cr.float64, requires_grad=True)
    x.prod().backward()
    # One zero: only the zero gets a gradient, the product of the rest.
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, -9.0, 0.0, 0.0])
    assert cr.autograd.gradcheck(lambda t: t.prod(), [x])
    assert cr.autograd.gradgradcheck(lambda t: t.prod(), [x])
    two = cr.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradgradcheck(lambda t: t.prod(1), [two])
    assert cr.autograd.gradgradcheck(lambda t: t.prod(), [two])


def test_prod_over_empty_dims_is_one_with_no_gradient() -> None:
    x = cr.zeros(2, 0, dtype=cr.float64, requires_grad=True)
    y = x.prod(1)
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 1.0])
    y.sum().backward()
    assert x.grad.shape == (2, 0)


# ---------------------------------------------------------------------- norm at zero
@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, 3.0, 1.5, 0.5, -1.0])
@pytest.mark.parametrize(
    "values", [[0.0, 0.0, 0.0], [0.0, 1.0, -2.0]], ids=["all zero", "one zero"]
)
def test_norm_gradient_at_zero_is_torch_s(p: float, values: list[float]) -> None:
    x = np.array(values)
    ours, theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours.norm(p), theirs.norm(p)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.backward()
    ty.backward()
    assert np.isfinite(ours.grad.numpy()).all()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=0)


def test_norm_p0_counts_nonzeros_and_has_no_gradient() -> None:
    x = cr.tensor([[0.0, 2.0, -1.0], [0.0, 0.0, 3.0]], requires_grad=True)
    y = x.norm(0, dim=1)
    np.testing.assert_array_equal(y.numpy(), [2.0, 1.0])
    assert y.dtype == cr.float32 and not y.requires_grad


def test_norm_second_order_at_zero_is_finite() -> None:
    x = cr.tensor([0.0, 0.0], dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad(x.norm(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x)
    assert np.isfinite(h.numpy()).all()


# ---------------------------------------------------------------------- copies and views
def test_flip_repeat_tile_roll_are_writable_copies_and_narrow_is_a_view() -> None:
    for make in (
        lambda t: t.flip(0),
        lambda t: t.repeat(1, 1),  # every size 1: still a copy, as torch
        lambda t: t.tile((1,)),
        lambda t: t.repeat_interleave(1, 0),
        lambda t: t.roll(0),
        lambda t: t.tril(5),
    ):
        x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
        y = make(x)
        y += 1.0
        np.testing.assert_array_equal(x.numpy(), [[1.0, 2.0], [3.0, 4.0]])
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    x.narrow(1, 1, 1).mul_(10.0)
    np.testing.assert_array_equal(x.numpy(), [[1.0, 20.0], [3.0, 40.0]])


def test_repeat_copies_once() -> None:
    """Reshape, expand (a view of x), one copy (clone), then a reshape that is a view of
    that copy: the result's memory, no more."""
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.repeat(4, 1, 2)
    chain, node = [], y.grad_fn
    while node is not None:
        chain.append(type(node).__name__)
        node = node.next_functions[0][0] if node.next_functions[0][0] is not x else None
    assert chain == ["Reshape", "Clone", "Expand", "Reshape"]
    assert y.data.base is not None and y.data.base.size == y.numel()
    assert not np.shares_memory(y.data, x.data)


# ------------------------------------------------------------------------------ one_hot
def test_one_hot_matches_torch() -> None:
    labels = np.array([[0, 3], [1, 1]])
    for n in (-1, 5):
        ours = F.one_hot(cr.tensor(labels), n)
        theirs = torch.nn.functional.one_hot(torch.tensor(labels), n)
        assert ours.dtype == cr.int64 and not ours.requires_grad
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert F.one_hot(cr.tensor(2), 4).tolist() == [0, 0, 1, 0]
    assert F.one_hot(cr.tensor(np.zeros(0, np.int64)), 3).shape == (0, 3)


@pytest.mark.parametrize(
    ("labels", "n", "error", "message"),
    [
        (np.array([0, 2], np.int32), 3, cr.DTypeError, r"one_hot: needs an int64.*\.long\(\)"),
        (np.array([-1, 2]), 3, ValueError, r"must be in \[0, 3\), got values from -1 to 2"),
        (np.array([0, 5]), 3, ValueError, r"must be in \[0, 3\), got values from 0 to 5"),
        (np.zeros(0, np.int64), -1, ValueError, r"empty tensor; pass num_classes"),
    ],
)
def test_one_hot_errors(labels: np.ndarray, n: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        F.one_hot(cr.tensor(labels), n)


# ------------------------------------------------------------------------------- errors
M = cr.ones(2, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: cr.tril(cr.ones(3)), cr.ShapeError, r"tril: .*at least 2 dims.*\(3,\)"),
        (lambda: cr.ones(3).triu(), cr.ShapeError, r"triu: .*at least 2 dims.*\(3,\)"),
        (lambda: M.flip(0, -2), cr.ShapeError, r"flip: dim \(0, -2\) names the same dim"),
        (lambda: M.flip(2), IndexError, r"flip: dim 2 is out of range.*\(2, 3\)"),
        (lambda: M.roll((1, 2), 0), cr.ShapeError, r"roll: 2 shifts \(1, 2\) for 1 dims"),
        (lambda: M.roll((1, 2)), cr.ShapeError, r"roll: 2 shifts .* but no dims"),
        (lambda: cr.tensor(1.0).roll(1, 0), cr.ShapeError, r"roll: .*0-d tensor"),
        (lambda: M.repeat(2), cr.ShapeError, r"repeat: 1 sizes \(2,\) for a tensor of shape"),
        (lambda: M.repeat(-1, 2), cr.ShapeError, r"repeat: sizes must be non-negative"),
        (lambda: M.tile((-1,)), cr.ShapeError, r"tile: sizes must be non-negative"),
        (lambda: M.repeat_interleave(-1), cr.ShapeError, r"repeats must be non-negative"),
        (
            lambda: M.repeat_interleave(cr.tensor([1, 2]), 1),
            cr.ShapeError,
            r"repeats \[1, 2\] must be non-negative, one per element along dim 1 of size 3",
        ),
        (
            lambda: M.repeat_interleave(cr.tensor([1.0, 2.0]), 0),
            cr.ShapeError,
            r"repeats must be an int or a 1-D integer tensor, got float",
        ),
        (lambda: M.repeat_interleave(2, 2), IndexError, r"repeat_interleave: dim 2"),
        (
            lambda: M.index_select(1, cr.tensor([0.0])),
            cr.DTypeError,
            r"index_select: index must be an integer tensor.*index\.long\(\)",
        ),
        (
            lambda: M.index_select(1, cr.tensor([[0]])),
            cr.ShapeError,
            r"index_select: index must be 1-D, got shape \(1, 1\)",
        ),
        (
            lambda: M.index_select(1, cr.tensor([0, 3])),
            IndexError,
            r"index_select: index values must be in \[0, 3\) along dim 1 of x \(2, 3\)",
        ),
        (
            lambda: M.index_select(0, cr.tensor([-1])),
            IndexError,
            r"got values from -1 to -1",
        ),
        (
            lambda: M.narrow(1, 2, 2),
            cr.ShapeError,
            r"narrow: start 2 \+ length 2 does not fit in dim 1 of size 3 \(shape \(2, 3\)\)",
        ),
        (lambda: M.narrow(1, 4, 0), IndexError, r"narrow: start 4 is out of range"),
        (lambda: cr.tensor(1.0).narrow(0, 0, 1), cr.ShapeError, r"narrow: .*0-d tensor"),
        (lambda: cr.ones(2, dtype=cr.int64).norm(), cr.DTypeError, r"norm: .*floating"),
        (lambda: M.norm("nuc"), ValueError, r"norm: p='nuc' is not supported"),
        (lambda: M.prod(2), IndexError, r"prod: dim 2 is out of range"),
    ],
)
def test_errors_name_the_op_the_shapes_and_what_to_do(
    call: Callable[[], Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        call()
