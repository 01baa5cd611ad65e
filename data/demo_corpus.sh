#!/usr/bin/env bash
# demo_corpus.sh: builds hug's multilingual demo corpus from Debian's
# fortune packages (English, German, Spanish, Italian, Russian, Chinese,
# Polish, Czech, Brazilian Portuguese): downloads them with
# `apt-get download` (no root needed), extracts the fortune files (one
# fortune per "%"-terminated entry, each a document), trains a byte-level
# BPE tokenizer on the text and prepares one directory of HDF5 shards per
# language.
#
#   data/demo_corpus.sh [OUT_DIR]      (default data/demo; HUG=path/to/hug)
#
# Nothing it downloads or makes is committed (data/demo/ is git-ignored).
# Running it again reuses what is already there.
set -euo pipefail
HUG=${HUG:-build/bin/hug}
OUT=${1:-data/demo}
VOCAB=${VOCAB:-4096}
LANGS="en:fortunes de:fortunes-de es:fortunes-es it:fortunes-it ru:fortunes-ru zh:fortunes-zh pl:fortunes-pl cs:fortunes-cs pt:fortunes-br"

if [ -f "$OUT/.done" ]; then
	echo "demo corpus: $OUT is ready"
	exit 0
fi
[ -x "$HUG" ] || { echo "demo corpus: $HUG not found (run make first)" >&2; exit 1; }
mkdir -p "$OUT/debs" "$OUT/pkg" "$OUT/text" "$OUT/shards"

pkgs=""
for lp in $LANGS; do pkgs="$pkgs ${lp#*:}"; done
if ! ls "$OUT"/debs/*.deb >/dev/null 2>&1; then
	echo "demo corpus: downloading$pkgs"
	if ! (cd "$OUT/debs" && apt-get download $pkgs >/dev/null 2>&1); then
		# a fresh machine may have no package lists yet
		if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; fi
		(cd "$OUT/debs" && apt-get download $pkgs)
	fi
fi

for lp in $LANGS; do
	lang=${lp%%:*} pkg=${lp#*:}
	[ -s "$OUT/text/$lang.txt" ] && continue
	rm -rf "$OUT/pkg/$lang" && mkdir -p "$OUT/pkg/$lang"
	dpkg-deb -x "$OUT"/debs/"${pkg}"_*.deb "$OUT/pkg/$lang"
	# the fortune files: not the .dat indexes, not the empty .u8 links
	find "$OUT/pkg/$lang/usr/share/games" -type f ! -name '*.dat' ! -name '*.u8' -size +0 \
		-print0 | sort -z | xargs -0 cat > "$OUT/text/$lang.txt"
	echo "demo corpus: $lang: $(grep -cx '%' "$OUT/text/$lang.txt") fortunes, $(wc -c < "$OUT/text/$lang.txt") bytes"
done

if [ ! -f "$OUT/tokenizer.json" ]; then
	"$HUG" tokenizer train --vocab-size "$VOCAB" --out "$OUT/tokenizer.json" "$OUT"/text/*.txt
fi
for lp in $LANGS; do
	lang=${lp%%:*}
	[ -d "$OUT/shards/$lang" ] && ls "$OUT/shards/$lang"/*.h5 >/dev/null 2>&1 && continue
	"$HUG" prepare --tokenizer "$OUT/tokenizer.json" --out "$OUT/shards/$lang" \
		--format text --separator % --source "fortunes-$lang" --quiet "$OUT/text/$lang.txt"
done
touch "$OUT/.done"
echo "demo corpus: ready in $OUT"
