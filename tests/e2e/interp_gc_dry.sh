#!/usr/bin/env bash
# interp_gc_dry.sh - hx gc --dry-run lists every run record, entry and partial it would remove with its size, and removes
# nothing; the real gc then removes exactly that list.
source "$(dirname "$0")/lib_interp.inc"
"$HX_TEST" run "$R/interp_chain.yaml" --json >run1.json 2>/dev/null
sleep 1
"$HX_TEST" run "$R/interp_chain.yaml" -S params.text=bye --json >run2.json 2>/dev/null
R1=$(python3 -c "import json; print(json.load(open('run1.json'))['run_id'])")
# a partial work directory of no run (a killed stage's debris), 3000 bytes
mkdir -p "$HX_STORE/partial/$(printf 'f%.0s' {1..64})/ckpt" && head -c 3000 /dev/zero >"$HX_STORE/partial/$(printf 'f%.0s' {1..64})/ckpt/x"
# report folders: run 1's (removed with it), one whose record is gone (removed), the user's own (kept)
mkdir -p "$HX_STORE/reports/$R1" "$HX_STORE/reports/20200101-000000-00000" "$HX_STORE/reports/mine"
head -c 100 /dev/zero >"$HX_STORE/reports/$R1/report.md"
head -c 50 /dev/zero >"$HX_STORE/reports/20200101-000000-00000/report.md"
head -c 10 /dev/zero >"$HX_STORE/reports/mine/notes.md"
snapshot() { (cd "$HX_STORE" && find store partial runs reports | sort); }
snapshot >before.txt
"$HX_TEST" gc --keep 1 --dry-run --json >dry.json
"$HX_TEST" gc --keep 1 --dry-run >dry.txt
snapshot >after.txt
cmp -s before.txt after.txt || fail "gc --dry-run changed the store: $(diff before.txt after.txt)"
python3 - "$R1" "$HX_STORE" <<'PY' || fail "gc --dry-run list"
import json, sys, os, glob
r1, store = sys.argv[1:]
d = json.load(open("dry.json"))
assert d["dry_run"] is True and d["removed_runs"] == [r1], d
run1 = json.load(open("run1.json"))
# the text=hello run's entries no longer referenced: src, mid and the 3 arms (run 2 shares none: src changed)
want = {s["key"]: s["stage"] for s in run1["stages"]}
got = {e["key"]: e["stage"] for e in d["removed_entries"]}
assert got == want, (got, want)
for e in d["removed_entries"]:
    p = f"{store}/store/{e['key'][:2]}/{e['key']}"
    size = sum(os.path.getsize(f) for f in glob.glob(p + "/**", recursive=True) if os.path.isfile(f))
    assert e["bytes"] == size and size > 0, (e, size)
assert d["removed_partials"] == [{"key": "f" * 64, "bytes": 3000}], d["removed_partials"]
assert d["entries_removed"] == 6 and d["runs_removed"] == 1
assert sorted((r["name"], r["bytes"]) for r in d["removed_reports"]) == sorted([(r1, 100), ("20200101-000000-00000", 50)]), d["removed_reports"]
assert d["bytes_freed"] == sum(e["bytes"] for e in d["removed_entries"]) + 3000 + 150
txt = open("dry.txt").read().splitlines()
assert txt[0] == "would remove run      " + r1, txt[0]
assert ("would remove report   " + r1) in [l[:43] for l in txt], txt
assert sum(l.startswith("would remove entry") for l in txt) == 5 and sum(l.startswith("would remove partial") for l in txt) == 1
assert any(l.startswith("would remove entry    %s  mid " % [k for k, s in want.items() if s == "mid"][0][:12]) for l in txt), txt
assert txt[-1].startswith("(dry run) 1 run record and 6 store entries removed"), txt[-1]
PY
"$HX_TEST" gc --keep 1 --json >real.json
python3 -c "
import json; d, r = json.load(open('dry.json')), json.load(open('real.json'))
for k in ('removed_runs', 'removed_entries', 'removed_partials', 'removed_reports', 'bytes_freed'): assert d[k] == r[k], (k, d[k], r[k])
assert r['dry_run'] is False" || fail "gc removed other than what --dry-run listed"
[ ! -d "$HX_STORE/runs/$R1" ] || fail "gc kept the old record"
[ ! -e "$HX_STORE/reports/$R1" ] || fail "gc kept the removed run's report folder"
[ ! -e "$HX_STORE/reports/20200101-000000-00000" ] || fail "gc kept an orphaned report folder"
[ -f "$HX_STORE/reports/mine/notes.md" ] || fail "gc removed a folder under reports/ that is no run's"
echo "ok interp_gc_dry"
