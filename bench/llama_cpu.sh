#!/usr/bin/env bash
# llama_cpu.sh: CPU speed of a Llama-shaped training step (forward,
# backward, clipping, AdamW on random tokens) in hug against PyTorch +
# transformers' LlamaForCausalLM on the same shape and threads, through
# bench/vs_torch.sh (alternate runs, median ratio of tokens/s).
# Shape: hidden 512, 8 layers, 8 heads over 2 key/value heads, SwiGLU of
# 1408, vocabulary 8192, one sequence of 256.
#
#   [STEPS=4 BATCH=1] bench/llama_cpu.sh [PAIRS=3] [THREADS=2]
# Needs build/bin/bench_train (make bench) and torch + transformers.
set -euo pipefail
PAIRS=${1:-3} THREADS=${2:-2} exec "$(dirname "$0")/vs_torch.sh" \
	--arch llama --hidden 512 --layers 8 --heads 8 --kv-heads 2 --ffn 1408 --vocab 8192 \
	--seq 256 --batch "${BATCH:-1}" --steps "${STEPS:-4}" --warmup 1
