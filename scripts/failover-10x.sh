#!/usr/bin/env bash
# Runs the failover and partition tests (ctest label `failover`:
# integration.failover_kill, integration.failover_partition,
# integration.failover_pg_restart) N times in a row (10 by default, as #16
# asks), stopping at nothing: every round runs, and a summary at the end says
# how many rounds passed and which test failed in which round. Exit 0 only
# when every round passed.
#
#   scripts/failover-10x.sh                 # build/, 10 rounds
#   BUILD_DIR=build-asan scripts/failover-10x.sh 3
#
# The logs of a failed round (the servers' logs and the ledger's call log)
# are kept in $BUILD_DIR/failover-logs/round-<n>/.
set -uo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
rounds="${1:-10}"
if ! [ -x "$build/tests/server/dtx_failover_test" ]; then
  echo "failover-10x: $build/tests/server/dtx_failover_test is not built (cmake --build $build --target dtx_failover_test)" >&2
  exit 2
fi
logs="$build/failover-logs"
rm -rf "$logs"
passed=0
failures=()
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
  dir="$logs/round-$round"
  mkdir -p "$dir"
  t0=$(date +%s)
  # A skipped test (no PostgreSQL) is not a pass.
  if DTX_FAILOVER_LOG_DIR="$PWD/$dir" ctest --test-dir "$build" -L failover \
      --output-on-failure --no-tests=error > "$dir/ctest.txt" 2>&1 &&
      ! grep -q 'Skipped' "$dir/ctest.txt"; then
    passed=$((passed + 1))
    echo "failover-10x: round $round/$rounds passed ($(( $(date +%s) - t0 )) s)"
  else
    failed=$(grep -E '^\s+[0-9]+ - ' "$dir/ctest.txt" | sed -E 's/^\s+[0-9]+ - //' | tr '\n' ' ')
    failures+=("round $round: $failed")
    echo "failover-10x: round $round/$rounds FAILED: $failed(logs in $dir)"
  fi
  grep -E 'Test +#' "$dir/ctest.txt" | sed 's/^/    /'
  [ "$passed" -eq "$round" ] && rm -rf "$dir"
done
echo "failover-10x: $passed of $rounds rounds passed in $(( $(date +%s) - start )) s"
for f in "${failures[@]}"; do echo "  $f"; done
[ "$passed" -eq "$rounds" ]
