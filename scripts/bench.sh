#!/usr/bin/env bash
# Benchmarks: Go micro-benchmarks, then a whole-system publish load test
# against a freshly started nagare (durability on: SQLite synchronous=FULL,
# JetStream sync writes). With PEER=nodered it also measures Node-RED 4.1.8
# (npm) doing the same job — HTTP in → append to a file → 201 — with the same
# load generator, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DUR=${DUR:-10s}
CONC=${CONC:-16}
echo "== go test -bench"
go test -run '^$' -bench . -benchtime "${BENCHTIME:-2s}" ./...
[ -x bin/nagare ] || make --no-print-directory build
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18181
echo "== nagare bench publish (whole system, $CONC workers, $DUR)"
NAGARE_ROOT_AUTH_KEY_ID=keyId-bench NAGARE_ROOT_AUTH_KEY=secret-bench-0123456789abcdef \
  bin/nagare serve --data "$work/data" --listen $addr --log-level warn >"$work/nagare.log" 2>&1 &
for _ in $(seq 100); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
NAGARE_ENDPOINT=http://$addr NAGARE_AUTH_KEY_ID=keyId-bench NAGARE_AUTH_KEY=secret-bench-0123456789abcdef \
  bin/nagare bench publish -duration "$DUR" -concurrency "$CONC"
if [ "${PEER:-}" = nodered ]; then
  echo "== Node-RED 4.1.8: http in → file (append) → http response 201, same load"
  mkdir -p "$work/nr"
  (cd "$work/nr" && npm install --silent --no-audit --no-fund node-red@4.1.8 >/dev/null)
  cat >"$work/nr/settings.js" <<JS
module.exports = { uiHost: "127.0.0.1", uiPort: 18800, httpAdminRoot: false, flowFile: "flows.json",
  credentialSecret: false, logging: { console: { level: "warn" } }, telemetry: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } } };
JS
  cat >"$work/nr/flows.json" <<JSON
[{"id":"t","type":"tab","label":"bench"},
 {"id":"in","type":"http in","z":"t","url":"/publish","method":"post","wires":[["f"]]},
 {"id":"f","type":"file","z":"t","filename":"$work/nr/data.jsonl","filenameType":"str","appendNewline":true,"createDir":true,"overwriteFile":"false","encoding":"none","wires":[["r"]]},
 {"id":"r","type":"http response","z":"t","statusCode":"201","wires":[]}]
JSON
  node "$work/nr/node_modules/node-red/red.js" --userDir "$work/nr" --settings "$work/nr/settings.js" >"$work/nr/log" 2>&1 &
  for _ in $(seq 200); do curl -fsS -XPOST -d '{}' http://127.0.0.1:18800/publish >/dev/null 2>&1 && break; sleep 0.2; done
  bin/nagare bench publish -target http://127.0.0.1:18800/publish -duration "$DUR" -concurrency "$CONC"
fi
