"""The CuPy and chainrule contenders of ``bench_gpu.py`` (see ``bench_gpu_workers.py``).

- ``cupy``: the step written the NumPy way on CuPy, one kernel per call (the issue's
  "straight port" baseline);
- ``cupy-fused``: the same math with chainrule's fused kernels (``chainrule.cuda_kernels``,
  ``chainrule.cuda_optim``): bias+ReLU, cross-entropy in one launch each way, gradients
  written straight into one flat buffer, Adam over it in one launch;
- ``cupy-fused-graph``: that step captured in one CUDA graph. CuPy refuses cuBLAS calls
  while a stream captures (``cublas.setStream`` raises NotImplementedError), so the GEMMs
  call ``cublasSgemm_v2`` through ctypes on CuPy's handle, bound to the capturing stream
  before the capture starts;
- ``chainrule``: chainrule's own modules, loss and optimiser on device "cuda";
- ``chainrule-graph``: an attempt to capture chainrule's step with CuPy's stream capture.

In the dry run NumPy stands in for CuPy and the fused kernels' NumPy references for the
kernels; the graph variants report "n/a".
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from bench_gpu_workers import LR, Env, Library, batch_data, init_params
from chainrule import cuda_kernels, cuda_optim


class NumpyKernels:
    """The fused kernels' NumPy references with the kernels' signatures (dry run)."""

    @staticmethod
    def relu_bias(h: Any, b: Any) -> Any:
        return cuda_kernels.bias_relu_reference(h, b)

    @staticmethod
    def relu_backward(g: Any, y: Any) -> Any:
        return cuda_kernels.relu_backward_reference(g, y)

    @staticmethod
    def cross_entropy_forward(z: Any, y: Any) -> tuple[Any, Any]:
        loss, grad = cuda_kernels.cross_entropy_reference(z, y)
        return np.asarray(loss, z.dtype), grad.astype(z.dtype)

    @staticmethod
    def cross_entropy_backward(g: Any, z: Any, saved: Any) -> Any:
        return saved * g

    @staticmethod
    def adam_update(p: Any, g: Any, m: Any, v: Any, *, lr: float, step: int) -> None:
        cuda_optim.adam_update_reference(p, g, m, v, lr=lr, step=step)


class Cupy(Library):
    """The NumPy-style step on CuPy (NumPy in the dry run)."""

    name = "cupy"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        if env.dry_run:
            self.xp: Any = np
        else:
            import cupy

            self.xp = cupy

    def sync(self) -> None:
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()

    def device(self, *arrays: np.ndarray) -> list[Any]:
        return [self.xp.asarray(a) for a in arrays]

    def make_step(self) -> Callable[[Any, Any], Any]:
        xp = self.xp
        params = self.device(*init_params())
        moments = [(xp.zeros_like(p), xp.zeros_like(p)) for p in params]
        count = [0]

        def step(x: Any, y: Any) -> Any:
            w1, b1, w2, b2, w3, b3 = params
            n = x.shape[0]
            h1 = x @ w1.T
            h1 += b1
            a1 = xp.maximum(h1, 0)
            h2 = a1 @ w2.T
            h2 += b2
            a2 = xp.maximum(h2, 0)
            z = a2 @ w3.T
            z += b3
            zmax = z.max(axis=1, keepdims=True)
            e = xp.exp(z - zmax)
            s = e.sum(axis=1, keepdims=True)
            rows = xp.arange(n)
            loss = (xp.log(s[:, 0]) + zmax[:, 0] - z[rows, y]).mean()
            dz = e / s
            dz[rows, y] -= 1
            dz /= n
            dh2 = (dz @ w3) * (h2 > 0)
            dh1 = (dh2 @ w2) * (h1 > 0)
            grads = [dh1.T @ x, dh1.sum(0), dh2.T @ a1, dh2.sum(0), dz.T @ a2, dz.sum(0)]
            count[0] += 1
            step_size = LR / (1 - 0.9 ** count[0])
            bc2_sqrt = (1 - 0.999 ** count[0]) ** 0.5
            for p, g, (m, v) in zip(params, grads, moments):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * (g * g)
                p -= step_size * m / (xp.sqrt(v) / bc2_sqrt + 1e-8)
            return loss

        return step

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        step = self.make_step()
        x, y = self.device(*batch_data(batch))
        return lambda: step(x, y)

    def ops_chain(self) -> Callable[[], Any] | None:
        x = self.device(np.random.default_rng(0).random(1024, dtype=np.float32))[0]
        half = self.env.chain // 2

        def run() -> Any:
            v = x
            for _ in range(half):
                v = v * 1.0001
                v = v + 0.0001
            return v

        return run

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        step = self.make_step()
        xs, ys = self.device(x, y)
        n, b = len(x), self.env.epoch_batch
        xp = self.xp

        def run() -> None:
            perm = xp.random.permutation(n)
            for start in range(0, n - b + 1, b):
                idx = perm[start : start + b]
                step(xs[idx], ys[idx])

        return run


class CupyFused(Cupy):
    """The step with the fused kernels and one flat parameter/gradient buffer."""

    name = "cupy-fused"
    gemm: Any = None  # set by the graph variant: a GEMM that can be captured

    def kernels(self) -> Any:
        return NumpyKernels if self.env.dry_run else _CudaKernels

    def make_step(self) -> Callable[[Any, Any], Any]:
        xp, k = self.xp, self.kernels()
        sizes = [p.size for p in init_params()]
        flat = xp.asarray(np.concatenate([p.ravel() for p in init_params()]))
        grad = xp.zeros_like(flat)
        m, v = xp.zeros_like(flat), xp.zeros_like(flat)
        bounds = np.cumsum([0, *sizes])
        shapes = [p.shape for p in init_params()]
        params = [flat[a:b].reshape(s) for a, b, s in zip(bounds, bounds[1:], shapes)]
        grads = [grad[a:b].reshape(s) for a, b, s in zip(bounds, bounds[1:], shapes)]
        count = [0]
        gemm = self.gemm or _matmul_into(xp)
        one = xp.ones((), flat.dtype)
        self.keep = [flat, grad, m, v, one]  # the graph variant keeps its arrays alive

        def step(x: Any, y: Any) -> Any:
            w1, b1, w2, b2, w3, b3 = params
            gw1, gb1, gw2, gb2, gw3, gb3 = grads
            a1 = k.relu_bias(gemm(x, w1, None, False, True), b1)
            a2 = k.relu_bias(gemm(a1, w2, None, False, True), b2)
            z = gemm(a2, w3, None, False, True)
            z += b3
            loss, saved = k.cross_entropy_forward(z, y)
            dz = k.cross_entropy_backward(one, z, saved)
            gemm(dz, a2, gw3, True, False)
            xp.sum(dz, axis=0, out=gb3)
            dh2 = k.relu_backward(gemm(dz, w3, None, False, False), a2)
            gemm(dh2, a1, gw2, True, False)
            xp.sum(dh2, axis=0, out=gb2)
            dh1 = k.relu_backward(gemm(dh2, w2, None, False, False), a1)
            gemm(dh1, x, gw1, True, False)
            xp.sum(dh1, axis=0, out=gb1)
            count[0] += 1
            k.adam_update(flat, grad, m, v, lr=LR, step=count[0])
            self.keep[5:] = [a1, a2, z, loss, saved, dz, dh2, dh1]
            return loss

        return step

    def ops_chain(self) -> Callable[[], Any] | None:
        return None


class _CudaKernels:
    """The fused kernels under the names ``CupyFused`` calls."""

    relu_bias = staticmethod(lambda h, b: cuda_kernels.bias_relu_forward(h, b, out=h))
    relu_backward = staticmethod(cuda_kernels.relu_backward)
    cross_entropy_forward = staticmethod(cuda_kernels.cross_entropy_forward)
    cross_entropy_backward = staticmethod(cuda_kernels.cross_entropy_backward)
    adam_update = staticmethod(cuda_optim.adam_update)


def _matmul_into(xp: Any) -> Callable[..., Any]:
    """out = op(a) @ op(b) with the array library's matmul (out=None: a new array)."""

    def gemm(a: Any, b: Any, out: Any, trans_a: bool, trans_b: bool) -> Any:
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        if out is None:
            return a @ b
        return xp.matmul(a, b, out=out)

    return gemm


