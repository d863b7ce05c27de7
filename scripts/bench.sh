#!/usr/bin/env bash
# Benchmarks: Go micro-benchmarks, then whole-system load tests against a
# freshly started nagare (durability on: SQLite synchronous=FULL, JetStream
# sync writes), each on a new data directory:
#
#   nagare bench publish   device publish → 201 once durably stored
#   nagare bench flow      device publish → 3-action flow → webhook to a sink
#                          run by the bench itself: accepted/s, delivered/s,
#                          end-to-end latency, lost and duplicate events. Run
#                          twice: as fast as it goes (throughput), then at a
#                          fixed FLOW_RATE below saturation (latency — at
#                          saturation latency is only queueing time). The
#                          first run accepts far more than the flow delivers
#                          and waits for all of it: with DUR=10s on 2 cores
#                          that is a few minutes of draining.
#
# With PEER=nodered it also measures Node-RED 4.1.8 (npm) doing the same jobs
# with the same load generator and prints the figures side by side:
#   publish: http in → file (append) → http response 201
#   flow:    http in → http response 201, and in parallel
#            change (JSONata: the same enrich) → switch (celsius > -100)
#            → http request POST to the sink.
# Not like for like on durability: nagare's flow engine records every step
# of every run in SQL (SQLite synchronous=FULL by default) and in JetStream,
# so a run survives a crash and is retried; Node-RED keeps nothing — an event
# in flight when it stops is gone, and there is no run history.
#
# Env: DUR (10s), CONC (16 workers), FLOW_RATE (100 publishes/s for the
# latency run), GOBENCH=0 skips go test -bench, BENCHTIME (2s), VISION=0,
# PANEL=0, MQTT=0, SHADOW=0 and CLUSTER=0 skip the vision, dashboard-query, MQTT, shadow and scale-out sections.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DUR=${DUR:-10s}
CONC=${CONC:-16}
FLOW_RATE=${FLOW_RATE:-100}
if [ "${GOBENCH:-1}" != 0 ]; then
  echo "== go test -bench"
  go test -run '^$' -bench . -benchtime "${BENCHTIME:-2s}" ./...
fi
make --no-print-directory build # always: a stale bin/nagare may lack bench flow
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
addr=127.0.0.1:18181
sink=127.0.0.1:18899 # the bench's webhook sink when Node-RED must be told where it is
export NAGARE_ENDPOINT=http://$addr NAGARE_AUTH_KEY_ID=keyId-bench NAGARE_AUTH_KEY=secret-bench-0123456789abcdef
nagare_pid=
# start_nagare NAME: a fresh server on a new data directory.
start_nagare() {
  stop_nagare
  NAGARE_ROOT_AUTH_KEY_ID=$NAGARE_AUTH_KEY_ID NAGARE_ROOT_AUTH_KEY=$NAGARE_AUTH_KEY \
    bin/nagare serve --data "$work/data-$1" --listen $addr --log-level warn >>"$work/nagare.log" 2>&1 &
  nagare_pid=$!
  for _ in $(seq 100); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "nagare did not start:"; cat "$work/nagare.log"; exit 1
}
stop_nagare() {
  if [ -n "$nagare_pid" ]; then kill "$nagare_pid"; wait "$nagare_pid" 2>/dev/null || true; nagare_pid=; fi
}
# run OUT CMD…: run a bench, show its output and keep it for the summary.
run() {
  local out=$work/$1; shift
  "$@" | tee "$out" || echo "(exit status $?)"
}

echo "== nagare bench publish (whole system, $CONC workers, $DUR)"
start_nagare publish
run nagare-publish bin/nagare bench publish -duration "$DUR" -concurrency "$CONC"
echo "== nagare bench flow (device → enrich → filter → webhook, $CONC workers, $DUR, as fast as it goes)"
start_nagare flow
run nagare-flow bin/nagare bench flow -duration "$DUR" -concurrency "$CONC"
echo "== nagare bench flow at $FLOW_RATE publishes/s (latency below saturation)"
start_nagare flow-rate
run nagare-flow-rate bin/nagare bench flow -duration "$DUR" -concurrency "$CONC" -rate "$FLOW_RATE"
stop_nagare

if [ "${PEER:-}" = nodered ]; then
  echo "== Node-RED 4.1.8: same jobs, same load"
  mkdir -p "$work/nr"
  (cd "$work/nr" && npm install --silent --no-audit --no-fund node-red@4.1.8 >/dev/null)
  cat >"$work/nr/settings.js" <<JS
