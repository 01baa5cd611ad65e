#!/usr/bin/env bash
# bench/prepare.sh: tokenizer encode and `hug prepare` throughput (MB/s of
# input text) on the multilingual demo corpus (9 languages of Debian
# fortunes, about 17.5 MB, with its 8192-token byte-level BPE tokenizer):
#
#   bench/prepare.sh [DEMO_DIR]        (default data/demo; made if missing)
#
# Prints encode MB/s on one thread (with and without the word cache) and
# prepare MB/s for 1, 2, 4, ... threads over the corpus as JSONL (one
# fortune per line, about 19 MB with the JSON quoting), then the summary of
# the `hug prepare` command itself on the same files. MB are of input bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-data/demo}
make -s build/bin/hug build/bin/bench_prepare
[ -f "$DEMO/.done" ] || data/demo_corpus.sh "$DEMO"
build/bin/bench_prepare --tokenizer "$DEMO/tokenizer.json" "$DEMO"/text/*.jsonl
out=$(mktemp -d /tmp/hug-bench-cli-XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "hug prepare (threads: $(nproc)) $DEMO/text/*.jsonl:"
build/bin/hug prepare --quiet --tokenizer "$DEMO/tokenizer.json" --out "$out/shards" \
	"$DEMO"/text/*.jsonl 2>/dev/null