class CublasGemm:
    """float32 GEMM through ctypes on CuPy's cuBLAS handle, for use inside a capture.

    Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: cuBLAS gets B first, and
    each array's row length as its leading dimension. Arrays must be C-contiguous.
    """

    def __init__(self, cupy: Any, stream: Any) -> None:
        from cupy_backends.cuda.libs import cublas

        self.cupy = cupy
        self.handle = cupy.cuda.get_cublas_handle()
        cublas.setStream(self.handle, stream.ptr)  # before the capture: it refuses during
        cublas.setPointerMode(self.handle, 0)  # CUBLAS_POINTER_MODE_HOST: alpha, beta here
        self.lib = ctypes.CDLL(_loaded_library("libcublas.so"))
        fn = self.lib.cublasSgemm_v2
        p, i = ctypes.c_void_p, ctypes.c_int
        fn.argtypes = [p, i, i, i, i, i, p, p, i, p, i, p, p, i]
        fn.restype = i
        self.fn = fn
        self.alpha = np.ones(1, np.float32)
        self.beta = np.zeros(1, np.float32)

    def __call__(self, a: Any, b: Any, out: Any, trans_a: bool, trans_b: bool) -> Any:
        rows = a.shape[1] if trans_a else a.shape[0]
        cols = b.shape[0] if trans_b else b.shape[1]
        depth = a.shape[0] if trans_a else a.shape[1]
        if out is None:
            out = self.cupy.empty((rows, cols), np.float32)
        status = self.fn(
            self.handle, int(trans_b), int(trans_a), cols, rows, depth,
            self.alpha.ctypes.data, b.data.ptr, b.shape[1], a.data.ptr, a.shape[1],
            self.beta.ctypes.data, out.data.ptr, cols,
        )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"cublasSgemm_v2 returned status {status}")
        return out


