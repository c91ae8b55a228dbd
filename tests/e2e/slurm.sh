#!/usr/bin/env bash
# slurm.sh - hx run --executor slurm on a real one-node Slurm (scripts/slurm-local.sh): every instance is a Slurm job
# seen by sacct, the store equals a local run's, a re-submission executes nothing, failures keep their stderr,
# cancel/Ctrl-C/kill leave no torn entry and the resubmission resumes, two submitters execute each key once.
. "$(dirname "$0")/lib_interp.inc"
SL="$TOP/scripts/slurm-local.sh"
started=
cleanup() {
    jobs -p | xargs -r kill -9 2>/dev/null
    # jobs of this test still queued (a failed assertion) must not outlive it
    if [ -d "$W" ]; then
        find "$W" -path '*/slurm/*.sh' 2>/dev/null | while read -r f; do
            squeue -h -o '%i %o' 2>/dev/null | awk -v f="$f" '$2 == f { print $1 }'
        done | xargs -r scancel 2>/dev/null
    fi
    [ -n "$started" ] && bash "$SL" stop >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT

cp "$R/interp_chain.yaml" chain.yaml
cp "$R/interp_slow.yaml" slow.yaml
# usage errors need no cluster: exit 2 and a message that says what to do
usage_error() { # message-part, hx run arguments...
    local want=$1; shift
    set +e; "$HX_TEST" run chain.yaml "$@" >u.out 2>u.err; local rc=$?; set -e
    expect_eq "$rc" 2 "exit status of hx run $*"
    grep -q -- "$want" u.err || fail "hx run $*: wanted '$want' in: $(cat u.err)"
}
usage_error "go with --executor slurm" --detach
usage_error "go with --executor slurm (not --executor local)" --executor local --slurm-partition p
usage_error "expected local or slurm" --executor pbs
usage_error "expected an sbatch option as NAME=VALUE" --executor slurm --slurm-opt "qos high"
usage_error "expected cpu, auto or cuda (Slurm picks the GPU)" --executor slurm --device cuda:1
"$HX_TEST" run chain.yaml >/dev/null 2>&1
set +e; "$HX_TEST" cancel latest >u.out 2>u.err; rc=$?; set -e
expect_eq "$rc" 2 "hx cancel of a local run"
grep -q "was not submitted to Slurm" u.err || fail "hx cancel of a local run: $(cat u.err)"

# hx exec-key (what a job runs) needs no cluster: one instance from a run record, exactly once, and only if the
# record's instance hashes to the key with this binary
rid=$(readlink "$HX_STORE/runs/latest")
key=$(python3 -c "import json; print([s['key'] for s in json.load(open('$HX_STORE/runs/$rid/run.json'))['stages'] if s['stage'] == 'last'][0])")
rm -rf "$HX_STORE/store/${key:0:2}/$key"
before=$(executions)
"$HX_TEST" exec-key "$key" "$rid" 2>/dev/null || fail "exec-key of a missing entry"
[ -f "$HX_STORE/store/${key:0:2}/$key/manifest.json" ] || fail "exec-key committed the entry"
expect_eq "$(executions)" $((before + 1)) "exec-key executes the one instance"
grep -q '"state": "executed"' "$HX_STORE/runs/$rid/slurm/$key.json" || fail "exec-key's outcome: executed"
"$HX_TEST" exec-key "$key" "$rid" 2>/dev/null || fail "exec-key of an entry in the store"
expect_eq "$(executions)" $((before + 1)) "exec-key of a committed key executes nothing"
grep -q '"state": "cached"' "$HX_STORE/runs/$rid/slurm/$key.json" || fail "exec-key's outcome: cached"
rm -rf "$HX_STORE/store/${key:0:2}/$key"
python3 - "$HX_STORE/runs/$rid/run.json" "$key" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for s in r["stages"]:
    if s["key"] == sys.argv[2]: s["with"]["times"] = 7
json.dump(r, open(sys.argv[1], "w"))
PY
set +e; "$HX_TEST" exec-key "$key" "$rid" >u.out 2>u.err; rc=$?; set -e
expect_eq "$rc" 2 "exec-key of a record that does not hash to the key"
grep -q "the run record's instance hashes to [0-9a-f]*" u.err || fail "exec-key's refusal: $(cat u.err)"
[ ! -e "$HX_STORE/store/${key:0:2}/$key" ] || fail "exec-key committed a tampered instance"
expect_eq "$(executions)" $((before + 1)) "executions after a refused exec-key"
set +e; "$HX_TEST" exec-key "$(printf 'f%.0s' $(seq 64))" "$rid" >u.out 2>u.err; rc=$?; set -e
expect_eq "$rc" 2 "exec-key of a key the record does not have"
grep -q "no instance with this key" u.err || fail "exec-key of an unknown key: $(cat u.err)"
rm -rf "$HX_STORE" "$HX_TEST_LOG"

eval "$(bash "$SL" env)"
if ! bash "$SL" status >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        if ! command -v slurmctld >/dev/null 2>&1; then
            echo "SKIP: Slurm is not installed and installing it (apt-get) needs root"
            exit 0
        fi
        if ! bash "$SL" start >"$W/start.log" 2>&1; then
            echo "SKIP: Slurm is installed but cannot be started without root: $(tail -n 1 "$W/start.log")"
            exit 0
        fi
    else
        bash "$SL" start >"$W/start.log" 2>&1 || { cat "$W/start.log"; fail "scripts/slurm-local.sh start failed as root"; }
    fi
    started=1
fi
echo "slurm: $(sinfo -h -o '%P %D node, %c cpus, %T')"

# an sbatch that fails (no such partition): exit 2 with sbatch's reason, nothing left queued
set +e; "$HX_TEST" run chain.yaml --executor slurm --slurm-partition no_such_partition >u.out 2>u.err; rc=$?; set -e
expect_eq "$rc" 2 "exit status when sbatch fails"
grep -q "sbatch for stage 'src' (key [0-9a-f]*) failed: .*[Pp]artition" u.err || fail "sbatch's reason: $(cat u.err)"
[ -z "$(squeue -h -n "hx:src:$(grep -o 'key [0-9a-f]*' u.err | head -1 | cut -c5-)" -t pending,running)" ] ||
    fail "jobs left after a failed submission"
rm -rf "$HX_STORE"

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
run_json() { echo "$HX_STORE/runs/$1/run.json"; }
entries() { find "$1/store" -name manifest.json 2>/dev/null | wc -l | tr -d ' '; }
# the outputs of every entry: "<key> <path> <sha256>" lines, sorted
digests() {
    for m in $(find "$1/store" -name manifest.json | sort); do
        python3 -c "import json,sys; m=json.load(open(sys.argv[1]))
for o in m['outputs']: print(m['key'], o['path'], o['sha256'])" "$m"
    done | sort
}

# 1. the chain (5 instances) through Slurm: each ran as a job, seen by sacct; the store equals a local run's
HX_STORE="$W/local" HX_TEST_LOG="$W/local.log" "$HX_TEST" run chain.yaml >local.out 2>&1 || fail "local run"
t0=$SECONDS
out=$("$HX_TEST" run chain.yaml --executor slurm --json 2>s1.err) || { cat s1.err; fail "slurm run"; }
echo "chain through slurm: $((SECONDS - t0)) s"
expect_eq "$(count executed "$out")" 5 "instances executed through slurm"
id=$(grep -o '"run_id":"[^"]*"' <<<"$out" | cut -d'"' -f4)
ids=$(json "$(run_json "$id")" "','.join(d['slurm']['jobs'].values())")
expect_eq "$(tr ',' '\n' <<<"$ids" | wc -l | tr -d ' ')" 5 "jobs in the run record"
expect_eq "$(json "$(run_json "$id")" "d['executor']")" slurm "executor in the run record"
# accounting: sacct (slurmdbd) or, on the local cluster, sacct -c (the job completion log)
acct=$(sacct -n -P -X -j "$ids" -o JobID,State 2>/dev/null || sacct -c -n -P -X -j "$ids" -o JobID,State)
expect_eq "$(grep -c '|COMPLETED$' <<<"$acct")" 5 "jobs COMPLETED in sacct"
for k in $(json "$(run_json "$id")" "' '.join(d['slurm']['jobs'])"); do
    # each job ran hx exec-key on its own key (the outcome file carries the job id Slurm gave it)
    j=$(json "$HX_STORE/runs/$id/slurm/$k.json" "d['job']")
    expect_eq "$j" "$(json "$(run_json "$id")" "d['slurm']['jobs']['$k']")" "job id of $k"
done
expect_eq "$(executions)" 5 "stage executions"
expect_eq "$(digests "$HX_STORE")" "$(digests "$W/local")" "store entries (keys, files, digests) vs a local run"
expect_eq "$(entries "$HX_STORE")" 5 "entries"

# 2. a re-submission executes nothing and submits no job
out=$("$HX_TEST" run chain.yaml --executor slurm --json 2>s2.err) || fail "second slurm run"
expect_eq "$(count cached "$out")" 5 "cached on re-submission"
id2=$(grep -o '"run_id":"[^"]*"' <<<"$out" | cut -d'"' -f4)
expect_eq "$(json "$(run_json "$id2")" "len(d['slurm']['jobs'])")" 0 "jobs submitted on re-submission"
expect_eq "$(executions)" 5 "executions after re-submission"
# with nothing to run, --detach has nothing to leave running: the run ends at once
out=$("$HX_TEST" run chain.yaml --executor slurm --detach --json 2>/dev/null)
grep -q '"status":"ok"' <<<"$out" || fail "a detached run of cached instances: $out"

# 3. a failing job: its stderr shown and kept with the run record; its dependent skipped, the others run
cat >fail.yaml <<'EOF'
hx: 1
name: slurm_fail
stages:
  src: {kind: t_source, with: {text: fails}}
  bad: {kind: t_fail, inputs: {in: src}, with: {message: "boom on purpose"}}
  after: {kind: t_concat, inputs: {a: src, b: bad}}
  other: {kind: t_concat, inputs: {a: src}}
EOF
set +e; out=$("$HX_TEST" run fail.yaml --executor slurm --json 2>s3.err); rc=$?; set -e
expect_eq "$rc" 1 "exit status with a failed job"
expect_eq "$(count failed "$out")" 1 "failed"
expect_eq "$(count skipped "$out")" 1 "skipped (the failed job's dependent, cancelled by Slurm)"
expect_eq "$(count executed "$out")" 2 "executed"
grep -q 'boom on purpose' s3.err || fail "the failed job's error is shown"
id3=$(grep -o '"run_id":"[^"]*"' <<<"$out" | cut -d'"' -f4)
err=$(json "$(run_json "$id3")" "[s for s in d['stages'] if s['stage']=='bad'][0]['error']")
grep -q 'stderr (.*\.err) ends:' <<<"$err" || fail "the record keeps where the stderr is: $err"
grep -q '\[bad\] error: t_fail: boom on purpose' <<<"$err" || fail "the record keeps the stderr's tail: $err"
bad=$(json "$(run_json "$id3")" "[s for s in d['stages'] if s['stage']=='bad'][0]['key']")
grep -q 'boom on purpose' "$HX_STORE/runs/$id3/slurm/$bad.err" || fail "stderr file kept in the run's directory"
expect_eq "$(json "$(run_json "$id3")" "d['status']")" failed "status of the failed run"

# 4. --detach, hx show follows, hx cancel mid-stage: no entry, the checkpoint kept; the resubmission resumes
rm -rf "$HX_STORE"
out=$("$HX_TEST" run slow.yaml --executor slurm --detach --json -S params.steps=40 -S params.ms=100 2>s4.err)
id4=$(grep -o '"run_id":"[^"]*"' <<<"$out" | cut -d'"' -f4)
expect_eq "$(grep -o '"jobs":[0-9]*' <<<"$out")" '"jobs":4' "detached submission"
wait_step 5 300 0.1 || true # the check below says what it met
"$HX_TEST" show "$id4" --json | grep -q '"state": "running"' || fail "hx show follows a running job"
"$HX_TEST" runs | grep "$id4" | grep -q running || fail "hx runs lists the detached run as running"
"$HX_TEST" cancel "$id4" >cancel.out || fail "hx cancel"
grep -q 'status cancelled' cancel.out || fail "cancel output: $(cat cancel.out)"
expect_eq "$(json "$(run_json "$id4")" "d['status']")" cancelled "status after hx cancel"
expect_eq "$(json "$(run_json "$id4")" "sorted(s['state'] for s in d['stages'] if s['stage'] in ('a', 'b', 'd'))")" \
    "['failed', 'skipped', 'skipped']" "a interrupted, b and d never ran"
a_key=$(json "$(run_json "$id4")" "[s for s in d['stages'] if s['stage']=='a'][0]['key']")
[ ! -d "$HX_STORE/store/${a_key:0:2}/$a_key" ] || fail "no entry for the cancelled stage"
stopped_at=$(cat "$HX_STORE/partial/$a_key/ckpt/step")
[ "$stopped_at" -ge 5 ] || fail "checkpoint kept in partial/ (step $stopped_at)"
[ -z "$(squeue -h -j "$(json "$(run_json "$id4")" "','.join(d['slurm']['jobs'].values())")" -t pending,running 2>/dev/null)" ] ||
    fail "jobs left in the queue after hx cancel"
out=$("$HX_TEST" run slow.yaml --executor slurm --json -S params.steps=40 -S params.ms=100 2>s5.err) || fail "resubmission"
resumed=$("$HX_TEST" show "$a_key" | grep -o '"resumed_from": [0-9]*' | grep -o '[0-9]*$')
echo "cancelled at step $stopped_at; the resubmitted job resumed from step $resumed of 40"
[ "$resumed" -ge "$stopped_at" ] || fail "the resubmitted job did not resume (resumed_from=$resumed)"
c_done=$(json "$(run_json "$id4")" "sum(s['state'] == 'executed' for s in d['stages'])")
expect_eq "$(count executed "$out")" $((4 - c_done)) "resubmission executes what did not finish"
[ -z "$(ls "$HX_STORE/partial")" ] || fail "partial/ cleaned after success"

# 5. killed in the middle of a commit (SIGKILL, as by the OOM killer or a node failure; a scheduler's time limit or
#    preemption sends SIGTERM first, which the job answers by stopping at a safe point): no torn entry
rm -rf "$HX_STORE"
HX_TEST_COMMIT_SLEEP=30 "$HX_TEST" run slow.yaml --executor slurm --detach -S params.steps=2 -S params.ms=10 >s6.out 2>&1
id6=$(grep -o 'run [0-9a-f-]*' s6.out | head -1 | cut -d' ' -f2)
wait_commit 300 0.1 || fail "commit pause not reached"
m=$(find "$HX_STORE/partial" -name manifest.json | head -1)
k=$(basename "$(dirname "$(dirname "$m")")")
for p in $(scontrol listpids "$(json "$(run_json "$id6")" "d['slurm']['jobs']['$k']")" | awk 'NR > 1 { print $1 }'); do
    kill -KILL "$p"
done
"$HX_TEST" cancel "$id6" >/dev/null # the run's other jobs; waits until every job has ended
expect_eq "$(json "$(run_json "$id6")" "[s['state'] for s in d['stages'] if s['key']=='$k'][0]")" failed \
    "the killed job's instance"
[ ! -e "$HX_STORE/store/${k:0:2}/$k" ] || fail "torn entry after a kill mid-commit"
out=$("$HX_TEST" run slow.yaml --executor slurm --json -S params.steps=2 -S params.ms=10 2>s7.err) || fail "after a killed commit"
grep -q '"status":"ok"' <<<"$out" || fail "resubmission after a killed commit: $out"
"$HX_TEST" run slow.yaml --verify --json -S params.steps=2 -S params.ms=10 2>/dev/null | grep -q '"status":"ok"' ||
    fail "entries verify after a killed commit"

# 6. Ctrl-C of a foreground run cancels its jobs: exit 130, status interrupted, nothing left queued
rm -rf "$HX_STORE"
"$HX_TEST" run slow.yaml --executor slurm -S params.steps=80 -S params.ms=100 >s8.out 2>s8.err &
pid=$!
wait_step 3 300 0.1 || true # the check below says what it met
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
expect_eq "$rc" 130 "exit status after Ctrl-C"
id8=$(json "$HX_STORE/runs/latest/run.json" "d['run_id']")
expect_eq "$(json "$(run_json "$id8")" "d['status']")" interrupted "status after Ctrl-C"
[ -z "$(squeue -h -j "$(json "$(run_json "$id8")" "','.join(d['slurm']['jobs'].values())")" -t pending,running 2>/dev/null)" ] ||
    fail "jobs left in the queue after Ctrl-C"

# 7. two submitters of the same recipe at once: every key executed once
rm -rf "$HX_STORE" "$HX_TEST_LOG"
"$HX_TEST" run slow.yaml --executor slurm --json -S params.steps=10 -S params.ms=100 >c1.out 2>c1.err &
p1=$!
"$HX_TEST" run slow.yaml --executor slurm --json -S params.steps=10 -S params.ms=100 >c2.out 2>c2.err &
p2=$!
wait $p1 || fail "first concurrent submitter"
wait $p2 || fail "second concurrent submitter"
expect_eq "$(executions)" 4 "executions with two submitters"
expect_eq "$(sort -u "$HX_TEST_LOG" | wc -l | tr -d ' ')" 4 "distinct keys executed"
expect_eq "$(entries "$HX_STORE")" 4 "entries with two submitters"
echo "slurm: ok"
