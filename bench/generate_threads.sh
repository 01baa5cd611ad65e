#!/usr/bin/env bash
# generate_threads.sh: `hug generate` (KV cache, CPU) tokens/s at 1 thread
# and at THREADS threads, run alternately PAIRS times; prints each run and
# the median tokens/s of each thread count and their ratio (N over 1).
# Tokens/s counts the generated ids over the command's wall time (model
# load included, the same for both).
#
#   [PAIRS=5 THREADS=2 NEW=200] bench/generate_threads.sh [MODEL_DIR]
# MODEL_DIR defaults to tests/fixtures/bloom-tiny-a. Needs build/bin/hug.
set -euo pipefail
# OpenBLAS releases older than the CPU (Debian's 0.3.21 on Sapphire or
# Emerald Rapids) fall back to their generic Prescott (SSE3) kernels, about
# 2x slower products than the CPU's own; name the CPU's kernels unless the
# caller chose (BLAS_CORE=default keeps OpenBLAS's own choice).
if [[ -z "${OPENBLAS_CORETYPE:-}" && "${BLAS_CORE:-}" != default ]] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
	export OPENBLAS_CORETYPE=SkylakeX
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-OpenBLAS default}"
MODEL=${1:-tests/fixtures/bloom-tiny-a}
PAIRS=${PAIRS:-5} THREADS=${THREADS:-2} NEW=${NEW:-200}
HUG=${HUG:-build/bin/hug}
run() { # $1 threads -> tokens/s
	local t0 t1 ids
	t0=$(date +%s.%N)
	ids=$(OMP_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 "$HUG" generate --model "$MODEL" \
		--prompt-ids 1,2,3 --max-new-tokens "$NEW" --no-stop)
	t1=$(date +%s.%N)
	awk -v n="$(tr ',' '\n' <<< "$ids" | grep -c .)" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'
}
one=() many=()
for ((i = 1; i <= PAIRS; i++)); do
	a=$(run 1) b=$(run "$THREADS")
	echo "pair $i: 1 thread $a tokens/s, $THREADS threads $b tokens/s"
	one+=("$a") many+=("$b")
done
med() { sort -g | awk '{ r[NR] = $1 } END { printf "%.1f", NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'; }
m1=$(printf '%s\n' "${one[@]}" | med) mn=$(printf '%s\n' "${many[@]}" | med)
echo "median tokens/s: 1 thread $m1, $THREADS threads $mn, ratio $(awk -v a="$m1" -v b="$mn" 'BEGIN { printf "%.2f", b / a }')"