def _loaded_library(stem: str) -> str:
    """The path of the shared library ``stem`` this process has loaded (CuPy's own copy)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if stem in path.rsplit("/", 1)[-1]:
                return path
    raise RuntimeError(f"{stem} is not loaded in this process")


def _capture(stream: Any, work: Callable[[], Any]) -> Any:
    """The CUDA graph of ``work`` captured on ``stream``; the error of ``work`` if it fails
    (not the "capture invalidated" that ending the capture then reports)."""
    stream.begin_capture()
    try:
        work()
    except BaseException:
        with contextlib.suppress(Exception):  # invalidated by the failure: report that
            stream.end_capture()
        raise
    return stream.end_capture()


class CupyFusedGraph(CupyFused):
    """The fused step captured in one CUDA graph (CuPy stream capture)."""

    name = "cupy-fused-graph"

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        if self.env.dry_run:
            raise RuntimeError("n/a: dry run (CUDA graphs need a GPU)")
        cupy = self.xp
        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            cupy.ones((2, 2), np.float32) @ cupy.ones((2, 2), np.float32)  # load cuBLAS
            self.gemm = CublasGemm(cupy, stream)
            step = self.make_step()
            x, y = self.device(*batch_data(batch))
            for _ in range(3):  # compile and cache every kernel before capturing
                step(x, y)
            stream.synchronize()
            # Adam's bias corrections are frozen at the captured step: the timing is that
            # of the real step, the later updates use step 4's corrections.
            graph = _capture(stream, lambda: step(x, y))
        keep = list(self.keep)

        def replay() -> None:
            graph.launch(stream=stream)

        replay.keep = keep  # type: ignore[attr-defined]
        self.sync = stream.synchronize  # type: ignore[method-assign]
        return replay

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        return None


class Chainrule(Library):
    """chainrule's nn.Sequential, nn.CrossEntropyLoss and optim.Adam on "cuda"."""

    name = "chainrule"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        import chainrule as cr

        self.cr = cr
        self.device = "cpu" if env.dry_run else "cuda"

    def sync(self) -> None:
        if self.device == "cuda":
            self.cr.cuda.synchronize()

    def make_step(self) -> Callable[[Any, Any], Any]:
        nn, optim = self.cr.nn, self.cr.optim
        layers: list[Any] = []
        for n_in, n_out in zip((784, 512, 256), (512, 256, 10)):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        model = nn.Sequential(*layers[:-1]).to(self.device)
        opt = optim.Adam(model.parameters(), lr=LR)
        loss_fn = nn.CrossEntropyLoss()
        update = self.updater(opt)

        def step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            update()
            return loss

        return step

    def updater(self, opt: Any) -> Callable[[], Any]:
        return opt.step  # type: ignore[no-any-return]

    def tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        return self.cr.Tensor(x, device=self.device), self.cr.Tensor(y, device=self.device)

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        step = self.make_step()
        x, y = self.tensors(*batch_data(batch))
        return lambda: step(x, y)

    def ops_chain(self) -> Callable[[], Any] | None:
        x = self.cr.Tensor(np.random.default_rng(0).random(1024, dtype=np.float32))
        x = x.to(self.device)
        half = self.env.chain // 2

        def run() -> Any:
            v = x
            for _ in range(half):
                v = v * 1.0001
                v = v + 0.0001
            return v

        return run

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        step = self.make_step()
        xs, ys = self.tensors(x, y)
        xa, ya = xs.data, ys.data  # the arrays: batches are cut outside the graph
        n, b = len(x), self.env.epoch_batch
        from chainrule import backend

        xp = backend.get_array_module(xa)
        tensor = self.cr.Tensor

        def run() -> None:
            perm = xp.random.permutation(n)
            for start in range(0, n - b + 1, b):
                idx = perm[start : start + b]
                step(tensor(xa[idx]), tensor(ya[idx]))

        return run


