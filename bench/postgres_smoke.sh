#!/usr/bin/env bash
# bench.dtx_postgres_smoke: runs `dtx_bench --journal postgres` briefly on a
# PostgreSQL it starts itself, with one and two coordinators, and checks that
# it succeeded and printed every scenario's figures, the single-commit
# baselines, the per-coordinator rows and the summary. The figures' values are
# never checked (no timing assertions).
#
#   bench/postgres_smoke.sh path/to/dtx_bench [path/to/dtx-server]
#
# With dtx-server, also its rows on the PostgreSQL journal against the relay
# (pg_server_*) and slow_branch.
#
# Without PostgreSQL installed dtx_bench exits 77: skipped (ctest's
# SKIP_RETURN_CODE), except under CI=true, where it fails.
set -uo pipefail

bench="${1:?usage: postgres_smoke.sh DTX_BENCH [DTX_SERVER]}"
server="${2:-}"
server_args=()
[ -n "$server" ] && server_args=(--server "$server" --slow-sagas 50)
out=$(mktemp "${TMPDIR:-/tmp}/dtx-pg-smoke.XXXXXX")
trap 'rm -f "$out"' EXIT

"$bench" --journal postgres --seconds 0.4 --rounds 1 --inflight 1,2 \
  --coordinators 1,2 "${server_args[@]}" >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -eq 77 ]; then
  case "${CI:-}" in
    1|true|yes) echo "postgres_smoke: FAILED under CI=true: PostgreSQL is not installed" >&2; exit 1 ;;
  esac
  echo "postgres_smoke: SKIPPED: PostgreSQL is not installed" >&2
  exit 77
fi
if [ "$rc" -ne 0 ]; then
  echo "postgres_smoke: dtx_bench exited $rc" >&2
  exit 1
fi

missing=0
expect() {
  if ! grep -Eq "$1" "$out"; then
    echo "postgres_smoke: no line matching: $1" >&2
    missing=1
  fi
}
expect '^dtx_bench: started a throwaway PostgreSQL .*url=postgresql://'
for s in tcc saga msg saga_empty http_saga http_tcc workflow; do
  for c in 1 2; do
    expect "^RESULT pg_${s}_2_c${c} value=[0-9]+ baseline=[0-9]+ ratio="
  done
  expect "^RESULT pg_${s}_1_c1 value=[0-9]+ baseline=[0-9]+ ratio="
done
expect '^RESULT pg_saga_empty_vs_single_commit_2_c1 value=[0-9]+ baseline=[0-9]+'
expect '^RESULT pg_saga_empty_vs_2_client_commits_2_c2 value=[0-9]+ baseline=[0-9]+'
expect '^  #2/2 +saga +1 +[0-9]+'
expect '^summary '
if [ -n "$server" ]; then
  for s in tcc saga msg saga_empty http_saga http_tcc workflow; do
    expect "^RESULT pg_server_${s}_2 value=[0-9]+ baseline=[0-9]+ ratio="
  done
  expect '^RESULT pg_server_slow_branch_saga_p99_ms value='
fi
exit "$missing"
