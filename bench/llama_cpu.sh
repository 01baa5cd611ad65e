#!/usr/bin/env bash
# llama_cpu.sh: CPU speed of a Llama-shaped training step (forward,
# backward, clipping, AdamW on random tokens) in hug against PyTorch +
# transformers' LlamaForCausalLM on the same shape and threads. The two run
# alternately, PAIRS times each, and the median of hug's tokens/s over
# PyTorch's is printed (the machine's load moves both alike within a pair).
# Shape: hidden 512, 8 layers, 8 heads over 2 key/value heads, SwiGLU of
# 1408, vocabulary 8192, one sequence of 256.
#
#   [STEPS=4 BATCH=1] bench/llama_cpu.sh [PAIRS=3] [THREADS=2]
# Needs build/bin/bench_train (make bench) and torch + transformers.
set -euo pipefail
PAIRS=${1:-3}
THREADS=${2:-2}
BENCH=${BENCH:-build/bin/bench_train}
SHAPE=(--arch llama --hidden 512 --layers 8 --heads 8 --kv-heads 2 --ffn 1408 --vocab 8192
       --seq 256 --batch "${BATCH:-1}" --steps "${STEPS:-4}" --warmup 1)
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
tps() { sed -n 's/.* \([0-9.]*\) tokens\/s.*/\1/p'; }
ratios=()
for ((i = 1; i <= PAIRS; i++)); do
	hl=$("$BENCH" "${SHAPE[@]}")
	echo "$hl"
	tl=$(python3 tools/ref/bench_torch_train.py "${SHAPE[@]}")
	echo "$tl"
	h=$(tps <<< "$hl")
	t=$(tps <<< "$tl")
	r=$(awk -v h="$h" -v t="$t" 'BEGIN { printf "%.3f", h / t }')
	echo "pair $i: hug $h tokens/s, torch $t tokens/s, ratio $r"
	ratios+=("$r")
done
printf '%s\n' "${ratios[@]}" | sort -g |
	awk -v n="$PAIRS" -v th="$THREADS" '{ r[NR] = $1 } END {
		m = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
		printf "median hug/PyTorch tokens/s over %d pairs (%s threads): %.3f (range %.3f-%.3f)\n", n, th, m, r[1], r[n] }'
