#!/usr/bin/env bash
# Runs the deterministic simulation of the coordinator (docs/testing.md) for
# as long as asked, with progress every 10 s: random SAGA, TCC and MSG
# transactions under network and journal faults and coordinator crashes,
# checked after every run. Stops at the first failing seed, printing it and
# the command that replays it.
#
#   scripts/simulate.sh --seconds 3600                 # an hour from seed 1
#   scripts/simulate.sh --seconds 600 --first-seed 1000000 --threads 1
#   scripts/simulate.sh --seed 1234 --log debug        # replay one seed
#
# Builds dtx_simulate (Release, in $BUILD_DIR, default ./build) first.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDTX_WERROR=ON >/dev/null
fi
cmake --build "$BUILD_DIR" --target dtx_simulate >/dev/null
exec nice -n 19 "$BUILD_DIR/tests/simulation/dtx_simulate" "$@"
