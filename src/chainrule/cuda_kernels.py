"""Fused CUDA kernels (CuPy) for the layers whose eager form launches several kernels.

A straight CuPy port is launch-bound: each NumPy-style call is one kernel launch of a few
microseconds, and an MLP training step makes dozens of them. These kernels do in one
launch what the array code does in several:

- ``bias_relu_forward(x_matmul_w, b)``: y = max(XWᵀ + b, 0) (1 launch instead of 2);
  ``relu_backward(g, y)``: dX = g·[y > 0] (1 instead of 2, the mask recomputed from y);
  ``relu_bias_backward(g, y)``: that and db = Σ_rows dX (2 launches);
- ``cross_entropy_forward`` / ``cross_entropy_backward``: softmax cross-entropy with class
  weights, label smoothing, ``ignore_index`` and the reduction, one launch each way
  (PyTorch eager: ~6 forward, ~4 backward); the mean is reduced in the same launch.

The optimiser updates over one flat buffer are in ``chainrule.cuda_optim`` (the kernels) and
``chainrule.cuda_flat`` (``FlatParams``, ``FusedAdam``, ``FusedSGD``).

Each kernel has its NumPy reference here (``*_reference``): the math the kernel must
match, used by the GPU tests. CuPy is imported inside the functions (this module imports
without it); kernels are compiled on first use and cached per dtype (CuPy caches the
compiled binaries on disk too). Call them only with CuPy arrays (``backend.is_device_array``);
the inputs must be float32 or float64 and, for the cross-entropy, 2-D (N, C).

Example (on a GPU):
    >>> y = bias_relu_forward(x @ w.T, b)          # doctest: +SKIP
    >>> dx = relu_backward(g, y)                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy

_cache: dict[Any, Any] = {}  # (kernel name, dtype) -> compiled kernel; name -> scratch

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _cupy() -> Any:
    import cupy  # only when a kernel is asked for: the module imports without CuPy

    return cupy


FUSED_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
"""The dtypes the fused kernels take."""


ENABLED = os.environ.get("CHAINRULE_CUDA_FUSED", "1") != "0"
"""``CHAINRULE_CUDA_FUSED=0`` turns the fused kernels off: the ops then run their array
code on the GPU as on the CPU (for comparisons, and as an escape hatch)."""


def on_cupy(array: Any) -> bool:
    """True for a CuPy array while the fused kernels are enabled (not for the test suite's
    NumPy stand-in for CuPy, which cannot run CUDA code)."""
    return ENABLED and type(array).__module__.startswith("cupy")


def fusable(*arrays: Any) -> bool:
    """True when the fused kernels take these arrays: CuPy arrays (``on_cupy``) of one
    dtype among ``FUSED_DTYPES``."""
    first = arrays[0]
    dtype = first.dtype
    return on_cupy(first) and dtype in FUSED_DTYPES and all(a.dtype == dtype for a in arrays)


def _check_float(name: str, *arrays: Any) -> Any:
    dtype = arrays[0].dtype
    if not fusable(*arrays):
        kinds = ", ".join(str(a.dtype) for a in arrays)
        raise TypeError(
            f"cuda_kernels.{name}: the fused kernels take float32 or float64 arrays of one "
            f"dtype, got {kinds}; cast first (x.astype(float32)) or use the array code"
        )
    return dtype


# ------------------------------------------------------------------ bias + ReLU
def _bias_relu_kernel() -> Any:
    kernel = _cache.get("bias_relu")
    if kernel is None:
        # NaN passes through as in numpy.maximum(v, 0) (v != v only for NaN).
        kernel = _cupy().ElementwiseKernel(
            "T x, T b",
            "T y",
            "T v = x + b; y = (v > (T)0 || v != v) ? v : (T)0;",
            "chainrule_bias_relu",
        )
        _cache["bias_relu"] = kernel
    return kernel


def _relu_backward_kernel() -> Any:
    kernel = _cache.get("relu_backward")
    if kernel is None:
        # g · [y > 0] as NumPy computes g * (y > 0): a NaN in g stays NaN where y ≤ 0.
        kernel = _cupy().ElementwiseKernel(
            "T g, T y",
            "T dx",
            "dx = g * (y > (T)0 ? (T)1 : (T)0);",
            "chainrule_relu_backward",
        )
        _cache["relu_backward"] = kernel
    return kernel


def bias_relu_forward(x_matmul_w: Any, b: Any, out: Any = None) -> Any:
    """y = max(x_matmul_w + b, 0), the bias broadcast over the rows, in one launch.

    Args:
        x_matmul_w: (N, C) the product X Wᵀ (any leading shape with C last).
        b: (C,) the bias.
        out: where to write y; pass ``x_matmul_w`` itself to reuse a fresh GEMM result.

    Returns:
        y, of x_matmul_w's shape. Keep it for the backward: the mask is [y > 0].
    """
    _check_float("bias_relu_forward", x_matmul_w, b)
    kernel = _bias_relu_kernel()
    return kernel(x_matmul_w, b) if out is None else kernel(x_matmul_w, b, out)


def relu_forward(x: Any, out: Any = None) -> Any:
    """y = max(x, 0) in one launch (NaN propagates), for a ReLU without a bias."""
    _check_float("relu_forward", x)
    kernel, zero = _bias_relu_kernel(), x.dtype.type(0)
    return kernel(x, zero) if out is None else kernel(x, zero, out)


def relu_backward(g: Any, y: Any) -> Any:
    """dX = g · [y > 0] in one launch, the mask recomputed from the saved output y."""
    _check_float("relu_backward", g, y)
    return _relu_backward_kernel()(g, y)


def relu_bias_backward(g: Any, y: Any) -> tuple[Any, Any]:
    """(dX, db) for y = relu(XWᵀ + b): dX = g · [y > 0], db = Σ_rows dX (2 launches)."""
    dx = relu_backward(g, y)
    return dx, dx.reshape(-1, dx.shape[-1]).sum(axis=0)


def linear_relu_forward(x: Any, weight: Any, bias: Any) -> Any:
    """y = relu(X Wᵀ + b): the GEMM, then bias and ReLU fused into its output (2 launches)."""
    y = x @ weight.T
    return bias_relu_forward(y, bias, out=y)


def linear_relu_backward(g: Any, x: Any, weight: Any, y: Any) -> tuple[Any, Any, Any]:
    """(dX, dW, db) of ``linear_relu_forward``: G' = g·[y > 0], dX = G'W, dW = G'ᵀX,
    db = Σ_rows G' (4 launches: the mask, two GEMMs, one column sum)."""
    gm, db = relu_bias_backward(g, y)
    return gm @ weight, gm.T @ x, db


