#!/usr/bin/env bash
# The whole test suite: lint, then every package on SQLite, then again on a
# throw-away PostgreSQL server started from Debian's package, then the
# console's browser tests (headless Chromium) against the built binary on
# both databases. Screenshots land in test-output/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/deps.sh
make --no-print-directory build lint
echo "== tests on SQLite (with the race detector)"
go test -race ./...
echo "== tests on PostgreSQL"
DSN=$(scripts/postgres.sh start)
NAGARE_TEST_POSTGRES="$DSN" go test -count=1 ./...
echo "== browser tests (SQLite)"
(cd web && npm run --silent e2e)
echo "== browser tests (PostgreSQL)"
(cd web && NAGARE_TEST_POSTGRES="$DSN" npm run --silent e2e)
echo "== all tests passed on SQLite and PostgreSQL"
