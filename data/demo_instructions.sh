#!/usr/bin/env bash
# demo_instructions.sh: a small instruction set for the LoRA walk-through
# in README.md, made from the demo corpus (data/demo_corpus.sh): for a line
# of a fortune in one of the nine languages,
#
#   {"prompt": "Which language is this? <line>\nAnswer:", "completion": " German"}
#
# `hug prepare` gives the prompt loss mask 0, so fine-tuning learns the
# answer alone. Lines are the first line of a fortune, 20 to 120 bytes,
# spread evenly over each language's file; a disjoint set is held out as
# test.jsonl.
#
#   data/demo_instructions.sh [DEMO_DIR]     (default data/demo; HUG=path/to/hug)
#
# Writes DEMO_DIR/sft/{train,test}.jsonl and the shards DEMO_DIR/sft/shards/
# (nothing here is committed: data/demo/ is git-ignored). Running it again
# reuses what is there.
set -euo pipefail
HUG=${HUG:-build/bin/hug}
DEMO=${1:-data/demo}
OUT=$DEMO/sft
PER_LANG=${PER_LANG:-1500}
TEST_PER_LANG=${TEST_PER_LANG:-20}
LANGS="en:English de:German es:Spanish it:Italian ru:Russian zh:Chinese pl:Polish cs:Czech pt:Portuguese"

if [ -f "$OUT/.done" ]; then
	echo "demo instructions: $OUT is ready"
	exit 0
fi
[ -f "$DEMO/tokenizer.json" ] || { echo "demo instructions: run make demo first (no $DEMO/tokenizer.json)" >&2; exit 1; }
mkdir -p "$OUT"
: > "$OUT/train.jsonl.tmp"
: > "$OUT/test.jsonl.tmp"

for ln in $LANGS; do
	lang=${ln%%:*} name=${ln#*:}
	# byte semantics (LC_ALL=C): lengths in bytes, UTF-8 passed through
	LC_ALL=C awk -v name="$name" -v per="$PER_LANG" -v nt="$TEST_PER_LANG" \
		-v train="$OUT/train.jsonl.tmp" -v test="$OUT/test.jsonl.tmp" '
	# JSON string body: a backslash before every backslash and quote
	function esc(s,    out, c, i) {
		out = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			out = out (c == "\\" || c == "\"" ? "\\" : "") c
		}
		return out
	}
	function emit(line, file) {
		line = esc(line)
		printf "{\"prompt\": \"Which language is this? %s\\nAnswer:\", \"completion\": \" %s\"}\n", line, name >> file
	}
	BEGIN { first = 1; n = 0 }
	/^%$/ { first = 1; next }
	first {
		first = 0
		line = $0
		sub(/\r$/, "", line)
		gsub(/\t/, " ", line)
		gsub(/^ +| +$/, "", line)
		if (length(line) >= 20 && length(line) <= 120 && line !~ /[\001-\037]/)
			cand[n++] = line
	}
	END {
		stride = int(n / (per + nt)); if (stride < 1) stride = 1
		k = 0; t = 0
		for (i = 0; i < n; i += stride) {
			if (t < nt && (k >= per || i % (stride * 10) == 0) && k > 0) { emit(cand[i], test); t++ }
			else if (k < per) { emit(cand[i], train); k++ }
		}
		printf "demo instructions: %s: %d candidate lines, %d train, %d test\n", name, n, k, t
	}' "$DEMO/text/$lang.txt"
done
mv "$OUT/train.jsonl.tmp" "$OUT/train.jsonl"
mv "$OUT/test.jsonl.tmp" "$OUT/test.jsonl"
rm -rf "$OUT/shards"
"$HUG" prepare --tokenizer "$DEMO/tokenizer.json" --out "$OUT/shards" --format jsonl \
	--source demo-instructions --quiet "$OUT/train.jsonl"
touch "$OUT/.done"
echo "demo instructions: ready in $OUT"
