#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each: an execution count
# (default 20000x), because a duration races the fuzz coordinator's deadline
# in Go 1.26 (golang/go#75804).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20000x}
grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r name; do
		echo "fuzz $pkg $name ($fuzztime)"
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"
	done
done
