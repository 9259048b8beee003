"""gradcheck catches wrong gradients and says where."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function


class WrongSquare(Function):
    """y = x², with a deliberately wrong backward (x instead of 2x)."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        (x,) = ctx.saved_tensors
        return g * x


def test_gradcheck_passes_for_correct_gradient() -> None:
    x = cr.randn(3, 2, dtype=cr.float64, requires_grad=True)
    w = cr.randn(2, 4, dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(lambda a, b: (a @ b).tanh().sum(), (x, w))
    assert cr.autograd.gradcheck(lambda a, b: (a @ b).tanh(), (x, w))  # non-scalar output


def test_gradcheck_reports_input_index_and_values() -> None:
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    with pytest.raises(cr.GradcheckError, match=r"input 0.*analytic.*numeric") as info:
        cr.autograd.gradcheck(lambda v: WrongSquare.apply(v).sum(), (x,))
    message = str(info.value)
    assert "input element (1,)" in message  # the worst entry: |2 - 4| > |1 - 2|
    assert not cr.autograd.gradcheck(
        lambda v: WrongSquare.apply(v).sum(), (x,), raise_exception=False
    )


def test_gradcheck_fast_mode_catches_the_same_error() -> None:
    x = cr.randn(20, dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(lambda v: (v * v).sum(), (x,), fast_mode=True)
    assert not cr.autograd.gradcheck(
        lambda v: WrongSquare.apply(v).sum(), (x,), fast_mode=True, raise_exception=False
    )


def test_gradcheck_float32_is_rerun_in_float64_with_a_note() -> None:
    x = cr.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        assert cr.autograd.gradcheck(lambda v: (v.sigmoid() * v).sum(), (x,))


def test_gradcheck_does_not_touch_the_inputs() -> None:
    x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    before = x.numpy().copy() if not x.requires_grad else x.detach().numpy().copy()
    cr.autograd.gradcheck(lambda v: v.exp().sum(), (x,))
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # sqrt at 0
def test_detect_anomaly_names_op_and_line() -> None:
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with cr.autograd.detect_anomaly():
        y = x.sqrt()  # the line the error must point to
        with pytest.raises(cr.AnomalyError, match=r"(?s)SqrtBackward.*test_gradcheck.py:\d+.*sqrt"):
            y.sum().backward()
    assert not cr.autograd.is_anomaly_enabled()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # sqrt at 0
def test_without_anomaly_mode_nan_passes_silently() -> None:
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_detect_anomaly_names_the_users_line_in_a_folder_named_chainrule(tmp_path: Any) -> None:
    """A clone lands in a folder named ``chainrule``: the user's files there are not the
    package's, and the error must still point at them."""
    folder = tmp_path / "chainrule" / "scripts"
    folder.mkdir(parents=True)
    script = folder / "train_step.py"
    script.write_text(
        "import chainrule as cr\n"
        "x = cr.tensor([0.0, 1.0], requires_grad=True)\n"
        "with cr.autograd.detect_anomaly():\n"
        "    y = x.sqrt()  # the user's line\n"
        "    y.sum().backward()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode != 0
    assert f"{script}:4" in result.stderr, result.stderr
    assert "the user's line" in result.stderr


def test_gradcheck_of_a_function_that_takes_a_gradient_inside() -> None:
    """A gradient penalty calls autograd.grad inside: gradcheck runs it in grad mode."""
    w = cr.tensor(np.array([[0.3, -0.2], [0.5, 0.1]]), requires_grad=True)

    def penalty(weight: cr.Tensor) -> cr.Tensor:
        x = cr.tensor(np.array([[1.0, 2.0]]), requires_grad=True)
        (gx,) = cr.autograd.grad((x @ weight).tanh().sum(), x, create_graph=True)
        return (gx * gx).sum()

    assert cr.autograd.gradcheck(penalty, [w])


def test_gradcheck_on_a_non_contiguous_input() -> None:
    base = np.arange(12.0).reshape(3, 4) / 10
    x = cr.tensor(base.T)  # a transposed view: not C-ordered
    assert not x.data.flags.c_contiguous
    assert cr.autograd.gradcheck(lambda t: (t * t).sum(), [x])
    assert not cr.autograd.gradcheck(
        lambda t: _WrongSquare.apply(t).sum(), [x], raise_exception=False
    )


class _WrongSquare(cr.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        return x * x

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        return g  # should be 2 x g
