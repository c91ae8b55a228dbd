#!/usr/bin/env bash
# eval_bench.sh - real benchmark files beside the world (docs/eval.md "Real benchmarks"): a `bench` stage reads MMLU,
# ARC, HellaSwag and generic JSONL written here, an eval asks them together with the world's tasks, and every eval
# writes lm-eval's results.json and samples_<task>.jsonl (schema, hashes, acc and stderr as lm-eval computes them).
. "$(dirname "$0")/lib_e2e.inc"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cat >"$T/mmlu_math.jsonl" <<'JL'
{"question": "What is 2 + 2?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}
{"question": "What is 3 * 3?", "subject": "math", "choices": ["6", "9", "12", "8"], "answer": "B"}
{"question": "What is 10 - 7?", "subject": "math", "choices": ["3", "4", "2", "1"], "answer": 0}
JL
cat >"$T/arc_easy.jsonl" <<'JL'
{"id": "Mercury_1", "question": "Which animal is a mammal?", "choices": {"text": ["shark", "whale", "trout"], "label": ["A", "B", "C"]}, "answerKey": "B"}

{"id": "Mercury_2", "question": "Wasser gefriert bei?", "choices": {"text": ["0 °C", "50 °C"], "label": ["1", "2"]}, "answerKey": "1"}
JL
cat >"$T/hellaswag.jsonl" <<'JL'
{"ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "endings": ["is using wrap to wrap skis.", "starts pulling up roofing."], "label": "1"}
JL
cat >"$T/generic.jsonl" <<'JL'
{"question": "Capital of Japan?", "choices": ["Tokyo", "Kyoto", "Osaka"], "answer": 0}
{"question": "Capital of Peru?", "choices": ["Quito", "Lima", "Bogota"], "answer": 1}
JL
cat >"$T/r.yaml" <<YAML
hx: 1
name: eval_bench
stages:
  world: {kind: data, with: {n_facts: 40, brown_files: 4, cloze_files: 1, cloze_items: 4}}
  real: {kind: bench, with: {files: [$T/mmlu_math.jsonl, $T/arc_easy.jsonl, $T/hellaswag.jsonl, $T/generic.jsonl]}}
  arc_open: {kind: bench, with: {files: [$T/arc_easy.jsonl], format: open}}
  tok: {kind: tokenizer, inputs: {data: world}, with: {vocab_size: 300}}
  teacher:
    kind: pretrain
    inputs: {data: world, tokenizer: tok}
    with: {steps: 4, hidden: 32, layers: 1, heads: 2, kv_heads: 1, head_dim: 16, ffn: 64, seq_len: 32, batch: 4, warmup: 1}
  eval:
    kind: eval
    inputs: {model: teacher, data: world, bench: real}
    with: {tasks: ["kn_mcq_*", "mmlu_*", "arc_*", "hellaswag", "generic"], limit: 2, max_new_tokens: 3}
  eval_real:   # the paper's settings (recipes/base/eval_paper.yaml) on the real files alone
    kind: eval
    inputs: {model: teacher, bench: real}
    with: {max_new_tokens: 2, splits: [eval], ll_chat: true, enable_thinking: false, shots: 1}
YAML
S="$T/store"
"$HX" run "$T/r.yaml" --store "$S" >"$T/run.log" 2>&1 || { cat "$T/run.log"; fail "hx run"; }
dir_of() { dirname "$(grep -l "\"stage\": \"$1\"" "$S"/store/*/*/manifest.json)"; }
python3 - "$(dir_of real)" "$(dir_of arc_open)" "$(dir_of eval)" "$(dir_of eval_real)" "$T" <<'PY' || fail "artifacts"
import hashlib, json, math, sys
real, arc_open, ev, ev_real, t = sys.argv[1:]
lines = lambda p: [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
# the bench artifact: items in hx's form, each with its original row as "doc"; the files' digests
st = json.load(open(real + "/stats.json"))
for task in ("mmlu_math", "arc_easy", "hellaswag", "generic"):
    raw = lines("%s/%s.jsonl" % (t, task))
    items = lines("%s/bench/%s.jsonl" % (real, task))
    assert [i["doc"] for i in items] == raw, task
    assert st["tasks"][task]["sha256"] == hashlib.sha256(open("%s/%s.jsonl" % (t, task), "rb").read()).hexdigest()
    assert st["tasks"][task]["items"] == len(raw)
arc = lines(real + "/bench/arc_easy.jsonl")
assert [i["answer"] for i in arc] == [1, 0] and arc[0]["format"] == "mcq" and arc[1]["choices"] == ["0 °C", "50 °C"]
assert lines(real + "/bench/hellaswag.jsonl")[0]["format"] == "cloze"
assert all(i["format"] == "open" for i in lines(arc_open + "/bench/arc_easy.jsonl"))
assert json.load(open(real + "/manifest.json"))["metrics"]["bench_items"] == 8
# the eval beside the world: the world's kn_mcq tasks and the four real ones
for d, limit in ((ev, 2), (ev_real, 0)):
    res = json.load(open(d + "/results.json"))
    for k in ("results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config"):
        assert k in res, k
    items = lines(d + "/items.jsonl")
    tasks = sorted({i["task"] + ("" if i["split"] == "eval" else "_" + i["split"]) for i in items})
    assert sorted(res["results"]) == tasks, (sorted(res["results"]), tasks)
    for task in tasks:
        mine = [i for i in items if i["task"] + ("" if i["split"] == "eval" else "_" + i["split"]) == task]
        r = res["results"][task]
        acc = [1.0 if i["ll_correct"] else 0.0 for i in mine]
        mu = sum(acc) / len(acc)
        assert r["alias"] == task and r["acc,none"] == mu, (task, r, mu)
        se = math.sqrt(sum((x - mu) ** 2 for x in acc) / (len(acc) - 1)) / math.sqrt(len(acc)) if len(acc) > 1 else "N/A"
        assert r["acc_stderr,none"] == se, (task, r["acc_stderr,none"], se)
        assert ("acc_norm,none" in r) == (mine[0]["format"] != "mcq")
        chat = d == ev_real and mine[0]["format"] != "prose"
        assert res["n-samples"][task]["effective"] == len(mine) and res["n-shot"][task] == (1 if d == ev_real else 0)
        assert res["configs"][task]["target_delimiter"] == ("" if chat else " ")
        samples = open("%s/samples_%s.jsonl" % (d, task), encoding="utf-8").read().splitlines()
        assert len(samples) == len(mine)
        for n, (line, it) in enumerate(zip(samples, mine)):
            s = json.loads(line)
            assert json.dumps(s, ensure_ascii=False) == line          # Python's own formatting
            assert s["doc_id"] == n and s["hx_doc_id"] == it["doc_id"] and s["target"] == str(it["answer"])
            assert s["doc_hash"] == hashlib.sha256(json.dumps(s["doc"], indent=2, ensure_ascii=False).encode()).hexdigest()
            assert s["prompt_hash"] == hashlib.sha256(s["arguments"]["gen_args_0"]["arg_0"].encode()).hexdigest()
            assert s["target_hash"] == hashlib.sha256(s["target"].encode()).hexdigest()
            assert [float(x[0]) for x in s["filtered_resps"]] == it["ll_logp"] or \
                all(abs(float(x[0]) - y) < 1e-6 for x, y in zip(s["filtered_resps"], it["ll_logp"]))
            assert s["resps"] == [[x] for x in s["filtered_resps"]] and s["filter"] == "none"
            assert s["acc"] == (1.0 if it["ll_correct"] else 0.0) and s["gen_text"] == it["gen_text"]
            ctx, cont = s["arguments"]["gen_args_0"]["arg_0"], s["arguments"]["gen_args_0"]["arg_1"]
            assert ctx.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") == chat, ctx
            assert cont.startswith(" ") != chat, cont
            assert s["gen_prompt"].endswith("<think>\n\n</think>\n\n") == (d == ev_real), s["gen_prompt"]
            if task in ("mmlu_math", "arc_easy", "hellaswag", "generic"):
                assert s["doc"] == lines("%s/%s.jsonl" % (t, task))[n]
    orig = {"mmlu_math": 3, "arc_easy": 2, "hellaswag": 1, "generic": 2}
    for task, n in orig.items():
        assert res["n-samples"][task] == {"original": n, "effective": min(n, limit) if limit else n}, task
PY
"$HX" run "$T/r.yaml" --store "$S" >"$T/run2.log" 2>&1 || fail "second run"
grep -q "0 executed" "$T/run2.log" || { cat "$T/run2.log"; fail "second run executed something"; }

# errors: a bench artifact never feeds training; a task in two inputs; a bad line names file:line
sed 's/inputs: {data: world, tokenizer: tok}/inputs: {data: real, tokenizer: tok}/' "$T/r.yaml" >"$T/train.yaml"
if "$HX" plan "$T/train.yaml" --store "$S" >"$T/e1" 2>&1; then fail "pretrain on a bench artifact planned"; fi
grep -q "takes data" "$T/e1" || { cat "$T/e1"; fail "role message"; }
cp "$T/mmlu_math.jsonl" "$T/kn_mcq_country.jsonl"
cat >"$T/clash.yaml" <<YAML
hx: 1
name: eval_bench_clash
stages:
  world: {kind: data, with: {n_facts: 40, brown_files: 4, cloze_files: 1, cloze_items: 4}}
  real: {kind: bench, with: {files: [$T/kn_mcq_country.jsonl]}}
  bad: {kind: bench, with: {files: [$T/bad.jsonl]}}
  tok: {kind: tokenizer, inputs: {data: world}, with: {vocab_size: 300}}
  teacher:
    kind: pretrain
    inputs: {data: world, tokenizer: tok}
    with: {steps: 4, hidden: 32, layers: 1, heads: 2, kv_heads: 1, head_dim: 16, ffn: 64, seq_len: 32, batch: 4, warmup: 1}
  eval: {kind: eval, inputs: {model: teacher, data: world, bench: real}, with: {limit: 1, max_new_tokens: 2}}
YAML
printf '{"question": "q", "choices": ["a", "b"], "answer": 0}\n{"question": "q", "choices": ["a"], "answer": 0}\n' >"$T/bad.jsonl"
if "$HX" run "$T/clash.yaml" --store "$S" >"$T/e2" 2>&1; then fail "clash ran"; fi
grep -qF "the task 'kn_mcq_country' is in two inputs, \`data\` and \`bench\`" "$T/e2" || { cat "$T/e2"; fail "clash message"; }
grep -q "bad.jsonl:2" "$T/e2" || { cat "$T/e2"; fail "bad line message"; }
echo "eval_bench: ok"