def bias_relu_reference(x_matmul_w: Any, b: Any) -> Any:
    """NumPy reference of ``bias_relu_forward``."""
    return numpy.maximum(x_matmul_w + b, 0)


def relu_backward_reference(g: Any, y: Any) -> Any:
    """NumPy reference of ``relu_backward``."""
    return g * (y > 0)


# ------------------------------------------------------------------ cross-entropy
# One warp per row: max, then Σ exp(x − max) (and Σ w_c, Σ w_c x_c for the smoothing),
# all in double. The last block to finish (a ticket counter, CUDA's threadFenceReduction
# pattern) sums the rows in a fixed order, so the mean costs no second launch and is
# deterministic; it resets the counter for the next launch.
_CE_FORWARD = r"""
extern "C" __global__ void chainrule_ce_forward_scalar_t(
    const scalar_t* x, const long long* target, const scalar_t* weight, int has_weight,
    int n, int c, long long ignore_index, double eps, int mode,
    scalar_t* lse_out, scalar_t* row_loss, scalar_t* row_w, scalar_t* result,
    unsigned int* counter)
{
    const int lane = threadIdx.x & 31;
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (row < n) {
        const scalar_t* xr = x + (long long)row * c;
        double mx = __longlong_as_double(0xfff0000000000000ULL);  /* -inf */
        for (int j = lane; j < c; j += 32) mx = fmax(mx, (double)xr[j]);
        for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffff, mx, o));
        double se = 0.0, sw = 0.0, swx = 0.0;
        for (int j = lane; j < c; j += 32) {
            double v = (double)xr[j];
            se += exp(v - mx);
            double w = has_weight ? (double)weight[j] : 1.0;
            sw += w;
            swx += w * v;
        }
        for (int o = 16; o > 0; o >>= 1) {
            se += __shfl_xor_sync(0xffffffff, se, o);
            sw += __shfl_xor_sync(0xffffffff, sw, o);
            swx += __shfl_xor_sync(0xffffffff, swx, o);
        }
        if (lane == 0) {
            double lse = mx + log(se);
            long long t = target[row];
            int m = t != ignore_index;
            long long safe = m ? t : 0;
            double loss, wt;
            if (safe < 0 || safe >= c) {  /* a target out of range: NaN, not a crash */
                loss = __longlong_as_double(0x7ff8000000000000ULL); wt = loss;  /* NaN */
            } else {
                wt = m ? (has_weight ? (double)weight[safe] : 1.0) : 0.0;
                loss = (1.0 - eps) * wt * (lse - (double)xr[safe]);
                if (eps != 0.0) loss += (eps / c) * m * (lse * sw - swx);
            }
            lse_out[row] = (scalar_t)lse;
            row_loss[row] = (scalar_t)loss;
            row_w[row] = (scalar_t)wt;
            if (row == 0) result[2] = (scalar_t)sw;  /* Σ_c w_c, for the backward */
        }
    }
    if (mode == 0) return;
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __shared__ double sl[256], sd[256];
    double a = 0.0, d = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        a += (double)((volatile scalar_t*)row_loss)[i];
        d += (double)((volatile scalar_t*)row_w)[i];
    }
    sl[threadIdx.x] = a; sd[threadIdx.x] = d;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            sl[threadIdx.x] += sl[threadIdx.x + s];
            sd[threadIdx.x] += sd[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        result[0] = (scalar_t)(mode == 1 ? sl[0] / sd[0] : sl[0]);
        result[1] = (scalar_t)sd[0];
        *counter = 0u;
    }
}
"""

