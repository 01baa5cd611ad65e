#!/usr/bin/env bash
# gpu-check.sh: the GPU checks of hug in one command, for a machine with a
# GPU (and, when it lacks MPI/HDF5/cJSON/OpenBLAS, the packages that
# ../shared/device/fetch-deps.sh put in .devdeps/): builds, runs the CUDA
# tests with a missing GPU counted as a failure (make test-gpu), then the
# GPU benchmark beside PyTorch (bench/bench_gpu.sh, bloom-560m shape, seq
# 2048, bf16). Logs go to $OUT (or /tmp/hug-gpu-check) as build.log,
# test-gpu.log, bench.log and gpu.txt; the exit status is the tests'.
#
#   scripts/gpu-check.sh [--all] [bench_gpu.sh flags ...]
#     --all   also run the CPU test suite (make test) on this machine
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .devdeps/activate.sh ] && source .devdeps/activate.sh
all=0
if [ "${1:-}" = "--all" ]; then all=1; shift; fi
out=${OUT:-/tmp/hug-gpu-check}
mkdir -p "$out"
jobs=$(nproc)

{ nvidia-smi; nvcc --version; } >"$out/gpu.txt" 2>&1
if ! make -j"$jobs" >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log"
	echo "gpu-check: the build failed (see build.log)"
	exit 2
fi
make test-gpu 2>&1 | tee "$out/test-gpu.log" | grep -E "FAIL|passed|^    " | tail -60
rc=${PIPESTATUS[0]}
if [ "$all" = 1 ]; then
	make test >>"$out/test-gpu.log" 2>&1 || rc=1
	tail -1 "$out/test-gpu.log"
fi
bench/bench_gpu.sh "$@" 2>&1 | tee "$out/bench.log" | tail -5
exit "$rc"
