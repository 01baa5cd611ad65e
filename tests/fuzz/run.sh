#!/usr/bin/env bash
# run.sh: runs each libFuzzer harness of tests/fuzz/ for SECONDS seconds
# (`make fuzz FUZZ_SECONDS=N` calls it after building them). Each harness
# starts from a working corpus in BUILD/corpus/<target>/, seeded from
# tests/fixtures and tests/fuzz/corpus/<target>/ (both left untouched);
# findings (crash, leak, UB, timeout, out-of-memory) land in
# BUILD/artifacts/<target>/ and fail the run. Prints execs, cov and ft per
# harness at the end.
#   usage: tests/fuzz/run.sh BUILD SECONDS TARGET...
set -uo pipefail
build=$1 seconds=$2
shift 2
dict=tests/fuzz/json.dict
declare -A seeds=(
	[safetensors]="tests/fixtures/*.safetensors tests/fixtures/peft/*/adapter_model.safetensors"
	[recipe]="recipes/*.json"
	[tokenizer]="tests/fixtures/tokenizer/*.json tests/fixtures/tokenizer/pipelines/[a-z]*.json"
	[config]="tests/fixtures/*-tiny*/*config*.json"
	[adapter_config]="tests/fixtures/peft/*/adapter_config.json"
	[shard]="tests/fixtures/*.h5"
	[metrics]=""
)
declare -A uses_dict=([recipe]=1 [tokenizer]=1 [config]=1 [adapter_config]=1 [metrics]=1)
failed=() summary=()
for t in "$@"; do
	corpus=$build/corpus/$t art=$build/artifacts/$t/ log=$build/logs/$t.log
	mkdir -p "$corpus" "$art" "$(dirname "$log")"
	# shellcheck disable=SC2086
	cp -n ${seeds[$t]} "$corpus"/ 2>/dev/null
	[ -d tests/fuzz/corpus/$t ] && cp -n tests/fuzz/corpus/$t/* "$corpus"/ 2>/dev/null
	opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
	      -max_len=65536 -print_final_stats=1 -artifact_prefix="$art")
	[ -n "${uses_dict[$t]:-}" ] && opts+=(-dict="$dict")
	echo "fuzz: $t for ${seconds}s (log $log)"
	before=$(ls "$art" | grep -cv '^slow-unit-')
	if ! "$build/bin/fuzz_$t" "${opts[@]}" "$corpus" >"$log" 2>&1; then
		failed+=("$t")
		grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5
		ls "$art"
	elif [ "$(ls "$art" | grep -cv '^slow-unit-')" -gt "$before" ]; then
		# a finding recorded without stopping the run (e.g. by a child
		# process) is a finding too
		failed+=("$t")
		echo "fuzz: $t: new artifacts in $art"
		ls "$art"
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+')
	summary+=("$(printf '%-15s execs %-9s %s' "$t" "${execs:-?}" "${cov:-?}")")
done
printf 'fuzz: %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)"
	exit 1
fi
echo "fuzz: clean (${#@} harnesses, ${seconds}s each)"
