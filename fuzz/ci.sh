#!/bin/bash
# CI for the fuzz harnesses: builds every fuzz/fuzz_*.c (fuzz/build.sh),
# then runs each for FUZZ_TIME seconds (default 30) on a copy of its
# committed seed corpus fuzz/corpus/NAME/, with fuzz/NAME.dict when there
# is one. Fails (exit 1), naming the harness, when a harness does not
# build, has no seed corpus, or reports a crash, a leak, a sanitizer
# finding, a timeout or running out of memory. The reproducer and the
# log of a failing harness stay in build-fuzz/ci/.
#
#	bash fuzz/ci.sh                  every harness
#	FUZZ_TIME=5 bash fuzz/ci.sh fuzz_smtp fuzz_mime
set -uo pipefail

cd "$(dirname "$0")/.."

OUT=${OUT:-build-fuzz}
TIME=${FUZZ_TIME:-30}
export OUT

if ! bash fuzz/build.sh "$@"; then
	echo "fuzz/ci.sh: FAIL: a harness did not build (see above)" >&2
	exit 1
fi

names=()
if [ $# -gt 0 ]; then
	names=("$@")
else
	for src in fuzz/fuzz_*.c; do
		names+=("$(basename "$src" .c)")
	done
fi

rm -rf "$OUT/ci"
mkdir -p "$OUT/ci"
failed=()
for name in "${names[@]}"; do
	seeds=fuzz/corpus/$name
	work=$OUT/ci/$name
	if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
		echo "fuzz/ci.sh: FAIL $name: no seed corpus in $seeds" >&2
		failed+=("$name")
		continue
	fi
	mkdir -p "$work/corpus"
	cp "$seeds"/* "$work/corpus/"
	dict=()
	[ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
	# -timeout: one input running for 20 s is a hang, reported as a
	# failure; the machine may be loaded, so it is generous.
	if "$OUT/$name" -max_total_time="$TIME" -timeout=20 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/" ${dict[@]+"${dict[@]}"} \
	    "$work/corpus" >"$work/log" 2>&1; then
		stats=$(grep -E '^stat::(number_of_executed_units|peak_rss)' \
		    "$work/log" | tr '\n' ' ')
		cov=$(grep -E '^#[0-9]+.*(DONE|INITED)' "$work/log" | tail -1)
		echo "fuzz/ci.sh: ok $name: $cov $stats"
		rm -rf "$work"
	else
		echo "fuzz/ci.sh: FAIL $name (log and reproducer in $work/):" >&2
		grep -E -A30 '^==[0-9]+==|runtime error|invariant|^SUMMARY' \
		    "$work/log" | head -60 >&2
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
		    "$work"/oom-* 2>/dev/null >&2
		failed+=("$name")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz/ci.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz/ci.sh: all ${#names[@]} harnesses ran ${TIME}s without a finding"
