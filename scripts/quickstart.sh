#!/usr/bin/env bash
# Sets up, builds and runs dtx's main demo: dtm's Kratos quickstart in C++.
#
#   1. a throwaway etcd on loopback (the registry),
#   2. the `trans` service (api.trans.v1.Trans), registering itself in etcd
#      as Kratos services do,
#   3. an app that runs a TCC, a SAGA and a two-phase message through the
#      embedded coordinator (SQLite journal; MicroService driver
#      dtm-driver-kratos, Target discovery://<etcd>/dtmservice), calling the
#      branches at discovery://<etcd>/trans/api.trans.v1.Trans/...
#
# then shows the service's log and each transaction's final status, lists the
# journal with dtxctl (the operator's command line), and stops everything it
# started.
#
#   scripts/quickstart.sh            # with etcd, as the seed's walkthrough
#   scripts/quickstart.sh --direct   # direct mode (MicroService.Target empty)
#   scripts/quickstart.sh --server   # the seed's server flow: dtx-server with
#                                    # the seed's MicroService block registers
#                                    # as dtmservice; the app finds it at
#                                    # discovery://<etcd>/dtmservice
set -euo pipefail
cd "$(dirname "$0")/.."

mode="etcd"
case "${1:-}" in
  "") ;;
  --direct) mode="direct" ;;
  --server) mode="server" ;;
  *) echo "usage: $0 [--direct | --server]" >&2; exit 2 ;;
esac

bash scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target kratos-trans kratos-app dtx-server dtxctl

work="$(mktemp -d)"
service_pid=""
server_pid=""
etcd_pid=""
cleanup() {
  for p in $service_pid $server_pid $etcd_pid; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

service_args=(--port 0)
app_args=(--journal "$work/dtx.db")
if [ "$mode" != "direct" ]; then
  echo
  echo "== starting etcd"
  started="$(bash scripts/start-etcd.sh "$work/etcd")"
  etcd_endpoint="$(echo "$started" | sed -n 's/.*endpoint=\([^ ]*\).*/\1/p')"
  etcd_pid="$(echo "$started" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')"
  echo "etcd listening on $etcd_endpoint"
  service_args+=(--etcd "$etcd_endpoint")
  app_args+=(--etcd "$etcd_endpoint")
fi

if [ "$mode" = "server" ]; then
  # The seed's coordinator config, on a free port (36790 when it is free).
  port=36790
  if ! python3 -c "import socket; socket.socket().bind(('0.0.0.0', $port))" 2>/dev/null; then
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  fi
  cat >"$work/conf.yml" <<EOF
MicroService:
  Driver: 'dtm-driver-kratos'
  Target: 'discovery://$etcd_endpoint/dtmservice'
  EndPoint: 'grpc://localhost:$port'
GrpcPort: $port
HttpPort: 0
Store:
  Driver: sqlite
  Path: '$work/dtx-server.db'
EOF
  echo
  echo "== starting dtx-server with"
  cat "$work/conf.yml"
  "$BUILD_DIR/server/dtx-server" -c "$work/conf.yml" >"$work/server.out" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 200); do
    grep -q "^dtx-server: registered" "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q "^dtx-server: registered" "$work/server.out"; then
    echo "quickstart: dtx-server did not start:" >&2
    cat "$work/server.out" "$work/server.log" >&2
    exit 1
  fi
  cat "$work/server.out"
  app_args+=(--dtm "discovery://$etcd_endpoint/dtmservice")
fi

echo
echo "== starting the trans service"
"$BUILD_DIR/examples/kratos/kratos-trans" "${service_args[@]}" >"$work/trans.log" 2>&1 &
service_pid=$!
ready="^listening on"
[ "$mode" != "direct" ] && ready="^registered in etcd"
for _ in $(seq 1 200); do
  grep -q "$ready" "$work/trans.log" 2>/dev/null && break
  kill -0 "$service_pid" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q "$ready" "$work/trans.log"; then
  echo "quickstart: the trans service did not start:" >&2
  cat "$work/trans.log" >&2
  exit 1
fi
address="$(sed -n 's/^listening on //p' "$work/trans.log")"
app_args+=(--trans "$address")
grep "^registered" "$work/trans.log" || echo "trans service listening on $address (direct)"

echo
if [ "$mode" = "server" ]; then
  echo "== running the app (TCC, SAGA, MSG through dtx-server, found in etcd)"
else
  echo "== running the app (TCC, SAGA, MSG through the embedded coordinator)"
fi
"$BUILD_DIR/examples/kratos/kratos-app" "${app_args[@]}"

kill "$service_pid"
wait "$service_pid" 2>/dev/null || true
service_pid=""
echo
echo "== the trans service's log"
cat "$work/trans.log"
if [ -n "$server_pid" ]; then
  kill "$server_pid"
  wait "$server_pid" || { echo "quickstart: dtx-server did not stop cleanly" >&2; exit 1; }
  server_pid=""
  echo
  echo "== dtx-server's log"
  cat "$work/server.log"
fi

# The transactions as an operator sees them: dtxctl on the journal (the
# embedded coordinator's, or dtx-server's in --server mode). It reads only,
# and is safe beside a running coordinator.
journal="$work/dtx.db"
[ "$mode" = "server" ] && journal="$work/dtx-server.db"
echo
echo "== the journal, with dtxctl (removed when this script exits)"
echo "\$ $BUILD_DIR/tools/dtxctl/dtxctl list --journal $journal"
"$BUILD_DIR/tools/dtxctl/dtxctl" list --journal "$journal"
