#!/usr/bin/env bash
# eval_report.sh - a tiny real pipeline (data -> tokenizer -> teacher + two student arms -> eval) through `hx run`,
# then hx report --format (md/json/tex/html: Δ, did, retention, letters), deterministic eval outputs, hx diff of two runs and of
# two evals, and eval's input errors.
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
S="$T/store"
"$HX" run tests/e2e/recipes/eval_report.yaml --store "$S" >"$T/run1.log" 2>&1 || { cat "$T/run1.log"; fail "hx run"; }
RUN1=$(sed -n 's/^run \([0-9a-z-]*\): ok.*/\1/p' "$T/run1.log")
[ -n "$RUN1" ] || { cat "$T/run1.log"; fail "no run id"; }
E=$(dirname "$(grep -l '"stage": "eval_teacher"' "$S"/store/*/*/manifest.json)")
for f in items.jsonl metrics.json prompts.md; do [ -s "$E/$f" ] || fail "eval artifact lacks $f"; done
python3 - "$E" <<'PY' || fail "eval artifact contents"
import json, sys, glob, os
d = sys.argv[1]
items = [json.loads(l) for l in open(d + "/items.jsonl")]
want = 0  # limit 2 per (task, split) of the data artifact
for p in glob.glob(os.path.dirname(os.path.dirname(d)) + "/*/*/bench/*.jsonl"):
    splits = [json.loads(l)["split"] for l in open(p)]
    want += sum(min(2, splits.count(s)) for s in set(splits))
assert len(items) == want and want >= 30, (len(items), want)
for it in items:
    for k in ("task", "doc_id", "fact_id", "split", "ll_pred", "ll_correct", "gen_text", "gen_pred", "gen_correct"):
        assert k in it, (k, it)
    assert it["ll_correct"] == (it["ll_pred"] == it["answer"])
    assert len(it["ll_logp"]) == it["n_choices"] and all(v < 0 for v in it["ll_logp"])
m = json.load(open(d + "/metrics.json"))
n = len([i for i in items if i["split"] == "eval"])
assert m["eval"]["all"]["n"] == n and m["heldout"]["all"]["n"] == len(items) - n
ll = sum(i["ll_correct"] for i in items if i["split"] == "eval") / n
gen = sum(i["gen_correct"] for i in items if i["split"] == "eval") / n
assert abs(m["ll_acc"] - ll) < 1e-9 and abs(m["gen_acc"] - gen) < 1e-9 and abs(m["gap"] - (ll - gen)) < 1e-9
lo, hi = m["eval"]["all"]["ll_ci"]
assert lo <= ll <= hi
# prose items: open-answer scoring of a reply cut at the first "." or newline; prompts never in the chat template
prose = [it for it in items if it["format"] == "prose"]
assert len(prose) == 16, len(prose)  # 4 kn_prose tasks x 2 splits x limit 2
for it in prose:
    assert "gen_rule" not in it and it["gen_em"] in (True, False) and it["ll_norm_correct"] in (True, False), it
    assert "." not in it["gen_text"] and "\n" not in it["gen_text"], it
sections = open(d + "/prompts.md").read().split("\n## ")[1:]
assert len([x for x in sections if x.startswith("kn_prose_")]) == 4
for x in sections:
    if x.startswith("kn_"): assert ("<|im_start|>" in x) == (not x.startswith("kn_prose_")), x
PY

