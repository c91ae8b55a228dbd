#!/usr/bin/env bash
# interp_chain.sh - plan/run/re-run/change one parameter/why/dag/runs/show/gc and exit codes, through build/hx-test.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml

# plan: 2 shared + 3 arm instances, all new; the --json contract
plan=$("$HX_TEST" plan chain.yaml --json)
expect_eq "$(grep -c '"stage":' <<<"$plan")" 5 "plan instances"
expect_eq "$(grep -c '"axes":{}' <<<"$plan")" 2 "shared instances"
expect_eq "$(grep -c '"axes":{"sep":' <<<"$plan")" 3 "arm instances"
expect_eq "$(grep -Ec '"key":"[0-9a-f]{64}"' <<<"$plan")" 5 "64-hex keys"
expect_eq "$(grep -c '"state":"new"' <<<"$plan")" 5 "new states"
grep -q '"inputs":{"a":"[0-9a-f]\{64\}","b":"[0-9a-f]\{64\}"}' <<<"$plan" || fail "inputs by role"

# first run executes everything; the --json result is the last line of stdout
out=$("$HX_TEST" run chain.yaml --json 2>run1.err)
last=$(tail -n1 <<<"$out")
expect_eq "$(count executed "$last")" 5 "first run executed"
grep -q '"status":"ok"' <<<"$last" || fail "status ok"
grep -q '"event":"stage"' run1.err || fail "--json events on stderr"
expect_eq "$(executions)" 5 "executions after run 1"

# second run: nothing executes (its wall time is printed, not asserted: tests never time; hx bench does)
t0=$(date +%s.%N)
out=$("$HX_TEST" run chain.yaml --json 2>/dev/null)
dt=$(echo "$(date +%s.%N) - $t0" | bc)
expect_eq "$(count cached "$out")" 5 "no-op re-run cached"
expect_eq "$(executions)" 5 "executions after no-op run"
echo "no-op re-run: ${dt}s"
"$HX_TEST" plan chain.yaml | grep -q "5 instances (3 arms): 5 cached, 0 to run" || fail "plan after run"

# changing one parameter re-executes exactly that stage and its dependents
"$HX_TEST" plan chain.yaml -S stages.mid.with.times=3 >plan2.txt
expect_eq "$(grep -c '^stale' plan2.txt)" 4 "stale after change"
grep -q '^cached  src' plan2.txt || fail "src stays cached"
grep -q 'with.times: 2 -> 3' plan2.txt || fail "plan says why"
out=$("$HX_TEST" run chain.yaml -S stages.mid.with.times=3 --json 2>/dev/null)
expect_eq "$(count executed "$out")" 4 "executed after change"
expect_eq "$(count cached "$out")" 1 "cached after change"
"$HX_TEST" why chain.yaml last -S stages.mid.with.times=3 | grep -q "unchanged since run" || fail "why: unchanged"
"$HX_TEST" why chain.yaml last -S stages.mid.with.times=4 >why.txt
grep -q 'inputs.a: .* (stage mid changed)' why.txt || fail "why names the input"
grep -q 'with.times: 3 -> 4' why.txt || fail "why names the parameter"
# explicit default, 1e-3 style numbers and reordered keys change no key
cat > same.yaml <<'Y'
hx: 1
name: interp_chain
axes: {sep: ["-", "+", "*"]}
params: {text: hello, seed: 3.0}
stages:
  last: {with: {sep: "${axes.sep}", upper: false}, inputs: {b: src, a: mid}, kind: t_concat}
  mid:  {kind: t_concat, inputs: {a: src}, with: {times: 2, sep: "+"}}
  src:  {kind: t_source, with: {seed: "${params.seed}", text: "${params.text}", scale: 1e0}}
Y
"$HX_TEST" plan same.yaml | grep -q "5 cached, 0 to run" || fail "equivalent recipe keeps keys"

# dag, runs, show
"$HX_TEST" dag chain.yaml >dag.dot
expect_eq "$(grep -c 'fillcolor=palegreen' dag.dot)" 5 "dag nodes cached"
expect_eq "$(grep -c -- '->' dag.dot)" 7 "dag edges"
expect_eq "$("$HX_TEST" runs | wc -l | tr -d ' ')" 3 "runs listed"
"$HX_TEST" show latest --json | grep -q '"status": "ok"' || fail "show latest"
key=$(grep -o '"key":"[0-9a-f]*"' <<<"$plan" | head -1 | cut -d'"' -f4)
"$HX_TEST" show "${key:0:10}" | grep -q '"sha256"' || fail "show KEY prints the manifest"

# exit codes: 2 for recipe errors (with file:line:col), 1 for a failed stage, 3 for the store
printf 'hx: 1\nstages:\n  a: {kind: t_source, with: {txet: x}}\n' >bad.yaml
set +e
"$HX_TEST" run bad.yaml 2>err.txt; rc=$?
set -e
expect_eq "$rc" 2 "recipe error exit"
grep -q "bad.yaml:3:30: stage 'a': kind t_source has no parameter 'txet' (did you mean 'text'?)" err.txt || fail "error position: $(cat err.txt)"
cat > failing.yaml <<'Y'
hx: 1
stages:
  ok:   {kind: t_source}
  boom: {kind: t_fail, inputs: {in: ok}, with: {message: "exploded"}}
  after: {kind: t_concat, inputs: {a: ok, b: boom}}
  other: {kind: t_source, with: {text: other}}
Y
set +e
out=$("$HX_TEST" run failing.yaml --json 2>/dev/null); rc=$?
set -e
expect_eq "$rc" 1 "failed stage exit"
expect_eq "$(count failed "$out")" 1 "one failed"
expect_eq "$(count skipped "$out")" 1 "dependent skipped"
expect_eq "$(count executed "$out")" 2 "independent stages still run"
grep -q 't_fail: exploded' <<<"$out" || fail "failure message recorded"
: >plainfile
set +e
"$HX_TEST" run chain.yaml --store plainfile 2>/dev/null; rc=$?
"$HX_TEST" run chain.yaml --bogus 2>/dev/null; rc2=$?
set -e
expect_eq "$rc" 3 "store error exit"
expect_eq "$rc2" 2 "usage error exit"

# gc: keep the newest run; entries only older runs used go with their records
before=$(find store/store -mindepth 2 -maxdepth 2 -type d | wc -l)
"$HX_TEST" gc --keep 1 | grep -q "removed" || fail "gc output"
after=$(find store/store -mindepth 2 -maxdepth 2 -type d | wc -l)
[ "$after" -lt "$before" ] || fail "gc removed nothing ($before -> $after)"
"$HX_TEST" plan failing.yaml | grep -q "^cached  ok" || fail "gc kept what the newest run references"
"$HX_TEST" help run | grep -q "usage: hx run RECIPE" || fail "help from the table"
echo "interp_chain: ok"
