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
#   scripts/gpu-check.sh --sanitize
#     instead: the CUDA op tests under compute-sanitizer, memcheck (out of
#     bounds and misaligned accesses, leaks of device memory) over every op
#     family and racecheck (shared-memory races) over the families with
#     block reductions; logs sanitize-*.log; the exit status is nonzero when
#     the sanitizer reports an error. Slow (minutes): run it as its own call.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .devdeps/activate.sh ] && source .devdeps/activate.sh
all=0 sanitize=0
if [ "${1:-}" = "--all" ]; then all=1; shift; fi
if [ "${1:-}" = "--sanitize" ]; then sanitize=1; shift; fi
out=${OUT:-/tmp/hug-gpu-check}
mkdir -p "$out"
jobs=$(nproc)

# Runs the CUDA op tests matching filter $2 under compute-sanitizer tool $1.
sanitize_ops() {
	local tool=$1 filter=$2 log="$out/sanitize-$1-$2.log"
	HUG_REQUIRE_GPU=1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 \
		"$san" --tool "$tool" --error-exitcode 9 --print-limit 20 \
		build/bin/hug_tests "$filter" >"$log" 2>&1
	local r=$?
	echo "sanitize $tool $filter: exit $r ($(grep -c "^=========  *[A-Z]" "$log") reports; $(tail -1 "$log"))"
	return $r
}

{ nvidia-smi; nvcc --version; } >"$out/gpu.txt" 2>&1
if ! make -j"$jobs" all build/bin/hug_tests build/bin/bench_gpu >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log"
	echo "gpu-check: the build failed (see build.log)"
	exit 2
fi
if [ "$sanitize" = 1 ]; then
	san=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
	[ -x "$san" ] || { echo "gpu-check: compute-sanitizer not found"; exit 2; }
	rc=0
	sanitize_ops memcheck cuda_ops || rc=1
	for fam in attention softmax layernorm cross_entropy embedding sum linear; do
		sanitize_ops racecheck "cuda_ops_$fam" || rc=1
	done
	exit "$rc"
fi
# Each phase has a time limit (seconds; HUG_GPU_TEST_LIMIT, HUG_GPU_BENCH_LIMIT),
# so a hang in one (a collective that never returns) still leaves the
# other's results, inside a device call's own limit (600 s: build ~1-2 min
# with 16 cores, tests 300 s, benchmark 180 s).
timeout "${HUG_GPU_TEST_LIMIT:-300}" make test-gpu 2>&1 | tee "$out/test-gpu.log" |
	grep -E "FAIL|passed|^    " | tail -60
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && echo "gpu-check: the GPU tests ran out of time (see test-gpu.log)"
if [ "$all" = 1 ]; then
	make test >>"$out/test-gpu.log" 2>&1 || rc=1
	tail -1 "$out/test-gpu.log"
fi
timeout "${HUG_GPU_BENCH_LIMIT:-180}" bench/bench_gpu.sh "$@" 2>&1 | tee "$out/bench.log" | tail -30
[ "${PIPESTATUS[0]}" = 124 ] && echo "gpu-check: the benchmark ran out of time (see bench.log)"
exit "$rc"
