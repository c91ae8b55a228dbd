#!/usr/bin/env bash
# interp_kill.sh - SIGKILL in the middle of a stage and of a commit leaves no torn entry and resumes; Ctrl-C stops cleanly.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_slow.yaml" slow.yaml
entries() { find "$HX_STORE/store" -name manifest.json 2>/dev/null | wc -l | tr -d ' '; }

# 1. killed mid-stage: a runs 20 steps of 50 ms; kill after ~0.4 s
"$HX_TEST" run slow.yaml -S params.steps=20 -S params.ms=50 >k1.out 2>k1.err &
pid=$!
wait_step 4 100 || true # the signal comes anyway; the checks below say what it met
kill -KILL $pid; wait $pid 2>/dev/null || true
expect_eq "$(entries)" 0 "no entry after a kill mid-stage"
[ -n "$(find "$HX_STORE/partial" -name step)" ] || fail "checkpoint kept in partial/"
out=$("$HX_TEST" run slow.yaml -S params.steps=20 -S params.ms=50 --json 2>/dev/null)
expect_eq "$(count executed "$out")" 4 "resumed run executes"
key=$(grep -o '"stage":"a","axes":{},"key":"[0-9a-f]*"' <<<"$out" | grep -o '[0-9a-f]\{64\}')
resumed=$("$HX_TEST" show "$key" | grep -o '"resumed_from": [0-9]*' | grep -o '[0-9]*$')
echo "resumed from step $resumed of 20"
[ "$resumed" -ge 4 ] || fail "stage a did not resume from its checkpoint (resumed_from=$resumed)"
[ -z "$(ls "$HX_STORE/partial")" ] || fail "partial/ not cleaned after success"

# 2. killed mid-commit: the manifest is written in partial/, the rename has not happened
rm -rf "$HX_STORE"
HX_TEST_COMMIT_SLEEP=5 "$HX_TEST" run slow.yaml -S params.steps=2 -S params.ms=10 >k2.out 2>k2.err &
pid=$!
wait_commit 200 0.02 || fail "commit pause not reached"
kill -KILL $pid; wait $pid 2>/dev/null || true
expect_eq "$(entries)" 0 "no entry after a kill mid-commit"
[ -z "$(find "$HX_STORE/store" -mindepth 2 -maxdepth 2)" ] || fail "torn directory in store/"
out=$("$HX_TEST" run slow.yaml -S params.steps=2 -S params.ms=10 --json 2>/dev/null)
expect_eq "$(count executed "$out")" 4 "re-run after a killed commit"
"$HX_TEST" run slow.yaml -S params.steps=2 -S params.ms=10 --verify --json 2>/dev/null | grep -q '"status":"ok"' || fail "verify"

# 3. Ctrl-C: the stage stops at a safe point, exit 130, the re-run resumes
rm -rf "$HX_STORE"
"$HX_TEST" run slow.yaml -S params.steps=30 -S params.ms=50 >k3.out 2>k3.err &
pid=$!
wait_step 3 100 || true # the signal comes anyway; the checks below say what it met
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
expect_eq "$rc" 130 "exit status after Ctrl-C"
grep -q '"status": "interrupted"' "$HX_STORE/runs/latest/run.json" || fail "run record says interrupted"
out=$("$HX_TEST" run slow.yaml -S params.steps=30 -S params.ms=50 --json 2>/dev/null)
expect_eq "$(count executed "$out")" 4 "run after Ctrl-C"
echo "interp_kill: ok"