module.exports = { uiHost: "127.0.0.1", uiPort: 18800, httpAdminRoot: false, flowFile: "flows.json",
  credentialSecret: false, logging: { console: { level: "warn" } }, telemetry: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } } };
JS
  # /publish: append to a file, then answer 201 (nagare answers once the
  # publish is stored).
  # /flow: answer 201 at once and run the flow alongside. nagare answers a
  # publish once it is durably stored, and its flow runs asynchronously
  # after that; answering only when Node-RED's flow is done would instead
  # measure a synchronous pipeline and throttle the load generator, so the
  # parallel answer is the fairer match. Keep-alive is on for the outgoing
  # request, as nagare's webhook action keeps connections.
  cat >"$work/nr/flows.json" <<JSON
[{"id":"t","type":"tab","label":"bench"},
 {"id":"in","type":"http in","z":"t","url":"/publish","method":"post","wires":[["f"]]},
 {"id":"f","type":"file","z":"t","filename":"$work/nr/data.jsonl","filenameType":"str","appendNewline":true,"createDir":true,"overwriteFile":"false","encoding":"none","wires":[["r"]]},
 {"id":"r","type":"http response","z":"t","statusCode":"201","wires":[]},
 {"id":"fin","type":"http in","z":"t","url":"/flow","method":"post","wires":[["fres","enrich"]]},
 {"id":"fres","type":"http response","z":"t","statusCode":"201","wires":[]},
 {"id":"enrich","type":"change","z":"t","rules":[{"t":"set","p":"payload","pt":"msg","to":"{\"sent\": payload.sent, \"i\": payload.i, \"celsius\": payload.t, \"fahrenheit\": payload.t * 9 / 5 + 32}","tot":"jsonata"}],"wires":[["filter"]]},
 {"id":"filter","type":"switch","z":"t","property":"payload.celsius","propertyType":"msg","rules":[{"t":"gt","v":"-100","vt":"num"}],"checkall":"true","repair":false,"outputs":1,"wires":[["deliver"]]},
 {"id":"deliver","type":"http request","z":"t","method":"POST","ret":"txt","paytoqs":"ignore","url":"http://$sink/sink","persist":true,"wires":[[]]}]
JSON
  node "$work/nr/node_modules/node-red/red.js" --userDir "$work/nr" --settings "$work/nr/settings.js" >"$work/nr/log" 2>&1 &
  for _ in $(seq 200); do curl -fsS -XPOST -d '{}' http://127.0.0.1:18800/publish >/dev/null 2>&1 && break; sleep 0.2; done
  echo "== Node-RED publish: http in → file (append) → http response 201"
  run nodered-publish bin/nagare bench publish -target http://127.0.0.1:18800/publish -duration "$DUR" -concurrency "$CONC"
  echo "== Node-RED flow: http in → 201; change → switch → http request to the sink, as fast as it goes"
  run nodered-flow bin/nagare bench flow -target http://127.0.0.1:18800/flow -sink-listen $sink -duration "$DUR" -concurrency "$CONC"
  echo "== Node-RED flow at $FLOW_RATE publishes/s"
  run nodered-flow-rate bin/nagare bench flow -target http://127.0.0.1:18800/flow -sink-listen $sink -duration "$DUR" -concurrency "$CONC" -rate "$FLOW_RATE"
fi

# The summary: one row per run, the figures the benches printed.
row() {
  local f=$work/$2
  [ -f "$f" ] || return 0
  local acc del lat lost
  acc=$(sed -n 's/^throughput: \([0-9]*\) publishes\/s/\1/p' "$f")
  del=$(sed -n 's/^flow throughput: \([0-9]*\) deliveries\/s/\1/p' "$f")
  lat=$(sed -n -e 's/^end-to-end latency: //p' -e 's/^latency: //p' "$f" | tail -1)
  lost=$(sed -n 's/^lost: \([0-9]*\)  duplicates: \([0-9]*\)/\1 \/ \2/p' "$f")
  printf '%-28s %11s %12s %12s %12s %10s\n' "$1" "${acc:--}" "${del:--}" "$(awk '{print $2}' <<<"$lat")" "$(awk '{print $6}' <<<"$lat")" "${lost:--}"
}
echo
echo "== summary ($CONC workers, $DUR; latency: publish → 201 for publish, publish → sink for flow)"
printf '%-28s %11s %12s %12s %12s %10s\n' "" "accepted/s" "delivered/s" "p50" "p99" "lost/dup"
row "nagare publish" nagare-publish
row "Node-RED publish" nodered-publish
row "nagare flow" nagare-flow
row "Node-RED flow" nodered-flow
row "nagare flow @${FLOW_RATE}/s" nagare-flow-rate
row "Node-RED flow @${FLOW_RATE}/s" nodered-flow-rate

