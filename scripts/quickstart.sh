#!/usr/bin/env bash
# Sets up, builds and runs dtx's main demo: the `trans` service of dtm's Kratos
# example and an app that runs a TCC, a SAGA and a two-phase message through
# the embedded coordinator (SQLite journal, gRPC branch calls).
#
# Until the etcd registry lands (issue #6), the app reaches the service
# directly (dtm's "direct" mode: MicroService.Target empty).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target trans_service trans_app

work="$(mktemp -d)"
service_pid=""
cleanup() {
  if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo
echo "== starting the trans service"
"$BUILD_DIR/examples/trans/trans_service" --port 0 >"$work/trans.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 100); do
  grep -q "^listening on" "$work/trans.log" 2>/dev/null && break
  sleep 0.05
done
address="$(sed -n 's/^listening on //p' "$work/trans.log")"
if [ -z "$address" ]; then
  echo "quickstart: the trans service did not start:" >&2
  cat "$work/trans.log" >&2
  exit 1
fi
echo "trans service listening on $address"

echo
echo "== running the app (TCC, SAGA, MSG through the embedded coordinator)"
"$BUILD_DIR/examples/trans/trans_app" --trans "$address" --journal "$work/dtx.db"

kill "$service_pid"
wait "$service_pid" 2>/dev/null || true
service_pid=""
echo
echo "== the trans service's log"
cat "$work/trans.log"
