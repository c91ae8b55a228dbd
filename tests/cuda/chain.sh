#!/usr/bin/env bash
# chain.sh - every stage kind through `hx run --device cuda` (tests/cuda/chain.yaml) from a store that holds the
# CPU-made data and tokenizer (scripts/device_prep.sh puts it in .hxdev/store). DEVICE=guard runs it on a CPU
# machine with the guard device (any host dereference of device memory in a stage faults).
. "$(dirname "$0")/../e2e/lib_e2e.inc"
dev=${DEVICE:-cuda}
if [ -d .hxdev/store ]; then cp -r .hxdev/store "$T/store"
else "$HX" run tests/cuda/chain_prep.yaml --store "$T/store" >"$T/prep.log" 2>&1 || { cat "$T/prep.log"; fail "data/tokenizer"; }
fi
t0=$(date +%s.%N)
"$HX" run tests/cuda/chain.yaml --store "$T/store" --device "$dev" >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "hx run on $dev"; }
t1=$(date +%s.%N)
cat "$T/run.log"
grep -q "ok (6 executed, 2 cached, 0 failed" "$T/run.log" || fail "expected 6 stages executed on $dev after 2 cached"
log=$(find "$T/store" -path '*' -name train_log.jsonl | xargs ls -1 | head -n 50)
python3 - $log <<'PY' || fail "a training loss is not finite or the teacher's did not fall"
import json, math, sys
for f in sys.argv[1:]:
    rows = [json.loads(l) for l in open(f)]
    assert rows and all(math.isfinite(r["loss"]) for r in rows), (f, rows)
    if len(rows) >= 6:  # the teacher
        assert rows[-1]["loss"] < rows[0]["loss"] - 0.5, (f, rows[0], rows[-1])
    print(f"{f.split('/')[-2][:12]}: {len(rows)} log rows, loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}")
PY
awk -v a="$t0" -v b="$t1" -v d="$dev" 'BEGIN { printf "chain on %s: %.1f s\n", d, b - a }'
