#!/usr/bin/env bash
# runs_metrics.sh - `hx runs --metrics`: two real runs of a tiny pipeline (teacher + a student per steps value + evals)
# that differ in one param, as one table whose numbers are `hx report`'s; the columns are the params that differ;
# --where / --recipe / RUN select rows; typos are errors that list what exists.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
S="$T/store"
run_id() { sed -n 's/^run \([0-9a-z-]*\): ok.*/\1/p' "$1"; }
"$HX" run tests/e2e/recipes/runs_metrics.yaml --store "$S" >"$T/run1.log" 2>&1 || { cat "$T/run1.log"; fail "hx run 1"; }
sleep 1 # the second run starts a second later: newest first is not a tie
"$HX" run tests/e2e/recipes/runs_metrics.yaml --store "$S" -S params.lr=0.01 >"$T/run2.log" 2>&1 || { cat "$T/run2.log"; fail "hx run 2"; }
R1=$(run_id "$T/run1.log") R2=$(run_id "$T/run2.log")
[ -n "$R1" ] && [ -n "$R2" ] || fail "no run ids"
"$HX" report "$R1" --store "$S" --format json >"$T/rep1.json"
"$HX" report "$R2" --store "$S" --format json >"$T/rep2.json"
"$HX" runs --metrics --store "$S" --json >"$T/all.json"
"$HX" runs --metrics --store "$S" >"$T/all.txt"
"$HX" runs --metrics --store "$S" --json --where params.lr=0.010 >"$T/lr.json"
"$HX" runs --metrics --store "$S" --json --where axes.steps=6 >"$T/steps6.json"
"$HX" runs --metrics --store "$S" --json "$R1" >"$T/one.json"
"$HX" runs --metrics --store "$S" --json --recipe other >"$T/none.json"
python3 - "$T" "$R1" "$R2" <<'PY' || fail "hx runs --metrics values"
import json, sys
T, R1, R2 = sys.argv[1:]
load = lambda n: json.load(open(f"{T}/{n}"))
rep = {R1: load("rep1.json"), R2: load("rep2.json")}
allj = load("all.json")
rows = allj["rows"]
# newest run first, each run's rows in its report's order: teacher, steps=2, steps=6
assert [(r["run_id"], r["label"]) for r in rows] == [(R, l) for R in (R2, R1)
        for l in ("teacher (eval_teacher)", "steps=2", "steps=6")], [(r["run_id"], r["label"]) for r in rows]
# every number and interval is hx report's (its table of the eval stage with the arms)
assert {r["table"] for r in rows} == {"eval"}
fields = ["ll_acc", "ll_acc_ci", "gen_acc", "gen_acc_ci", "delta_ll", "delta_ll_ci", "delta_gen", "delta_gen_ci",
          "did", "did_ci", "did_p", "n", "n_paired"]
for r in rows:
    tab = [t for t in rep[r["run_id"]]["tables"] if t["name"] == r["table"]][0]
    want = [x for x in tab["rows"] if x["label"] == r["label"]][0]
    for f in fields:
        a, b = r[f], want[f]  # hx report --format json prints 6 significant digits
        a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
        assert len(a) == len(b) and all(x == y or abs(x - y) <= 1e-6 * max(1, abs(y)) for x, y in zip(a, b)), \
            (r["run_id"], r["label"], f, a, b)
    assert r["key"] == want["key"] and r["teacher"] == want["teacher"]
    assert r["n"] > 20 and 0 <= r["ll_acc"] <= 1 and r["ll_acc_ci"][0] <= r["ll_acc"] <= r["ll_acc_ci"][1]
    if not r["teacher"]:
        assert r["did_ci"][0] <= r["did"] <= r["did_ci"][1] and r["n_paired"] == r["n"], r
    else:
        assert r["delta_ll"] is None and r["did"] is None
# the params as recorded (after -S), and the columns that differ: lr and the axis, not the constant scale
assert rows[0]["params"]["params.lr"] == "0.01" and rows[3]["params"]["params.lr"] == "0.003", rows[0]["params"]
assert all(r["params"]["params.scale"] == "tiny" for r in rows)
assert allj["columns"] == ["params.lr", "axes.steps"], allj["columns"]
assert rows[1]["params"]["axes.steps"] == "2" and "axes.steps" not in rows[0]["params"]
# filters: a param (numbers by value), an axis (the teachers have none), one run, another recipe
lr = load("lr.json")["rows"]
assert [(r["run_id"], r["label"]) for r in lr] == [(R2, "teacher (eval_teacher)"), (R2, "steps=2"), (R2, "steps=6")]
assert load("lr.json")["columns"] == ["axes.steps"]
s6 = load("steps6.json")
assert [(r["run_id"], r["label"]) for r in s6["rows"]] == [(R2, "steps=6"), (R1, "steps=6")] and s6["columns"] == ["params.lr"]
one = load("one.json")
assert {r["run_id"] for r in one["rows"]} == {R1} and len(one["rows"]) == 3 and one["columns"] == ["axes.steps"]
assert load("none.json")["rows"] == []
# the text table: the differing params as columns, cells as hx report prints them
txt = open(f"{T}/all.txt").read().splitlines()
head = txt[0].split()
assert head[:4] == ["run", "model", "params.lr", "axes.steps"] and "params.scale" not in head, head
line = [l for l in txt if l.startswith(R1) and " steps=6 " in l][0]
r = [x for x in rows if x["run_id"] == R1 and x["label"] == "steps=6"][0]
cell = "%.1f [%.1f, %.1f]" % tuple(100 * v for v in [r["ll_acc"]] + r["ll_acc_ci"])
assert cell in line and " 0.003 " in line and " 6 " in line, (cell, line)
PY
# typos and misuse are errors that say what exists
set +e
"$HX" runs --metrics --store "$S" --where params.lrr=1 >"$T/e1" 2>&1; rc1=$?
"$HX" runs --metrics --store "$S" --where lr >"$T/e2" 2>&1; rc2=$?
"$HX" runs --store "$S" --where params.lr=1 >"$T/e3" 2>&1; rc3=$?
set -e
[ $rc1 = 2 ] && grep -q "no run has 'params.lrr'; the runs have: params.scale, params.lr, axes.steps" "$T/e1" || { cat "$T/e1"; fail "unknown --where key"; }
[ $rc2 = 2 ] && grep -q "expected KEY=VALUE" "$T/e2" || { cat "$T/e2"; fail "malformed --where"; }
[ $rc3 = 2 ] && grep -q "\-\-where goes with --metrics" "$T/e3" || { cat "$T/e3"; fail "--where without --metrics"; }
# --recipe filters the plain listing too
[ "$("$HX" runs --store "$S" --recipe runs_metrics | wc -l)" = 2 ] || fail "runs --recipe"
[ "$("$HX" runs --store "$S" --recipe other)" = "no runs in $S" ] || fail "runs --recipe other"
echo "ok runs_metrics"
