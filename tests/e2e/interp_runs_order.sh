#!/usr/bin/env bash
# interp_runs_order.sh - run records are ordered by checked start times: an imported record from the future takes
# neither runs/latest nor the place of the newest run in gc; hx runs lists every record, malformed ones as such.
. "$(dirname "$0")/lib_interp.inc"
cp "$R/interp_chain.yaml" chain.yaml
# an archive made elsewhere, holding a run whose id and start say 9999, and a record missing its fields
B="$W/B"
"$HX_TEST" run chain.yaml --store "$B" >/dev/null 2>&1
old=$(readlink "$B/runs/latest")
fut=99991231-235959-999ff
mv "$B/runs/$old" "$B/runs/$fut"
python3 - "$B/runs/$fut/run.json" "$fut" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["run_id"] = sys.argv[2]; r["started"] = "9999-12-31T23:59:59Z"
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
ln -sfn "$fut" "$B/runs/latest"
"$HX_TEST" export "$fut" -o future.tar.zst --store "$B" >/dev/null 2>&1 || fail "export of the crafted run"

"$HX_TEST" run chain.yaml >/dev/null 2>&1
sleep 1.1
"$HX_TEST" run chain.yaml -S params.seed=4 >/dev/null 2>&1
newest=$(readlink "$HX_STORE/runs/latest")
"$HX_TEST" import future.tar.zst >/dev/null 2>&1 || fail "import"
[ -f "$HX_STORE/runs/$fut/run.json" ] || fail "the imported record is kept"
expect_eq "$(readlink "$HX_STORE/runs/latest")" "$newest" "runs/latest after importing a run from the future"
# a record that lost its fields (hand-edited, truncated by another tool)
mkdir "$HX_STORE/runs/20200101-000000-00000"; echo '{"run_id": "20200101-000000-00000"}' >"$HX_STORE/runs/20200101-000000-00000/run.json"
"$HX_TEST" runs --json >runs.json
python3 - runs.json "$newest" "$fut" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
ids = [r["run_id"] for r in rows]
assert len(rows) == 4, rows                     # every record is listed
assert ids[0] == sys.argv[2], ids               # newest first, by checked start time
f = rows[ids.index(sys.argv[3])]
assert f["status"] == "malformed" and f["problem"] == "start time missing, malformed or in the future", f
m = rows[ids.index("20200101-000000-00000")]
assert m["status"] == "malformed" and m["problem"] == "no status", m
PY
"$HX_TEST" runs | grep -q "^$fut  malformed .*start time missing, malformed or in the future" || fail "hx runs text: $("$HX_TEST" runs)"
# gc --keep 1 keeps the real newest run (and its entries); the record from the future sorts oldest
"$HX_TEST" gc --keep 1 >/dev/null
[ -f "$HX_STORE/runs/$newest/run.json" ] || fail "gc --keep 1 removed the newest run"
[ ! -e "$HX_STORE/runs/$fut" ] || fail "gc --keep 1 kept the record from the future"
expect_eq "$(readlink "$HX_STORE/runs/latest")" "$newest" "runs/latest after gc"
out=$("$HX_TEST" run chain.yaml -S params.seed=4 --json 2>/dev/null)
expect_eq "$(count cached "$out")" 5 "the newest run's entries survived gc"
echo "interp_runs_order: ok"
