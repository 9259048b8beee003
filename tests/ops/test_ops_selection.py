"""The selection and splitting functions built on the primitives (``sort``, ``topk``,
``gather``, ``masked_fill``, ``split``, ``chunk``) and ``einsum``'s equations: PyTorch's
values, indices and gradients, its tie and NaN rules, and errors that name what is wrong.
(Gradient checks and parity over drawn cases: the Gather, Einsum and CumSum specs in
``op_specs.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _pair(x: np.ndarray) -> tuple[cr.Tensor, object]:
    return cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_keeps_ties_in_order_and_routes_gradients_like_torch(descending: bool) -> None:
    x = np.array([[2.0, 1.0, 2.0, 0.5, 1.0], [3.0, 3.0, 3.0, -1.0, 0.0]])
    ours, theirs = _pair(x)
    values, indices = cr.sort(ours, dim=1, descending=descending)
    t_values, t_indices = torch.sort(theirs, dim=1, descending=descending, stable=True)
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    g = np.arange(10.0).reshape(2, 5)
    values.backward(cr.tensor(g))
    t_values.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_nan_sorts_last_ascending_and_first_descending() -> None:
    x = np.array([1.0, np.nan, -2.0, 3.0])
    for descending in (False, True):
        ours = cr.sort(cr.tensor(x), descending=descending).indices.numpy()
        theirs = torch.sort(torch.tensor(x), descending=descending).indices.numpy()
        np.testing.assert_array_equal(ours, theirs)


def test_topk_largest_and_smallest_along_any_dim() -> None:
    x = np.random.default_rng(0).permutation(24).reshape(2, 3, 4).astype(np.float64)
    for dim in (0, 1, -1):
        for largest in (True, False):
            ours, theirs = _pair(x)
            v, i = ours.topk(2, dim=dim, largest=largest)
            tv, ti = theirs.topk(2, dim=dim, largest=largest)
            np.testing.assert_array_equal(i.numpy(), ti.numpy())
            v.sum().backward()
            tv.sum().backward()
            np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    assert cr.tensor(x).topk(0).values.shape == (2, 3, 0)
    for k in (0, 2):  # one Gather of the first k, whatever k (also what the spec relies on)
        picked = cr.tensor(x, requires_grad=True).topk(k, dim=1, largest=False).values
        assert type(picked.grad_fn).__name__ == "Gather"
    with pytest.raises(ValueError, match=r"topk: k=5 must be in \[0, 4\]"):
        cr.tensor(x).topk(5)


def test_gather_adds_gradients_where_an_index_repeats() -> None:
    x = np.random.default_rng(1).standard_normal((3, 4))
    index = np.array([[0, 0, 3], [1, 1, 1], [2, 3, 0]])
    ours, theirs = _pair(x)
    y, ty = ours.gather(1, cr.tensor(index)), theirs.gather(1, torch.tensor(index))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-15)
    assert ours.grad.numpy()[1, 1] == pytest.approx(6 * x[1, 1])  # three picks of x[1, 1]


def test_gather_errors_say_what_is_wrong() -> None:
    x = cr.randn(3, 4)
    with pytest.raises(IndexError, match=r"in \[0, 4\) along dim 1.*from -1 to 2"):
        x.gather(1, cr.tensor(np.array([[-1, 2]])))
    with pytest.raises(cr.ShapeError, match="integer tensor with x's 2 dims"):
        x.gather(1, cr.tensor(np.array([0, 1])))
    with pytest.raises(cr.ShapeError, match="integer tensor"):
        x.gather(1, cr.tensor(np.array([[0.0]])))
    with pytest.raises(cr.ShapeError, match=r"larger than x \(3, 4\) outside dim 1"):
        x.gather(1, cr.tensor(np.zeros((4, 1), dtype=np.int64)))


def test_masked_fill_blocks_the_gradient_where_filled() -> None:
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    mask = x < 0
    ours, theirs = _pair(x)
    y, ty = ours.masked_fill(cr.tensor(mask), 0.25), theirs.masked_fill(torch.tensor(mask), 0.25)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    row = cr.tensor(np.array([True, False, False]))  # broadcast over the rows
    assert cr.masked_fill(cr.tensor(x), row, -1.0).numpy()[:, 0].tolist() == [-1.0, -1.0]
    assert cr.tensor(x.astype(np.float32)).masked_fill(row, 2.0).dtype == cr.float32
    with pytest.raises(cr.ShapeError, match=r"mask of shape \(2, 1, 3\) does not broadcast"):
        cr.tensor(x).masked_fill(cr.tensor(np.ones((2, 1, 3), bool)), 0.0)
    with pytest.raises(TypeError, match="boolean"):
        cr.tensor(x).masked_fill(cr.tensor(np.ones(3)), 0.0)


def test_split_and_chunk_cut_like_torch_and_gradients_come_back_together() -> None:
    x = np.arange(14.0).reshape(2, 7)
    for ours_pieces, theirs_pieces in [
        (cr.tensor(x).split(3, 1), torch.tensor(x).split(3, 1)),
        (cr.tensor(x).split([2, 0, 5], 1), torch.tensor(x).split([2, 0, 5], 1)),
        (cr.tensor(x).chunk(3, 1), torch.tensor(x).chunk(3, 1)),
        (cr.chunk(cr.tensor(x), 4, 0), torch.tensor(x).chunk(4, 0)),
    ]:
        assert [p.shape for p in ours_pieces] == [tuple(p.shape) for p in theirs_pieces]
        for a, b in zip(ours_pieces, theirs_pieces, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    leaf = cr.tensor(x, requires_grad=True)
    first, second, third = leaf.split(3, dim=1)
    (first.sum() * 1 + second.sum() * 2 + third.sum() * 3).backward()
    np.testing.assert_array_equal(leaf.grad.numpy()[0], [1, 1, 1, 2, 2, 2, 3])
    with pytest.raises(ValueError, match=r"add up to dim 1's size 7"):
        cr.tensor(x).split([3, 3], 1)
    with pytest.raises(ValueError, match="chunks must be positive"):
        cr.tensor(x).chunk(0)


def test_cumsum_matches_torch_in_value_dtype_and_gradient() -> None:
    x = np.random.default_rng(2).standard_normal((3, 4))
    ours, theirs = _pair(x)
    y, ty = ours.cumsum(1), theirs.cumsum(1)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-15)
    g = np.random.default_rng(3).standard_normal((3, 4))
    y.backward(cr.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-14)
    assert cr.tensor(np.array([1, 2], np.int32)).cumsum(0).dtype == cr.int64
    assert cr.cumsum(cr.tensor(np.array([True, True])), 0).numpy().tolist() == [1, 2]


def test_einsum_attention_scores_match_torch_with_second_order() -> None:
    rng = np.random.default_rng(4)
    q, k = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4))
    (cq, tq), (ck, tk) = _pair(q), _pair(k)
    s, ts = cr.einsum("bhqd,bhkd->bhqk", cq, ck), torch.einsum("bhqd,bhkd->bhqk", tq, tk)
    np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), rtol=1e-13)
    (gq,) = cr.autograd.grad(s.softmax(-1).sum(0).pow(2).sum(), [cq], create_graph=True)
    (tgq,) = torch.autograd.grad(ts.softmax(-1).sum(0).pow(2).sum(), [tq], create_graph=True)
    (gq * gq).sum().backward()
    (tgq * tgq).sum().backward()
    np.testing.assert_allclose(ck.grad.numpy(), tk.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_einsum_operands_as_a_list_and_errors_naming_the_operand() -> None:
    a, b = cr.randn(2, 3), cr.randn(3, 4)
    np.testing.assert_allclose(cr.einsum("ij,jk", [a, b]).numpy(), (a @ b).numpy(), rtol=1e-6)
    with pytest.raises(cr.ShapeError, match="'j' has size 3 in one operand and 5 in operand 1"):
        cr.einsum("ij,jk->ik", a, cr.randn(5, 4))
    with pytest.raises(
        cr.ShapeError, match=r"operand 0 of shape \(2, 3\) has 2 dims but 'i' names 1"
    ):
        cr.einsum("i->i", a)
    with pytest.raises(ValueError, match="each output letter must appear once"):
        cr.einsum("ij->ii", a)
    with pytest.raises(ValueError, match="2 operand term"):
        cr.einsum("ij,jk->ik", a)
    with pytest.raises(TypeError, match="operand 1 is a ndarray, expected a Tensor"):
        cr.einsum("ij,jk->ik", a, np.ones((3, 4)))


def test_unbind_is_one_node_and_its_pieces_are_copies() -> None:
    x = np.arange(12.0).reshape(3, 4)
    ours, theirs = _pair(x)
    pieces, t_pieces = ours.unbind(1), theirs.unbind(1)
    assert len(pieces) == 4 and pieces[0].shape == (3,)
    nodes = {id(p.grad_fn.next_functions[0][0]) for p in pieces}  # squeeze ← one Split
    assert len(nodes) == 1
    (pieces[0] * 2 + pieces[3]).sum().backward()
    (t_pieces[0] * 2 + t_pieces[3]).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    whole = cr.tensor(x)
    first = whole.split(2, 0)[0]
    first.data[...] = -1.0  # a piece is a fresh array: the tensor it came from is untouched
    assert whole.numpy().min() == 0.0
