#!/usr/bin/env bash
# A local scaled-out nagare for tests and trials (make cluster): three
# nagare nodes on loopback whose embedded NATS servers form one cluster
# (3 replicas), sharing a PostgreSQL database (Debian's postgresql, started
# by scripts/postgres.sh) and an Azure Blob store for files (Azurite from
# web/node_modules). Each node has its own data directory.
#   scripts/cluster.sh start     # prints the nodes' URLs and the login
#   scripts/cluster.sh stop
#   scripts/cluster.sh status
#   scripts/cluster.sh kill N [SIGNAL]   # stop node N (default SIGKILL: no goodbye)
#   scripts/cluster.sh restart N         # start node N again (stopping it first if it runs)
# Node i: HTTP 127.0.0.1:808i, MQTT 127.0.0.1:188i, NATS routes 127.0.0.1:622i.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${NAGARE_CLUSTER_DIR:-/tmp/nagare-cluster}
BIN=${NAGARE_BIN:-bin/nagare}
PASSWORD=${NAGARE_CLUSTER_PASSWORD:-nagare-cluster}
AZURITE_PORT=${NAGARE_AZURITE_PORT:-10000}
# Azurite's well-known development account (not a secret).
export AZURE_STORAGE_ACCOUNT=devstoreaccount1
export AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

stop() {
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

ROUTES=nats-route://127.0.0.1:6221,nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223
DB=nagare_cluster
# node I starts nagare node I in the background.
node() {
  local i=$1
  NAGARE_SECRET_KEY=$(cat "$DIR/secret.key") NAGARE_NATS_TOKEN=$(cat "$DIR/route.token") \
  NAGARE_DB=$CLUSTER_DSN NAGARE_ROOT_PASSWORD=$PASSWORD \
    "$BIN" serve --node-name="n$i" --listen="127.0.0.1:808$i" --data="$DIR/n$i" \
      --nats-cluster="127.0.0.1:622$i" --nats-routes="$ROUTES" --mqtt-listen="127.0.0.1:188$i" \
      --files="azblob://nagare-files?protocol=http&domain=127.0.0.1:$AZURITE_PORT&localemu=true" \
      >>"$DIR/n$i.log" 2>&1 &
  echo $! >"$DIR/n$i.pid"
}
# ready I waits until node I answers /readyz; false (with its log) if it
# does not within a minute.
ready() {
  local i=$1 t=0
  until curl -fs "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1; do
    t=$((t + 1))
    if [ $t -gt 120 ] || ! kill -0 "$(cat "$DIR/n$i.pid")" 2>/dev/null; then
      echo "cluster.sh: node n$i did not start; see $DIR/n$i.log:" >&2
      tail -20 "$DIR/n$i.log" >&2
      return 1
    fi
    sleep 0.5
  done
}
# nodearg checks a node number.
nodearg() {
  case "${1:-}" in 1|2|3) ;; *) echo "cluster.sh: name a node: 1, 2 or 3" >&2; exit 2 ;; esac
}

case "${1:-start}" in
start)
  [ -x "$BIN" ] || { echo "cluster.sh: $BIN not found: run make build" >&2; exit 1; }
  AZURITE=web/node_modules/.bin/azurite-blob
  [ -x "$AZURITE" ] || { echo "cluster.sh: Azurite not installed: cd web && npm ci" >&2; exit 1; }
  stop
  mkdir -p "$DIR"
  DSN=$(scripts/postgres.sh start)
  psql "$DSN" -qc "DROP DATABASE IF EXISTS $DB" -qc "CREATE DATABASE $DB" >/dev/null
  CLUSTER_DSN=${DSN/\/postgres\?/\/$DB?}
  rm -rf "$DIR/azurite"
  "$AZURITE" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$DIR/azurite" --skipApiVersionCheck --loose \
    >"$DIR/azurite.log" 2>&1 &
  echo $! >"$DIR/azurite.pid"
  # The nodes share the key that encrypts credentials and signs URLs, and
  # the token their NATS routes authenticate with.
  [ -s "$DIR/secret.key" ] || head -c32 /dev/urandom | base64 >"$DIR/secret.key"
  [ -s "$DIR/route.token" ] || head -c24 /dev/urandom | base64 | tr -d '/+=' >"$DIR/route.token"
  # All three at once, as a cluster starts: JetStream needs a quorum.
  for i in 1 2 3; do node "$i"; done
  for i in 1 2 3; do ready "$i" || { stop; exit 1; }; done
  echo "nagare cluster: 3 nodes, NATS cluster (3 replicas), PostgreSQL $DB, files in Azurite"
  for i in 1 2 3; do echo "  n$i  http://127.0.0.1:808$i/   mqtt 127.0.0.1:188$i   log $DIR/n$i.log"; done
  echo "Log in: root@nagare.local / $PASSWORD. Stop: make cluster-stop"
  ;;
stop)
  stop
  echo "nagare cluster stopped (data in $DIR; PostgreSQL keeps running: scripts/postgres.sh stop)"
  ;;
status)
  for i in 1 2 3; do
    if curl -fs "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1; then echo "n$i ready"; else echo "n$i down"; fi
  done
  ;;
kill)
  nodearg "${2:-}"
  pid=$(cat "$DIR/n$2.pid" 2>/dev/null) || { echo "cluster.sh: n$2 is not running" >&2; exit 1; }
  kill -s "${3:-KILL}" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$DIR/n$2.pid"
  echo "n$2 stopped (SIG${3:-KILL})"
  ;;
restart)
  nodearg "${2:-}"
  [ -s "$DIR/secret.key" ] || { echo "cluster.sh: no cluster in $DIR: scripts/cluster.sh start" >&2; exit 1; }
  if pid=$(cat "$DIR/n$2.pid" 2>/dev/null); then
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  DSN=$(scripts/postgres.sh start)
  CLUSTER_DSN=${DSN/\/postgres\?/\/$DB?}
  node "$2"
  ready "$2" || exit 1
  echo "n$2 ready again: http://127.0.0.1:808$2/"
  ;;
*) echo "usage: $0 start|stop|status|kill N [SIGNAL]|restart N" >&2; exit 2 ;;
esac
