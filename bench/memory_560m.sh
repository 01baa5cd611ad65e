#!/bin/sh
# memory_560m.sh: peak memory and step time of `hug train` at the
# bloom-560m shape (24 blocks, hidden 1024, 16 heads, vocabulary 250880) on
# the CPU, 1 x SEQ tokens per step, full fine-tuning and LoRA (r 8,
# query_key_value), with each of issue 18's memory features alone and
# together:
#   exact      the exact attention kernel (HUG_ATTENTION=exact): the
#              (B, H, T, T) probabilities kept, as before the tiled kernel
#   tiled      the tiled (flash-style) kernel, the default
#   block      tiled + train.activation_checkpointing "block"
#   selective  tiled + "selective"
#   packing    tiled + data.packing "document"
#   all        tiled + block + packing
# The model is random (model sizes in the recipe, no download); the data is
# Python's standard library sources tokenized with the byte-level fixture
# tokenizer. Prints one line per run: peak RSS (from /usr/bin/time) and the
# median step time of the steps after the first (from metrics.jsonl).
#
#     bench/memory_560m.sh [SEQ] [STEPS] [THREADS]     (defaults 1024 3 2)
#
# Step times on a shared machine move with its load; peak RSS does not.
set -eu
SEQ=${1:-1024}
STEPS=${2:-3}
THREADS=${3:-2}
HUG=${HUG:-build/bin/hug}
W=$(mktemp -d /tmp/hug-mem560-XXXXXX)
trap 'rm -rf "$W"' EXIT

python3 - "$W/corpus.txt" <<'EOF'
import glob, os, sys, sysconfig
out, n = [], 0
for p in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py"))):
    try:
        out.append(open(p, encoding="utf-8").read())
    except (OSError, UnicodeDecodeError):
        continue
    n += len(out[-1])
    if n > 3 << 20:
        break
open(sys.argv[1], "w").write("\n\n".join(out))
EOF
$HUG prepare --tokenizer tests/fixtures/tokenizer/bloom.json --out "$W/shards" \
	--format text "$W/corpus.txt" >/dev/null

recipe() { # $1 out dir, $2 extra "train" keys, $3 extra "data" keys, $4 peft
	cat <<EOF
{"model": {"vocab_size": 250880, "hidden_size": 1024, "n_layer": 24, "n_head": 16},
 "data": {"train": [{"path": "$W/shards/*.h5"}], "seq_len": $SEQ $3},
 "optim": {"lr": 0.0001},
 "schedule": {"warmup_steps": 0},
 "batch": {"micro_batch_size": 1, "global_batch_size": 1},
 $4
 "train": {"out_dir": "$1", "steps": $STEPS, "log_every": 1, "save_every": 100000,
           "eval_every": 0, "eval_batches": 1, "tensorboard": false,
           "sample_prompts": [] $2}}
EOF
}

run() { # $1 name, $2 attention env, $3 train keys, $4 data keys, $5 peft
	out="$W/$1"
	recipe "$out" "$3" "$4" "$5" >"$W/$1.json"
	env HUG_ATTENTION="$2" OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 \
		/usr/bin/time -f "%M" -o "$W/$1.rss" $HUG train "$W/$1.json" >"$W/$1.log" 2>&1 ||
		{ echo "$1: hug train failed:"; tail -5 "$W/$1.log"; return 0; }
	python3 - "$1" "$W/$1.rss" "$out/metrics.jsonl" <<'EOF'
import json, statistics, sys
name, rss, metrics = sys.argv[1:4]
kb = int(open(rss).read().split()[-1])
t = [json.loads(l) for l in open(metrics)]
times = [r["target_tokens"] / r["tokens_per_s"] for r in t
         if r.get("tokens_per_s") and "loss" in r][1:]
st = "%.1f s" % statistics.median(times) if times else "n/a"
print("%-28s peak RSS %7.0f MiB   median step %s" % (name, kb / 1024, st))
EOF
	rm -rf "$out" # a full checkpoint is 6.7 GB
}

PEFT='"peft": {"r": 8, "alpha": 16, "target_modules": ["query_key_value"]},'
for mode in full lora; do
	p=""
	[ "$mode" = lora ] && p="$PEFT"
	run "$mode-exact" exact "" "" "$p"
	run "$mode-tiled" tiled "" "" "$p"
	run "$mode-block" tiled ', "activation_checkpointing": "block"' "" "$p"
	run "$mode-selective" tiled ', "activation_checkpointing": "selective"' "" "$p"
	run "$mode-packing" tiled "" ', "packing": "document"' "$p"
	run "$mode-all" tiled ', "activation_checkpointing": "block"' ', "packing": "document"' "$p"
done
