#!/usr/bin/env bash
# make fuzz: run every Fuzz target of the module for FUZZTIME each (default
# 10s), one after another, so a regression that a short run finds fails
# the build. Seed corpora (f.Add and testdata/fuzz/) also run in plain
# `go test`; this adds the mutation.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# fuzz DIR NAME TIME: 0 passed, 1 found a failing input, 2 ran out of time
# before fuzzing began (Go ends a run whose -fuzztime passes while it still
# gathers baseline coverage with "context deadline exceeded" and no input).
fuzz() {
	if go test -run '^$' -fuzz "^$2\$" -fuzztime "$3" -fuzzminimizetime 5s "$1" >"$log" 2>&1; then
		return 0
	fi
	if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
		return 2
	fi
	return 1
}
count=0
for f in $(grep -rl --include='*_test.go' '^func Fuzz' gateway sdk plugins | sort); do
	dir=./$(dirname "$f")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $dir $name ($fuzztime)"
		rc=0
		fuzz "$dir" "$name" "$fuzztime" || rc=$?
		if [ "$rc" = 2 ]; then
			echo "fuzz: $name ran out of time gathering baseline coverage (a loaded machine); once more for twice as long"
			rc=0
			fuzz "$dir" "$name" "$(( ${fuzztime%s} * 2 ))s" || rc=$?
			if [ "$rc" = 2 ]; then
				echo "fuzz: warning: $name again ran out of time before fuzzing; its seeds ran in go test"
				rc=0
			fi
		fi
		if [ "$rc" != 0 ]; then
			cat "$log"
			echo "fuzz: $name in $dir failed; the failing input is under $dir/testdata/fuzz/$name/"
			exit 1
		fi
		count=$((count + 1))
	done
done
echo "fuzz: $count targets ran for $fuzztime each"
