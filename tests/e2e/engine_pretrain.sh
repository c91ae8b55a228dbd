#!/usr/bin/env bash
# engine_pretrain.sh - data -> tokenizer -> pretrain (a tiny Qwen3 teacher) through `hx run`; a run killed after
# a checkpoint resumes and ends byte-identical to an uninterrupted one, also when that checkpoint was damaged;
# hx generate / hx score on the artifact.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
PID=
cat >"$T/r.yaml" <<'YAML'
hx: 1
name: engine_pretrain
stages:
  world: {kind: data, with: {n_facts: 40, brown_files: 20, cloze_files: 2, cloze_items: 10}}
  tok: {kind: tokenizer, inputs: {data: world}, with: {vocab_size: 512}}
  teacher:
    kind: pretrain
    inputs: {data: world, tokenizer: tok}
    with: {steps: 40, hidden: 64, layers: 2, heads: 4, kv_heads: 2, head_dim: 16, ffn: 128, seq_len: 64, batch: 8,
           log_every: 5, ckpt_every: 5, warmup: 5, lr: 0.005}
YAML
teacher_dir() { dirname "$(find "$1/store" -name train_log.jsonl | head -n1)"; }
kill_at_checkpoint() { # STORE: runs the recipe into STORE (log STORE1.log), SIGKILLed once a checkpoint appears
    "$HX" run "$T/r.yaml" --store "$1" >"${1}1.log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do
        [ -n "$(find "$1" -name state.json 2>/dev/null | head -n1 || true)" ] && break
        kill -0 $PID 2>/dev/null || break
        sleep 0.05
    done
    kill -9 $PID 2>/dev/null || true
    wait $PID 2>/dev/null || true
    PID=
}

# uninterrupted
"$HX" run "$T/r.yaml" --store "$T/a" >"$T/a.log" 2>&1 || { cat "$T/a.log"; fail "uninterrupted run"; }
A=$(teacher_dir "$T/a")
for f in config.json model.safetensors tokenizer.json train_log.jsonl; do [ -s "$A/$f" ] || fail "artifact lacks $f"; done
[ "$(wc -l <"$A/train_log.jsonl")" = 8 ] || fail "train_log.jsonl should have 8 lines"
python3 - "$A/train_log.jsonl" <<'PY' || fail "loss did not fall"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[-1]["loss"] < rows[0]["loss"] - 0.5, rows
PY

# killed after its first checkpoint, then resumed
kill_at_checkpoint "$T/b"
[ -n "$(find "$T/b" -name state.json | head -n1)" ] || fail "no checkpoint appeared before the run ended"
"$HX" run "$T/r.yaml" --store "$T/b" >"$T/b2.log" 2>&1 || { cat "$T/b2.log"; fail "resumed run"; }
grep -q "resuming at step" "$T/b2.log" || { cat "$T/b2.log"; fail "the second run did not resume"; }
B=$(teacher_dir "$T/b")
cmp "$A/model.safetensors" "$B/model.safetensors" || fail "resumed model differs from the uninterrupted one"
cmp "$A/train_log.jsonl" "$B/train_log.jsonl" || fail "resumed train_log.jsonl differs"

# killed after a checkpoint whose file then loses two bytes: the resume reports it and starts over (no older
# state), ending identical to the uninterrupted run (before checkpoint digests it resumed silently from the damage)
kill_at_checkpoint "$T/c"
st=$(find "$T/c" -name 'state-*.safetensors' | sort | tail -n1)
[ -n "$st" ] || fail "no checkpoint file appeared before the run ended"
python3 tests/e2e/damage.py "$st"
"$HX" run "$T/r.yaml" --store "$T/c" >"$T/c2.log" 2>&1 || { cat "$T/c2.log"; fail "run after the damaged checkpoint"; }
grep -q "$(basename "$st"): damaged" "$T/c2.log" || { cat "$T/c2.log"; fail "the damaged checkpoint was not reported"; }
C=$(teacher_dir "$T/c")
cmp "$A/model.safetensors" "$C/model.safetensors" || fail "a damaged checkpoint changed the model"
cmp "$A/train_log.jsonl" "$C/train_log.jsonl" || fail "a damaged checkpoint changed train_log.jsonl"

# engine tools on the artifact
"$HX" generate "$A" -p "The capital of" -p "The" --max-new 8 >"$T/gen.txt" || fail "hx generate"
[ "$(wc -l <"$T/gen.txt")" -ge 2 ] || fail "hx generate printed no completions"
"$HX" score "$A" -c "The capital of France is" -x " Paris" -c "The cat" -x " sat" >"$T/score.jsonl" || fail "hx score"
python3 - "$T/score.jsonl" <<'PY' || fail "hx score output"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and all(r["logp"] < 0 and r["n_tokens"] >= 1 for r in rows), rows
PY
"$HX" score "$A" -c "only a context" 2>/dev/null && fail "score without a continuation must fail"
"$HX" generate /nonexistent -p x 2>"$T/err.txt" && fail "generate on a missing directory must fail"
grep -q "nonexistent" "$T/err.txt" || fail "the error should name the directory"
# the kinds' defaults are the tiny sizes of recipes/base/scales.yaml: a tokenizer and a pretrain stage that give no
# size have the keys of the same stages given every field of scales.tiny.tokenizer and scales.tiny.teacher
# (the fields recipes/base/gendistill.yaml passes, each from the scales)
w() { local f out=""; for f in "${@:2}"; do out="$out${out:+, }$f: \"\${scales.tiny.$1.$f}\""; done; echo "{$out}"; }
cat >"$T/tiny.yaml" <<YAML
hx: 1
include: [$TOP/recipes/base/scales.yaml]
stages:
  world: {kind: data}
  tok: {kind: tokenizer, inputs: {data: world}}
  t: {kind: pretrain, inputs: {data: world, tokenizer: tok}}
  tok2: {kind: tokenizer, inputs: {data: world}, with: $(w tokenizer source vocab_size path)}
  t2: {kind: pretrain, inputs: {data: world, tokenizer: tok2},
       with: $(w teacher source path hidden layers heads kv_heads head_dim ffn seq_len batch steps lr min_lr warmup schedule)}
YAML
"$HX" plan "$T/tiny.yaml" --store "$T/p" --json >"$T/tiny.json" || fail "plan of the defaults"
python3 - "$T/tiny.json" <<'PY' || fail "a tokenizer or pretrain default is not the tiny scale's (recipes/base/scales.yaml)"
import json, sys
k = {i["stage"]: i["key"] for i in json.load(open(sys.argv[1]))}
assert k["tok"] == k["tok2"], "tokenizer"
assert k["t"] == k["t2"], "pretrain"
PY
echo "ok"
