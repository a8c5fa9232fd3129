#!/usr/bin/env bash
# Sets up, builds and runs dtx's main demo.
#
# Until the seed's Kratos quickstart lands (issue #6), the demo is
# examples/journal_tour: the durable journal at the heart of the coordinator,
# taking one saga through its life and surviving a reopen.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target journal_tour

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$BUILD_DIR/examples/journal_tour/journal_tour" "$work/dtx.db"
