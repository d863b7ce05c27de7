#!/usr/bin/env bash
# The whole test suite: lint, then every package on SQLite, then again on a
# throw-away PostgreSQL server started from Debian's package.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/deps.sh
make --no-print-directory lint
echo "== tests on SQLite (with the race detector)"
go test -race ./...
echo "== tests on PostgreSQL"
DSN=$(scripts/postgres.sh start)
NAGARE_TEST_POSTGRES="$DSN" go test -count=1 ./...
echo "== all tests passed on SQLite and PostgreSQL"
