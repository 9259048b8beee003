"""``nn.host_threads``: a batch cut into chunks shared among threads gives the numbers of
one chunk, for every geometry of convolution and pooling and for batch normalisation; the
chunks cover the batch once, in order; BLAS is on one thread while they run and gets its
own setting back after.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import conv_functions, host_threads
from chainrule.nn import functional as F

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> list[int]:
    return [
        lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"
    ]


@pytest.fixture
def many_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut every batch into chunks of one or two examples, shared among three threads
    (on any machine), even the tiny ones of these tests."""
    monkeypatch.setattr(host_threads, "THREADS", 3)
    monkeypatch.setattr(host_threads, "SMALL_BYTES", 0)
    monkeypatch.setattr(host_threads, "CHUNK_BYTES", 1)
    monkeypatch.setattr(host_threads, "MIN_CHUNKS", 4)


def test_chunks_cover_the_batch_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_threads, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(host_threads, "SMALL_BYTES", 0)
    monkeypatch.setattr(host_threads, "MIN_CHUNKS", 2)
    like = np.empty(1)
    # 300 bytes an example: 3 fit in 1000 bytes.
    assert host_threads.chunks(7, 300, like) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    monkeypatch.setattr(host_threads, "MIN_CHUNKS", 4)
    # At least MIN_CHUNKS chunks, however small the examples: ⌈20 / 4⌉ = 5 each.
    assert host_threads.chunks(20, 1, like) == [slice(i, i + 5) for i in range(0, 20, 5)]
    # An example larger than a chunk still gets a chunk of its own.
    assert host_threads.chunks(2, 10**6, like) == [slice(0, 1), slice(1, 2)]


def test_a_small_batch_is_one_chunk() -> None:
    example = host_threads.SMALL_BYTES // 8 - 1
    assert host_threads.chunks(8, example, np.empty(1)) == [slice(0, 8)]


def test_a_device_array_is_never_cut(fake_cuda: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU one launch over the whole batch is what is fast: one chunk, on the
    caller's thread, BLAS untouched."""
    monkeypatch.setattr(host_threads, "SMALL_BYTES", 0)
    on_device = cr.zeros(64, 3, 8, 8, device=fake_cuda).data
    assert host_threads.chunks(64, 10**6, on_device) == [slice(0, 64)]
    calls: list[tuple[slice, int]] = []
    host_threads.map_chunks(
        64, 10**6, on_device, lambda part: calls.append((part, threading.get_ident()))
    )
    assert calls == [(slice(0, 64), threading.get_ident())]


def test_chunks_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """So that sums over chunks (a weight gradient) give the same bits on every machine."""
    monkeypatch.setattr(host_threads, "THREADS", 1)
    one = host_threads.chunks(128, 100_000, np.empty(1))
    monkeypatch.setattr(host_threads, "THREADS", 7)
    assert host_threads.chunks(128, 100_000, np.empty(1)) == one
    assert len(one) >= host_threads.MIN_CHUNKS


@pytest.mark.usefixtures("many_chunks")
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_map_chunks_runs_every_chunk_once_and_returns_in_order(n: int) -> None:
    seen = np.zeros(n, dtype=int)
    idents: set[int] = set()

    def work(part: slice) -> int:
        seen[part] += 1
        idents.add(threading.get_ident())
        return part.start

    starts = host_threads.map_chunks(n, 1, np.empty(1), work)
    assert seen.tolist() == [1] * n
    assert starts == [part.start for part in host_threads.chunks(n, 1, np.empty(1))]
    if len(starts) > 1:  # the caller's thread and the pool's
        assert len(idents) >= 2


@pytest.mark.usefixtures("many_chunks")
def test_blas_is_on_one_thread_inside_and_restored_after() -> None:
    before = blas_threads()
    inside = host_threads.map_chunks(6, 1, np.empty(1), lambda part: blas_threads())
    assert all(threads == [1] * len(before) for threads in inside)
    assert blas_threads() == before


class FakeBlas:
    """A BLAS library's controller, as threadpoolctl gives it: a thread count to get and set."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, threads: int) -> None:
        self.threads = threads


def test_the_limit_is_safe_to_enter_from_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """threadpoolctl's own limit, entered from two threads at once, can leave BLAS on
    one thread for good; this one keeps the limit while any thread is inside and
    restores the setting when the last one leaves."""
    limit = host_threads._OneBlasThread()
    blas = [FakeBlas(4), FakeBlas(2)]
    monkeypatch.setattr(limit, "_looked", True)
    monkeypatch.setattr(limit, "_libraries", blas)
    inside, leave = threading.Barrier(5, timeout=30), threading.Barrier(5, timeout=30)

    def nested(pause: float) -> None:
        with limit():
            with limit():
                time.sleep(pause)
            inside.wait()
            leave.wait()
        time.sleep(pause)
        with limit():  # in again while others may be leaving
            pass

    threads = [threading.Thread(target=nested, args=(0.01 * i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    inside.wait()  # all four hold the limit (each has left its inner one)
    assert [lib.threads for lib in blas] == [1, 1]
    leave.wait()
    for thread in threads:
        thread.join(timeout=30)
    assert [lib.threads for lib in blas] == [4, 2]


def test_a_work_error_reaches_the_caller_after_every_thread_is_done(many_chunks: None) -> None:
    caller = threading.get_ident()
    started: list[int] = []
    finished: list[int] = []

    def work(part: slice) -> None:
        if threading.get_ident() == caller:  # the caller's own first chunk fails at once
            raise ValueError("from a chunk")
        started.append(part.start)
        time.sleep(0.02)
        finished.append(part.start)

    before = blas_threads()
    with pytest.raises(ValueError, match="from a chunk"):
        host_threads.map_chunks(12, 1, np.empty(1), work)
    # The pool's chunks were all done before the error reached the caller (none still
    # writing into its arrays), and BLAS has its setting back.
    assert started and sorted(finished) == sorted(started)
    assert blas_threads() == before


def test_without_threadpoolctl_the_chunks_run_on_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch, many_chunks: None
) -> None:
    """No way to tell BLAS its thread count: the chunks still run (the cache's gain), one
    after another on the caller's thread, and BLAS keeps its own setting."""
    blind = host_threads._OneBlasThread()
    monkeypatch.setattr(blind, "_looked", True)  # as if the import had failed
    monkeypatch.setattr(host_threads, "one_blas_thread", blind)
    before = blas_threads()
    seen = host_threads.map_chunks(
        8, 1, np.empty(1), lambda part: (part.start, threading.get_ident(), blas_threads())
    )
    assert [start for start, _, _ in seen] == [
        p.start for p in host_threads.chunks(8, 1, np.empty(1))
    ]
    assert {ident for _, ident, _ in seen} == {threading.get_ident()}
    assert all(threads == before for _, _, threads in seen)


def test_products_stay_on_one_blas_thread_while_the_threads_are_at_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 30)), rng.standard_normal((30, 20))
    limited: list[bool] = []
    real = host_threads.one_blas_thread

    class Spy:
        def __call__(self) -> Any:
            limited.append(True)
            return real()

    monkeypatch.setattr(host_threads, "one_blas_thread", Spy())
    monkeypatch.setattr(host_threads, "_last_shared", -np.inf)
    np.testing.assert_array_equal(host_threads.matmul(a, b), a @ b)
    assert limited == []  # nothing shared lately: BLAS as it likes (an MLP)
    monkeypatch.setattr(host_threads, "_last_shared", time.monotonic())
    np.testing.assert_array_equal(host_threads.matmul(a, b), a @ b)
    assert limited == [True]


