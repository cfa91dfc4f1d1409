#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: a running PostgreSQL, Node
# packages from the lockfiles (customerio-node compatibility test, the
# OpenAPI linter), and Debian's chromium for the web chat browser test. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
	echo "test-deps: starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

for dir in scripts/node scripts/openapi-lint; do
	if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
		echo "test-deps: npm ci ($dir)"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done

if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: installing chromium (Debian package)"
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| echo "test-deps: chromium could not be installed; the browser test will skip"
	fi
fi
