#!/usr/bin/env bash
# The seed's transfer as a durable workflow (examples/workflow,
# docs/workflow.md), killed halfway and resumed:
#
#   1. transfer 30 from user 1 to user 2; the process SIGKILLs itself right
#      after step 01 (TransOut) was recorded;
#   2. the same program again: the coordinator finds the prepared workflow
#      and resumes it, replaying step 01 (user 1 is not debited twice) and
#      running step 02;
#   3. a transfer to an account that does not exist: step 02 fails, step 01
#      is rolled back.
#
#   scripts/workflow-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target workflow_transfer
bin="$BUILD_DIR/examples/workflow/workflow_transfer"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo
echo "== 1. transfer 30 from user 1 to user 2, killed after step 01"
rc=0
"$bin" --dir "$work" --gid transfer-1 --amount 30 --crash-after-step 1 || rc=$?
echo "(the process died: exit $rc)"

echo
echo "== 2. started again: the workflow resumes where it stopped"
"$bin" --dir "$work" --gid transfer-1 --amount 30

echo
echo "== 3. transfer 30 to user 99, who has no account: rolled back"
"$bin" --dir "$work" --gid transfer-2 --amount 30 --to 99 || true
