#!/usr/bin/env bash
# The one command for a lent GPU (issue 11): machine and versions, the GPU test suite,
# then the GPU benchmark, in under ~8 minutes, offline (no pip, no downloads).
#
#     bash benchmarks/gpu_check.sh            # from the repository root
#
# Everything goes under $OUT if set (the device runner's folder), else ./gpu_results:
#   gpu_check.log   this whole output          pytest.txt / pytest.xml   the test run
#   bench.json      the benchmark's results    summary.txt               the last lines
# The benchmark runs even when tests fail; the exit status is the tests' (0: all passed).
# Limits: TEST_TIMEOUT (s, default 210) for pytest, BENCH_CAP (s, default 240) for the
# benchmark (its contenders share it; a stopped one keeps what it measured).

set -u
cd "$(dirname "$0")/.." || exit 2
OUT_DIR="${OUT:-./gpu_results}"
mkdir -p "$OUT_DIR"
export PYTHONPATH=src
# The GPU machine has no package registry: pytest and hypothesis come from .gpu_deps when
# the tree brings it (made here by benchmarks/prepare_gpu_deps.sh; pure Python).
if [ -d .gpu_deps ]; then export PYTHONPATH=src:.gpu_deps; fi
export CHAINRULE_TEST_DEVICES=cuda   # the device tests' cpu and fake-cuda cases ran in CI
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1
TEST_TIMEOUT="${TEST_TIMEOUT:-210}"
BENCH_CAP="${BENCH_CAP:-240}"
START=$(date +%s)
exec > >(tee -a "$OUT_DIR/gpu_check.log") 2>&1

section() { echo; echo "=== $* (t=$(($(date +%s) - START)) s)"; }

section "machine"
nvidia-smi || echo "nvidia-smi failed (status $?)"
timeout 120 python - <<'EOF' || echo "version probe failed (status $?)"
import platform
print("python", platform.python_version(), platform.platform())
for name in ("numpy", "cupy", "torch", "hypothesis", "pytest", "sklearn"):
    try:
        module = __import__(name)
        print(f"{name:10s} {getattr(module, '__version__', '?')}")
    except Exception as exc:
        print(f"{name:10s} missing ({type(exc).__name__}: {exc})")
try:
    import cupy
    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(0)
    print("cupy sees", rt.getDeviceCount(), "GPU(s):", props["name"].decode(),
          "| CUDA runtime", rt.runtimeGetVersion(), "driver", rt.driverGetVersion())
except Exception as exc:
    print("cupy GPU probe failed:", type(exc).__name__, exc)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available:", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as exc:
    print("torch probe failed:", type(exc).__name__, exc)
import chainrule as cr
print("chainrule cuda available:", cr.cuda.is_available())
EOF

section "GPU tests (timeout ${TEST_TIMEOUT} s)"
TESTS=(tests/gpu)
for extra in tests/ops/test_ops_devices.py tests/nn/test_nn_devices.py \
    tests/nn/test_nn_module_devices.py tests/autograd/test_autograd_devices.py \
    tests/optim/test_optim_device.py tests/data/test_data_device.py \
    tests/training/test_training_device.py tests/test_device.py; do
    if [ -e "$extra" ]; then TESTS+=("$extra"); else echo "($extra not in this tree: skipped)"; fi
done
# No -x: one GPU session has to report every failure, not the first; --maxfail bounds it.
timeout -s INT -k 30 "$TEST_TIMEOUT" python -m pytest "${TESTS[@]}" -p no:cacheprovider -rfEs \
    --maxfail=40 --junitxml="$OUT_DIR/pytest.xml" 2>&1 | tee "$OUT_DIR/pytest.txt"
TEST_RC=${PIPESTATUS[0]}
# timeout sends SIGINT: pytest stops and still prints its summary (status 2, or 124).
[ "$TEST_RC" -eq 124 ] && echo "pytest stopped by the ${TEST_TIMEOUT} s timeout"

section "benchmark (cap ${BENCH_CAP} s)"
timeout -k 10 $((BENCH_CAP + 30)) python benchmarks/bench_gpu.py --out "$OUT_DIR/bench.json" \
    --time-cap "$BENCH_CAP"
BENCH_RC=$?

section "summary"
{
    echo "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    echo "tests:   status $TEST_RC; $(grep -E '(passed|failed|error|skipped)' "$OUT_DIR/pytest.txt" | tail -1)"
    echo "bench:   status $BENCH_RC; results in $OUT_DIR/bench.json"
    echo "total:   $(($(date +%s) - START)) s"
} | tee "$OUT_DIR/summary.txt"
exit "$TEST_RC"
