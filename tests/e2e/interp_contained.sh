#!/usr/bin/env bash
# interp_contained.sh - out of memory in a stage fails that stage only; SIGTERM stops like Ctrl-C; a killed run shows as dead.
. "$(dirname "$0")/lib_interp.inc"
cat >oom.yaml <<'Y'
hx: 1
name: oom
stages:
  big:   {kind: t_oom}
  bigb:  {kind: t_oom, with: {how: backend}}
  after: {kind: t_fail, inputs: {in: big}, with: {fail: false}}
  other: {kind: t_source, with: {text: fine}}
Y
# 1. xmalloc and the CPU backend's allocator fail inside two stages: those fail, their dependent is skipped,
#    the independent stage is executed, hx exits 1 (a stage failed) and the record ends "failed" with the reason.
for jobs in 1 3; do
    rm -rf "$HX_STORE"
    set +e; out=$("$HX_TEST" run oom.yaml --jobs $jobs --json 2>err.txt); rc=$?; set -e
    expect_eq "$rc" 1 "exit status with --jobs $jobs"
    python3 - "$HX_STORE/runs/latest/run.json" "$out" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1]))
assert rec["status"] == "failed", rec["status"]
st = {s["stage"]: s for s in rec["stages"]}
for s in ("big", "bigb"):
    assert st[s]["state"] == "failed", st[s]
    assert "ran out of memory: out of memory allocating 4611686018427387904 bytes" in st[s]["error"], st[s]["error"]
assert st["after"]["state"] == "skipped" and "input 'in' (stage big) did not complete" in st["after"]["error"], st["after"]
assert st["other"]["state"] == "executed", st["other"]
assert json.loads(sys.argv[2].splitlines()[-1])["status"] == "failed"
PY
    grep -q "^other " "$HX_TEST_LOG" || fail "the independent stage did not execute"
    expect_eq "$(find "$HX_STORE/store" -name manifest.json | wc -l | tr -d ' ')" 1 "only 'other' was committed (--jobs $jobs)"
    : >"$HX_TEST_LOG"
done

# 2. SIGTERM is handled like SIGINT: the stage stops at a safe point, exit 130, the record says interrupted
cp "$R/interp_slow.yaml" slow.yaml
rm -rf "$HX_STORE"
"$HX_TEST" run slow.yaml -S params.steps=40 -S params.ms=50 >t.out 2>t.err &
pid=$!
wait_step 3 || fail "stage a did not reach step 3"
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
expect_eq "$rc" 130 "exit status after SIGTERM"
grep -q '"status": "interrupted"' "$HX_STORE/runs/latest/run.json" || fail "run record after SIGTERM: $(grep status "$HX_STORE/runs/latest/run.json")"
[ -n "$(find "$HX_STORE/partial" -name step)" ] || fail "checkpoint kept after SIGTERM"
"$HX_TEST" runs --json | grep -q '"status":"interrupted"' || fail "hx runs after SIGTERM: $("$HX_TEST" runs)"

# 3. a run killed outright never ends its record: hx runs shows it as dead, a live one as running
old=$(readlink "$HX_STORE/runs/latest")
"$HX_TEST" run slow.yaml -S params.steps=400 -S params.ms=50 >k.out 2>k.err &
pid=$!
# (the interrupted run's checkpoint is already past step 1: wait for this run's own record)
for _ in $(seq 200); do [ "$(readlink "$HX_STORE/runs/latest")" != "$old" ] && break; sleep 0.05; done
id=$(readlink "$HX_STORE/runs/latest")
[ "$id" != "$old" ] || fail "the new run wrote no record"
wait_step 4 || fail "stage a did not reach step 4"
"$HX_TEST" runs --json | grep -q "\"run_id\":\"$id\",\"status\":\"running\"" || fail "live run: $("$HX_TEST" runs)"
kill -KILL $pid; wait $pid 2>/dev/null || true
grep -q '"status": "running"' "$HX_STORE/runs/$id/run.json" || fail "the killed run's record should still say running"
"$HX_TEST" runs --json | grep -q "\"run_id\":\"$id\",\"status\":\"dead\"" || fail "killed run: $("$HX_TEST" runs)"
"$HX_TEST" runs | grep -q "^$id  dead" || fail "hx runs text: $("$HX_TEST" runs)"
echo "interp_contained: ok"
