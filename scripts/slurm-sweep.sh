#!/usr/bin/env bash
# slurm-sweep.sh - a sweep of 8 arms (recipes/examples/slurm_sweep.yaml, real stage kinds) run locally and through
# the local Slurm cluster (scripts/slurm-local.sh), each into its own store; checks that both have the same keys,
# byte-identical store entries and the same report, and prints the times. Usage: scripts/slurm-sweep.sh [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
HX=${HX:-$TOP/build/hx}
RECIPE=${1:-recipes/examples/slurm_sweep.yaml}
[ -x "$HX" ] || { echo "slurm-sweep: build hx first (make HX_CUDA=0)" >&2; exit 2; }
bash scripts/slurm-local.sh start
eval "$(bash scripts/slurm-local.sh env)"
T=$(mktemp -d /tmp/hx-slurm-sweep.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

t0=$(date +%s.%N)
"$HX" run "$RECIPE" --store "$T/local" --device cpu >"$T/local.out" 2>"$T/local.err" || { tail "$T/local.err"; exit 1; }
t1=$(date +%s.%N)
"$HX" run "$RECIPE" --store "$T/slurm" --device cpu --executor slurm >"$T/slurm.out" 2>"$T/slurm.err" ||
    { tail -n 30 "$T/slurm.err"; exit 1; }
t2=$(date +%s.%N)
"$HX" run "$RECIPE" --store "$T/slurm" --device cpu --executor slurm >"$T/again.out" 2>"$T/again.err"
"$HX" report latest --store "$T/local" --format md >"$T/local.md"
"$HX" report latest --store "$T/slurm" --format md >"$T/slurm.md"

python3 - "$T" "$t0" "$t1" "$t2" <<'PY'
import json, os, subprocess, sys
T, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
def run(store, which="latest"):
    runs = sorted(d for d in os.listdir(os.path.join(T, store, "runs")) if d != "latest")
    return json.load(open(os.path.join(T, store, "runs", runs[0 if which == "first" else -1], "run.json")))
def keys(r):
    return {(s["stage"], json.dumps(s["axes"], sort_keys=True)): s["key"] for s in r["stages"]}
def outputs(store, key):
    m = json.load(open(os.path.join(T, store, "store", key[:2], key, "manifest.json")))
    return {o["path"]: o["sha256"] for o in m["outputs"]}
def timing_free(v):
    """A JSON output without the fields that measure time (speeds, durations): they differ between any two runs."""
    if isinstance(v, dict):
        return {k: timing_free(x) for k, x in v.items() if "seconds" not in k and not k.endswith("_per_s")}
    return [timing_free(x) for x in v] if isinstance(v, list) else v
def same_but_timing(key):
    a, b = outputs("local", key), outputs("slurm", key)
    if a.keys() != b.keys(): return False
    for p in a:
        if a[p] == b[p]: continue
        if not p.endswith(".json"): return False
        la, lb = (json.load(open(os.path.join(T, st, "store", key[:2], key, p))) for st in ("local", "slurm"))
        if timing_free(la) != timing_free(lb): return False
    return True
loc, slu, again = run("local"), run("slurm", "first"), run("slurm")
kl, ks = keys(loc), keys(slu)
arms = len(set(s["axes"].get("steps") for s in loc["stages"] if s["axes"]))
same_keys = sum(kl[k] == ks.get(k) for k in kl)
same_entries = sum(outputs("local", k) == outputs("slurm", k) for k in kl.values())
jobs = slu["slurm"]["jobs"]
# every instance ran as a job: the job id its outcome file records is the one the submitter got from sbatch
ran_as_job = sum(json.load(open(os.path.join(T, "slurm", "runs", slu["run_id"], "slurm", k + ".json")))["job"] == j
                 for k, j in jobs.items())
same_timing = sum(same_but_timing(k) for k in kl.values())
def report(store): # less the line that names the run and when it started
    return [l for l in open(os.path.join(T, store + ".md")) if not l.startswith("Run `")]
report_same = report("local") == report("slurm")
executed_again = sum(s["state"] == "executed" for s in again["stages"])
print("slurm-sweep: %d arms, %d instances" % (arms, len(kl)))
print("  local run:          %6.1f s (%s)" % (t1 - t0, loc["status"]))
print("  through slurm:      %6.1f s (%s), %d jobs, %d of them ran hx exec-key as that job"
      % (t2 - t1, slu["status"], len(jobs), ran_as_job))
print("  same keys:          %d/%d" % (same_keys, len(kl)))
print("  identical entries:  %d/%d (every output file's sha256)" % (same_entries, len(kl)))
print("  equal entries:      %d/%d (JSON outputs less the fields that time the run: *seconds*, *_per_s)"
      % (same_timing, len(kl)))
print("  same report:        %s (less its line naming the run)" % ("yes" if report_same else "NO"))
print("  re-submission:      %d executed, %d jobs" % (executed_again, len(again["slurm"]["jobs"])))
ok = (same_keys == len(kl) and same_timing == len(kl) and report_same and len(jobs) == len(kl) == ran_as_job
      and executed_again == 0 and loc["status"] == slu["status"] == "ok")
print("slurm-sweep: " + ("ok" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
