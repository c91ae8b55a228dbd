#!/usr/bin/env bash
# interp_progress.sh - progress of a run: `hx runs` shows a running run's instances done and the running stage's live
# progress; every line a stage logs starts with its instance's name; without a terminal the output stays one line per
# event; the run's line gives a stage's real rate and an ETA from the stages' (or says what it leaves out).
source "$(dirname "$0")/lib_interp.inc"
"$HX_TEST" run "$R/interp_slow.yaml" -S params.steps=60 >run.out 2>run.err &
pid=$!
for i in $(seq 100); do
    "$HX_TEST" runs --json >runs.json
    python3 -c "import json,sys; r=json.load(open('runs.json')); sys.exit(0 if r and r[0].get('progress',{}).get('running') and r[0]['progress']['running'][0].get('done',0)>=5 else 1)" && break
    sleep 0.1
done
"$HX_TEST" runs >runs.txt
python3 - <<'PY' || fail "hx runs of a running run: $(cat runs.json runs.txt)"
import json, re
r = json.load(open("runs.json"))[0]
assert r["status"] == "running", r
p = r["progress"]
assert p["done"] == 0 and p["total"] == 4 and len(p["running"]) == 1, p
a = p["running"][0]
assert a["stage"] == "a" and a["instance"] == "a" and a["unit"] == "step" and a["total"] == 60, a
assert 5 <= a["done"] < 60 and 0 < a["rate"] <= 11 and a["eta_s"] > 0 and 0 <= a["age_s"] < 5, a
txt = open("runs.txt").read()
assert "\n    0/4 instances done\n" in txt, txt
m = re.search(r"\n    running a: (\d+)/60 step \((\d+\.\d)%\), (\d+) step/s, ETA (\d+)s \(as of (\d+)s ago\)\n", txt)
assert m and 5 <= int(m.group(1)) < 60, txt
PY
wait $pid || fail "run: $(cat run.err)"
python3 - <<'PY' || fail "log lines: $(cat run.err)"
err = open("run.err").read()
assert "\r" not in err and err.endswith("\n"), "not line-oriented"
lines = err.splitlines()
for st in "abc":
    assert "[%s] executing (t_slow, key " % st in err and any(l.startswith("[%s] done in " % st) for l in lines), st
# the stage's progress lines carry its name, and its real rate
a = [l for l in lines if l.startswith("[a] ") and " step (" in l]
assert a and a[-1].startswith("[a] 60/60 step (100.0%) ") and " step/s done in " in a[-1], a
# the run's line: no rate of "stages", the executed stage's rate, an ETA that says what it leaves out
run = [l for l in lines if l.startswith("run: ")]
assert run and not any("stage/s" in l for l in run), run
assert any(l.startswith("run: 1/4 stage (25.0%) ETA ? a executed, ") and l.endswith(" step/s (the ETA leaves out 3 without an estimate)") for l in run), run
assert run[-1].startswith("run: 4/4 stage (100.0%) done in "), run
PY
# a stage with axes: its instance name, everywhere it logs
"$HX_TEST" run "$R/interp_chain.yaml" 2>chain.err >/dev/null || fail "chain"
grep -q '^\[last\[sep=\*\]\] executing (t_concat, key ' chain.err || fail "axes in the prefix: $(cat chain.err)"
grep -q '^\[last\[sep=\*\]\] done in ' chain.err || fail "axes in the prefix: $(cat chain.err)"
# --json: the instance is a field of the stage's events
"$HX_TEST" run "$R/interp_chain.yaml" -S params.seed=4 --json 2>chain.json >/dev/null || fail "chain --json"
python3 - <<'PY' || fail "--json events: $(cat chain.json)"
import json
ev = [json.loads(l) for l in open("chain.json")]
logs = [e for e in ev if e["event"] == "log" and e["msg"].startswith("executing")]
assert len(logs) == 5 and {e["instance"] for e in logs} == {"src", "mid", "last[sep=-]", "last[sep=+]", "last[sep=*]"}, logs
assert all("instance" not in e for e in ev if e["event"] == "log" and e["msg"].startswith("run "))
PY
echo "ok interp_progress"