# report in every format
"$HX" report "$RUN1" --store "$S" --format md >"$T/r.md" || fail "hx report md"
grep -q '^| steps | LL acc | Δ LL vs teacher | Gen acc | Δ Gen vs teacher | Δgen − ΔLL | p (did) | LL − gen within (norm.) | LL retention | Gen retention | n |' "$T/r.md" || { cat "$T/r.md"; fail "md header"; }
grep -q '^| model | n | gold | LL pred | gen pred | invalid | top gen letter | letter TV (gen) | letter TV (LL) |' "$T/r.md" || { cat "$T/r.md"; fail "letters table"; }
grep -q '^| \*teacher (eval_teacher)\* |' "$T/r.md" || { cat "$T/r.md"; fail "teacher row"; }
grep -q '^| steps=2 |' "$T/r.md" && grep -q '^| steps=6 |' "$T/r.md" || fail "arm rows"
grep -q 'Ranking by generation' "$T/r.md" || fail "rankings"
"$HX" report latest --store "$S" --format json -o "$T/r.json" || fail "hx report json"
python3 - "$T/r.json" <<'PY' || fail "report json"
import json, sys
r = json.load(open(sys.argv[1]))
t = r["tables"][0]
assert [x["label"] for x in t["rows"]] == ["teacher (eval_teacher)", "steps=2", "steps=6"], t["rows"]
assert t["baseline"]["stage"] == "eval_teacher"
assert t["columns"][:6] == ["ll_acc", "delta_ll", "gen_acc", "delta_gen", "did", "did_p"], t["columns"]
teacher = t["rows"][0]
assert teacher["delta_ll"] is None and teacher["na"]["delta_ll"] == "the baseline"
for row in t["rows"]:
    assert row["letters"] is None or set(("gen", "ll", "gold", "letter_tv")) <= set(row["letters"]), row["letters"]
for row in t["rows"][1:]:
    assert 0 <= row["ll_acc"] <= 1 and row["n_paired"] == row["n"] == teacher["n"], row
    for k in ("delta_ll", "delta_gen", "did"):
        lo, hi = row[k + "_ci"]
        assert lo - 1e-9 <= row[k] <= hi + 1e-9, (k, row)
    assert abs(row["did"] - (row["delta_gen"] - row["delta_ll"])) < 1e-9
    assert 0 < row["did_p"] <= 1
    for k in ("ll_retention", "gen_retention"):  # a number with its interval, or null with the reason
        assert (row[k] is None) == (row[k + "_ci"] is None) and (row[k] is not None or row["na"][k]), (k, row)
    assert abs(row["delta_gen_raw"] - (row["gen_acc"] - teacher["gen_acc"])) < 1e-9
rank = t["ranking"]
assert rank["kendall_tau"] is None or -1 <= rank["kendall_tau"] <= 1
assert all(x["significant"] and x["reversed"] for x in t["reversals"])
for x in t["interactions"]: assert x["p_holm"] is None or x["p_holm"] >= x["p"]
assert r["tables"][1]["task"] == "kn_mcq_country"
lt = r["tables"][1]["rows"][1]["letters"]
assert lt["n"] == r["tables"][1]["rows"][1]["n"] and sum(lt["gold"].values()) == lt["n"], lt
assert sum(lt["gen"].values()) + lt["invalid"] == lt["n"]
PY
"$HX" report "${RUN1:0:15}" --store "$S" --format tex >"$T/r.tex" || fail "hx report tex (by prefix)"
grep -q '\\toprule' "$T/r.tex" || fail "tex table"
"$HX" report --store "$S" --format html >"$T/r.html" || fail "hx report html"
grep -q '<table>' "$T/r.html" || fail "html table"
if "$HX" report nosuchrun --store "$S" 2>"$T/err"; then fail "unknown run accepted"; fi
grep -q "no run 'nosuchrun'" "$T/err" || { cat "$T/err"; fail "unknown run message"; }

# determinism: another bootstrap count re-executes eval_teacher only; its items.jsonl is byte-identical
"$HX" run tests/e2e/recipes/eval_report.yaml --store "$S" -S stages.eval_teacher.with.bootstrap=200 >"$T/run2.log" 2>&1 || { cat "$T/run2.log"; fail "run 2"; }
grep -q '1 executed' "$T/run2.log" || { cat "$T/run2.log"; fail "run 2 should execute one stage"; }
E2=$(dirname "$(grep -l '"bootstrap": 200' "$S"/store/*/*/manifest.json)")
cmp "$E/items.jsonl" "$E2/items.jsonl" || fail "eval is not deterministic"

