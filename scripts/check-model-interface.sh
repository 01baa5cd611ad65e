#!/bin/sh
# check-model-interface.sh: the code above nn/ reaches models only through
# the model interface (nn/model.h). Fails, listing the lines, when the
# trainer, checkpoints, peft, parallel, the CLI, io/ or the benchmarks name
# a model family's own API (bloom_*, BLOOM_*, nn/bloom*.h), or when nn/
# includes peft/. Tokenizer pre-tokenizer names ("bloom") are not models
# and are not matched. Usage: scripts/check-model-interface.sh [ROOT]
root=${1:-.}
cd "$root" || exit 2
status=0
hits=$(grep -rnE '\bbloom_[a-z_]+|\bBLOOM_[A-Z_]+|nn/bloom[a-z_]*\.h' \
	train peft parallel cli io bench --include='*.c' --include='*.h' 2>/dev/null)
if [ -n "$hits" ]; then
	echo "check-model-interface: these name a model family; use nn/model.h:" >&2
	echo "$hits" >&2
	status=1
fi
hits=$(grep -rn '#include "\.\./peft/' nn --include='*.c' --include='*.h' 2>/dev/null)
if [ -n "$hits" ]; then
	echo "check-model-interface: nn/ includes peft/ (adapters belong in nn/linear.h):" >&2
	echo "$hits" >&2
	status=1
fi
exit $status
