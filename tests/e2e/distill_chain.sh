#!/usr/bin/env bash
# distill_chain.sh - data -> tokenizer -> pretrain -> convert -> align -> distill -> finetune through `hx run`
# (tests/e2e/recipes/distill_chain.yaml): artifacts, losses that fall, frozen groups bit-identical, the masking axis
# sharing everything upstream, a no-op re-run, resume after an interruption, clear errors for bad recipes.
set -euo pipefail
: "${HX:?} ${TOP:?}"
cd "$TOP"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# spinning OpenMP threads starve each other on a busy shared machine (10x slower here); sleeping ones do not
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
T=$(mktemp -d /tmp/hx-e2e-distill.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
dir_of() { python3 -c "import json; r=json.load(open('$1/runs/latest/run.json')); k=[s['key'] for s in r['stages'] if s['stage']=='$2'][0]; print('$1/store/%s/%s' % (k[:2], k))"; }
R=tests/e2e/recipes/distill_chain.yaml

"$HX" run "$R" --store "$T/s" >"$T/a.log" 2>&1 || { cat "$T/a.log"; fail "hx run"; }
grep -q "ok (8 executed" "$T/a.log" || { cat "$T/a.log"; fail "expected 8 executed stage instances (one per arm only for finetune)"; }

python3 - "$T/s" <<'PY' || fail "artifact checks"
import json, os, struct, sys
store = sys.argv[1]
run = json.load(open(os.path.join(store, "runs", "latest", "run.json")))
def art(stage, **axes):
    for s in run["stages"]:
        if s["stage"] == stage and all(s["axes"].get(k) == v for k, v in axes.items()):
            return os.path.join(store, "store", s["key"][:2], s["key"])
    raise SystemExit("no stage %s %s" % (stage, axes))
def tensors(d):
    b = open(os.path.join(d, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
def log(d):
    return [json.loads(l) for l in open(os.path.join(d, "train_log.jsonl"))]
def metrics(d):
    return json.load(open(os.path.join(d, "manifest.json")))["metrics"]

conv, al, di = art("student"), art("align"), art("distill")
fa, fc = art("finetune", masking="all_tokens"), art("finetune", masking="completion_only")
for d in (al, di, fa, fc):
    for f in ("config.json", "model.safetensors", "tokenizer.json", "train_log.jsonl"):
        assert os.path.getsize(os.path.join(d, f)) > 0, (d, f)
    assert json.load(open(os.path.join(d, "config.json")))["model_type"] == "hx_hybrid"
tc, ta, td, tfa, tfc = tensors(conv), tensors(al), tensors(di), tensors(fa), tensors(fc)

# align: the converted layers' mixers move, nothing else; the MSE falls well
for k in tc:
    assert (tc[k] == ta[k]) == (".linear_attn." not in k), ("align", k)
la = log(al)
assert la[-1]["loss"] < 0.5 * la[0]["loss"], la
m = metrics(al)
assert m["aligned_layers"] == 2 and len(m["mse_per_layer"]) == 2, m
print("align: mse %.4f -> %.4f" % (la[0]["loss"], la[-1]["loss"]))

# distill (kl+ce, embeddings frozen): the loss is alpha*T^2*kl + (1-alpha)*ce, the embeddings are untouched
for r in log(di):
    assert abs(r["loss"] - (0.5 * 4 * r["kl"] + 0.5 * r["ce"])) < 1e-5, r
assert td["model.embed_tokens.weight"] == ta["model.embed_tokens.weight"]
assert sum(td[k] != ta[k] for k in td) > 10
m = metrics(di)
assert m["trainable_params"] < m["params"], m

# finetune (sft, attention frozen): attention bit-identical, everything else moves, loss falls; the two masks
# count different tokens and give different models
for t in (tfa, tfc):
    for k in td:
        frozen = ".self_attn." in k
        assert (t[k] == td[k]) == frozen, ("finetune", k)
for d in (fa, fc):
    l = log(d)
    assert l[-1]["loss"] < l[0]["loss"] - 0.2, l
ma, mc = metrics(fa), metrics(fc)
assert mc["loss_tokens_per_epoch"] < 0.5 * ma["loss_tokens_per_epoch"], (ma, mc)
assert tfa["model.layers.1.mlp.up_proj.weight"] != tfc["model.layers.1.mlp.up_proj.weight"]
print("finetune: all_tokens %d, completion_only %d loss tokens per epoch" %
      (ma["loss_tokens_per_epoch"], mc["loss_tokens_per_epoch"]))
PY

# a second run does nothing
"$HX" run "$R" --store "$T/s" >"$T/b.log" 2>&1 || { cat "$T/b.log"; fail "re-run"; }
grep -q "0 executed, 8 cached" "$T/b.log" || { cat "$T/b.log"; fail "the re-run should be all cached"; }

# --recompute (activation recomputation) changes no key and no byte: drop the trained entries from a copy of the
# store and rebuild them with it
cp -r "$T/s" "$T/r"
python3 - "$T/r" <<'PY'
import json, os, shutil, sys
r = json.load(open(os.path.join(sys.argv[1], "runs", "latest", "run.json")))
for s in r["stages"]:
    if s["stage"] in ("teacher", "align", "distill", "finetune"):
        shutil.rmtree(os.path.join(sys.argv[1], "store", s["key"][:2], s["key"]))
PY
"$HX" run "$R" --store "$T/r" --recompute >"$T/r.log" 2>&1 || { cat "$T/r.log"; fail "hx run --recompute"; }
grep -q "ok (5 executed, 3 cached" "$T/r.log" || { cat "$T/r.log"; fail "--recompute: expected the 5 trained instances to re-execute"; }
keys() { python3 -c "import json; print(sorted(s['key'] for s in json.load(open('$1/runs/latest/run.json'))['stages']))"; }
[ "$(keys "$T/s")" = "$(keys "$T/r")" ] || fail "--recompute changed a key"
for st in teacher align distill finetune; do
    for f in model.safetensors train_log.jsonl; do
        cmp "$(dir_of "$T/s" $st)/$f" "$(dir_of "$T/r" $st)/$f" || fail "--recompute: $st/$f differs"
    done
done

# the finetuned hybrid generates
D=$(python3 -c "import json,sys; r=json.load(open('$T/s/runs/latest/run.json')); k=[s['key'] for s in r['stages'] if s['stage']=='finetune'][0]; print('$T/s/store/%s/%s' % (k[:2], k))")
"$HX" generate "$D" -p "The capital of" --max-new 4 >"$T/gen.txt" || fail "hx generate on the finetuned student"
[ -s "$T/gen.txt" ] || fail "no completion"

# interrupted (SIGINT) in the middle of distill, then resumed: the same model as the uninterrupted run (copies of the
# store keep everything upstream cached)
cp -r "$T/s" "$T/k"
cp -r "$T/s" "$T/u"
"$HX" run "$R" --store "$T/k" -S stages.distill.with.steps=60 -S stages.distill.with.ckpt_every=2 \
    -S 'axes.masking=[completion_only]' >"$T/k1.log" 2>&1 &
PID=$!
for _ in $(seq 1200); do
    grep -q "^\[distill\] executing" "$T/k1.log" && [ -n "$(find "$T/k/partial" -name state.json 2>/dev/null)" ] && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.05
done
kill -INT $PID 2>/dev/null || true
wait $PID && fail "the interrupted run should fail" || true
grep -q "interrupted" "$T/k1.log" || { cat "$T/k1.log"; fail "no interruption message"; }
"$HX" run "$R" --store "$T/k" -S stages.distill.with.steps=60 -S stages.distill.with.ckpt_every=2 \
    -S 'axes.masking=[completion_only]' >"$T/k2.log" 2>&1 || { cat "$T/k2.log"; fail "resumed run"; }
grep -q "^\[distill\] resuming at step" "$T/k2.log" || { cat "$T/k2.log"; fail "distill did not resume"; }
"$HX" run "$R" --store "$T/u" -S stages.distill.with.steps=60 -S stages.distill.with.ckpt_every=2 \
    -S 'axes.masking=[completion_only]' >"$T/u.log" 2>&1 || { cat "$T/u.log"; fail "uninterrupted run"; }
cmp "$(dir_of "$T/k" distill)/model.safetensors" "$(dir_of "$T/u" distill)/model.safetensors" ||
    fail "resumed distill differs from the uninterrupted one"
cmp "$(dir_of "$T/k" distill)/train_log.jsonl" "$(dir_of "$T/u" distill)/train_log.jsonl" ||
    fail "resumed train_log.jsonl differs"

# recipe errors are caught before anything runs
"$HX" run "$R" --store "$T/s" -S 'stages.finetune.with.freeze=[attn]' >"$T/e1.log" 2>&1 && fail "freeze [attn] accepted"
grep -q "attn" "$T/e1.log" || { cat "$T/e1.log"; fail "the error should name the bad group"; }
"$HX" run "$R" --store "$T/s" -S stages.align.inputs.student=teacher >"$T/e2.log" 2>&1 && fail "align of a Qwen3 accepted"
grep -q "convert" "$T/e2.log" || { cat "$T/e2.log"; fail "the error should say align takes a convert stage"; }
"$HX" run "$R" --store "$T/s" -S stages.distill.with.objective=kld >"$T/e3.log" 2>&1 && fail "objective kld accepted"
grep -q "kl" "$T/e3.log" || { cat "$T/e3.log"; fail "the error should list the objectives"; }
echo "ok"
