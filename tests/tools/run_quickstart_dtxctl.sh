#!/usr/bin/env bash
# The acceptance check of issue #14's dtxctl: the quickstart's app (direct
# mode, no etcd) runs its TCC, SAGA and MSG against the examples' trans
# service, then `dtxctl list --json --journal <its journal>` shows the three
# transactions, succeeded, and `dtxctl stats` counts them.
#   run_quickstart_dtxctl.sh <kratos-trans> <kratos-app> <dtxctl>
set -euo pipefail
service="$1"
app="$2"
dtxctl="$3"
work="$(mktemp -d)"
service_pid=""
cleanup() {
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$service" --port 0 >"$work/trans.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 200); do
  grep -q "^listening on" "$work/trans.log" && break
  sleep 0.05
done
grep -q "^listening on" "$work/trans.log" || { cat "$work/trans.log"; fail "service did not start"; }
address="$(sed -n 's/^listening on //p' "$work/trans.log")"
"$app" --journal "$work/dtx.db" --trans "$address"

"$dtxctl" list --journal "$work/dtx.db" | tee "$work/list.txt"
[ "$(grep -c ' succeed ' "$work/list.txt")" -eq 3 ] || fail "the table does not show three succeeded transactions"
"$dtxctl" list --json --journal "$work/dtx.db" >"$work/list.json"
python3 - "$work/list.json" <<'PY' || fail "dtxctl list --json does not show the three transactions"
import json, sys
page = json.load(open(sys.argv[1]))
got = sorted((t["trans_type"], t["status"]) for t in page["transactions"])
want = [("msg", "succeed"), ("saga", "succeed"), ("tcc", "succeed")]
if got != want:
    print("transactions:", got, "want:", want)
    sys.exit(1)
PY
"$dtxctl" stats --json --journal "$work/dtx.db" >"$work/stats.json"
python3 - "$work/stats.json" <<'PY' || fail "dtxctl stats --json does not count them"
import json, sys
s = json.load(open(sys.argv[1]))
if s["counts"]["succeed"] != 3 or s["unfinished"] != 0:
    print(s)
    sys.exit(1)
PY
echo "dtxctl sees the quickstart's three transactions"
