#!/usr/bin/env bash
# interp_gc_live.sh - hx gc never removes what a live run uses: its record pins its plan, a reading stage pins its inputs.
. "$(dirname "$0")/lib_interp.inc"
cat >a.yaml <<'Y'
hx: 1
name: live
stages:
  a: {kind: t_source, with: {text: alpha}}
  b: {kind: t_slow, inputs: {in: a}, with: {steps: 100, step_ms: 50}}
Y
cat >other.yaml <<'Y'
hx: 1
name: other
stages:
  o: {kind: t_source, with: {text: omega}}
Y
akey=$("$HX_TEST" plan a.yaml --json | grep -o '"stage":"a","kind":"t_source","axes":{},"key":"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}')
adir="$HX_STORE/store/${akey:0:2}/$akey"
check_a_run() { # PID: run A ends ok and b was computed from a's bytes
    set +e; wait "$1"; local rc=$?; set -e
    expect_eq "$rc" 0 "run A's exit status"
    local bkey
    bkey=$("$HX_TEST" plan a.yaml --json | grep -o '"stage":"b","kind":"t_slow","axes":{},"key":"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}')
    expect_eq "$(cat "$HX_STORE/store/${bkey:0:2}/$bkey/data.txt")" "slow:100:alpha:0:1" "b's output (computed from a)"
}

# 1. The issue's scenario: run A has committed a and runs b; run B makes a newer record; gc --keep 1.
#    A's record is "running" with a live process: it is kept, and every entry of its plan with it.
"$HX_TEST" run a.yaml >a.out 2>a.err &
pid=$!
wait_step 2 || fail "stage b did not start" # b (reading a) at step 2: a is committed
"$HX_TEST" run other.yaml >/dev/null 2>&1
"$HX_TEST" gc --keep 1 --json >gc.json
grep -q '"runs_removed":0' gc.json || fail "gc removed a live run's record: $(cat gc.json)"
grep -q '"runs_live":1' gc.json || fail "gc did not count the live run: $(cat gc.json)"
[ -f "$adir/manifest.json" ] || fail "gc removed entry a, which the live run A uses"
check_a_run $pid
# once A has ended, its record is an ordinary one: gc --keep 1 keeps only the newest (A's, now)
"$HX_TEST" run other.yaml >/dev/null 2>&1   # cached: a newer record
"$HX_TEST" gc --keep 1 --json >gc2.json
grep -q '"runs_removed":2' gc2.json || fail "gc after A ended: $(cat gc2.json)"
[ ! -e "$adir" ] || fail "an entry no kept run references survived gc"

# 2. The pin alone: a's stage reader holds it even when no record protects the run (its record lost its
#    process, as a record from an older hx would): gc removes the record but leaves the pinned input.
rm -rf "$HX_STORE"
"$HX_TEST" run a.yaml >a.out 2>a.err &
pid=$!
wait_step 2 || fail "stage b did not start" # b (reading a) at step 2: a is committed
id=$(readlink "$HX_STORE/runs/latest")
python3 - "$HX_STORE/runs/$id/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); del r["process"]; json.dump(r, open(sys.argv[1], "w"))
PY
"$HX_TEST" run other.yaml >/dev/null 2>&1
"$HX_TEST" gc --keep 1 --json >gc3.json
grep -q '"runs_removed":1' gc3.json || fail "gc should remove the unprotected record: $(cat gc3.json)"
[ -f "$adir/manifest.json" ] || fail "gc removed entry a while stage b was reading it"
check_a_run $pid
echo "interp_gc_live: ok"
