#!/usr/bin/env bash
# data_world.sh - `hx run` of a recipe with a data stage: tiny and small artifacts, byte-identical rebuilds,
# the stage's defaults (the tiny sizes), cache hits, JSONL benchmarks (source: jsonl) and clear failures on malformed input.
set -euo pipefail
: "${HX:?} ${TOP:?}"
cd "$TOP"
T=$(mktemp -d /tmp/hx-e2e-data.XXXXXX)
trap 'rm -rf "$T"' EXIT
R=recipes/examples/data_world.yaml
fail() { echo "FAIL: $*"; exit 1; }
artifact() { # store -> the one data artifact directory
    local d; d=$(ls -d "$1"/store/*/*/ | head -n1); echo "${d%/}"
}
stat_of() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1/stats.json" "$2"; }

# tiny: the artifact, twice in two stores -> the same bytes
"$HX" run $R --store "$T/a" >"$T/a.log" 2>&1 || { cat "$T/a.log"; fail "tiny run"; }
"$HX" run $R --store "$T/b" >"$T/b.log" 2>&1 || { cat "$T/b.log"; fail "tiny run 2"; }
A=$(artifact "$T/a"); B=$(artifact "$T/b")
for f in facts.jsonl corpus/pretrain.txt instruct.jsonl stats.json README.md bench/kn_mcq_country.jsonl \
         bench/kn_open_definition.jsonl bench/kn_mcq_hypernym.jsonl bench/kn_open_lexical.jsonl bench/cloze_brown.jsonl \
         bench/kn_prose_country.jsonl bench/kn_prose_definition.jsonl bench/kn_prose_hypernym.jsonl bench/kn_prose_lexical.jsonl; do
    [ -s "$A/$f" ] || fail "tiny artifact lacks $f"
    cmp -s "$A/$f" "$B/$f" || fail "$f differs between two tiny builds"
done
[ "$(stat_of "$A" "s['facts']['selected']")" = 200 ] || fail "tiny: expected 200 facts (50 per family)"
[ "$(grep -c '^<|endoftext|>$' "$A/corpus/pretrain.txt")" = "$(stat_of "$A" "s['corpus']['documents']")" ] ||
    fail "document boundaries do not match stats.json"
# letters balanced exactly, heldout items marked
python3 - "$A" <<'PY' || fail "benchmark invariants"
import json, sys, glob, collections
facts = {json.loads(l)["fact_id"]: json.loads(l)["split"] for l in open(sys.argv[1] + "/facts.jsonl")}
for f in glob.glob(sys.argv[1] + "/bench/*.jsonl"):
    c = collections.Counter()
    for l in open(f):
        it = json.loads(l)
        assert it["choices"][it["answer"]] == it["target"], it
        assert len({x.lower() for x in it["choices"]}) == 4, it
        if it["fact_id"]:
            assert facts[it["fact_id"]] == it["split"] and it["split"] in ("eval", "heldout"), it
        c[it["answer"]] += 1
    assert len(set(c.values())) == 1 and len(c) == 4, (f, c)
for l in open(sys.argv[1] + "/instruct.jsonl"):
    assert facts[json.loads(l)["fact_id"]] == "instruct"
# kn_prose: kn_open's facts and answer positions; an eval fact's prose question + answer is a corpus sentence
corpus = open(sys.argv[1] + "/corpus/pretrain.txt").read()
for fam in ("country", "definition", "hypernym", "lexical"):
    op = [json.loads(l) for l in open(f"{sys.argv[1]}/bench/kn_open_{fam}.jsonl")]
    pr = [json.loads(l) for l in open(f"{sys.argv[1]}/bench/kn_prose_{fam}.jsonl")]
    assert [(x["fact_id"], x["answer"]) for x in op] == [(x["fact_id"], x["answer"]) for x in pr], fam
    for x in pr:
        assert x["format"] == "prose" and not x["question"].endswith(" "), x
        if x["split"] == "eval": assert f'{x["question"]} {x["target"]}.' in corpus, x
