"""``nn.host_threads``: im2col and col2im split over threads give the same bits as one
call, for every geometry, and the split covers the batch exactly once."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F
from chainrule.nn import host_threads


@pytest.fixture
def many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split everything, even tiny arrays, over three threads (on any machine)."""
    monkeypatch.setattr(host_threads, "THREADS", 3)
    monkeypatch.setattr(host_threads, "MIN_BYTES", 0)


@pytest.mark.usefixtures("many_threads")
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_split_covers_every_index_once_on_several_threads(n: int) -> None:
    seen = np.zeros(n, dtype=int)
    parts: list[tuple[slice, int]] = []

    def work(part: slice) -> None:
        seen[part] += 1
        parts.append((part, threading.get_ident()))

    host_threads.split(n, 1 << 30, np.empty(1), work)
    assert seen.tolist() == [1] * n
    assert len(parts) == min(3, n)
    # The caller runs the first part; the pool's threads the others.
    off_caller = {part.start for part, ident in parts if ident != threading.get_ident()}
    assert off_caller == {part.start for part, _ in parts if part.start != 0}


def test_small_arrays_and_one_thread_stay_on_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[slice, int]] = []

    def work(part: slice) -> None:
        calls.append((part, threading.get_ident()))

    monkeypatch.setattr(host_threads, "THREADS", 3)
    host_threads.split(10, host_threads.MIN_BYTES - 1, np.empty(1), work)
    monkeypatch.setattr(host_threads, "THREADS", 1)
    host_threads.split(10, 1 << 30, np.empty(1), work)
    assert calls == [(slice(0, 10), threading.get_ident())] * 2


def test_a_work_error_reaches_the_caller(many_threads: None) -> None:
    def work(part: slice) -> None:
        if part.start:  # a part run on a pool thread
            raise ValueError("from a worker")

    with pytest.raises(ValueError, match="from a worker"):
        host_threads.split(9, 1 << 30, np.empty(1), work)


def _conv_and_grads(x: np.ndarray, w: np.ndarray, **kw: object) -> list[np.ndarray]:
    xt = cr.tensor(x, requires_grad=True)
    wt = cr.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, **kw)
    (y * cr.tensor(np.cos(np.arange(y.numel())).reshape(y.shape))).sum().backward()
    assert xt.grad is not None and wt.grad is not None
    return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()]


@pytest.mark.parametrize(
    "kw",
    [
        {"padding": 1},
        {"stride": 2, "padding": 2, "dilation": 2},
        {"stride": (2, 1), "padding": (0, 1), "groups": 2},
        {"padding": "same", "dilation": (1, 2)},
    ],
)
def test_threaded_conv_gives_the_same_bits_as_one_thread(
    monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4, 9, 8))  # 7 examples: parts of 2, 2 and 3
    w = rng.standard_normal((6, 4 // int(kw.get("groups", 1)), 3, 3))
    monkeypatch.setattr(host_threads, "THREADS", 1)
    alone = _conv_and_grads(x, w, **kw)
    monkeypatch.setattr(host_threads, "THREADS", 3)
    monkeypatch.setattr(host_threads, "MIN_BYTES", 0)
    split = _conv_and_grads(x, w, **kw)
    for one, many in zip(alone, split, strict=True):
        assert np.array_equal(one, many)


def test_the_thread_count_follows_the_blas_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert host_threads._thread_count() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert host_threads._thread_count() == 3


@pytest.mark.parametrize(
    ("kw", "kernel"),
    [
        ({"padding": 0}, (3, 3)),
        ({"padding": 1}, (3, 3)),
        ({"padding": "same"}, (2, 4)),  # asymmetric: one more row/column after than before
        ({"padding": 2, "dilation": 2}, (3, 2)),
        ({"padding": (1, 0), "groups": 2}, (3, 3)),
    ],
)
def test_the_input_gradient_as_a_convolution_of_g_equals_col2im(
    monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any], kernel: tuple[int, int]
) -> None:
    """With stride 1 and O <= C the input gradient is a convolution of g with the flipped,
    transposed weight; it must give col2im's numbers."""
    from chainrule.nn import conv_functions

    rng = np.random.default_rng(1)
    groups = int(kw.get("groups", 1))
    x = rng.standard_normal((3, 6, 7, 8))
    w = rng.standard_normal((4, 6 // groups, *kernel))  # O = 4 <= C = 6: the direct way
    direct = _conv_and_grads(x, w, **kw)
    monkeypatch.setattr(conv_functions, "_direct_input_grad_geometry", lambda *a: None)
    via_col2im = _conv_and_grads(x, w, **kw)
    np.testing.assert_allclose(direct[1], via_col2im[1], rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_work_with_a_pool_of_its_own(many_threads: None) -> None:
    host_threads.split(6, 1 << 30, np.empty(1), lambda part: None)  # the parent's pool runs
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool has no threads; this must not hang
        seen = np.zeros(6, dtype=int)

        def work(part: slice) -> None:
            seen[part] += 1

        host_threads.split(6, 1 << 30, np.empty(1), work)
        os._exit(0 if seen.tolist() == [1] * 6 else 1)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung on the parent's thread pool")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
