#!/usr/bin/env bash
# Builds the suites that exercise dtx's threads with ThreadSanitizer
# (-DDTX_SANITIZE=thread, gcc, in build-tsan) and runs them; fails on any
# data race, lock-order inversion or other TSan report.
#
#   scripts/tsan.sh                       # the subset below
#   scripts/tsan.sh dtx_core_test         # some of them
#
# The subset (docs/development.md, "ThreadSanitizer" says why these): the
# unit tests of lib/ (the engine, Serial, metrics), of storage (the SQLite
# journal's writer and readers, the barrier), of transport (HTTP message and
# router, gRPC and HTTP servers and clients), the embedded coordinator, and
# the integration suites of the coordinator on real gRPC and HTTP branch
# services. Each binary runs all its tests in one process (a TSan process
# start costs about a second; ctest would start one per test case).
# Suppressions: cmake/tsan.supp (third-party code only, each with its reason).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${TSAN_BUILD_DIR:-build-tsan}"
JOBS="${JOBS:-$(nproc)}"
BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
  BINARIES=(dtx_core_test dtx_sqlite_journal_test dtx_sqlite_barrier_test
    dtx_transport_unit_test dtx_http_unit_test dtx_http_server_test
    dtx_http_client_test dtx_grpc_branch_client_test dtx_dtm_server_test
    dtx_embedded_test dtx_coordinator_test dtx_http_branch_test)
fi

bash scripts/setup.sh

echo "tsan: configuring $BUILD_DIR (ThreadSanitizer)"
# -O1 -g: TSan's usual trade; Debug (-O0) runs the suites several times slower.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DDTX_WERROR=ON -DDTX_SANITIZE=thread \
  -DDTX_BUILD_BENCH=OFF -DDTX_BUILD_EXAMPLES=OFF -DDTX_BUILD_TOOLS=OFF >/dev/null
echo "tsan: building ${#BINARIES[@]} test binaries with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${BINARIES[@]}"

# halt_on_error=0: every report of a binary is printed; exitcode 66 fails it.
export TSAN_OPTIONS="suppressions=$PWD/cmake/tsan.supp:second_deadlock_stack=1:history_size=4:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export CI="${CI:-true}"

failed=()
for b in "${BINARIES[@]}"; do
  bin="$(find "$BUILD_DIR/tests" -type f -name "$b" -perm -u+x | head -1)"
  if [ -z "$bin" ]; then
    echo "tsan: $b: not built" >&2
    failed+=("$b")
    continue
  fi
  log="$BUILD_DIR/tsan-$b.log"
  began=$SECONDS
  rc=0
  # The tests find their helpers (etcd, certificates) as under ctest: from
  # the binary's directory.
  (cd "$(dirname "$bin")" && timeout 1200 "./$b" --gtest_brief=1) >"$log" 2>&1 || rc=$?
  races="$(grep -c "WARNING: ThreadSanitizer" "$log" || true)"
  if [ "$rc" -ne 0 ]; then
    echo "tsan: $b: FAILED (exit $rc, $races reports, $((SECONDS - began)) s): $log"
    grep -E "WARNING: ThreadSanitizer|^\[  FAILED|SUMMARY: ThreadSanitizer" "$log" | head -10 >&2 || true
    failed+=("$b")
  else
    echo "tsan: $b: ok ($((SECONDS - began)) s)"
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "tsan: failed: ${failed[*]}" >&2
  exit 1
fi
echo "tsan: all ${#BINARIES[@]} binaries clean"