PY
# heldout control: no distractor is the object of a mentioned fact; eval/heldout counts of stats.json
heldout_check() {
    python3 - "$1" "$2" <<'PY' || fail "heldout distractors ($1)"
import json, sys, glob
d, want_eval = sys.argv[1], json.loads(sys.argv[2])
facts = [json.loads(l) for l in open(d + "/facts.jsonl")]
seen = {f["object"].lower() for f in facts if f["split"] != "heldout"}
st = json.load(open(d + "/stats.json"))
for f in glob.glob(d + "/bench/kn_*.jsonl"):
    items = [json.loads(l) for l in open(f)]
    for it in items:
        if it["split"] == "heldout" and it["format"] != "prose":
            bad = [c for i, c in enumerate(it["choices"]) if i != it["answer"] and c.lower() in seen]
            assert not bad, (it["doc_id"], bad)
    fam = f.split("_")[-1][:-6]
    assert sum(it["split"] == "eval" for it in items) == want_eval[fam], (f, want_eval[fam])
h = st["heldout"]
assert h["facts"] == sum(f["split"] == "heldout" for f in facts)
assert h["asked"] * 3 == sum(st["bench"][t]["heldout"] for t in st["bench"]), h
assert h["asked"] + h["dropped_few_unseen"] <= h["facts"], h
PY
}
heldout_check "$A" '{"country": 12, "definition": 12, "hypernym": 12, "lexical": 12}'

# the pretraining mix and the dataset arms (recipes/ablate_dataset.yaml): corpus/pretrain.txt ends with mix_chat
# copies of every instruct pair and mix_qa questions about every pretrain fact; no eval or heldout fact is asked
# about in any text a model trains on; the three distillation texts are non-empty, and generic.txt and chat.txt
# do not state any eval fact (its prose sentence), so a student distilled on them never reads the eval facts
mix_check() {
    python3 - "$1" "$2" "$3" <<'PY' || fail "pretraining mix / dataset arms ($1)"
import json, sys
d, mix_chat, mix_qa = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
st = json.load(open(d + "/stats.json"))
facts = [json.loads(l) for l in open(d + "/facts.jsonl")]
n_pre = sum(f["split"] == "pretrain" for f in facts)
n_ins = sum(1 for _ in open(d + "/instruct.jsonl"))
cs = st["corpus"]
assert cs["chat_documents"] == mix_chat * n_ins and cs["qa_documents"] == mix_qa * n_pre, cs
assert st["params"]["mix_chat"] == mix_chat and st["params"]["mix_qa"] == mix_qa, st["params"]
texts = {n: open(f"{d}/corpus/{n}.txt").read() for n in ("pretrain", "generic", "chat")}
pre = texts["pretrain"].encode()
mixed = pre[-cs["mix_bytes"]:].decode()
assert abs(cs["mix_share"] - cs["mix_bytes"] / len(pre)) < 1e-9, cs
assert 0.15 < cs["mix_share"] < 0.45, cs["mix_share"]
assert mixed.count("<|endoftext|>\n") == cs["chat_documents"] + cs["qa_documents"]
assert mixed.startswith("<|im_start|>user\n"), mixed[:80]
for n, t in texts.items():
    assert len(t) > 10000, (n, len(t))
questions, sentences = 0, 0
for t in st["bench"]:
    for l in open(f"{d}/bench/{t}.jsonl"):
        it = json.loads(l)
        if it["format"] in ("mcq", "open"):
            questions += 1
            for n, txt in texts.items():
                assert it["question"] not in txt, (n, it["doc_id"], it["question"])
        if it["format"] == "prose" and it["split"] == "eval":
            sentences += 1
            s = f'{it["question"]} {it["target"]}.'
            assert s in texts["pretrain"], s
            assert s not in texts["generic"] and s not in texts["chat"], s
assert questions > 0 and sentences > 0
PY
}
mix_check "$A" 2 3

# the stage's defaults are the tiny sizes of recipes/base/scales.yaml: a data stage that gives no size has the key
# of data_world.yaml at tiny (every size from scales.tiny.data); `scale` is no parameter of the stage
printf 'hx: 1\nstages:\n  world: {kind: data}\n' >"$T/bare.yaml"
key_of() { "$HX" plan "$@" --store "$T/store" --json | python3 -c "import json,sys; print([i['key'] for i in json.load(sys.stdin) if i['stage'] == 'world'][0])"; }
[ "$(key_of "$T/bare.yaml")" = "$(key_of $R)" ] || fail "the data stage's defaults are not scales.tiny.data"
[ "$(key_of "$T/bare.yaml")" != "$(key_of $R -S params.scale=small)" ] || fail "small has tiny's key"
printf 'hx: 1\nstages:\n  world: {kind: data, with: {scale: small}}\n' >"$T/scale.yaml"
if "$HX" plan "$T/scale.yaml" --store "$T/store" >"$T/scale.log" 2>&1; then fail "scale: accepted by the data stage"; fi
grep -q "scale" "$T/scale.log" || { cat "$T/scale.log"; fail "no message naming the unknown field scale"; }

# a second run is a cache hit
"$HX" run $R --store "$T/a" 2>&1 | grep -q "1 cached" || fail "second tiny run was not cached"

