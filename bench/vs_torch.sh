#!/usr/bin/env bash
# vs_torch.sh: hug's CPU training step against PyTorch eager (+ transformers)
# on the same shape and threads. build/bin/bench_train and
# tools/ref/bench_torch_train.py run alternately, PAIRS times each (the
# machine's load moves both alike within a pair); prints each pair, the
# median ratio of hug's tokens/s over PyTorch's, and each side's median
# step spread (median step time / fastest step time, 1.00 = steady).
#
#   [PAIRS=3 THREADS=2] bench/vs_torch.sh [bench_train flags...]
#   bench/vs_torch.sh --hidden 1024 --layers 2 --heads 16 --vocab 16384 --batch 2 --seq 256
# Flags go to both programs unchanged (default: bench_train's own shape,
# --steps 6 --warmup 2 unless given). Needs make bench, torch, transformers.
set -euo pipefail
# OpenBLAS releases older than the CPU (Debian's 0.3.21 on Sapphire or
# Emerald Rapids) fall back to their generic Prescott (SSE3) kernels, about
# 2x slower products than the CPU's own; name the CPU's kernels unless the
# caller chose (BLAS_CORE=default keeps OpenBLAS's own choice).
if [[ -z "${OPENBLAS_CORETYPE:-}" && "${BLAS_CORE:-}" != default ]] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
	export OPENBLAS_CORETYPE=SkylakeX
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-OpenBLAS default}"
PAIRS=${PAIRS:-3}
THREADS=${THREADS:-2}
BENCH=${BENCH:-build/bin/bench_train}
ARGS=("$@")
[[ " ${ARGS[*]-} " == *" --steps "* ]] || ARGS+=(--steps 6)
[[ " ${ARGS[*]-} " == *" --warmup "* ]] || ARGS+=(--warmup 2)
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
tps() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p'; }
spread() { sed -n 's/.*median\/fastest \([0-9.]*\).*/\1/p'; }
ratios=() hs=() ts=()
for ((i = 1; i <= PAIRS; i++)); do
	hl=$("$BENCH" "${ARGS[@]}")
	tl=$(python3 tools/ref/bench_torch_train.py "${ARGS[@]}")
	printf '%s\n%s\n' "$hl" "$tl"
	h=$(tps <<< "$hl") t=$(tps <<< "$tl")
	r=$(awk -v h="$h" -v t="$t" 'BEGIN { printf "%.3f", h / t }')
	echo "pair $i: hug $h tokens/s, torch $t tokens/s, ratio $r"
	ratios+=("$r") hs+=("$(spread <<< "$hl")") ts+=("$(spread <<< "$tl")")
done
med() { sort -g | awk '{ r[NR] = $1 } END { printf "%.3f", NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'; }
rng() { sort -g | awk '{ r[NR] = $1 } END { printf "%.3f-%.3f", r[1], r[NR] }'; }
echo "median hug/PyTorch tokens/s over $PAIRS pairs ($THREADS threads): $(printf '%s\n' "${ratios[@]}" | med)" \
     "(range $(printf '%s\n' "${ratios[@]}" | rng))"
echo "median step spread (median/fastest step): hug $(printf '%s\n' "${hs[@]}" | med)," \
     "PyTorch $(printf '%s\n' "${ts[@]}" | med)"
