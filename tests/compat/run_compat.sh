#!/usr/bin/env bash
# dtm's own Go SDK and a real go-kratos service against dtx (issue #8).
#
#   run_compat.sh <tests/compat/go> <dtx-server> <kratos-trans> <kratos-app> <start-etcd.sh>
#                 <compat-http-app>
#
# Builds tests/compat/go (sdk-app: dtm's dtmgrpc SDK; trans-go: the `trans`
# service on go-kratos with kratos's etcd registry, reading dtx's metadata with
# dtmgrpc.BarrierFromGrpc), starts etcd, trans-go, dtx-server (registered in
# etcd through its MicroService config) and dtx's C++ kratos-trans, then runs:
#   a. sdk-app -> dtx-server at 127.0.0.1:<port>, branches in trans-go
#   b. sdk-app -> dtx-server at etcd://<etcd>/dtmservice (dtm's Kratos driver)
#   c. sdk-app -> dtx-server at discovery://<etcd>/dtmservice (Kratos resolver)
#   d. C++ kratos-app, embedded coordinator -> trans-go through discovery://
#   e. C++ kratos-app -> dtx-server (discovery://) -> trans-go
#   f. sdk-app -> dtx-server -> dtx's C++ kratos-trans
#   h. wf-app: dtm's Go workflow SDK -> dtx-server over gRPC, steps in
#      trans-go, dtx-server resuming a workflow through the app's
#      /workflow.Workflow/Execute
#   g. C++ compat-http-app, embedded coordinator -> the Go HTTP service
#      http-busi (saga, rollback, TCC, msg check-back) and, in one saga,
#      trans-go over gRPC (discovery://) and http-busi over HTTP
# and checks the answers and what each service saw. Without Go or the module
# proxy it exits 77 (skipped), except under CI=true where that is a failure.
set -euo pipefail
src="$(cd "$1" && pwd)"
server="$2"
cpp_trans="$3"
cpp_app="$4"
start_etcd="$5"
cpp_http_app="$6"

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
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
  done
  exit 1
}
skip() {
  [ -n "${CI:-}" ] && fail "$* (CI=true: a missing prerequisite is a failure)"
  echo "skipped: $*"
  exit 77
}

command -v go >/dev/null || skip "the Go toolchain is not installed"
command -v etcd >/dev/null || skip "etcd is not installed"

# Modules and build results stay in Go's default caches ($HOME/go/pkg/mod,
# $HOME/.cache/go-build) between runs.
echo "== building tests/compat/go with $(go version)"
t0=$SECONDS
if ! (cd "$src" && go mod download) >"$work/download.log" 2>&1; then
  cat "$work/download.log"
  skip "cannot download the Go modules (module proxy unreachable?)"
fi
t1=$SECONDS
(cd "$src" && go build -mod=readonly -o "$work/bin/" ./cmd/...) || fail "go build"
echo "modules ready in $((t1 - t0)) s, built in $((SECONDS - t1)) s"

