#!/usr/bin/env bash
# Pure-Python test tools for the GPU machine, which reaches no package registry: installs
# pytest and hypothesis (and their pure-Python dependencies, no NumPy) into .gpu_deps,
# which benchmarks/gpu_check.sh puts on PYTHONPATH. Run it here, then carry .gpu_deps
# with the tree to the GPU machine (the device runner's `carry`).
#
#     bash benchmarks/prepare_gpu_deps.sh && bash benchmarks/gpu_check.sh   # (on the GPU)
set -eu
cd "$(dirname "$0")/.."
rm -rf .gpu_deps
python -m pip install --quiet --no-deps --target .gpu_deps \
    pytest pluggy iniconfig packaging hypothesis attrs sortedcontainers
du -sh .gpu_deps
