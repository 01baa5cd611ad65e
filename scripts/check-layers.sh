#!/bin/sh
# check-layers.sh [ROOT]: checks that every #include "..." of hug's sources
# points down (or sideways) the layers docs/architecture.md draws:
#
#   0 base  <  1 autograd  <  2 nn  <  3 io, data, optim  <  4 parallel, peft
#           <  5 train  <  6 cli
#
# nn, io, data and optim form one layer of modules built on autograd; inside
# it nn (the model) comes first, because io reads and writes nn's models and
# optim steps nn's parameter table; io, data and optim may use each other.
# A file may include its own layer or any lower one. tools/, tests/ and
# bench/ are exempt (they may use everything); any other directory holding
# C/CUDA sources must be added to layer() below.
#
# Reads the .c, .h, .cu and .cuh files under ROOT (default: the current
# directory); prints "FILE:LINE: LAYER includes HIGHER-LAYER (PATH)" for
# each violation and exits 1 if there is any, else prints nothing and
# exits 0. Run by `make test`.

# Tolerated violations, as "FILE INCLUDE" lines (the include as written):
# none. An entry here needs a comment saying why and until when.
EXCEPTIONS=''

root=${1:-.}
cd "$root" || exit 2

find . \( -path ./tools -o -path ./tests -o -path ./bench -o -path ./build \
	-o -path './build-*' -o -path ./.git \) -prune -o \
	-type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) \
	-print | sed 's|^\./||' | sort | while read -r f; do
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" /dev/null
done | awk -v exceptions="$EXCEPTIONS" '
function layer(dir) {
	if (dir == "base") return 0
	if (dir == "autograd") return 1
	if (dir == "nn") return 2
	if (dir == "io" || dir == "data" || dir == "optim") return 3
	if (dir == "parallel" || dir == "peft") return 4
	if (dir == "train") return 5
	if (dir == "cli") return 6
	return -1
}
# The first directory of path `inc` seen from the directory of `file`.
function top_of(file, inc,    n, parts, i, out, k, stack) {
	n = split(file, parts, "/")
	k = 0
	for (i = 1; i < n; i++)
		stack[++k] = parts[i]
	n = split(inc, parts, "/")
	for (i = 1; i <= n; i++) {
		if (parts[i] == "." || parts[i] == "")
			continue
		if (parts[i] == "..") {
			if (k > 0) k--
			else return "(outside the tree)"
		} else {
			stack[++k] = parts[i]
		}
	}
	return k > 1 ? stack[1] : "(top level)"
}
BEGIN {
	n = split(exceptions, ex, "\n")
	for (i = 1; i <= n; i++)
		if (ex[i] != "") allowed[ex[i]] = 1
	bad = 0
}
{
	# FILE:LINE:#include "PATH"
	file = $0; sub(/:.*/, "", file)
	rest = substr($0, length(file) + 2)
	line = rest; sub(/:.*/, "", line)
	inc = rest; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
	from = file; sub(/\/.*/, "", from)
	if (from == file) from = "(top level)"
	to = top_of(file, inc)
	lf = layer(from); lt = layer(to)
	if (lf < 0) {
		printf "%s:%s: %s is not a known layer (add it to scripts/check-layers.sh)\n", file, line, from
		bad = 1
	} else if (lt < 0 || lt > lf) {
		if ((file " " inc) in allowed)
			next
		printf "%s:%s: %s includes %s (%s)\n", file, line, from, to, inc
		bad = 1
	}
}
END { exit bad }
'