# Vision: the same three models (BlazeFace, emotion, NanoDet) in nagare's
# Go executor and in TensorFlow.js 4.22.0 with the wasm backend (npm, Node),
# on the same inputs; then the whole offline pipelines on a 1080p frame.
# VISION=0 skips it.
if [ "${VISION:-1}" != 0 ]; then
  echo
  echo "== vision: model latency, Go executor (-cpu 1,2)"
  go test ./internal/vision/tfjs -run '^$' -bench . -benchtime "${BENCHTIME:-2s}" -cpu 1,2 | grep -E '^Benchmark'
  models=$(go test ./internal/vision/tfjs/tfjstest -run TestPrintModelsDir -v 2>/dev/null | sed -n 's/.*models: //p' | head -1)
  if [ -n "$models" ] && command -v npm >/dev/null; then
    echo "== vision: the same models in tfjs-wasm (Node $(node --version))"
    mkdir -p "$work/tfjs"
    cp internal/vision/tfjs/testdata/golden/{package.json,package-lock.json,*.js} "$work/tfjs/"
    (cd "$work/tfjs" && npm ci --silent --no-audit --no-fund >/dev/null && node bench.js "$models" && node bench.js "$models" 1)
  fi
  echo "== vision: people and faces on a 1080p frame (whole pipeline: decode, letterbox, models, NMS)"
  go test ./internal/vision/local -run '^$' -bench '1080p' -benchtime "${BENCHTIME:-2s}" | grep -E '^Benchmark'
fi

# Dashboard panel query: 1,000,000 stored points of one key rendered as a
# 1,000-bucket series (per-minute rollups), on SQLite and on PostgreSQL;
# "query" is the store's work, "http" what a panel waits for (GET …/series
# on loopback, authenticated, JSON both ways). PANEL=0 skips it.
if [ "${PANEL:-1}" != 0 ]; then
  echo
  echo "== dashboard panel query: 1M points → 1,000 buckets (SQLite)"
  go test ./internal/harvest -run '^$' -bench 'Series1M' -benchtime "${BENCHTIME:-2s}" | grep -E '^Benchmark'
  echo "== dashboard panel query: 1M points → 1,000 buckets (PostgreSQL $(ls /usr/lib/postgresql | tail -1))"
  NAGARE_TEST_POSTGRES="$(scripts/postgres.sh start)" go test ./internal/harvest -run '^$' -bench 'Series1M' -benchtime "${BENCHTIME:-2s}" | grep -E '^Benchmark'
fi

