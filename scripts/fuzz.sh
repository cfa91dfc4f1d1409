#!/usr/bin/env bash
# make fuzz: run every Fuzz target of the module for FUZZTIME each (default
# 10s), one after another, so a regression that a short run finds fails
# the build. Seed corpora (f.Add and testdata/fuzz/) also run in plain
# `go test`; this adds the mutation.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
targets=$(grep -rl --include='*_test.go' '^func Fuzz' gateway sdk plugins | sort)
count=0
for f in $targets; do
	dir=./$(dirname "$f")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $dir $name ($fuzztime)"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$dir" >/tmp/fuzz.$$.log 2>&1 || {
			cat /tmp/fuzz.$$.log
			echo "fuzz: $name in $dir failed; the failing input is under $dir/testdata/fuzz/$name/"
			rm -f /tmp/fuzz.$$.log
			exit 1
		}
		count=$((count + 1))
	done
done
rm -f /tmp/fuzz.$$.log
echo "fuzz: $count targets ran for $fuzztime each"
