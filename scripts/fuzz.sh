#!/usr/bin/env bash
# Builds dtx's libFuzzer targets (fuzz/, clang, ASan+UBSan, in build-fuzz)
# and runs each for a while; fails when one finds a crash, a leak or a
# timeout, and keeps the input that caused it.
#
#   scripts/fuzz.sh                     # every target, 30 s each
#   scripts/fuzz.sh 600 http_request    # one target, 10 minutes
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 trans_json   # a number of runs
#
# Each target starts from its committed seeds (fuzz/corpus/<target>/) and
# what earlier runs found (build-fuzz/corpus/<target>/, where new inputs go:
# the committed corpus is never written). A failing input is saved as
# build-fuzz/artifacts/<target>/crash-*, leak-* or timeout-*; replay it with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
# Limits per input: FUZZ_TIMEOUT seconds (default 10), FUZZ_RSS_MB (2048).
# FUZZ_JOBS targets run at a time (default: the number of cores).
# FUZZ_OPT: the optimization and debug flags (default "-O1 -g", for long
# runs; .ci/run's 30 s runs take "-O0 -g1", which compiles faster).
# FUZZ_CMAKE_ARGS: more cmake arguments; FUZZ_EXTRA_TARGETS: more targets
# built in the same tree (.ci/run builds its clang thread-safety
# check there, so that the libraries are compiled by clang once).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${1:-30}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(branch_url trans_json server_config dtm_proto kratos_instance
    journal_rows http_request)
fi
BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${JOBS:-$(nproc)}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
RUNS="${FUZZ_RUNS:--1}"

bash scripts/setup.sh --fuzz

echo "fuzz: configuring $BUILD_DIR (clang, ASan+UBSan, libFuzzer)"
# -O1 -g with assertions on: the usual trade of speed against reports.
# shellcheck disable=SC2086
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${FUZZ_OPT:--O1 -g}" \
  -DDTX_WERROR=ON -DDTX_FUZZ=ON -DDTX_BUILD_TESTS=OFF -DDTX_BUILD_BENCH=OFF \
  -DDTX_BUILD_EXAMPLES=OFF -DDTX_BUILD_TOOLS=OFF ${FUZZ_CMAKE_ARGS:-} >/dev/null
echo "fuzz: building the targets with $JOBS jobs"
targets=()
for t in "${TARGETS[@]}"; do targets+=("fuzz_$t"); done
# shellcheck disable=SC2206
targets+=(${FUZZ_EXTRA_TARGETS:-})
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"

# detect_leaks: libFuzzer reports a leak as a failure (leak-* artifact).
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# One target; its summary line goes to $BUILD_DIR/fuzz-<target>.result,
# "ok <line>" or "failed <line>".
run_one() {
  local t="$1"
  local bin="$BUILD_DIR/fuzz/fuzz_$t"
  local corpus="$BUILD_DIR/corpus/$t"
  local artifacts="$BUILD_DIR/artifacts/$t"
  local log="$BUILD_DIR/fuzz-$t.log"
  mkdir -p "$corpus" "$artifacts"
  local args=(-max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT"
    -rss_limit_mb="$RSS_MB" -runs="$RUNS" -print_final_stats=1
    -artifact_prefix="$artifacts/")
  if [ -f "fuzz/dict/$t.dict" ]; then args+=(-dict="fuzz/dict/$t.dict"); fi
  echo "fuzz: $t: ${SECONDS_EACH} s (log: $log)"
  local rc=0
  "$bin" "${args[@]}" "$corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local runs
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  local line="$t: ${runs:-?} executions"
  if [ "$rc" -ne 0 ]; then
    local found
    found="$(ls -t "$artifacts" 2>/dev/null | head -1)"
    line="$line, FAILED (exit $rc): ${found:+$artifacts/$found}"
    grep -E "ERROR: |runtime error|FUZZ_CHECK|SUMMARY" "$log" | head -5 >&2 || true
    echo "failed $line" >"$BUILD_DIR/fuzz-$t.result"
  else
    echo "ok $line" >"$BUILD_DIR/fuzz-$t.result"
  fi
  echo "fuzz: $line"
}

# FUZZ_JOBS targets at a time (each fuzzer is one process, one core).
FUZZ_JOBS="${FUZZ_JOBS:-$JOBS}"
running=0
for t in "${TARGETS[@]}"; do
  rm -f "$BUILD_DIR/fuzz-$t.result"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$FUZZ_JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  result="$(cat "$BUILD_DIR/fuzz-$t.result" 2>/dev/null || echo "failed $t: no result")"
  summary+=("${result#* }")
  [ "${result%% *}" = ok ] || failed+=("$t")
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]} (reproducers in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