# ---------------------------------------------------------------------------
# MQTT (MQTT=0 skips), with `nagare bench mqtt` as the client (paho, the same
# code for every broker), MQTT_PUBS publishers (default 16), $DUR each:
#   harvest  devices publish JSON on devices/<id>/data to nagare's MQTT
#            listener at QoS 0 and 1: publishes/s taken by the broker, then
#            how fast and how completely nagare stored them in Harvest Data
#            (SQLite, synchronous=FULL; the DEVICE_MQTT stream holds the
#            backlog, so publishing outruns storing).
#   pubsub   publishers → one subscriber, the plain broker job, on nagare
#            (embedded NATS; QoS 1 is stored in JetStream on disk) and on
#            mosquitto 2 (Debian package, installed if missing; in memory,
#            persistence off; max_queued_messages raised so an overloaded
#            subscriber is not dropped silently, max_inflight_messages 1024
#            like NATS's MQTT default): as fast as it goes, then at
#            MQTT_RATE msgs/s (latency below saturation).
if [ "${MQTT:-1}" != 0 ]; then
  MQTT_PUBS=${MQTT_PUBS:-16}
  MQTT_RATE=${MQTT_RATE:-2000}
  mqtt_port=18883
  mosq_port=18884
  echo
  export NAGARE_MQTT_LISTEN=127.0.0.1:$mqtt_port
  for qos in 0 1; do
    echo "== MQTT device publish → Harvest Data, QoS $qos ($MQTT_PUBS devices, $DUR)"
    start_nagare mqtt-harvest-$qos
    run mqtt-harvest-$qos bin/nagare bench mqtt -mode harvest -broker tcp://127.0.0.1:$mqtt_port -qos $qos -publishers "$MQTT_PUBS" -duration "$DUR"
  done
  start_nagare mqtt-pubsub
  for qos in 0 1; do
    echo "== MQTT pub → sub on nagare, QoS $qos, as fast as it goes"
    run mqtt-nagare-$qos bin/nagare bench mqtt -mode pubsub -broker tcp://127.0.0.1:$mqtt_port -qos $qos -publishers "$MQTT_PUBS" -duration "$DUR"
    echo "== MQTT pub → sub on nagare, QoS $qos, at $MQTT_RATE/s"
    run mqtt-nagare-$qos-rate bin/nagare bench mqtt -mode pubsub -broker tcp://127.0.0.1:$mqtt_port -qos $qos -publishers "$MQTT_PUBS" -duration "$DUR" -rate "$MQTT_RATE"
  done
  stop_nagare
  unset NAGARE_MQTT_LISTEN
  if ! command -v mosquitto >/dev/null; then
    sudo_=; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get install -y mosquitto >/dev/null || { $sudo_ apt-get update >/dev/null && $sudo_ apt-get install -y mosquitto >/dev/null; }
  fi
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 1024\n' \
    "$mosq_port" >"$work/mosquitto.conf"
  mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  mosq_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$mosq_port) 2>/dev/null && break; sleep 0.1; done
  mosq_version=$({ mosquitto -h 2>/dev/null || true; } | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p')
  for qos in 0 1; do
    echo "== MQTT pub → sub on mosquitto $mosq_version, QoS $qos, as fast as it goes"
    run mqtt-mosquitto-$qos bin/nagare bench mqtt -mode pubsub -anonymous -broker tcp://127.0.0.1:$mosq_port -qos $qos -publishers "$MQTT_PUBS" -duration "$DUR"
    echo "== MQTT pub → sub on mosquitto $mosq_version, QoS $qos, at $MQTT_RATE/s"
    run mqtt-mosquitto-$qos-rate bin/nagare bench mqtt -mode pubsub -anonymous -broker tcp://127.0.0.1:$mosq_port -qos $qos -publishers "$MQTT_PUBS" -duration "$DUR" -rate "$MQTT_RATE"
  done
  kill "$mosq_pid" 2>/dev/null; wait "$mosq_pid" 2>/dev/null || true

  mqtt_row() {
    local f=$work/$2
    [ -f "$f" ] || return 0
    local pub rcv lost lat
    pub=$(sed -n 's/^publish throughput: \([0-9]*\) publishes\/s/\1/p' "$f")
    rcv=$(sed -n -e 's/^receive throughput: \([0-9]*\) messages\/s/\1/p' -e 's/^stored throughput: \([0-9]*\) entries\/s/\1/p' "$f")
    lost=$(sed -n 's/^lost: \([0-9]*\)/\1/p' "$f")
    lat=$(sed -n 's/^latency: //p' "$f")
    printf '%-36s %10s %12s %8s %10s %10s\n' "$1" "${pub:--}" "${rcv:--}" "${lost:--}" "$(awk '{print $2}' <<<"$lat")" "$(awk '{print $6}' <<<"$lat")"
  }
  echo
  echo "== MQTT summary ($MQTT_PUBS publishers, $DUR; received/s is stored/s for Harvest rows)"
  printf '%-36s %10s %12s %8s %10s %10s\n' "" "publish/s" "received/s" "lost" "p50" "p99"
  for qos in 0 1; do
    mqtt_row "nagare devices → Harvest, QoS $qos" mqtt-harvest-$qos
    mqtt_row "nagare pub→sub, QoS $qos" mqtt-nagare-$qos
    mqtt_row "mosquitto pub→sub, QoS $qos" mqtt-mosquitto-$qos
    mqtt_row "nagare pub→sub, QoS $qos @${MQTT_RATE}/s" mqtt-nagare-$qos-rate
    mqtt_row "mosquitto pub→sub, QoS $qos @${MQTT_RATE}/s" mqtt-mosquitto-$qos-rate
  done
fi

# Device shadow updates per second: NATS requests on
# $aws.things.<thing>.shadow.update answered after the KV compare-and-set and
# the accepted/delta/documents publishes; one thing per worker, and all
# workers on one thing (CAS retries). SHADOW=0 skips it.
if [ "${SHADOW:-1}" != 0 ]; then
  echo
  echo "== device shadow updates (SQLite + embedded NATS)"
  go test ./internal/shadow -run '^$' -bench 'ShadowUpdate' -benchtime "${BENCHTIME:-2s}" | grep -E '^Benchmark'
fi

# ---------------------------------------------------------------------------
# Scale-out (CLUSTER=0 skips): device-publish throughput of one node and of
# three (scripts/cluster.sh: embedded NATS cluster with 3 replicas,
# PostgreSQL, Azurite), the load spread over the nodes, $CONC workers in
# all; then the publish gap when a node is killed -9 (publishes to a
# surviving node, every 20 ms). Two cores cap all of it: the point is that
# three nodes do not collapse, not that they scale here.
if [ "${CLUSTER:-1}" != 0 ]; then
  echo
  stop_nagare
  pg=$(scripts/postgres.sh start)
  psql "$pg" -qc "DROP DATABASE IF EXISTS nagare_bench1" -qc "CREATE DATABASE nagare_bench1" >/dev/null
  echo "== device publish, 1 node (PostgreSQL, $CONC workers, $DUR)"
  NAGARE_ROOT_AUTH_KEY_ID=$NAGARE_AUTH_KEY_ID NAGARE_ROOT_AUTH_KEY=$NAGARE_AUTH_KEY \
    bin/nagare serve --data "$work/data-one" --listen $addr --log-level warn --db "${pg/\/postgres\?/\/nagare_bench1?}" >>"$work/nagare.log" 2>&1 &
  nagare_pid=$!
  for _ in $(seq 100); do curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  run cluster-1 bin/nagare bench publish -duration "$DUR" -concurrency "$CONC"
  stop_nagare
  echo "== device publish, 3 nodes (embedded NATS cluster, 3 replicas, PostgreSQL, Azurite; $CONC workers over the nodes, $DUR)"
  export NAGARE_CLUSTER_DIR=$work/cluster
  NAGARE_ROOT_AUTH_KEY_ID=$NAGARE_AUTH_KEY_ID NAGARE_ROOT_AUTH_KEY=$NAGARE_AUTH_KEY scripts/cluster.sh start >/dev/null
  per=$(( (CONC + 2) / 3 ))
  pids=()
  for i in 1 2 3; do
    NAGARE_ENDPOINT=http://127.0.0.1:808$i bin/nagare bench publish -duration "$DUR" -concurrency "$per" >"$work/cluster-3-$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  total=0
  for i in 1 2 3; do
    r=$(sed -n 's/^throughput: \([0-9]*\) publishes\/s/\1/p' "$work/cluster-3-$i")
    echo "node n$i: ${r:-?} publishes/s ($(sed -n 's/^latency: //p' "$work/cluster-3-$i"))"
    total=$((total + ${r:-0}))
  done
  echo "3 nodes: $total publishes/s in all"
  # Failover: kill n3, publish to n1 every 20 ms, report the longest gap.
  dev=$(NAGARE_ENDPOINT=http://127.0.0.1:8081 bin/nagare api -d '{"configuration":{"SoracomHarvest":{"enabled":true}}}' POST /v1/groups | sed -n 's/.*"groupId": *"\([^"]*\)".*/\1/p')
  d=$(NAGARE_ENDPOINT=http://127.0.0.1:8081 bin/nagare api -d '{}' POST /v1/devices)
  id=$(sed -n 's/.*"device_id": *"\([^"]*\)".*/\1/p' <<<"$d"); sec=$(sed -n 's/.*"deviceSecret": *"\([^"]*\)".*/\1/p' <<<"$d")
  NAGARE_ENDPOINT=http://127.0.0.1:8081 bin/nagare api -d "{\"groupId\":\"$dev\"}" POST "/v1/devices/$id/set_group" >/dev/null
  kill -9 "$(cat "$work/cluster/n3.pid")"
  t0=$(date +%s%N); last=$t0; gap=0; okn=0; failn=0
  while [ $(( $(date +%s%N) - t0 )) -lt 20000000000 ]; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST "http://127.0.0.1:8081/v1/devices/$id/publish" \
         -H 'Content-Type: application/json' -H "X-Device-Secret: $sec" -d '{"x":1}')" = 201 ]; then
      now=$(date +%s%N); [ $((now - last)) -gt $gap ] && gap=$((now - last)); last=$now; okn=$((okn + 1))
    else
      failn=$((failn + 1))
    fi
    sleep 0.02
  done
  echo "node n3 killed -9: publishes to n1 kept going; longest gap between accepted publishes $((gap / 1000000)) ms ($okn accepted, $failn refused in 20 s)"
  echo "camera failover (lease 15 s, renewed every 5 s): see TestClusterSurvivesNodeFailures in the PostgreSQL pass of make test"
  scripts/cluster.sh stop >/dev/null
fi
