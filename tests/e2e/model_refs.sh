#!/usr/bin/env bash
# model_refs.sh - commands that take a model take a store reference (RUN:STAGE[axis=value], a key prefix) as well as a
# directory, with errors that list what exists; written checkpoints are complete Hugging Face directories; `generate
# --chat` prints prompt and reply apart; an unknown command gets a suggestion.
. "$(dirname "$0")/lib_e2e.inc"
REF=tests/reference/hf_hybrid_model
PY_SRC=nn/modeling_hx_hybrid.py # the remote code's one copy: hx embeds it, the reference directories link to it
S="--store $T/s"

"$HX" run tests/e2e/recipes/model_refs.yaml $S >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "hx run"; }
key_of() { python3 -c "import json,sys; r=json.load(open('$T/s/runs/latest/run.json')); print([s['key'] for s in r['stages'] if s['stage']=='$1' and all(str(s['axes'].get(k))==v for k,v in (a.split('=') for a in sys.argv[1:]))][0])" "${@:2}"; }
run_id=$(python3 -c "import json; print(json.load(open('$T/s/runs/latest/run.json'))['run_id'])")
k2=$(key_of model seed=2)
d2=$T/s/store/${k2:0:2}/$k2

# a checkpoint hx writes is a complete Hugging Face directory; the weights are the source's, byte for byte
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json \
         modeling_hx_hybrid.py; do
    [ -s "$d2/$f" ] || fail "$f missing from $d2"
done
cmp -s "$d2/model.safetensors" $REF/model.safetensors || fail "model.safetensors differs from the source"
cmp -s "$d2/modeling_hx_hybrid.py" $PY_SRC || fail "remote code differs from $PY_SRC"
# the reference directories carry the same file (a Hugging Face directory holds its remote code) as a link to
# $PY_SRC (hf_hybrid_make.py writes the links): never a stale copy, never a dangling link
for d in "$TOP"/tests/reference/hf_hybrid_*/; do
    f=${d%/}/modeling_hx_hybrid.py
    [ -e "$f" ] || fail "$f missing or a dangling link (hf_hybrid_make.py links it to $PY_SRC)"
    cmp -s "$f" "$TOP/$PY_SRC" || fail "$f differs from $PY_SRC (regenerate it)"
