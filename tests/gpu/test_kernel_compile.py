"""Every CUDA kernel chainrule launches compiles, without a GPU: CuPy's own code generator
and CuPy's own compiler (NVRTC), as on a GPU machine, for float32 and float64.

A GPU is lent to this project only some of the time, and a kernel that does not compile
would cost a whole GPU session to find. CuPy imports and NVRTC compiles on a machine with
no GPU and no driver; only the launch needs one. So for each ``ElementwiseKernel`` this
builds the source CuPy would build at the launch (``_get_elementwise_kernel_code`` with
the arguments' kinds: arrays of the launch's ndim and dtype, scalars, the indexer),
prepends CuPy's headers and compiles it with CuPy's NVRTC program and options; the
cross-entropy ``RawKernel`` is compiled as CuPy compiles raw code. Those are CuPy
internals: pinned by the ``cuda-check`` extra (``pip install -e ".[test,cuda-check]"``,
which CI installs), and this module skips, saying why, where they differ or NVRTC is
missing.

Also checked in the PTX: the float32 elementwise kernels do no float64 arithmetic (one
``double`` slips in and a consumer GPU runs the kernel at 1/32–1/64 of its float rate),
while the cross-entropy kernels are meant to accumulate in double.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from chainrule import cuda_kernels, cuda_optim

cupy = pytest.importorskip(
    "cupy", reason="CuPy not installed: pip install -e '.[cuda-check]' compiles the kernels"
)

try:  # CuPy's internals that build and compile a kernel's source (CuPy 13-14)
    from cupy._core import _carray, _kernel, _scalar, core
    from cupy.cuda import compiler

    _ArgInfo, _TypeMap = _kernel._ArgInfo, _kernel._TypeMap
    _kernel_code = _kernel._get_elementwise_kernel_code
    _NVRTCProgram, CompileException = compiler._NVRTCProgram, compiler.CompileException
except (ImportError, AttributeError) as exc:  # pragma: no cover - another CuPy version
    pytest.skip(
        f"CuPy {cupy.__version__}'s kernel internals differ ({exc}); the cuda-check extra "
        "pins the CuPy this module was written against",
        allow_module_level=True,
    )

# cdef enum _ArgKind in cupy/_core/_kernel.pxd
ARG_NDARRAY, ARG_INDEXER, ARG_SCALAR = 1, 2, 3
ARCH = "compute_90"  # the H200 the GPU suite runs on; PTX of compute_90 is forward-compatible
DTYPES = [np.float32, np.float64]


def _nvrtc_compile(source: str, options: tuple[str, ...]) -> str:
    """Compile as CuPy's ``compile_using_nvrtc`` does on a GPU machine (the same program
    object and options; the arch given rather than read from the device)."""
    options = (*options, f"-arch={ARCH}", "--device-as-default-execution-space")
    program = _NVRTCProgram(source, "kern.cu", (), (), name_expressions=None, method="ptx")
    ptx, _ = program.compile(options, None)
    return ptx.decode() if isinstance(ptx, bytes) else str(ptx)


def _nvrtc_reason() -> str | None:
    """None when NVRTC compiles here, else why not (for the skip)."""
    try:
        _nvrtc_compile('extern "C" __global__ void probe(float* x) { x[0] = 1.0f; }', ())
    except CompileException as exc:  # NVRTC ran: the probe itself is wrong
        raise AssertionError(f"NVRTC rejected a trivial kernel: {exc}") from exc
    except Exception as exc:  # no libnvrtc here, or a CuPy without this path
        return f"NVRTC unusable here ({type(exc).__name__}: {exc})"
    return None


_REASON = _nvrtc_reason()
if _REASON is not None:
    pytest.skip(f"{_REASON}; pip install -e '.[cuda-check]' brings it", allow_module_level=True)

_HEADERS = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
_OPTIONS = tuple(core.assemble_cupy_compiler_options(()))


@dataclass(frozen=True)
class Launch:
    """One way chainrule launches an ElementwiseKernel: which parameters get arrays (and
    their ndim); the others get scalars. ``contiguous`` is False for arrays CuPy cannot
    flatten (a broadcast bias), which changes the CArray type in the source."""

    arrays: dict[str, int]
    not_contiguous: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ElementwiseCase:
    name: str
    kernel: Callable[[], Any]
    launches: tuple[Launch, ...]
    float32_without_f64: bool = True


# Each kernel as its call sites launch it (cuda_kernels.py, cuda_optim.py). A parameter
# added to a kernel and missing here fails test_cases_cover_every_parameter.
CASES = [
    ElementwiseCase(
        "bias_relu",
        cuda_kernels._bias_relu_kernel,
        (
            # bias_relu_forward: (N, C) + (C,) broadcast: CuPy keeps 2 dims, b strided
            Launch({"x": 2, "b": 2, "y": 2}, frozenset({"b"})),
            Launch({"x": 1, "y": 1}),  # relu_forward: b is the scalar 0
        ),
    ),
    ElementwiseCase(
        "relu_backward", cuda_kernels._relu_backward_kernel, (Launch({"g": 1, "y": 1, "dx": 1}),)
    ),
    ElementwiseCase(
        "ce_backward",
        cuda_kernels._ce_backward_kernel,
        (Launch({"x": 2, "lse": 1, "target": 1, "weight": 1, "g": 1, "result": 1, "dx": 1}),),
        float32_without_f64=False,  # accumulates in double on purpose
    ),
    ElementwiseCase("adam", cuda_optim._adam_kernel, (Launch({"g": 1, "p": 1, "m": 1, "v": 1}),)),
    ElementwiseCase("sgd", cuda_optim._sgd_kernel, (Launch({"g": 1, "p": 1, "buf": 1}),)),
]


def _source(kernel: Any, launch: Launch, dtype: Any) -> str:
    """The CUDA source CuPy generates for this launch (as ``ElementwiseKernel.__call__``
    would, after broadcasting and ``_reduce_dims``)."""
    t = np.dtype(dtype)
    infos = []
    # The indexer walks the broadcast shape of the non-raw arrays (raw ones are indexed
    # by hand in the operation).
    ndim = max(
        launch.arrays[p.name] for p in kernel.params[:-1] if not p.raw and p.name in launch.arrays
    )
    for p in kernel.params[:-1]:  # the last is the indexer, _ind
        param_dtype = t if p.dtype is None else np.dtype(p.dtype)
        if p.name in launch.arrays:
            contiguous = p.name not in launch.not_contiguous
            infos.append(
                _ArgInfo(
                    ARG_NDARRAY, cupy.ndarray, param_dtype, launch.arrays[p.name], contiguous, True
                )
            )
        else:
            infos.append(_ArgInfo(ARG_SCALAR, _scalar.CScalar, param_dtype, 0, True, True))
    infos.append(_ArgInfo(ARG_INDEXER, _carray.Indexer, None, ndim, True, True))
    type_map = _TypeMap((("T", t),))
    code = _kernel_code(
        tuple(infos),
        type_map,
        kernel.params,
        kernel.operation,
        kernel.name,
        kernel.preamble,
        **kernel.kwargs,
    )
    return _HEADERS + code


def _f64_instructions(ptx: str, entry: str) -> list[str]:
    """The float64 instructions in one entry's PTX body (cvt, arithmetic, loads)."""
    body = ptx[ptx.index(f".entry {entry}") :]
    return [line.strip() for line in body.splitlines() if re.search(r"\.f64\b", line)]


