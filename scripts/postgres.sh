#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL server for the test suite, from
# Debian's postgresql package, on 127.0.0.1:${NAGARE_PG_PORT:-55432}.
#   scripts/postgres.sh start   # prints the DSN for NAGARE_TEST_POSTGRES
#   scripts/postgres.sh stop
set -euo pipefail
PORT=${NAGARE_PG_PORT:-55432}
DIR=${NAGARE_PG_DIR:-/tmp/nagare-test-pg}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$BIN" ]; then
  echo "postgres.sh: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2
  exit 1
fi
# initdb refuses to run as root: run the server as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
DSN="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
case "${1:-start}" in
start)
  if as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then echo "$DSN"; exit 0; fi
  rm -rf "$DIR"; mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR"
  as_pg "$BIN/initdb" -D "$DIR" -A trust -U postgres >/dev/null
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
  echo "$DSN"
  ;;
stop)
  as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
