#!/usr/bin/env bash
# device_guard.sh - one place decides a stage's device, checked on a CPU machine with the guard device (the CPU ops
# over memory that faults on any host access): `hx run --device guard` runs the GPU kinds (pretrain, align, distill,
# finetune, eval) there and the others on the CPU, each manifest records where, the kernel knobs set are recorded,
# and the outputs equal a CPU run's bit for bit.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
R=tests/e2e/recipes/train_kinds.yaml
digests() { (cd "$1/store" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum); }

"$HX" run "$R" --store "$T/c" --device cpu >"$T/c.log" 2>&1 || { cat "$T/c.log"; fail "cpu run"; }
HX_CUDA_FLASH2=1 HX_KDA_PROF=1 "$HX" run "$R" --store "$T/g" --device guard >"$T/g.log" 2>&1 ||
    { cat "$T/g.log"; fail "guard run"; }
for st in teacher align distill finetune; do
    grep -q "^\[$st\(\[[^]]*\]\)\?\] .* on guard)" "$T/g.log" || { cat "$T/g.log"; fail "$st did not train on the guard device"; }
done
python3 - "$T/g" "$T/c" <<'PY' || fail "manifests"
import glob, json, os, sys
g, c = sys.argv[1:]
gpu = {"pretrain", "align", "distill", "finetune", "eval"}
for p in glob.glob(os.path.join(g, "store", "*", "*", "manifest.json")):
    m = json.load(open(p))
    want = "guard" if m["kind"] in gpu else "cpu"
    assert m["device"] == want, (m["stage"], m["device"])
    assert m["env"] == {"HX_CUDA_FLASH2": "1", "HX_KDA_PROF": "1"}, (m["stage"], m.get("env"))
for p in glob.glob(os.path.join(c, "store", "*", "*", "manifest.json")):
    m = json.load(open(p))
    assert m["device"] == "cpu" and "env" not in m, (m["stage"], m["device"])
PY
digests "$T/c" >"$T/c.sha"
digests "$T/g" >"$T/g.sha"
diff "$T/c.sha" "$T/g.sha" || fail "the guard device's outputs differ from the CPU's"
# a device this machine does not have is refused before anything runs
"$HX" run "$R" --store "$T/x" --device cuda:1 >"$T/x.log" 2>&1 && fail "--device cuda:1 accepted without that GPU"
grep -q -- "--device cuda:1" "$T/x.log" || { cat "$T/x.log"; fail "the error should name the device"; }
[ ! -d "$T/x/store" ] || [ -z "$(ls "$T/x/store")" ] || fail "something ran"
echo ok
