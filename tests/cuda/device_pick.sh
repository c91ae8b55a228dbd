#!/usr/bin/env bash
# device_pick.sh - on a GPU machine: `hx run --device cuda:N` computes every GPU stage on GPU N (N = the last GPU, so
# cuda:1 on a 2-GPU machine: it used to train on GPU 0) and the manifests say so; a kernel knob that changes results
# is refused on the GPU, and every HX_KDA_*/HX_CUDA_* set is recorded. tests/e2e/recipes/train_kinds.yaml, seconds.
. "$(dirname "$0")/../e2e/lib_e2e.inc"
R=tests/e2e/recipes/train_kinds.yaml
n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
[ "$n" -ge 1 ] || fail "no GPU listed by nvidia-smi"
dev="cuda:$((n - 1))"
# the data and tokenizer made on the CPU machine (scripts/device_prep.sh: tests/cuda/pick_prep.yaml): no data packages here
if [ -d .hxdev/store ]; then cp -r .hxdev/store "$T/s"; cp -r .hxdev/store "$T/k"; fi
HX_KDA_PROF=1 "$HX" run "$R" --store "$T/s" --device "$dev" >"$T/a.log" 2>&1 || { cat "$T/a.log"; fail "hx run on $dev"; }
for st in teacher align distill finetune; do
    grep -q "^\[$st\(\[[^]]*\]\)\?\] .* on $dev)" "$T/a.log" || { grep "^\[$st" "$T/a.log"; fail "$st did not compute on $dev"; }
done
python3 - "$T/s" "$dev" <<'PY' || fail "manifests"
import glob, json, os, sys
store, dev = sys.argv[1:]
gpu = {"pretrain", "align", "distill", "finetune", "eval"}
for p in glob.glob(os.path.join(store, "store", "*", "*", "manifest.json")):
    m = json.load(open(p))
    assert m["device"] == (dev if m["kind"] in gpu else "cpu"), (m["stage"], m["device"])
    if m["stage"] in ("world", "tok") and m.get("env") is None:
        continue  # made on the CPU machine (tests/cuda/pick_prep.yaml), cached here
    assert m["env"] == {"HX_KDA_PROF": "1"}, (m["stage"], m.get("env"))
print("device_pick: every GPU stage on", dev)
PY
HX_CUDA_SIMT_ATTN=1 "$HX" run "$R" --store "$T/k" --device "$dev" >"$T/k.log" 2>&1 && fail "HX_CUDA_SIMT_ATTN accepted on $dev"
grep -q "HX_CUDA_SIMT_ATTN=1 is set" "$T/k.log" || { cat "$T/k.log"; fail "the refusal should name the knob"; }
echo ok
