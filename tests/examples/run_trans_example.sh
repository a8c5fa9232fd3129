#!/usr/bin/env bash
# Runs examples/trans as the quickstart does and checks what a user would
# look at: three transactions succeed and the service logged the transfers.
#   run_trans_example.sh <trans_service> <trans_app>
set -euo pipefail
service="$1"
app="$2"
work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$service" --port 0 --verbose >"$work/trans.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  grep -q "^listening on" "$work/trans.log" && break
  sleep 0.05
done
address="$(sed -n 's/^listening on //p' "$work/trans.log")"
[ -n "$address" ] || { echo "service did not start"; cat "$work/trans.log"; exit 1; }
"$app" --trans "$address" --journal "$work/dtx.db" | tee "$work/app.out"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
cat "$work/trans.log"
fail() { echo "FAIL: $*"; exit 1; }
[ "$(grep -c ' succeed$' "$work/app.out")" -eq 3 ] || fail "not every transaction succeeded"
grep -q "transfer in 30 cents to 1 .*tcc try" "$work/trans.log" || fail "no TCC try of TransIn"
grep -q "confirm transfer out 30 cents from 1 .*tcc confirm" "$work/trans.log" || fail "no confirm"
grep -q "transfer out 30 cents from 1 .*saga action" "$work/trans.log" || fail "no saga action"
grep -q "transfer in 30 cents to 1 .*msg action" "$work/trans.log" || fail "no msg action"
echo "trans example: OK"
