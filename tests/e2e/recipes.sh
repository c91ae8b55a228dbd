#!/usr/bin/env bash
# recipes.sh - every recipe in recipes/ plans at every scale (the examples as written), and the main job (ablate_masking) runs end to end
# at tiny scale with every step count cut down: data -> ... -> eval for both arms, then hx report and hx diff.
set -euo pipefail
cd "$TOP"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Every command names its own store: the user's .hx/ (or $HX_STORE) must neither be read nor written.

for r in recipes/*.yaml; do
    for scale in tiny small paper; do
        "$HX" plan "$r" --store "$tmp/plan-store" -S params.scale=$scale --json > "$tmp/plan.json"
        python3 - "$tmp/plan.json" "$r" "$scale" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p, "empty plan"
assert all(len(i["key"]) == 64 and i["state"] == "new" for i in p), "bad plan"
print("%-34s %-6s %3d instances" % (sys.argv[2], sys.argv[3], len(p)))
PY
    done
done

# the examples plan as written (recipes/examples/slurm_sweep.yaml kept a parameter the data kind had dropped)
for r in recipes/examples/*.yaml; do
    "$HX" plan "$r" --store "$tmp/plan-store" >/dev/null || { echo "FAIL: $r does not plan"; exit 1; }
done

# The main job, shrunk: a few steps per stage so it runs in seconds (the real tiny run takes minutes). The
# GenDistill stages are budgeted in tokens: 4 steps of 8 x 128 for stages 1 and 2, 6 of 8 x 128 for 3a, 6 of 16 x 96
# for 3b.
S=(-S scales.tiny.teacher.steps=40 -S scales.tiny.teacher_sft.steps=8 -S scales.tiny.align.tokens=4096
   -S scales.tiny.align_block.tokens=4096 -S scales.tiny.distill.tokens=6144 -S scales.tiny.finetune.tokens=9216
   -S scales.tiny.eval.max_new_tokens=4)
"$HX" run recipes/ablate_masking.yaml --store "$tmp/store" "${S[@]}" --json > "$tmp/run.json"
python3 - "$tmp/run.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["status"] == "ok", r
st = [s["stage"] for s in r["stages"]]
# 8 shared stages (two alignment stages) + finetune and eval per arm + the teacher's eval
assert len(st) == 13 and st.count("finetune") == 2 and st.count("eval") == 2, st
assert all(s["state"] == "executed" for s in r["stages"]), r
print("ran", len(st), "instances")
PY
# a second run executes nothing
"$HX" run recipes/ablate_masking.yaml --store "$tmp/store" "${S[@]}" --json > "$tmp/run2.json"
python3 -c "
import json,sys
r=json.loads(open('$tmp/run2.json').read().strip().splitlines()[-1])
assert all(s['state']=='cached' for s in r['stages']), r
"
# the report has the masking table with both arms and the teacher baseline
"$HX" report latest --store "$tmp/store" --format json > "$tmp/report.json"
python3 - "$tmp/report.json" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
s = json.dumps(rep)
for want in ("masking", "all_tokens", "completion_only", "ll_acc", "gen_acc", "retention"):
    assert want in s, want
print("report ok")
PY
"$HX" report latest --store "$tmp/store" --format md > "$tmp/report.md" # not piped: head closing the pipe fails pipefail
head -20 "$tmp/report.md"
