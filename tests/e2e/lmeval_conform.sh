#!/usr/bin/env bash
# lmeval_conform.sh - hx's log-likelihood scoring against lm-evaluation-harness 0.4.x, item by item: the fixture
# tests/fixtures/lmeval_ll was written by tests/reference/lmeval_ll.py (transformers, lm-eval's encode_pair and
# multiple_choice scoring) for a random Qwen3 with the real Qwen3 tokenizer. hx scores the same checkpoint and items
# through the user's paths (an eval stage fed by a bench stage; hx score) and must give every choice's
# log-likelihood to 1e-4, the same continuation token counts and is_greedy, the same acc / acc_norm predictions,
# and acc with its stderr as lm-eval computes them.
set -euo pipefail
: "${HX:?} ${TOP:?}"
cd "$TOP"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
F=${LMEVAL_FIXTURE:-$TOP/tests/fixtures/lmeval_ll}
T=$(mktemp -d /tmp/hx-e2e-lmeval.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$F/expected.json" ] && [ -f "$F/model.safetensors" ] || fail "no fixture at $F (tests/reference/lmeval_ll.py writes it)"
cat >"$T/r.yaml" <<YAML
hx: 1
name: lmeval_conform
stages:
  model: {kind: pretrain, with: {source: load, path: $F}}
  tok: {kind: tokenizer, with: {source: load, path: qwen3}}
  ref: {kind: bench, with: {files: [$F/items.jsonl]}}
  eval: {kind: eval, inputs: {model: model, bench: ref, tokenizer: tok}, with: {chat: false, max_new_tokens: 1}}
YAML
S="$T/store"
"$HX" run "$T/r.yaml" --store "$S" >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "hx run"; }
E=$(dirname "$(grep -l '"stage": "eval"' "$S"/store/*/*/manifest.json)")
python3 - "$F/expected.json" "$T/reqs.jsonl" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for it in exp["items"]:
        for r in it["requests"]:
            f.write(json.dumps({"context": r["context"], "continuation": r["continuation"]}, ensure_ascii=False) + "\n")
PY
"$HX" score "$F" --tokenizer qwen3 --file "$T/reqs.jsonl" >"$T/score.jsonl" || fail "hx score"
python3 - "$F/expected.json" "$E" "$T/score.jsonl" <<'PY' || fail "hx differs from lm-eval (above)"
import json, math, sys
exp = json.load(open(sys.argv[1], encoding="utf-8"))
ev, score = sys.argv[2], [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
items = [json.loads(l) for l in open(ev + "/items.jsonl", encoding="utf-8")]
samples = [json.loads(l) for l in open(ev + "/samples_items.jsonl", encoding="utf-8")]
assert len(items) == len(exp["items"]) == len(samples), (len(items), len(exp["items"]))
worst, bad, q = 0.0, [], 0
for it, s, e in zip(items, samples, exp["items"]):
    ll_ref = [r["ll"] for r in e["requests"]]
    for c, r in enumerate(e["requests"]):
        args = s["arguments"]["gen_args_%d" % c]
        if (args["arg_0"], args["arg_1"]) != (r["context"], r["continuation"]):
            bad.append("%s choice %d: hx asked %r + %r" % (e["doc_id"], c, args["arg_0"], args["arg_1"]))
        sc = score[q]
        q += 1
        for name, v in (("eval", it["ll_logp"][c]), ("eval samples", float(s["filtered_resps"][c][0])), ("score", sc["logp"])):
            worst = max(worst, abs(v - r["ll"]))
            if abs(v - r["ll"]) > 1e-4:
                bad.append("%s choice %d: %s ll %.6f, lm-eval %.6f" % (e["doc_id"], c, name, v, r["ll"]))
        if sc["n_tokens"] != len(r["continuation_ids"]):
            bad.append("%s choice %d: %d continuation tokens, lm-eval %d" % (e["doc_id"], c, sc["n_tokens"], len(r["continuation_ids"])))
        if sc["greedy"] != r["is_greedy"] or (s["filtered_resps"][c][1] == "True") != r["is_greedy"]:
            bad.append("%s choice %d: is_greedy differs" % (e["doc_id"], c))
    if it["ll_pred"] != e["pred"]:
        bad.append("%s: hx predicts %d, lm-eval %d (ll %s)" % (e["doc_id"], it["ll_pred"], e["pred"], ll_ref))
    if it["format"] != "mcq" and it["ll_norm_pred"] != e["pred_norm"]:
        bad.append("%s: hx acc_norm picks %d, lm-eval %d" % (e["doc_id"], it["ll_norm_pred"], e["pred_norm"]))
res = json.load(open(ev + "/results.json"))["results"]["items"]
if abs(res["acc,none"] - exp["results"]["acc"]) > 1e-12 or abs(res["acc_stderr,none"] - exp["results"]["acc_stderr"]) > 1e-12:
    bad.append("acc %s +- %s, lm-eval %s +- %s" % (res["acc,none"], res["acc_stderr,none"], exp["results"]["acc"], exp["results"]["acc_stderr"]))
print("%d items, %d choices: max |hx - lm-eval| log-likelihood %.3g" % (len(items), q, worst))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
echo "lmeval_conform: ok"
