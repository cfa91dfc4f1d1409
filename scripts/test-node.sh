#!/usr/bin/env bash
# Runs the Node compatibility tests (the official customerio-node client
# against a running gateway) when their packages are installed.
set -euo pipefail
cd "$(dirname "$0")/node" 2>/dev/null || { echo "node tests: none"; exit 0; }
if [ ! -d node_modules ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
node --test
