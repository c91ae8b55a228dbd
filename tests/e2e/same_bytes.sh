#!/usr/bin/env bash
# same_bytes.sh - same key, same bytes: two clean runs of tests/e2e/recipes/train_kinds.yaml (every stage kind: data,
# tokenizer, pretrain, convert, align, distill, finetune, eval, at the smallest sizes) in two stores give the same keys
# and byte-identical output files for every entry on the CPU; run-dependent facts (timings, host, threads) live in
# the manifests only. Both runs use the same thread count (OMP_NUM_THREADS): CPU results depend on it.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
R=tests/e2e/recipes/train_kinds.yaml
for s in a b; do
    "$HX" run "$R" --store "$T/$s" >"$T/$s.log" 2>&1 || { cat "$T/$s.log"; fail "clean run $s"; }
    grep -q "ok (8 executed, 0 cached" "$T/$s.log" || { cat "$T/$s.log"; fail "run $s: expected 8 executed"; }
done
# every output file of every entry (the manifests hold times and hosts: compared apart)
digests() { (cd "$1/store" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum); }
digests "$T/a" >"$T/a.sha"
digests "$T/b" >"$T/b.sha"
[ "$(wc -l <"$T/a.sha")" -ge 30 ] || { cat "$T/a.sha"; fail "too few output files"; }
diff "$T/a.sha" "$T/b.sha" || fail "two clean runs wrote different bytes under the same keys"
# the manifests differ only in run-dependent fields, and list the same outputs with the same digests
python3 - "$T/a" "$T/b" <<'PY' || fail "manifests"
import glob, json, os, sys
a, b = sys.argv[1:]
ma = sorted(glob.glob(os.path.join(a, "store", "*", "*", "manifest.json")))
assert len(ma) == 8, ma
for p in ma:
    x = json.load(open(p))
    y = json.load(open(p.replace(a, b, 1)))
    for k in ("key", "kind", "kind_version", "with", "inputs"):
        assert x[k] == y[k], (x["stage"], k)
    outs = lambda m: [(o["path"], o["size"], o["sha256"]) for o in m["outputs"]]  # mtime_ns is the run's
    assert outs(x) == outs(y), x["stage"]
print("same_bytes: %d entries, every output file identical" % len(ma))
PY
echo ok
