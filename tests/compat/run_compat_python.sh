#!/usr/bin/env bash
# dtm's Python SDK (dtmcli 1.7.7.0 from PyPI) and a Python HTTP branch service
# against dtx-server's HTTP API and HTTP branch calls (issue #15).
#
#   run_compat_python.sh <tests/compat/python> <dtx-server> <venv-dir>
#   DTX_COMPAT_AGAINST_DTM=1 run_compat_python.sh ...   # against dtm itself
#
# Installs dtmcli==1.7.7.0 with pip into <venv-dir> (kept between runs: a
# venv that already has it is reused), starts the coordinator and
# http_busi.py on 127.0.0.1, and runs sdk_app.py (sagas, TCCs and a message
# with dtmcli), which checks every final status through /api/dtmsvr/query and
# every call the service saw. Without a Python venv or PyPI it exits 77
# (skipped), except under CI=true where that is a failure.
set -euo pipefail
src="$(cd "$1" && pwd)"
server="$2"
venv="$3"
# shellcheck source=tests/compat/coordinator.sh
source "$(dirname "$0")/coordinator.sh"
compat_init

dtmcli_version=1.7.7.0
t0=$SECONDS
py="$venv/bin/python"
if ! "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('dtmcli') != '$dtmcli_version')" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" >"$work/venv.log" 2>&1 || { cat "$work/venv.log"; skip "python3 -m venv failed"; }
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "dtmcli==$dtmcli_version" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log"
    rm -rf "$venv"
    skip "pip cannot install dtmcli==$dtmcli_version (PyPI unreachable?)"
  fi
fi
echo "dtmcli $("$py" -c "import importlib.metadata as m; print(m.version('dtmcli'))") in $venv, ready in $((SECONDS - t0)) s"

start_coordinator "$server"

"$py" -u "$src/http_busi.py" >"$work/http-busi.log" 2>&1 &
compat_pids+=($!)
wait_for "$work/http-busi.log" "^listening on " "http_busi.py did not start"
busi="http://$(sed -n 's/^listening on //p' "$work/http-busi.log")"
echo "http_busi.py at $busi"

echo "== dtm's dtmcli (Python) -> $coordinator_name"
t1=$SECONDS
if ! "$py" -u "$src/sdk_app.py" --dtm "$dtm_api" --busi "$busi" >"$work/sdk-app.out" 2>&1; then
  cat "$work/sdk-app.out"
  fail "sdk_app.py"
fi
grep -E '^(OK|[0-9]+ passed)' "$work/sdk-app.out"
echo "cases ran in $((SECONDS - t1)) s"
if grep -q "BAD-QUERY" "$work/http-busi.log"; then
  fail "a branch call's query lacked gid, trans_type, branch_id or op"
fi

stop_coordinator
echo "compat-python: OK"