_CE_BACKWARD_OP = """
    const long long row = i / c;
    const int j = (int)(i - row * c);
    const long long t = target[row];
    const int m = t != ignore_index;
    const long long safe = m ? t : 0;
    const double wt = m ? (has_weight ? (double)weight[safe] : 1.0) : 0.0;
    const double s = mode == 0 ? (double)g[row]
                   : (mode == 1 ? (double)g[0] / (double)result[1] : (double)g[0]);
    const double p = exp((double)x[i] - (double)lse[row]);
    const double hard = (1.0 - eps) * s * wt;
    double d = p * hard - (j == safe ? hard : 0.0);
    if (eps != 0.0) {
        const double wj = has_weight ? (double)weight[j] : 1.0;
        d += (eps / c) * s * m * (p * (double)result[2] - wj);
    }
    dx = (T)d;
"""

_BLOCK = 256  # threads per block of the forward: 8 rows (warps), and the final sum's width


def _ce_forward_kernel(dtype: Any) -> Any:
    key = ("ce_forward", dtype)
    kernel = _cache.get(key)
    if kernel is None:
        ctype = "float" if dtype == numpy.float32 else "double"
        code = _CE_FORWARD.replace("scalar_t", ctype)
        kernel = _cupy().RawKernel(code, f"chainrule_ce_forward_{ctype}")
        _cache[key] = kernel
    return kernel


def _ce_backward_kernel() -> Any:
    kernel = _cache.get("ce_backward")
    if kernel is None:
        kernel = _cupy().ElementwiseKernel(
            "raw T x, raw T lse, raw int64 target, raw T weight, int32 has_weight, "
            "raw T g, raw T result, int32 c, int64 ignore_index, float64 eps, int32 mode",
            "T dx",
            _CE_BACKWARD_OP,
            "chainrule_ce_backward",
        )
        _cache["ce_backward"] = kernel
    return kernel


def _counter(cupy: Any) -> Any:
    """The ticket counter of the forward's final sum, one per GPU (the kernel resets it)."""
    key = ("ce_counter", cupy.cuda.runtime.getDevice())
    counter = _cache.get(key)
    if counter is None:
        counter = cupy.zeros(1, dtype=cupy.uint32)
        _cache[key] = counter
    return counter


def _no_weight(cupy: Any, dtype: Any) -> Any:
    key = ("no_weight", dtype, cupy.cuda.runtime.getDevice())
    dummy = _cache.get(key)
    if dummy is None:
        dummy = cupy.ones(1, dtype=dtype)
        _cache[key] = dummy
    return dummy


class CrossEntropySaved(NamedTuple):
    """What ``cross_entropy_backward`` needs from the forward (save it on ctx)."""

    lse: Any  # (N,) log Σ_c exp(x_c) per row
    result: Any  # (3,) [loss, D = Σ_i w_tᵢ mᵢ, Σ_c w_c] on the device
    target: Any  # (N,) int64
    weight: Any  # (C,) or None
    ignore_index: int
    reduction: str
    label_smoothing: float


