#!/usr/bin/env bash
# Builds the suites that exercise dtx's threads with ThreadSanitizer
# (-DDTX_SANITIZE=thread, gcc, in build-tsan) and runs them; fails on any
# data race, lock-order inversion or other TSan report.
#
#   scripts/tsan.sh                       # the subset below
#   scripts/tsan.sh dtx_core_test         # some of them
#
# The subset (docs/development.md, "ThreadSanitizer", says why these): the
# suites whose threads are dtx's own and instrumented: lib/ (Serial, the
# engine's pieces, metrics), storage (the SQLite journal's writer thread and
# readers, the barrier), transport's HTTP side (server, client, branch
# client, dtm client, webhooks on Asio/Beast io threads), dtx-server's unit
# tests, the embedded coordinator, and the coordinator end to end on HTTP
# branch services (dtx_http_branch_test without its two cases that start a
# gRPC server or an etcd). Suites driven by gRPC's threads are left out:
# Debian's gRPC and Abseil are not built with TSan, so the synchronization
# inside them is invisible and every completion they hand over looks like a
# race. Each binary runs all its tests in one process (a TSan process start
# costs about a second; ctest would start one per test case). An entry may
# carry a gtest filter after a colon.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${TSAN_BUILD_DIR:-build-tsan}"
JOBS="${JOBS:-$(nproc)}"
ENTRIES=("$@")
if [ ${#ENTRIES[@]} -eq 0 ]; then
  ENTRIES=(dtx_core_test dtx_sqlite_journal_test dtx_sqlite_barrier_test
    dtx_transport_unit_test dtx_http_unit_test dtx_http_server_test
    dtx_http_client_test dtx_http_branch_client_test dtx_http_dtm_client_test
    dtx_webhook_alert_sink_test dtx_server_unit_test dtx_embedded_test
    dtx_workflow_threads_test
    "dtx_http_branch_test:-*OneSagaMixesGrpcAndHttpBranches:*ProtocolHttpCallsTheKratos*")
fi
BINARIES=()
for e in "${ENTRIES[@]}"; do BINARIES+=("${e%%:*}"); done

bash scripts/setup.sh

echo "tsan: configuring $BUILD_DIR (ThreadSanitizer)"
# -O1: TSan's usual trade; Debug (-O0) runs the suites several times slower.
# -g1: line tables, all a report's stacks need; full debug information
# costs a tenth more compile time for nothing TSan prints.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DDTX_WERROR=ON -DDTX_SANITIZE=thread \
  -DDTX_BUILD_BENCH=OFF -DDTX_BUILD_EXAMPLES=OFF -DDTX_BUILD_TOOLS=OFF >/dev/null
echo "tsan: building ${#BINARIES[@]} test binaries with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${BINARIES[@]}"

# Every report of a binary is printed; exitcode 66 fails it. Suppressions:
# cmake/tsan.supp (third-party code only, each with its reason).
export TSAN_OPTIONS="suppressions=$PWD/cmake/tsan.supp:second_deadlock_stack=1:history_size=4:exitcode=66${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export CI="${CI:-true}"

failed=()
for e in "${ENTRIES[@]}"; do
  b="${e%%:*}"
  filter="*"
  if [ "$e" != "$b" ]; then filter="${e#*:}"; fi
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
  (cd "$(dirname "$bin")" && timeout 1200 "./$b" --gtest_brief=1 \
    --gtest_filter="$filter") >"$log" 2>&1 || rc=$?
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
