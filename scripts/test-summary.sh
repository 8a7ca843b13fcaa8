#!/usr/bin/env bash
# Prints what each integration test file's pytest run reported (the lines
# tests/integration/conftest.py writes to BUILD/test-summary/), the totals,
# and every test file that left no line (it did not run or did not finish).
#	bash scripts/test-summary.sh build
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: test-summary.sh BUILD_DIR}/test-summary

echo "---- integration tests, per file (pytest) ----"
missing=0
for test in tests/integration/test_*.py; do
	name=$(basename "$test" .py)
	if [ -f "$dir/$name.txt" ]; then
		cat "$dir/$name.txt"
	else
		echo "$name.py NO SUMMARY (did not run or did not finish)"
		missing=$((missing + 1))
	fi
done
cat "$dir"/*.txt 2>/dev/null | awk -v missing="$missing" '
	/ passed=/ {
		for (i = 2; i <= NF; i++) {
			split($i, kv, "=")
			total[kv[1]] += kv[2]
		}
		files++
	}
	END {
		printf "total: %d files, passed=%d skipped=%d failed=%d " \
		    "errors=%d seconds=%d, %d files without a summary\n", files,
		    total["passed"], total["skipped"], total["failed"],
		    total["errors"], total["seconds"], missing
	}'