def test_the_thread_count_follows_the_blas_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert host_threads._thread_count() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert host_threads._thread_count() == 3


# -- the layers, chunked against whole --------------------------------------------------


def _conv_and_grads(x: np.ndarray, w: np.ndarray, **kw: object) -> list[np.ndarray]:
    xt = cr.tensor(x, requires_grad=True)
    wt = cr.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, **kw)
    (y * cr.tensor(np.cos(np.arange(y.numel())).reshape(y.shape))).sum().backward()
    assert xt.grad is not None and wt.grad is not None
    return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()]


CONV_GEOMETRIES = [
    {"padding": 1},
    {"stride": 2, "padding": 2, "dilation": 2},
    {"stride": (2, 1), "padding": (0, 1), "groups": 2},
    {"padding": "same", "dilation": (1, 2)},
]


@pytest.mark.parametrize("kw", CONV_GEOMETRIES)
@pytest.mark.parametrize("out_channels", [2, 6])  # dx as a convolution of g, and by col2im
def test_a_chunked_conv_gives_the_numbers_of_one_chunk(
    monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any], out_channels: int
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4, 9, 8))  # 7 examples: chunks of 2, 2, 2 and 1
    w = rng.standard_normal((out_channels, 4 // int(kw.get("groups", 1)), 3, 3))
    whole = _conv_and_grads(x, w, **kw)
    monkeypatch.setattr(host_threads, "THREADS", 3)
    monkeypatch.setattr(host_threads, "SMALL_BYTES", 0)
    monkeypatch.setattr(host_threads, "CHUNK_BYTES", 1)
    monkeypatch.setattr(host_threads, "MIN_CHUNKS", 4)
    chunked = _conv_and_grads(x, w, **kw)
    for one, many in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12)


@pytest.mark.usefixtures("many_chunks")
@pytest.mark.parametrize("kw", CONV_GEOMETRIES)
def test_the_same_chunks_give_the_same_bits_on_any_thread_count(
    monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 4, 9, 8))
    w = rng.standard_normal((6, 4 // int(kw.get("groups", 1)), 3, 3))
    many = _conv_and_grads(x, w, **kw)
    monkeypatch.setattr(host_threads, "THREADS", 1)
    with host_threads.one_blas_thread():  # the same BLAS setting as on the threads
        alone = _conv_and_grads(x, w, **kw)
    for a, b in zip(alone, many, strict=True):
        assert np.array_equal(a, b)


def _layer_and_grads(module: nn.Module, x: np.ndarray) -> list[np.ndarray]:
    xt = cr.tensor(x, requires_grad=True)
    y = module(xt)
    (y * cr.tensor(np.sin(np.arange(y.numel())).reshape(y.shape))).sum().backward()
    assert xt.grad is not None
    grads = [p.grad.numpy() for p in module.parameters() if p.grad is not None]
    return [y.detach().numpy(), xt.grad.numpy(), *grads]


@pytest.mark.parametrize(
    "build",
    [
        lambda: nn.BatchNorm2d(3),
        lambda: nn.BatchNorm2d(3, affine=False),
        lambda: nn.BatchNorm1d(3),
        lambda: nn.MaxPool2d(2),
        lambda: nn.MaxPool2d(3, stride=2, padding=1),  # overlapping windows
        lambda: nn.MaxPool2d(2, dilation=2),
    ],
)
def test_chunked_batchnorm_and_pooling_give_the_numbers_of_one_chunk(
    monkeypatch: pytest.MonkeyPatch, build: Any
) -> None:
    rng = np.random.default_rng(2)
    module = build()
    shape = (7, 3) if isinstance(module, nn.BatchNorm1d) else (7, 3, 9, 8)
    # Ties in pooling windows: the first maximum must win in every chunk too.
    x = np.round(rng.standard_normal(shape) * 2) + 5.0
    whole = _layer_and_grads(module, x)
    stats = [b.numpy().copy() for b in module.buffers()]
    module = build()
    monkeypatch.setattr(host_threads, "THREADS", 3)
    monkeypatch.setattr(host_threads, "SMALL_BYTES", 0)
    monkeypatch.setattr(host_threads, "CHUNK_BYTES", 1)
    monkeypatch.setattr(host_threads, "MIN_CHUNKS", 4)
    chunked = _layer_and_grads(module, x)
    for one, many in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12)
    for one, many in zip(stats, [b.numpy() for b in module.buffers()], strict=True):
        np.testing.assert_allclose(many, one, rtol=1e-12, atol=1e-12)


def test_chunked_batch_moments_are_exact_where_naive_sums_are_not() -> None:
    """Chan's merge of the chunks' means and M₂: float32 data far from zero (mean 1e4,
    σ 1) keeps its variance, which E[x²] − E[x]² would lose entirely."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((64, 2, 50))).astype(np.float32)
    from chainrule.nn.norm_functions import _batch_moments

    original = host_threads.CHUNK_BYTES, host_threads.SMALL_BYTES
    try:
        host_threads.CHUNK_BYTES, host_threads.SMALL_BYTES = 1, 0
        mean, var = _batch_moments(x)
    finally:
        host_threads.CHUNK_BYTES, host_threads.SMALL_BYTES = original
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-3)


@pytest.mark.usefixtures("many_chunks")
def test_float32_batchnorm_far_from_zero_keeps_its_precision() -> None:
    """y = γ(x − μ)/σ + β computed from x̂, never as x·γ/σ + (β − μγ/σ), which loses
    the digits that matter when |μ| ≫ σ."""
    rng = np.random.default_rng(4)
    x = (1e4 + rng.standard_normal((8, 3, 5, 5))).astype(np.float32)
    module = nn.BatchNorm2d(3)
    with cr.no_grad():
        module.weight.data[...] = np.array([4.0, -4.0, 4.0], dtype=np.float32)
        module.bias.data[...] = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    y = module(cr.tensor(x)).detach().numpy()
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3), keepdims=True)
    var = x64.var(axis=(0, 2, 3), keepdims=True)
    gamma, beta = np.array([4.0, -4.0, 4.0]), np.array([0.1, -0.2, 0.3])
    expected = (x64 - mean) / np.sqrt(var + 1e-5) * gamma.reshape(1, 3, 1, 1)
    expected += beta.reshape(1, 3, 1, 1)
    # In float32 at 1e4 (a rounding step of 1e-3, times γ = 4): from x̂ with μ rounded
    # to float32 the error is 1.7e-3 here, by the cancelling form 6.2e-3.
    np.testing.assert_allclose(y, expected, atol=2.5e-3)


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
    rng = np.random.default_rng(1)
    groups = int(kw.get("groups", 1))
    x = rng.standard_normal((3, 6, 7, 8))
    w = rng.standard_normal((4, 6 // groups, *kernel))  # O = 4 <= C = 6: the direct way
    direct = _conv_and_grads(x, w, **kw)
    monkeypatch.setattr(conv_functions, "_direct_input_grad_geometry", lambda *a: None)
    via_col2im = _conv_and_grads(x, w, **kw)
    np.testing.assert_allclose(direct[1], via_col2im[1], rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_shares_work_with_a_pool_of_its_own(many_chunks: None) -> None:
    host_threads.map_chunks(6, 1, np.empty(1), lambda part: None)  # the parent's pool runs
    pid = os.fork()
    if pid == 0:  # the child: the inherited pool has no threads; this must not hang
        seen = np.zeros(6, dtype=int)

        def work(part: slice) -> None:
            seen[part] += 1

        host_threads.map_chunks(6, 1, np.empty(1), work)
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
