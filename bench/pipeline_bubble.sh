#!/usr/bin/env bash
# pipeline_bubble.sh: the pipeline bubble of `hug train` under
# parallel.pipeline P against the 1F1B theory (P-1)/(m+P-1), for m
# micro-batches per step: the share of each stage's schedule spent blocked
# waiting for its neighbours (train/pipeline.c measures it; hug train
# prints it at the end). Data: the repository's own docs prepared with a
# test tokenizer. One process per stage on one host: only meaningful with
# a core per stage (P <= cores); oversubscribed stages also wait for the CPU.
#
#   bench/pipeline_bubble.sh [P=2] [M="2 4 8 16"] [STEPS=6]
set -euo pipefail
P=${1:-2}
MS=${2:-"2 4 8 16"}
STEPS=${3:-6}
HUG=${HUG:-build/bin/hug}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$HUG" prepare --quiet --tokenizer tests/fixtures/tokenizer/gpt2.json --out "$tmp/shards" \
	docs/*.md README.md >/dev/null
cat > "$tmp/r.json" <<JSON
{"model": {"vocab_size": 640, "hidden_size": 128, "n_layer": 8, "n_head": 4},
 "data": {"train": [{"path": "$tmp/shards/*.h5"}], "seq_len": 64},
 "optim": {"lr": 0.001}, "batch": {"micro_batch_size": 1, "global_batch_size": 2},
 "parallel": {"pipeline": $P},
 "train": {"steps": $STEPS, "log_every": 1, "out_dir": "$tmp/run"}}
JSON
echo "P $P stages, 8 blocks (hidden 128), seq 64, micro-batch 1, $STEPS steps; $(nproc) cores"
for m in $MS; do
	rm -rf "$tmp/run"
	mpirun -np "$P" --oversubscribe --mca mpi_yield_when_idle 1 "$HUG" train "$tmp/r.json" \
		--set batch.global_batch_size="$m" | grep "pipeline bubble" | sed "s/^/m $m: /"
done