# small: every usable fact, the whole Brown corpus less the cloze files
"$HX" run $R -S params.scale=small --store "$T/s" >"$T/s.log" 2>&1 || { cat "$T/s.log"; fail "small run"; }
S=$(artifact "$T/s")
[ "$(stat_of "$S" "s['facts']['selected'] == s['facts']['usable']")" = True ] || fail "small: not every usable fact"
[ "$(stat_of "$S" "s['corpus']['brown_files'] + len(s['corpus']['cloze_files'])")" = 500 ] || fail "small: not all Brown"
heldout_check "$S" '{"country": 336, "definition": 212, "hypernym": 292, "lexical": 188}'
mix_check "$S" 2 3
# issue 14 item 7: >= 800 paired eval items per question format and ~3000 pooled; the heldout control
[ "$(stat_of "$S" "sorted(sum(v['eval'] for k, v in s['bench'].items() if k.startswith('kn_' + f)) for f in ('mcq', 'open', 'prose'))")" = "[1028, 1028, 1028]" ] ||
    fail "small: expected 1028 eval items per format"
[ "$(stat_of "$S" "sum(v['eval'] for v in s['bench'].values())")" = 3408 ] || fail "small: expected 3408 pooled eval items"
[ "$(stat_of "$S" "sum(v['heldout'] for v in s['bench'].values())")" = 1032 ] || fail "small: expected 1032 heldout items"
[ "$(stat_of "$S" "s['heldout']['dropped_few_unseen']")" = 61 ] || fail "small: expected 61 heldout facts without 3 unseen objects"

# bad parameters fail the stage with a message
if "$HX" run $R -S stages.world.with.frac_eval=0.95 --store "$T/bad" >"$T/bad.log" 2>&1; then fail "frac_eval=0.95 accepted"; fi
grep -q "split fractions" "$T/bad.log" || { cat "$T/bad.log"; fail "no clear message for bad fractions"; }

# source: jsonl with hand-written MMLU/ARC/HellaSwag files, and a malformed one (relative paths are the recipe's)
ln -s "$TOP/tests/data" "$T/data"
cat >"$T/jsonl.yaml" <<YAML
hx: 1
name: data_jsonl
stages:
  bench: {kind: data, with: {source: jsonl, jsonl: [data/jsonl/mmlu.jsonl, data/jsonl/arc.jsonl, data/jsonl/hellaswag.jsonl]}}
YAML
"$HX" run "$T/jsonl.yaml" --store "$T/j" >"$T/j.log" 2>&1 || { cat "$T/j.log"; fail "jsonl run"; }
J=$(artifact "$T/j")
[ "$(wc -l <"$J/bench/mmlu.jsonl")" = 3 ] && [ "$(wc -l <"$J/bench/arc.jsonl")" = 2 ] &&
    [ "$(wc -l <"$J/bench/hellaswag.jsonl")" = 2 ] || fail "jsonl item counts"
grep -q '"target":"wind"' "$J/bench/arc.jsonl" || fail "ARC answerKey not resolved"
# the files' content is in the key: an edited benchmark file executes the stage again
# (a copy of the recipe's folder elsewhere has the same keys)
mkdir -p "$T/own/data/jsonl"; cp "$TOP"/tests/data/jsonl/{mmlu,arc,hellaswag}.jsonl "$T/own/data/jsonl/"
cp "$T/jsonl.yaml" "$T/own/jsonl.yaml"
"$HX" run "$T/own/jsonl.yaml" --store "$T/j" --json 2>/dev/null | grep -q '"state":"cached"' || fail "the same folder elsewhere: cached"
M="$T/own/data/jsonl/mmlu.jsonl"
head -1 "$M" >>"$M"
"$HX" plan "$T/own/jsonl.yaml" --store "$T/j" | grep -q "^        external jsonl: $M sha256 $(sha256sum "$M" | cut -c1-12)" ||
    fail "plan lists the edited file: $("$HX" plan "$T/own/jsonl.yaml" --store "$T/j")"
"$HX" run "$T/own/jsonl.yaml" --store "$T/j" --json 2>/dev/null | grep -q '"state":"executed"' || fail "an edited file executes again"
sed -i 's#arc.jsonl#bad_json.jsonl#' "$T/jsonl.yaml"
if "$HX" run "$T/jsonl.yaml" --store "$T/j2" >"$T/j2.log" 2>&1; then fail "malformed JSONL accepted"; fi
grep -q "bad_json.jsonl:3:" "$T/j2.log" || { cat "$T/j2.log"; fail "malformed JSONL error lacks file:line"; }
echo "ok: data world tiny + small, determinism, cache, jsonl"