def cross_entropy_forward(
    logits: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[Any, CrossEntropySaved]:
    """Softmax cross-entropy of (N, C) logits against class indices, in one launch.

    ℓᵢ = (1 − ε) w_tᵢ mᵢ (lseᵢ − xᵢₜᵢ) + (ε/C) mᵢ Σ_c w_c (lseᵢ − xᵢc), lseᵢ = log Σ_c e^xᵢc,
    mᵢ = [tᵢ ≠ ignore_index]; "mean" divides Σᵢ ℓᵢ by D = Σᵢ w_tᵢ mᵢ (PyTorch's rule).
    A target outside [0, C) gives NaN (checking on the host would stall the GPU).

    Returns:
        (loss, saved): loss is a 0-d device array ("mean"/"sum") or (N,) ("none").
    """
    cupy = _cupy()
    dtype = _check_float("cross_entropy_forward", logits)
    if logits.ndim != 2 or reduction not in _REDUCTIONS:
        raise ValueError(
            f"cuda_kernels.cross_entropy_forward: takes (N, C) logits and a reduction in "
            f"{sorted(_REDUCTIONS)}, got shape {tuple(logits.shape)}, reduction={reduction!r}"
        )
    n, c = logits.shape
    x = cupy.ascontiguousarray(logits)
    t = cupy.ascontiguousarray(target.reshape(-1)).astype(cupy.int64, copy=False)
    w = _no_weight(cupy, dtype) if weight is None else cupy.ascontiguousarray(weight, dtype)
    lse = cupy.empty(n, dtype)
    row_loss = cupy.empty(n, dtype)
    row_w = cupy.empty(n, dtype)
    result = cupy.zeros(3, dtype) if n == 0 else cupy.empty(3, dtype)
    mode = _REDUCTIONS[reduction]
    if n:
        grid = (n * 32 + _BLOCK - 1) // _BLOCK
        _ce_forward_kernel(dtype)(
            (grid,),
            (_BLOCK,),
            (
                x, t, w, numpy.int32(weight is not None), numpy.int32(n), numpy.int32(c),
                numpy.int64(ignore_index), numpy.float64(label_smoothing), numpy.int32(mode),
                lse, row_loss, row_w, result, _counter(cupy),
            ),
        )  # fmt: skip
    loss = row_loss if mode == 0 else result[0]
    saved = CrossEntropySaved(lse, result, t, weight, ignore_index, reduction, label_smoothing)
    return loss, saved


def cross_entropy_backward(g: Any, logits: Any, saved: CrossEntropySaved) -> Any:
    """d loss / d logits, (N, C), in one launch:

    dxᵢⱼ = sᵢ [(1 − ε) w_tᵢ mᵢ (pᵢⱼ − [j = tᵢ]) + (ε/C) mᵢ (pᵢⱼ Σ_c w_c − wⱼ)], p = softmax
    recomputed from the saved lse, sᵢ = g / D ("mean"), g ("sum") or gᵢ ("none").
    """
    cupy = _cupy()
    dtype = logits.dtype
    x = cupy.ascontiguousarray(logits)
    w = saved.weight
    w = _no_weight(cupy, dtype) if w is None else cupy.ascontiguousarray(w, dtype)
    g = cupy.ascontiguousarray(g, dtype).reshape(-1)  # 0-d (mean, sum) or (N,)
    dx = cupy.empty(x.shape, dtype)
    _ce_backward_kernel()(
        x, saved.lse, saved.target, w, numpy.int32(saved.weight is not None), g,
        saved.result, numpy.int32(x.shape[1]), numpy.int64(saved.ignore_index),
        numpy.float64(saved.label_smoothing), numpy.int32(_REDUCTIONS[saved.reduction]), dx,
    )  # fmt: skip
    return dx


def cross_entropy_reference(
    logits: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    g: Any = 1.0,
) -> tuple[Any, Any]:
    """NumPy reference of the two kernels: (loss, d loss/d logits · g), in float64."""
    x = numpy.asarray(logits, numpy.float64)
    n, c = x.shape
    t = numpy.asarray(target).reshape(-1)
    m = (t != ignore_index).astype(numpy.float64)
    safe = numpy.where(m > 0, t, 0)
    w = numpy.ones(c) if weight is None else numpy.asarray(weight, numpy.float64)
    mx = x.max(axis=1, keepdims=True)
    lse = mx + numpy.log(numpy.exp(x - mx).sum(axis=1, keepdims=True))
    logp = x - lse
    wt = w[safe] * m
    eps = label_smoothing
    per_row = -(1 - eps) * wt * logp[numpy.arange(n), safe]
    per_row -= (eps / c) * m * (logp * w).sum(axis=1)
    denominator = wt.sum()
    if reduction == "none":
        loss, s = per_row, numpy.asarray(g, numpy.float64).reshape(-1) * numpy.ones(n)
    elif reduction == "sum":
        loss, s = per_row.sum(), numpy.full(n, float(g))
    else:
        loss, s = per_row.sum() / denominator, numpy.full(n, float(g) / denominator)
    p = numpy.exp(logp)
    hot = numpy.zeros_like(x)
    hot[numpy.arange(n), safe] = 1
    hard = ((1 - eps) * s * wt)[:, None]
    soft = ((eps / c) * s * m)[:, None]
    grad = hard * (p - hot) + soft * (p * w.sum() - w)
    return loss, grad
