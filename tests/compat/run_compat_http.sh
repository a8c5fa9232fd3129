#!/usr/bin/env bash
# dtm's Go HTTP SDK (dtmcli) and a Go HTTP branch service against dtx-server's
# HTTP API and HTTP branch calls (issue #15).
#
#   run_compat_http.sh <tests/compat/go> <dtx-server>
#   DTX_COMPAT_AGAINST_DTM=1 run_compat_http.sh ...   # against dtm itself
#
# Builds cmd/http-busi (net/http handlers in dtm's conventions, reading the
# branch query with dtmcli.BarrierFromQuery, recording every call) and
# cmd/http-app (dtmcli: sagas, TCCs and messages with their check-backs),
# starts the coordinator and http-busi on 127.0.0.1, and runs http-app, which
# checks every final status through /api/dtmsvr/query and every call the
# service saw; its SDK requests and answers are in http-app.log (printed on
# failure). Then cmd/wf-http-app runs dtm's Go workflow SDK over HTTP
# (workflow.InitHTTP): a transfer, a rollback and a workflow the coordinator
# resumes through the app's HTTP callback. Without Go or the module proxy it exits 77 (skipped), except
# under CI=true where that is a failure.
set -euo pipefail
src="$(cd "$1" && pwd)"
server="$2"
# shellcheck source=tests/compat/coordinator.sh
source "$(dirname "$0")/coordinator.sh"
compat_init

command -v go >/dev/null || skip "the Go toolchain is not installed"
echo "== building http-busi and http-app with $(go version)"
t0=$SECONDS
# Modules and build results stay in Go's caches ($HOME/go/pkg/mod,
# $HOME/.cache/go-build) between runs.
if ! (cd "$src" && go mod download) >"$work/download.log" 2>&1; then
  cat "$work/download.log"
  skip "cannot download the Go modules (module proxy unreachable?)"
fi
t1=$SECONDS
(cd "$src" && go build -mod=readonly -o "$work/bin/" ./cmd/http-busi ./cmd/http-app ./cmd/wf-http-app) ||
  fail "go build"
echo "modules ready in $((t1 - t0)) s, built in $((SECONDS - t1)) s"

start_coordinator "$server"

"$work/bin/http-busi" >"$work/http-busi.log" 2>&1 &
compat_pids+=($!)
wait_for "$work/http-busi.log" "^listening on " "http-busi did not start"
busi="http://$(sed -n 's/^listening on //p' "$work/http-busi.log")"
echo "http-busi at $busi"

echo "== dtm's dtmcli (Go) -> $coordinator_name"
t2=$SECONDS
against_dtm=""
if [ -n "${DTX_COMPAT_AGAINST_DTM:-}" ] && [ "$DTX_COMPAT_AGAINST_DTM" != 0 ]; then
  against_dtm="-against-dtm"
fi
if ! "$work/bin/http-app" -v -dtm "$dtm_api" -busi "$busi" ${DTX_COMPAT_RUN:+-run "$DTX_COMPAT_RUN"} $against_dtm \
  >"$work/http-app.out" 2>"$work/http-app.log"; then
  cat "$work/http-app.out"
  fail "http-app"
fi
cat "$work/http-app.out"
echo "cases ran in $((SECONDS - t2)) s"
echo "== dtm's Go workflow SDK over HTTP (workflow.InitHTTP) -> $coordinator_name"
if ! "$work/bin/wf-http-app" -dtm "$dtm_api" -busi "$busi" >"$work/wf-http-app.out" 2>"$work/wf-http-app.log"; then
  cat "$work/wf-http-app.out"
  fail "wf-http-app"
fi
cat "$work/wf-http-app.out"
[ "$(grep -c '^OK wf-http-' "$work/wf-http-app.out")" -eq 3 ] || fail "wf-http-app: not every workflow case passed"
if grep -q "BAD-QUERY" "$work/http-busi.log"; then
  fail "dtmcli.BarrierFromQuery refused a branch call's query"
fi

stop_coordinator
echo "compat-http: OK"