# diff: the parameter, the key, zero deltas, no flips
"$HX" diff "$RUN1" latest --store "$S" >"$T/diff.txt" || fail "hx diff"
grep -q 'eval_teacher .*with.bootstrap *1000 -> 200' "$T/diff.txt" || { cat "$T/diff.txt"; fail "diff parameter"; }
grep -q 'differs  eval_teacher' "$T/diff.txt" || fail "diff keys"
grep -q 'same     teacher' "$T/diff.txt" || fail "diff same keys"
"$HX" diff "$RUN1" latest --store "$S" --json >"$T/diff.json" || fail "hx diff --json"
python3 - "$T/diff.json" <<'PY' || fail "diff json"
import json, sys
d = json.load(open(sys.argv[1]))
e = [x for x in d["evals"] if x["instance"] == "eval_teacher"][0]
g = e["splits"]["eval"]["gen_acc"]
assert g["delta"] == 0 and g["a_only"] == 0 and g["b_only"] == 0 and g["mcnemar_p"] == 1, g
assert [x for x in d["evals"] if x["instance"] == "eval[steps=2]"][0]["same_key"]
PY

# diff of two evals of one run: the teacher's and an arm's, the same paired numbers as the report's row
"$HX" diff "$RUN1:eval_teacher" "$RUN1:eval[steps=6]" --store "$S" >"$T/diff2.txt" || fail "hx diff RUN:STAGE"
grep -q 'B: run .*eval\[steps=6\]' "$T/diff2.txt" && grep -q 'did = ΔGen - ΔLL' "$T/diff2.txt" || { cat "$T/diff2.txt"; fail "eval diff text"; }
"$HX" diff "$RUN1:eval_teacher" "$RUN1:eval[steps=6]" --store "$S" --json >"$T/diff2.json" || fail "hx diff RUN:STAGE --json"
python3 - "$T/diff2.json" "$T/r.json" <<'PY' || fail "eval diff json"
import json, sys
d, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
p = d["evals"][0]["splits"]["eval"]["paired"]
row = [x for x in r["tables"][0]["rows"] if x["label"] == "steps=6"][0]
for k in ("delta_ll", "delta_gen", "did", "did_p", "ll_retention", "gen_retention"):
    assert (p[k] is None and row[k] is None) or abs(p[k] - row[k]) < 1e-5, (k, p[k], row[k])  # the report prints 6 digits
    ci = k + "_ci"
    assert k == "did_p" or p[ci] == row[ci] or max(abs(x - y) for x, y in zip(p[ci], row[ci])) < 1e-5, (ci, p[ci], row[ci])
PY
if "$HX" diff "$RUN1:eval" "$RUN1:eval_teacher" --store "$S" 2>"$T/err"; then fail "ambiguous eval accepted"; fi
grep -q "names 2 instances" "$T/err" && grep -q "eval\[steps=2\]" "$T/err" || { cat "$T/err"; fail "ambiguous eval message"; }
if "$HX" diff "$RUN1:eval_teacher" "$RUN1" --store "$S" 2>"$T/err"; then fail "mixed diff accepted"; fi
grep -q "not one of each" "$T/err" || { cat "$T/err"; fail "mixed diff message"; }

# input errors: an unknown task names what exists
if "$HX" run tests/e2e/recipes/eval_report.yaml --store "$S" -S 'stages.eval_teacher.with.tasks=[nope_*]' >"$T/run3.log" 2>&1; then fail "unknown task accepted"; fi
grep -q "no bench task matches" "$T/run3.log" && grep -q "kn_mcq_country" "$T/run3.log" || { cat "$T/run3.log"; fail "task error message"; }
echo "ok"
