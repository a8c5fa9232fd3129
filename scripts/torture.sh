#!/usr/bin/env bash
# The crash torture as a soak (tests/torture/torture_test.cc): dtx-server and
# an embedded host, each under at least KILLS random SIGKILLs of the
# coordinator and the ledger service (and etcd restarts beside dtx-server)
# over at least TRANSACTIONS mixed SAGA/TCC/MSG transactions. Prints one
# "torture:" summary line per run and fails on any loss, double effect,
# wrong outcome or ledger delta.
#
#   scripts/torture.sh                    # 10,000 transactions, 100 kills
#   scripts/torture.sh 20000 200          # more
#   BUILD_DIR=build-asan scripts/torture.sh 2000 40
set -euo pipefail
cd "$(dirname "$0")/.."
TRANSACTIONS="${1:-10000}"
KILLS="${2:-100}"
BUILD_DIR="${BUILD_DIR:-build}"
bin="$BUILD_DIR/tests/torture/dtx_torture_test"
if [ ! -x "$bin" ]; then
  echo "torture: $bin is missing; build first (cmake --build $BUILD_DIR --target dtx_torture_test)" >&2
  exit 1
fi
echo "torture: $TRANSACTIONS transactions and $KILLS kills per run ($bin)"
DTX_TORTURE_TRANSACTIONS="$TRANSACTIONS" DTX_TORTURE_KILLS="$KILLS" \
  "$bin" --gtest_color=no 2>&1 | grep -E '^torture:|^\[ +(OK|FAILED|RUN) +\]|Failure|Failed$' 
status=${PIPESTATUS[0]}
exit "$status"
