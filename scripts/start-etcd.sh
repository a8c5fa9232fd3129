#!/usr/bin/env bash
# Starts a throwaway etcd (Debian's etcd-server) on free loopback ports, with
# its data in DIR, and prints "endpoint=127.0.0.1:<port> pid=<pid>" once it
# answers. Stop it with: kill <pid>.
#
#   scripts/start-etcd.sh DIR
set -euo pipefail
dir="${1:?usage: start-etcd.sh DIR}"
mkdir -p "$dir"
command -v etcd >/dev/null || { echo "start-etcd: etcd is not installed (scripts/setup.sh)" >&2; exit 1; }

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "start-etcd: no free port" >&2
  exit 1
}
# A port free when probed may be taken by another process before etcd binds
# it (tests run in parallel): then it starts again on other ports.
for attempt in 1 2 3 4 5; do
  client=$(free_port)
  peer=$(free_port)
  while [ "$peer" = "$client" ]; do peer=$(free_port); done
  [ "$attempt" = 1 ] || rm -rf "$dir/data"  # what the failed start left
  etcd --name dtx-demo --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "dtx-demo=http://127.0.0.1:$peer" \
    --logger zap --log-level warn >"$dir/etcd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if etcdctl --endpoints="127.0.0.1:$client" --dial-timeout=1s get /dtx-ready >/dev/null 2>&1; then
      echo "endpoint=127.0.0.1:$client pid=$pid"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "address already in use" "$dir/etcd.log" || break
done
echo "start-etcd: etcd did not start; its log:" >&2
cat "$dir/etcd.log" >&2
exit 1