wait_for() {  # file pattern what
  for _ in $(seq 1 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$3 (no '$2' in $1)"
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started="$(bash "$start_etcd" "$work/etcd")"
etcd="$(echo "$started" | sed -n 's/.*endpoint=\([^ ]*\).*/\1/p')"
pids+=("$(echo "$started" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')")
echo "etcd at $etcd"

"$work/bin/trans-go" -etcd "$etcd" >"$work/trans-go.log" 2>&1 &
pids+=($!)
wait_for "$work/trans-go.log" "^registered as trans" "trans-go did not register"
echo "trans-go (go-kratos) registered as trans: $(sed -n 's/^listening on //p' "$work/trans-go.log")"

port="$(free_port)"
cat >"$work/dtx.yml" <<YAML
MicroService:
  Driver: 'dtm-driver-kratos'
  Target: 'discovery://$etcd/dtmservice'
  EndPoint: 'grpc://127.0.0.1:$port'
GrpcHost: 127.0.0.1
GrpcPort: $port
HttpPort: 0
RetryInterval: 1
TimeoutToFail: 3
TransCronInterval: 1
Store:
  Path: '$work/dtx-server.db'
YAML
"$server" -c "$work/dtx.yml" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
pids+=("$server_pid")
wait_for "$work/server.out" "^dtx-server: registered in etcd as /microservices/dtmservice/" \
  "dtx-server did not register"
echo "dtx-server at 127.0.0.1:$port, registered as dtmservice"

"$cpp_trans" --port 0 --verbose >"$work/cpp-trans.log" 2>&1 &
pids+=($!)
wait_for "$work/cpp-trans.log" "^listening on" "kratos-trans did not start"
cpp="$(sed -n 's/^listening on //p' "$work/cpp-trans.log")"

gid_of() { sed -n "s/^OK $2 gid=//p; s/^CHECKBACK gid=//p" "$1" | head -n 1; }
checkback_gid() { sed -n 's/^CHECKBACK gid=//p' "$1"; }
saw() {  # log gid op branch
  grep -q "gid=$2 .*branch_id=$4 op=$3\$" "$1"
}
expect_saw() { saw "$@" || fail "$1 has no op=$3 branch $4 for gid $2"; }
expect_checked_back() {  # sdk-output
  local gid
  gid="$(checkback_gid "$1")"
  for _ in $(seq 1 300); do
    saw "$work/trans-go.log" "$gid" action 01 && break
    sleep 0.1
  done
  expect_saw "$work/trans-go.log" "$gid" msg 00
  expect_saw "$work/trans-go.log" "$gid" action 01
}
run_sdk() {  # name dtm-address busi [extra...]
  local name="$1" address="$2" branches="$3"
  shift 3
  echo "== $name: dtm's Go SDK -> dtx-server at $address"
  if ! "$work/bin/sdk-app" -dtm "$address" -busi "$branches" "$@" >"$work/$name.out" 2>"$work/$name.sdk.log"; then
    cat "$work/$name.out"
    fail "sdk-app ($name)"
  fi
  grep -E '^(OK|CHECKBACK)' "$work/$name.out"
}

busi="discovery://$etcd/trans/api.trans.v1.Trans"
run_sdk a "127.0.0.1:$port" "$busi" -etcd "$etcd"
out="$work/a.out"
g="$(gid_of "$out" tcc)"
expect_saw "$work/trans-go.log" "$g" try 01
expect_saw "$work/trans-go.log" "$g" confirm 02
expect_saw "$work/trans-go.log" "$g" confirm 01
g="$(gid_of "$out" tcc-abort)"
expect_saw "$work/trans-go.log" "$g" cancel 02
expect_saw "$work/trans-go.log" "$g" cancel 01
saw "$work/trans-go.log" "$g" confirm 01 && fail "tcc-abort $g was confirmed"
g="$(gid_of "$out" saga-rollback)"
expect_saw "$work/trans-go.log" "$g" compensate 02
expect_saw "$work/trans-go.log" "$g" compensate 01
g="$(gid_of "$out" saga-concurrent)"
expect_saw "$work/trans-go.log" "$g" action 02
g="$(gid_of "$out" msg)"
expect_saw "$work/trans-go.log" "$g" action 01
expect_checked_back "$out"

run_sdk b "etcd://$etcd/dtmservice" "$busi" -etcd "$etcd"
expect_checked_back "$work/b.out"
run_sdk c "discovery://$etcd/dtmservice" "$busi" -etcd "$etcd"
expect_checked_back "$work/c.out"

for mode in embedded server; do
  echo "== C++ kratos-app ($mode) -> trans-go through discovery://"
  args=(--etcd "$etcd" --journal "$work/app.db")
  [ "$mode" = server ] && args+=(--dtm "discovery://$etcd/dtmservice")
  "$cpp_app" "${args[@]}" >"$work/app-$mode.out" 2>&1 || { cat "$work/app-$mode.out"; fail "kratos-app ($mode)"; }
  cat "$work/app-$mode.out"
  [ "$(grep -c ' succeed$' "$work/app-$mode.out")" -eq 3 ] || fail "kratos-app ($mode): not every transaction succeeded"
  g="$(sed -n 's/^tcc  gid=\([^ ]*\) .*/\1/p' "$work/app-$mode.out")"
  expect_saw "$work/trans-go.log" "$g" try 01
  expect_saw "$work/trans-go.log" "$g" confirm 01
  g="$(sed -n 's/^saga gid=\([^ ]*\) .*/\1/p' "$work/app-$mode.out")"
  expect_saw "$work/trans-go.log" "$g" action 02
  g="$(sed -n 's/^msg  gid=\([^ ]*\) .*/\1/p' "$work/app-$mode.out")"
  expect_saw "$work/trans-go.log" "$g" action 02
done

run_sdk f "127.0.0.1:$port" "$cpp/api.trans.v1.Trans" -failures=false
g="$(gid_of "$work/f.out" tcc)"
grep -q "confirm transfer out 30 cents from 1 .*gid=$g tcc confirm branch 01" "$work/cpp-trans.log" ||
  fail "dtx's C++ service did not see the SDK's TCC confirmed"
g="$(gid_of "$work/f.out" saga)"
grep -q "transfer in 30 cents to 1 .*gid=$g saga action branch 02" "$work/cpp-trans.log" ||
  fail "dtx's C++ service did not see the SDK's saga"

echo "== h: dtm's Go workflow SDK -> dtx-server, steps in trans-go, resume callback served by the app"
trans_go="$(sed -n 's/^listening on //p' "$work/trans-go.log")"
"$work/bin/wf-app" -dtm "127.0.0.1:$port" -busi "$trans_go" >"$work/h.out" 2>"$work/h.sdk.log" ||
  { cat "$work/h.out"; fail "wf-app"; }
cat "$work/h.out"
[ "$(grep -c '^OK wf-' "$work/h.out")" -eq 3 ] || fail "wf-app: not every workflow case passed"
expect_saw "$work/trans-go.log" wf-ok action 01
expect_saw "$work/trans-go.log" wf-ok action 02
expect_saw "$work/trans-go.log" wf-rollback rollback 01
expect_saw "$work/trans-go.log" wf-resume action 02

echo "== C++ compat-http-app (embedded) -> http-busi over HTTP, trans-go over gRPC"
"$work/bin/http-busi" >"$work/http-busi.log" 2>&1 &
pids+=($!)
wait_for "$work/http-busi.log" "^listening on " "http-busi did not start"
http_busi="http://$(sed -n 's/^listening on //p' "$work/http-busi.log")"
"$cpp_http_app" --busi "$http_busi" --etcd "$etcd" --journal "$work/http-app.db" \
  >"$work/http-app.out" 2>&1 || { cat "$work/http-app.out"; fail "compat-http-app"; }
cat "$work/http-app.out"
http_gid() { sed -n "s/^OK $1 gid=\([^ ]*\) .*/\1/p" "$work/http-app.out"; }
expect_http_calls() {  # gid trans_type "handler op branch_id status"...
  curl -sf "$http_busi/api/ctl/calls?gid=$1" >"$work/calls.json" || fail "http-busi's calls for $1"
  python3 - "$work/calls.json" "$@" <<'PY' || fail "http-busi's calls for $2 (above)"
import json, sys
calls = json.load(open(sys.argv[1]))
gid, trans_type, want = sys.argv[2], sys.argv[3], sys.argv[4:]
got = ["%s %s %s %d" % (c["handler"], c["query"].get("op"), c["query"].get("branch_id"), c["status"])
       for c in calls]
bad = [c for c in calls if c["query"].get("gid") != gid or c["query"].get("trans_type") != trans_type
       or (c["query"].get("op") == "msg") != (c["method"] == "GET")]
if got != want or bad:
    print("http-busi saw %r, want %r; calls with a wrong gid, trans_type or method: %r" % (got, want, bad))
    sys.exit(1)
PY
}
expect_http_calls "$(http_gid http-saga)" saga "TransOut action 01 200" "TransIn action 02 200"
expect_http_calls "$(http_gid http-saga-rollback)" saga "TransOut action 01 200" \
  "TransIn action 02 409" "TransInCompensate compensate 02 200" "TransOutCompensate compensate 01 200"
expect_http_calls "$(http_gid http-tcc)" tcc "TransOutTry try 01 200" "TransInTry try 02 200" \
  "TransInConfirm confirm 02 200" "TransOutConfirm confirm 01 200"
expect_http_calls "$(http_gid http-msg-checkback)" msg "QueryPrepared msg 00 200" "TransIn action 01 200"
g="$(http_gid mixed-saga)"
expect_saw "$work/trans-go.log" "$g" action 01
expect_http_calls "$g" saga "TransIn action 02 200"
g="$(http_gid mixed-saga-rollback)"
expect_saw "$work/trans-go.log" "$g" action 01
expect_saw "$work/trans-go.log" "$g" compensate 01
expect_http_calls "$g" saga "TransIn action 02 409" "TransInCompensate compensate 02 200"
if grep -q "BAD-QUERY" "$work/http-busi.log"; then
  fail "dtmcli.BarrierFromQuery refused a query of dtx's"
fi

if grep -q "BAD-METADATA" "$work/trans-go.log"; then
  fail "dtmgrpc.BarrierFromGrpc refused dtx's metadata"
fi
echo "== trans-go saw $(grep -c ' gid=' "$work/trans-go.log") calls, all with metadata dtm's SDK accepts"

kill "$server_pid"
wait "$server_pid" || fail "dtx-server did not exit 0 on SIGTERM"
left="$(etcdctl --endpoints="$etcd" get --prefix --keys-only /microservices/dtmservice/)"
[ -z "$left" ] || fail "dtx-server did not deregister: $left"
echo "compat: OK"
