#!/usr/bin/env bash
# Runs examples/workflow as scripts/workflow-demo.sh does and checks what a
# reader would look at: killed after step 01, the workflow resumes in the
# next run without debiting user 1 again; a transfer to no account rolls
# back.
#   run_workflow_example.sh <workflow_transfer>
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

rc=0
"$bin" --dir "$work" --gid transfer-1 --amount 30 --crash-after-step 1 \
  >"$work/1.out" 2>&1 || rc=$?
cat "$work/1.out"
[ "$rc" -eq 137 ] || fail "the first run should have been killed (exit $rc)"
grep -q "step 01 done" "$work/1.out" || fail "step 01 did not run"
grep -q "step 02" "$work/1.out" && fail "step 02 ran before the kill"

"$bin" --dir "$work" --gid transfer-1 --amount 30 >"$work/2.out" 2>&1
cat "$work/2.out"
grep -q "coordinator resumes it" "$work/2.out" || fail "not resumed"
grep -q "workflow transfer-1 succeed" "$work/2.out" || fail "did not succeed"
grep -q "balance of user 1: 9970$" "$work/2.out" || fail "user 1 not debited once"
grep -q "balance of user 2: 10030$" "$work/2.out" || fail "user 2 not credited once"

"$bin" --dir "$work" --gid transfer-2 --amount 30 --to 99 >"$work/3.out" 2>&1
cat "$work/3.out"
grep -q "workflow transfer-2 failed (no account for user 99)" "$work/3.out" ||
  fail "did not fail"
grep -q "rollback of step 01" "$work/3.out" || fail "step 01 not rolled back"
grep -q "balance of user 1: 9970$" "$work/3.out" || fail "user 1 not restored"
echo "run_workflow_example: ok"
