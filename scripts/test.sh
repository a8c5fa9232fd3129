#!/usr/bin/env bash
# Builds dtx and runs every test: installs missing Debian packages first
# (scripts/setup.sh), configures, builds, then runs ctest.
#
#   scripts/test.sh                      # Release build in ./build
#   DTX_SANITIZE=address,undefined BUILD_DIR=build-asan scripts/test.sh
#   CTEST_ARGS="-L unit" scripts/test.sh # a subset
#   DTX_CMAKE_ARGS="-DDTX_UBSAN_SKIP=null" scripts/test.sh  # more cmake arguments
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
# Release: the build users run and the benchmarks use (GCC -O3 warnings show).
BUILD_TYPE="${BUILD_TYPE:-Release}"
JOBS="${JOBS:-$(nproc)}"
args=(-G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DDTX_WERROR=ON)
if [ -n "${DTX_SANITIZE:-}" ]; then
  args+=(-DDTX_SANITIZE="$DTX_SANITIZE")
  # Known leaks in third-party libraries only (see the file).
  export LSAN_OPTIONS="suppressions=$PWD/cmake/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi

# shellcheck disable=SC2206
args+=(${DTX_CMAKE_ARGS:-})

echo "test: configuring $BUILD_DIR ($BUILD_TYPE${DTX_SANITIZE:+, sanitize=$DTX_SANITIZE})"
cmake -S . -B "$BUILD_DIR" "${args[@]}" >/dev/null
echo "test: building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "test: running tests"
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error -j "$JOBS" ${CTEST_ARGS:-}
