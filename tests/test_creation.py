"""Creation functions and the seeded generator."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr


def test_shapes_and_dtypes(device: str) -> None:
    assert cr.zeros(2, 3, device=device).shape == (2, 3)
    assert cr.zeros((2, 3), device=device).dtype == cr.float32
    assert cr.ones(4, dtype=cr.float64, device=device).dtype == cr.float64
    assert cr.full((2,), 7, device=device).dtype == cr.int64
    assert cr.full((2,), 7.0, device=device).dtype == cr.float32
    assert cr.arange(5, device=device).dtype == cr.int64
    assert cr.arange(0.0, 1.0, 0.5, device=device).dtype == cr.float32
    np.testing.assert_array_equal(cr.arange(2, 8, 3, device=device).numpy(), [2, 5])
    assert cr.eye(3, device=device).numpy().trace() == 3
    x = cr.randn(2, 5, dtype=cr.float64, device=device)
    for like in (cr.zeros_like, cr.ones_like, cr.empty_like, cr.randn_like, cr.rand_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert cr.full_like(x, 2.0).numpy().sum() == 20.0
    z = cr.zeros(2, requires_grad=True, device=device)
    assert z.requires_grad and z.device == x.device
    assert str(x.device) == ("cpu" if device == "cpu" else "cuda:0")


def test_tensor_copies_numpy_but_from_numpy_shares() -> None:
    a = np.zeros(3)
    t = cr.tensor(a)
    s = cr.from_numpy(a)
    a[0] = 1
    assert t.numpy()[0] == 0 and s.numpy()[0] == 1


def test_manual_seed_reproduces_everything(device: str) -> None:
    def draws() -> tuple[np.ndarray, ...]:
        return (
            cr.randn(3, 3, device=device).numpy(),
            cr.rand(4, device=device).numpy(),
            cr.randint(0, 10, (5,), device=device).numpy(),
            cr.randperm(6, device=device).numpy(),
        )

    cr.manual_seed(123)
    a = draws()
    cr.manual_seed(123)
    b = draws()
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert a[2].dtype == a[3].dtype == np.int64
    assert sorted(a[3].tolist()) == list(range(6))
    assert ((a[1] >= 0) & (a[1] < 1)).all() and ((a[2] >= 0) & (a[2] < 10)).all()
    cr.manual_seed(124)
    assert not np.array_equal(cr.randn(3, 3, device=device).numpy(), a[0])


def test_generator_state_round_trip() -> None:
    g = cr.Generator(5)
    g.standard_normal((3,))
    state = g.get_state()
    first = cr.randn(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(cr.randn(4, generator=g).numpy(), first)


def test_same_seed_same_numbers_in_another_process() -> None:
    code = "import chainrule as cr; cr.manual_seed(7); print(cr.randn(3).numpy().tobytes().hex())"
    here = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    cr.manual_seed(7)
    assert here.strip() == cr.randn(3).numpy().tobytes().hex()


# Issue 7, items 12 and 13: bad input to ``cr.tensor`` should be a DTypeError (a TypeError,
# as PyTorch raises) that names the input and says what to do. The check belongs in
# ``_as_array`` in tensor.py.


@pytest.mark.parametrize("data", ["abc", ["a", "b"], b"abc", np.array(["x", "y"])])
def test_tensor_rejects_strings(data: object) -> None:
    # Today: a tensor of dtype <U3, which fails later, far from the cause.
    with pytest.raises(cr.DTypeError) as info:
        cr.tensor(data)
    message = str(info.value)
    assert "str" in message or "bytes" in message  # names what was given
    assert "number" in message  # and what a tensor holds instead


@pytest.mark.parametrize("data", [2**70, [1, 2**70], -(2**65)])
def test_tensor_names_an_integer_too_large_for_int64(data: object) -> None:
    # Today: "cannot make a tensor from int data of mixed types", which it is not.
    with pytest.raises(cr.DTypeError) as info:
        cr.tensor(data)
    message = str(info.value)
    big = data if isinstance(data, int) else data[1]  # type: ignore[index]
    assert str(big) in message and "int64" in message
    assert "float" in message  # what to do: e.g. give it as a float
    assert "mixed types" not in message


def test_tensor_still_takes_big_floats_and_uint64() -> None:
    assert cr.tensor(float(2**70)).dtype == cr.float32
    assert cr.tensor(2**63 - 1).dtype == cr.int64
    with pytest.raises(cr.DTypeError):
        cr.tensor([1, None])


@pytest.mark.parametrize("grad_mode", [False, True])
def test_in_place_change_of_an_expanded_view_says_to_clone(grad_mode: bool) -> None:
    # Today: NumPy's "output array is read-only". PyTorch: "more than one element of the
    # written-to tensor refers to a single memory location. Please clone() ...".
    x = cr.zeros(3)
    view = x.expand(2, 3)
    with pytest.raises(RuntimeError) as info, cr.set_grad_enabled(grad_mode):
        view += 1
    message = str(info.value)
    assert "expand" in message and "clone()" in message
    assert "read-only" not in message
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0, 0.0])  # nothing was written