@pytest.fixture(autouse=True)
def _fresh_kernel_caches() -> Any:
    """The kernel getters cache the kernel objects; start and end without them."""
    saved = (dict(cuda_kernels._cache), dict(cuda_optim._cache))
    cuda_kernels._cache.clear()
    cuda_optim._cache.clear()
    yield
    for cache, old in zip((cuda_kernels._cache, cuda_optim._cache), saved, strict=True):
        cache.clear()
        cache.update(old)


def test_cases_cover_every_parameter() -> None:
    """Every array a kernel takes is named in its launches, with a parameter of that name:
    the table above cannot drift from the kernels."""
    for case in CASES:
        kernel = case.kernel()
        names = {p.name for p in kernel.params[:-1]}
        for launch in case.launches:
            assert set(launch.arrays) <= names, (case.name, set(launch.arrays) - names)
        # every output is an array in every launch (CuPy allocates or takes one)
        outputs = {p.name for p in kernel.out_params}
        for launch in case.launches:
            assert outputs <= set(launch.arrays), (case.name, outputs - set(launch.arrays))
        # raw parameters are always arrays
        raws = {p.name for p in kernel.params[:-1] if p.raw}
        for launch in case.launches:
            assert raws <= set(launch.arrays), (case.name, raws - set(launch.arrays))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_elementwise_kernel_compiles(case: ElementwiseCase, dtype: Any) -> None:
    kernel = case.kernel()
    assert kernel.name == f"chainrule_{case.name}"
    for launch in case.launches:
        source = _source(kernel, launch, dtype)
        try:
            ptx = _nvrtc_compile(source, _OPTIONS)
        except CompileException as exc:
            pytest.fail(f"{case.name} ({np.dtype(dtype)}, {launch}) does not compile:\n{exc}")
        assert f".entry {kernel.name}" in ptx
        if dtype == np.float32 and case.float32_without_f64:
            assert _f64_instructions(ptx, kernel.name) == [], case.name


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cross_entropy_raw_kernel_compiles(dtype: Any) -> None:
    kernel = cuda_kernels._ce_forward_kernel(np.dtype(dtype))
    # RawKernel compiles its code as given (no CuPy headers), with CuPy's options added.
    ptx = _nvrtc_compile(kernel.code, tuple(core.assemble_cupy_compiler_options(kernel.options)))
    assert f".entry {kernel.name}" in ptx
    assert "atom.global.add.u32" in ptx or "atom.add.u32" in ptx  # the ticket counter


def test_a_broken_kernel_fails_to_compile() -> None:
    """The check can fail: one undeclared name in an operation is a compile error."""
    broken = cupy.ElementwiseKernel("T x", "T y", "y = x + undeclared_name;", "broken")
    with pytest.raises(CompileException, match="undeclared_name"):
        _nvrtc_compile(_source(broken, Launch({"x": 1, "y": 1}), np.float32), _OPTIONS)


def test_a_double_in_a_float_kernel_is_seen() -> None:
    """The float64 check can fail: a double literal promotes the float arithmetic (0.1 is
    not a float, so the product cannot be folded back into float arithmetic)."""
    leaky = cupy.ElementwiseKernel("T x", "T y", "y = x * 0.1;", "leaky")
    ptx = _nvrtc_compile(_source(leaky, Launch({"x": 1, "y": 1}), np.float32), _OPTIONS)
    assert _f64_instructions(ptx, "leaky") != []