done
for f in "$TOP"/tests/fixtures/*/modeling_hx_hybrid.py; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    cmp -s "$f" "$TOP/$PY_SRC" || fail "$f differs from $PY_SRC (regenerate it)"
done
python3 - "$d2" <<'PY' || fail "HF files"
import json, sys
d = sys.argv[1]
c = json.load(open(d + "/config.json"))
assert c["auto_map"]["AutoModelForCausalLM"] == "modeling_hx_hybrid.HxHybridForCausalLM", c
assert c["transformers_version"] == "5.17.0", c
t = json.load(open(d + "/tokenizer_config.json"))
assert t["eos_token"] == "<|endoftext|>" and t["pad_token"] == "<|endoftext|>", t
assert "<|im_start|>" in t["chat_template"] and "add_generation_prompt" in t["chat_template"], t
g = json.load(open(d + "/generation_config.json"))
vocab = json.load(open(d + "/tokenizer.json"))["added_tokens"]
ids = {a["content"]: a["id"] for a in vocab}
assert g["eos_token_id"] == [ids["<|endoftext|>"], ids["<|im_end|>"]] and g["do_sample"] is False, g
PY

# the same completions from the directory and from every form of reference
gen() { "$HX" generate "$@" -p "The capital of" -p "Jerusalem serves as" --max-new 6 --json 2>/dev/null; }
want=$(gen $REF)
[ -n "$want" ] || fail "no completions from the directory"
[ "$(gen 'latest:model[seed=2]' $S)" = "$want" ] || fail "latest:model[seed=2]"
[ "$(gen "${run_id:0:15}:model[seed=1]" $S)" = "$want" ] || fail "RUN-prefix:model[seed=1]"
[ "$(gen "$run_id:base" $S)" = "$want" ] || fail "RUN:base"
[ "$(gen ":base" $S)" = "$want" ] || fail ":base (latest)"
[ "$(gen "${k2:0:8}" $S)" = "$want" ] || fail "key prefix"
[ "$(HX_STORE=$T/s gen 'latest:base')" = "$want" ] || fail "HX_STORE"
[ "$("$HX" score 'latest:model[seed=1]' $S -c 'Jerusalem serves as' -x ' the capital' 2>/dev/null)" = \
  "$("$HX" score $REF -c 'Jerusalem serves as' -x ' the capital' 2>/dev/null)" ] || fail "score latest:model[seed=1]"

# errors say what exists and which forms a model reference takes
err() { # expected-substring, args...: exit status 2 (usage) and the message
    local want=$1 rc=0; shift
    "$HX" "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ $rc -eq 2 ] || { cat "$T/err"; fail "hx $*: exit status $rc (want 2)"; }
    grep -qF -- "$want" "$T/err" || { cat "$T/err"; fail "hx $*: no '$want'"; }
}
err "has 2 instances (model[seed=1], model[seed=2]): name one with [axis=value,...]" generate latest:model -p x $S
err "has no stage 'modle' (did you mean 'model'?); its stages: tok, base, model" generate 'latest:modle' -p x $S
err "no instance of stage 'model' in run $run_id has [seed=3]" generate 'latest:model[seed=3]' -p x $S
err "has no axis 'sed' (did you mean 'seed'?)" generate 'latest:model[sed=1]' -p x $S
err "is not a model: no config.json" generate latest:tok -p x $S
err "RUN:STAGE[axis=value,...] (RUN: a run id, a unique prefix or latest" generate nosuch -p x $S
err "no store entry with key abcd" score abcd -c a -x b $S
err "there is no store at $T/none" generate latest:base -p x --store "$T/none"
[ ! -e "$T/none" ] || fail "a missing store was created"

# --chat: prompt and reply apart; the reply is the completion --json reports
"$HX" generate $REF --chat -p "Name a city." -p "Name a road." --max-new 5 >"$T/chat" 2>/dev/null
"$HX" generate $REF --chat -p "Name a city." -p "Name a road." --max-new 5 --json >"$T/chat.json" 2>/dev/null
python3 - "$T/chat" "$T/chat.json" <<'PY' || fail "--chat output"
import json, sys
text = open(sys.argv[1]).read()
replies = [json.loads(l)["completion"] for l in open(sys.argv[2])]
want = "== prompt 1 ==\nName a city.\n== reply 1 ==\n%s\n\n== prompt 2 ==\nName a road.\n== reply 2 ==\n%s\n" % tuple(replies)
assert text == want, (text, want)
PY

# hx show RUN: a readable summary (stages, states, times, metrics); --json the record; RUN:STAGE[...] the manifest
"$HX" show latest $S >"$T/show" || fail "hx show latest"
grep -q "^run $run_id: model_refs, ok in " "$T/show" || { cat "$T/show"; fail "show: header"; }
grep -q "^  stages   4 instances: 4 executed" "$T/show" || { cat "$T/show"; fail "show: state counts"; }
grep -qE "^tok +executed +[0-9.]+s +[0-9a-f]{12} +vocab_size=512( \(\+[0-9]+ more\))?$" "$T/show" || { cat "$T/show"; fail "show: tok line"; }
grep -qE "^model +seed=2 +executed +[0-9.]+s +${k2:0:12}" "$T/show" || { cat "$T/show"; fail "show: model[seed=2] line"; }
"$HX" run tests/e2e/recipes/model_refs.yaml $S >/dev/null 2>&1 || fail "second run"
"$HX" show latest $S | grep -q "^  stages   4 instances: 4 cached" || fail "show: a cached run"
"$HX" show "$run_id" --json $S | python3 -c "import json,sys; r=json.load(sys.stdin); assert r['run_id']=='$run_id' and len(r['stages'])==4" \
    || fail "show --json is the record"
"$HX" show 'latest:model[seed=2]' $S | python3 -c "import json,sys; m=json.load(sys.stdin); assert m['key']=='$k2', m['key']" \
    || fail "show RUN:STAGE[axis=value] is the manifest"
err "has 2 instances" show latest:model $S

# an unknown command gets a suggestion
err "'genrate' is not an hx command (did you mean 'generate'?)" genrate
err "'shwo' is not an hx command (did you mean 'show'?)" help shwo
echo "ok"
