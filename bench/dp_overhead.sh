#!/usr/bin/env bash
# dp_overhead.sh: the cost of data parallelism per step on this machine:
# the same per-rank work (micro batch 8, no accumulation) in one process and
# in N processes under mpirun, from `hug train`'s own step timings. Needs the
# demo corpus (make demo, or data/demo_corpus.sh).
#
#   bench/dp_overhead.sh [N=2] [STEPS=30]
set -euo pipefail
N=${1:-2}
STEPS=${2:-30}
HUG=${HUG:-build/bin/hug}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/r.json" <<JSON
{"model": {"vocab_size": 4096, "hidden_size": 128, "n_layer": 2, "n_head": 4},
 "data": {"train": [{"path": "data/demo/shards/*/*.h5"}], "seq_len": 64},
 "optim": {"lr": 0.001}, "schedule": {"warmup_steps": 2},
 "batch": {"micro_batch_size": 8, "global_batch_size": 8},
 "train": {"steps": $STEPS, "log_every": 1, "out_dir": "$tmp/run1"}}
JSON
step_time() { # median seconds per step of a run directory, skipping 5 warm-up steps
	awk -F'"elapsed_s":' '/"loss"/ { split($2, a, /[,}]/); t[n++] = a[1] }
		END { for (i = 6; i < n; i++) print t[i] - t[i - 1] }' "$1/metrics.jsonl" |
		sort -g | awk '{ d[n++] = $1 } END { print d[int(n / 2)] }'
}
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$HUG" train "$tmp/r.json" >/dev/null
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpirun -np "$N" --oversubscribe "$HUG" train "$tmp/r.json" \
	--set train.out_dir="$tmp/runN" --set batch.global_batch_size=$((8 * N)) >/dev/null
t1=$(step_time "$tmp/run1")
tn=$(step_time "$tmp/runN")
echo "1 process:  $t1 s/step (8 sequences)"
echo "$N processes: $tn s/step ($((8 * N)) sequences, 8 per rank)"
awk -v a="$t1" -v b="$tn" -v n="$N" 'BEGIN { printf "data-parallel overhead per step: %.1f ms (%.1f%%); scaling efficiency %.0f%%\n", 1000 * (b - a), 100 * (b - a) / a, 100 * a / b }'