class ChainruleFusedOpt(Chainrule):
    """chainrule with its optimiser step replaced by ``cuda_flat.FusedAdam`` (what
    ``optim.Adam`` calls on the GPU once wired): the update in one launch."""

    name = "chainrule-fusedopt"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        if env.dry_run:
            raise RuntimeError("n/a: dry run (the fused update needs CuPy)")

    def updater(self, opt: Any) -> Callable[[], Any]:
        from chainrule.cuda_flat import FusedAdam

        group = opt.param_groups[0]
        fused: list[FusedAdam] = []

        def update() -> None:
            if not fused:
                fused.append(FusedAdam(group["params"], opt.state))
            fused[0].step(group, opt.state, decoupled=False)

        return update

    def ops_chain(self) -> Callable[[], Any] | None:
        return None


class ChainruleGraph(Chainrule):
    """chainrule's step captured with CuPy's stream capture, if CuPy lets it."""

    name = "chainrule-graph"

    def mlp(self, batch: int) -> Callable[[], Any] | None:
        if self.env.dry_run:
            raise RuntimeError("n/a: dry run (CUDA graphs need a GPU)")
        import cupy

        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            step = self.make_step()
            x, y = self.tensors(*batch_data(batch))
            for _ in range(3):
                step(x, y)
            stream.synchronize()
            graph = _capture(stream, lambda: step(x, y))

        def replay() -> None:
            graph.launch(stream=stream)

        self.sync = stream.synchronize  # type: ignore[method-assign]
        return replay

    def ops_chain(self) -> Callable[[], Any] | None:
        return None

    def epoch(self, x: np.ndarray, y: np.ndarray) -> Callable[[], Any] | None:
        return None
