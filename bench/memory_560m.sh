#!/bin/sh
# memory_560m.sh: peak memory and step time of a full fine-tuning step at
# the bloom-560m shape (24 blocks, hidden 1024, 16 heads, vocabulary
# 250880; random weights) on the CPU, 1 x SEQ tokens, with issue 18's
# memory features alone and together, each beside `hug plan`'s prediction:
#   exact      the exact attention kernel (HUG_ATTENTION=exact): the
#              (B, H, T, T) probabilities kept, as before the tiled kernel
#   tiled      the tiled (flash-style) kernel, the default
#   block      tiled + recomputation "block"
#   selective  tiled + recomputation "selective"
# It runs build/bin/bench_train (forward, backward, clip, AdamW; no
# checkpoint, which at this size would need another 7 GiB of host memory)
# under /usr/bin/time for the peak RSS. Packing changes no memory at a
# fixed sequence length, and LoRA's plan is printed by `hug plan --lora 8`.
#
#     bench/memory_560m.sh [SEQ] [STEPS] [THREADS] [MODES]
#         defaults: 1024 1 2 "exact tiled block selective"
#
# Step times on a shared machine move with its load; peak RSS does not.
set -eu
SEQ=${1:-1024}
STEPS=${2:-1}
THREADS=${3:-2}
MODES=${4:-"exact tiled block selective"}
BIN=${BIN:-build/bin}
SHAPE="--hidden 1024 --layers 24 --heads 16 --vocab 250880 --seq $SEQ --batch 1"
OUT=$(mktemp /tmp/hug-mem560-XXXXXX)
trap 'rm -f "$OUT" "$OUT.rss"' EXIT

for mode in $MODES; do
	case $mode in
	exact) att=exact rc=none ;;
	tiled) att=tiled rc=none ;;
	block) att=tiled rc=block ;;
	selective) att=tiled rc=selective ;;
	*) echo "memory_560m.sh: unknown mode $mode" >&2; exit 2 ;;
	esac
	plan=$(HUG_ATTENTION=$att $BIN/hug plan --preset bloom-560m --device cpu --seq "$SEQ" \
		--batch 1 --recompute $rc --attention $( [ $att = exact ] && echo exact || echo flash ) 2>&1 |
		awk '/^  (parameters|gradients|optimizer state|activations|logits)/ && !/not in peak/ {
			v = $0; sub(/^ +[a-z +]+ +/, "", v); split(v, f, " ");
			n = f[1] * (f[2] == "GiB" ? 1024 : f[2] == "MiB" ? 1 : 1 / 1024); s += n;
			if ($1 == "activations") a = n }
		     END { printf "%.0f MiB, activations %.0f MiB", s, a }')
	HUG_ATTENTION=$att OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 \
		/usr/bin/time -f "%M" -o "$OUT.rss" $BIN/bench_train $SHAPE --steps "$STEPS" \
		--warmup 0 --recompute $rc >"$OUT" 2>&1 || { echo "$mode: failed"; cat "$OUT"; continue; }
	kb=$(tail -1 "$OUT.rss")
	secs=$(awk '/steps in/ { for (i = 1; i <= NF; i++) if ($i == "in") { print $(i + 1); exit } }' "$OUT")
	printf "%-10s peak RSS %6.0f MiB   plan %s (+ process overhead)   %s s for %s step(s)\n" \
		"$mode" "$(echo "$kb / 1024" | bc -l)" "$plan" "$secs" "$STEPS"
done
