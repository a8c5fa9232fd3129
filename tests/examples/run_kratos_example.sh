#!/usr/bin/env bash
# Runs examples/kratos as the quickstart does and checks what a user would
# look at: three transactions succeed and the service logged the transfers.
#   run_kratos_example.sh <kratos-trans> <kratos-app> direct
#   run_kratos_example.sh <kratos-trans> <kratos-app> etcd <scripts/start-etcd.sh>
#   run_kratos_example.sh <kratos-trans> <kratos-app> server <start-etcd.sh> <dtx-server>
#     (the seed's server flow: dtx-server registers as dtmservice, the app
#     reaches it at discovery://<etcd>/dtmservice)
# In etcd mode without etcd installed it exits 77 (skipped), or fails under
# CI=true.
set -euo pipefail
service="$1"
app="$2"
mode="${3:-direct}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

service_args=(--port 0 --verbose)
app_args=(--journal "$work/dtx.db")
ready="^listening on"
if [ "$mode" != "direct" ]; then
  if ! command -v etcd >/dev/null; then
    [ -n "${CI:-}" ] && fail "etcd is not installed"
    echo "etcd is not installed: skipped"
    exit 77
  fi
  started="$(bash "$4" "$work/etcd")"
  endpoint="$(echo "$started" | sed -n 's/.*endpoint=\([^ ]*\).*/\1/p')"
  pids+=("$(echo "$started" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')")
  service_args+=(--etcd "$endpoint")
  app_args+=(--etcd "$endpoint")
  ready="^registered in etcd as /microservices/trans/"
fi
if [ "$mode" = "server" ]; then
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  cat >"$work/conf.yml" <<EOF
MicroService:
  Driver: 'dtm-driver-kratos'
  Target: 'discovery://$endpoint/dtmservice'
  EndPoint: 'grpc://localhost:$port'
GrpcPort: $port
GrpcHost: 127.0.0.1
HttpPort: 0
Store:
  Path: '$work/server.db'
# A transaction's own lines (checked below) are debug.
LogLevel: debug
EOF
  "$5" -c "$work/conf.yml" >"$work/server.out" 2>"$work/server.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 1 200); do
    grep -q "^dtx-server: registered" "$work/server.out" && break
    sleep 0.05
  done
  grep -q "^dtx-server: registered in etcd as /microservices/dtmservice/" "$work/server.out" ||
    { cat "$work/server.out" "$work/server.log"; fail "dtx-server did not register"; }
  app_args+=(--dtm "discovery://$endpoint/dtmservice")
fi
"$service" "${service_args[@]}" >"$work/trans.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q "$ready" "$work/trans.log" && break
  sleep 0.05
done
grep -q "$ready" "$work/trans.log" || { cat "$work/trans.log"; fail "service did not start"; }
address="$(sed -n 's/^listening on //p' "$work/trans.log")"
"$app" "${app_args[@]}" --trans "$address" | tee "$work/app.out"
if [ "$mode" != "direct" ]; then
  grep -q "branches at discovery://" "$work/app.out" || fail "the app did not use discovery://"
fi
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
cat "$work/trans.log"
[ "$(grep -c ' succeed$' "$work/app.out")" -eq 3 ] || fail "not every transaction succeeded"
grep -q "transfer in 30 cents to 1 .*tcc try" "$work/trans.log" || fail "no TCC try of TransIn"
grep -q "confirm transfer out 30 cents from 1 .*tcc confirm" "$work/trans.log" || fail "no confirm"
grep -q "transfer out 30 cents from 1 .*saga action" "$work/trans.log" || fail "no saga action"
grep -q "transfer in 30 cents to 1 .*msg action" "$work/trans.log" || fail "no msg action"
if [ "$mode" != "direct" ]; then
  left="$(etcdctl --endpoints="$endpoint" get --prefix --keys-only /microservices/trans/)"
  [ -z "$left" ] || fail "the service did not deregister: $left"
fi
if [ "$mode" = "server" ]; then
  grep -q "coordinator at discovery://" "$work/app.out" || fail "the app did not use dtx-server"
  kill "$server_pid"
  wait "$server_pid" || fail "dtx-server did not exit 0 on SIGTERM"
  left="$(etcdctl --endpoints="$endpoint" get --prefix --keys-only /microservices/dtmservice/)"
  [ -z "$left" ] || fail "dtx-server did not deregister: $left"
  grep -q "tcc submitted -> succeed" "$work/server.log" || fail "dtx-server did not run the TCC"
fi
echo "trans example ($mode): OK"
