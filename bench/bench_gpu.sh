#!/usr/bin/env bash
# bench_gpu.sh: the first GPU benchmark: training throughput (tokens/s) and
# MFU of a bloom-560m-shaped model at seq 2048 in bf16 mixed precision, hug
# (bench/bench_gpu.c) beside PyTorch + transformers' BloomForCausalLM
# (tools/ref/bench_torch_gpu.py) on the same GPU in the same run.
#
#   bench/bench_gpu.sh [--batch 1 --seq 2048 --steps 10 ...]   (passed to both)
#
# Needs a CUDA GPU, nvcc for the build, and python3 with torch (CUDA build)
# and transformers for the reference. HUG_PEAK_TFLOPS sets the peak used
# for MFU (default 989: H100/H200 SXM dense bf16). Prints both JSON lines
# and the ratio; results also go to bench/results/gpu-<date>.jsonl, and
# hug's time per op (a second, profiled run) to gpu-<date>-profile.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

make -j"$(nproc)" build/bin/bench_gpu >/dev/null
mkdir -p bench/results
out="bench/results/gpu-$(date +%Y%m%d-%H%M%S).jsonl"

echo "== hug" >&2
hug_line=$(build/bin/bench_gpu "$@")
echo "$hug_line" | tee -a "$out"

echo "== hug, profiled (bench/results/gpu-*-profile.txt)" >&2
HUG_PROFILE=1 build/bin/bench_gpu "$@" 2>"${out%.jsonl}-profile.txt" >/dev/null || true
head -25 "${out%.jsonl}-profile.txt" >&2

echo "== torch" >&2
if torch_line=$(python3 tools/ref/bench_torch_gpu.py "$@"); then
	echo "$torch_line" | tee -a "$out"
	python3 - "$hug_line" "$torch_line" <<'PY'
import json, sys
h, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"hug {h['tokens_per_s']:.0f} tokens/s (MFU {h['mfu']:.1%}), "
      f"torch {t['tokens_per_s']:.0f} tokens/s (MFU {t['mfu']:.1%}): "
      f"hug/torch = {h['tokens_per_s'] / t['tokens_per_s']:.2f}")
PY
else
	echo "bench_gpu.sh: the PyTorch reference failed (torch/transformers missing, or out of memory: try a smaller --seq)" >&2
	exit 1
fi
