#!/usr/bin/env python3
# hf_hybrid_check.py - on the GPU machine: loads an hx-written Hybrid-KDA checkpoint with transformers
# (AutoModelForCausalLM, trust_remote_code) and checks it computes what hx computed; writes a `hybrid` fixture.
#
#   python3 tests/reference/hf_hybrid_check.py [OUTDIR]        (default $OUT)
#
# Input (committed, written by hx: tests/reference/hf_hybrid_make.py; each modeling_hx_hybrid.py is a link to
# nn/modeling_hx_hybrid.py, the one copy, which transformers resolves and copies):
#   tests/reference/hf_hybrid_model/          config.json (auto_map), model.safetensors, modeling_hx_hybrid.py,
#                                             tokenizer.json, tokenizer_config.json, generation_config.json
#   tests/reference/hf_hybrid_model.hx.json   what hx computed on the CPU: `hx tokenize` ids, `hx score` log-probs
#                                             and greedy flags, `hx generate` completions (plain and --chat)
#   tests/reference/hf_hybrid_{gdn,silu}/     tests/fixtures/hybrid_mixed (kda, attention, gdn, kda) and
#                                             hybrid_all_kda_silu (silu convs) as hx writes them (no tokenizer)
# Checks, for CPU float32, CUDA float32 and CUDA bfloat16 (when a GPU is there):
#   the tokenizer (AutoTokenizer) encodes as hx does; the chat template renders what hx's --chat feeds the model;
#   score log-probs equal hx's (float32: 1e-3 absolute + 1e-4 relative; bfloat16: 0.05 relative + 0.1) and the greedy
#   flags are equal (float32); model.generate() (greedy, the checkpoint's generation_config) gives hx's completions
#   token for token (float32), and its tokens equal a plain argmax loop over the model's logits; logits on CUDA equal
#   the CPU's (float32: 1e-4 of the largest, bfloat16: 3e-2). For gdn and silu: logits equal the fixture's float64
#   reference (1e-4 relative to the largest) and 12 greedy tokens its generate.output; in bfloat16 the logits are
#   within max(3e-2, twice what bf16 moves hx's own twin from that reference: hx.json bf16_logits_rel), the rule of
#   hx's GPU conformance -- these random fixtures are ill-conditioned in bf16 (rounding the gdn model's weights
#   alone, with float32 arithmetic, moves its logits by 0.28 of their largest).
# Output in OUTDIR: hf_hybrid_transformers{,_gdn,_silu}/, each README.json (kind hybrid), config.json,
# model.safetensors (copied), expected.safetensors (input_ids, logits of transformers on the CPU in float32,
# generate.prompt, generate.output: 12 greedy tokens, no eos stop) -- fixtures `hx conform` checks: copy them to
# tests/fixtures/ -- and results.json (in OUTDIR), every number measured. Exit status 1 if any check failed (the
# outputs are still written).
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["HF_MODULES_CACHE"] = tempfile.mkdtemp(prefix="hf_modules_")  # remote code: a fresh copy every run

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "hf_hybrid_model")
HX = os.path.join(HERE, "hf_hybrid_model.hx.json")
EXTRA = {"gdn": "hybrid_mixed", "silu": "hybrid_all_kda_silu"}  # tests/reference/hf_hybrid_<name>: its fixture
GEN_NEW = 12  # the fixture's greedy tokens (hybrid fixtures' convention)

results = {"transformers": transformers.__version__, "torch": torch.__version__, "checks": [], "failed": 0}


def check(name, ok, **info):
    results["checks"].append(dict(name=name, ok=bool(ok), **info))
    if not ok:
        results["failed"] += 1
    print("%-4s %s %s" % ("ok" if ok else "FAIL", name, json.dumps(info)[:300]), flush=True)


def guarded(name, fn):
    try:
        return fn()
    except Exception as e:  # record and go on: one device run should report everything
        check(name, False, error="%s: %s" % (type(e).__name__, e), trace=traceback.format_exc()[-2000:])
        return None


def encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def chat(tok, text):
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def score(model, tok, item, dev):
    ctx = chat(tok, item["context"]) if item.get("chat") else item["context"]
    a, b = encode(tok, ctx), encode(tok, item["continuation"])
    ids = torch.tensor([a + b], device=dev)
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    rows = torch.arange(len(a) - 1, len(a) + len(b) - 1, device=dev)
    tgt = torch.tensor(b, device=dev)
    return lp[rows, tgt].sum().item(), bool((lp[rows].argmax(-1) == tgt).all()), len(b)


def argmax_loop(model, ids, n):
    seq = ids
    with torch.no_grad():
        for _ in range(n):
            seq = torch.cat([seq, model(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
    return seq


def rel_err(a, b):
    return ((a.float().cpu() - b.float().cpu()).abs().max() / b.float().abs().max()).item()


def load(path, dev, dtype):
    return AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, dtype=dtype).to(dev).eval()


def config_round_trip(cfg, out):
    """save_pretrained writes hx's form of config.json back (hx's mixers as layer_types): hx reads what transformers
    saves. The saved file goes to OUT/hf_hybrid_saved_config.json."""
    with open(os.path.join(MODEL, "config.json")) as f:
        orig = json.load(f)
    tmp = tempfile.mkdtemp(prefix="hf_hybrid_save_")
    cfg.save_pretrained(tmp)
    with open(os.path.join(tmp, "config.json")) as f:
        saved = json.load(f)
    shutil.copy(os.path.join(tmp, "config.json"), os.path.join(out, "hf_hybrid_saved_config.json"))
    same = {k: (saved.get(k), orig.get(k)) for k in ("model_type", "layer_types", "linear_attn", "num_hidden_layers",
                                                     "head_dim", "vocab_size", "tie_word_embeddings")}
    ok = all(a == b for a, b in same.values()) and "hx_layer_types" not in saved
    check("save_pretrained config.json is hx's", ok, fields=same)


def run_device(tok, hx, dev, dtype, label, fixture):
    t0 = time.time()
    model = load(MODEL, dev, dtype)
    results.setdefault("load_s", {})[label] = round(time.time() - t0, 2)
    mod = sys.modules.get(type(model).__module__)
    results.setdefault("fla_used", {})[label] = bool(getattr(mod, "_fla_chunk_kda", None)) and dev == "cuda"
    exact = dtype == torch.float32
    for i, item in enumerate(hx["score"]):
        lp, greedy, n = score(model, tok, item, dev)
        err = abs(lp - item["logp"])
        tol = 1e-3 + 1e-4 * abs(item["logp"]) if exact else 0.1 + 0.05 * abs(item["logp"])
        check("%s score[%d] logp" % (label, i), err <= tol and n == item["n_tokens"], hx=item["logp"], hf=lp,
              err=err, tol=tol, n_tokens=n, hx_n_tokens=item["n_tokens"])
        if exact:
            check("%s score[%d] greedy" % (label, i), greedy == item["greedy"], hx=item["greedy"], hf=greedy)
    gc = model.generation_config
    for i, g in enumerate(hx["generate"]):
        text = chat(tok, g["prompt"]) if g.get("chat") else g["prompt"]
        ids = torch.tensor([encode(tok, text)], device=dev)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=g["max_new"],
                                 do_sample=False)
        new = out[0, ids.shape[1]:].tolist()
        loop = argmax_loop(model, ids, len(new))[0, ids.shape[1]:].tolist()
        check("%s generate[%d] == argmax loop" % (label, i), new == loop, generate=new, loop=loop)
        eos = gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id]
        body = new[:-1] if new and new[-1] in eos else new
        hf_text = tok.decode(body, skip_special_tokens=False)
        if exact:
            check("%s generate[%d] text" % (label, i), hf_text == g["completion"], hx=g["completion"], hf=hf_text,
                  chat=bool(g.get("chat")))
    ids = torch.tensor(hx["fixture"]["input_ids"], device=dev)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float().cpu()
    if "logits" in fixture:  # a GPU run: against the CPU's float32 logits
        err = rel_err(logits, fixture["logits"])
        check("%s logits vs cpu-f32" % label, err <= (1e-4 if exact else 3e-2), rel_err=err)
    else:
        prompt = torch.tensor([hx["fixture"]["prompt"]], device=dev)
        fixture.update({"logits": logits, "input_ids": ids.cpu().to(torch.int32),
                        "generate.prompt": prompt.cpu().to(torch.int32),
                        "generate.output": argmax_loop(model, prompt, GEN_NEW).cpu().to(torch.int32)})
    return model


def write_fixture(out, name, model_dir, tensors, what):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(model_dir, f), os.path.join(d, f))
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(d, "expected.safetensors"))
    with open(os.path.join(d, "README.json"), "w") as f:
        json.dump({"kind": "hybrid", "what": what, "generate": "greedy, 12 new tokens (argmax over the full sequence "
                   "each step, no eos stop)", "generator": "tests/reference/hf_hybrid_check.py",
                   "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)


def run_extra(out, name, fx, runs, bf16_rel):
    """A fixture model as hx writes it, through transformers: logits and greedy tokens against the fixture's float64
    reference; writes hf_hybrid_transformers_<name>."""
    mdir = os.path.join(HERE, "hf_hybrid_" + name)
    ex = load_file(os.path.join(os.path.dirname(HERE), "fixtures", fx, "expected.safetensors"))
    tensors = {}
    for dev, dtype, label in runs:
        model = load(mdir, dev, dtype)
        ids = ex["input_ids"].long().to(dev)
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float().cpu()
        err = rel_err(logits, ex["logits"])
        exact = dtype == torch.float32
        tol = 1e-4 if exact else max(3e-2, 2 * bf16_rel)
        check("%s %s logits vs float64 reference" % (name, label), err <= tol, rel_err=err, tol=tol)
        prompt = ex["generate.prompt"].long().to(dev)
        seq = argmax_loop(model, prompt, GEN_NEW).cpu()
        if exact:
            check("%s %s greedy tokens" % (name, label), torch.equal(seq.int(), ex["generate.output"]),
                  hf=seq[0].tolist(), want=ex["generate.output"][0].tolist())
        with torch.no_grad():
            gen = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=GEN_NEW,
                                 do_sample=False)[0, prompt.shape[1]:].tolist()
        loop = seq[0, prompt.shape[1]:].tolist()
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        stop = next((i + 1 for i, t in enumerate(loop) if t in eos), len(loop))
        check("%s %s generate() == argmax loop up to eos" % (name, label), gen == loop[:stop], generate=gen, loop=loop)
        if label == "cpu-f32":
            tensors = {"input_ids": ex["input_ids"], "logits": logits, "generate.prompt": ex["generate.prompt"],
                       "generate.output": seq.to(torch.int32)}
    if tensors:
        write_fixture(out, "hf_hybrid_transformers_" + name, mdir, tensors,
                      "tests/fixtures/%s as hx writes it (tests/reference/hf_hybrid_%s), run by transformers with its "
                      "remote code, CPU float32" % (fx, name))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", ".")
    os.makedirs(out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(HX) as f:
        hx = json.load(f)
    results["model"] = os.path.relpath(MODEL, os.path.dirname(HERE))
    cfg = guarded("AutoConfig", lambda: AutoConfig.from_pretrained(MODEL, trust_remote_code=True))
    if cfg is not None:
        check("AutoConfig class", type(cfg).__name__ == "HxHybridConfig", cls=type(cfg).__name__,
              layer_types=cfg.layer_types)
        guarded("config round trip", lambda: config_round_trip(cfg, out))
    tok = guarded("AutoTokenizer", lambda: AutoTokenizer.from_pretrained(MODEL, trust_remote_code=True))
    if tok is not None:
        results["tokenizer_class"] = type(tok).__name__
        for t in hx["tokenize"]:
            ids = encode(tok, t["text"])
            check("tokenize %r" % t["text"][:40], ids == t["ids"], hx=t["ids"], hf=ids)
        check("tokenizer eos/pad", tok.eos_token is not None and tok.pad_token is not None, eos=tok.eos_token,
              pad=tok.pad_token)
    fixture = {}
    runs = [("cpu", torch.float32, "cpu-f32")]
    if torch.cuda.is_available():
        runs += [("cuda", torch.float32, "cuda-f32"), ("cuda", torch.bfloat16, "cuda-bf16")]
    for dev, dtype, label in runs:
        if tok is None or (label != "cpu-f32" and "logits" not in fixture):
            break
        guarded("%s run" % label, lambda: run_device(tok, hx, dev, dtype, label, fixture))
    if "logits" in fixture:
        write_fixture(out, "hf_hybrid_transformers", MODEL, fixture,
                      "an hx-written Hybrid-KDA checkpoint (tests/reference/hf_hybrid_model: attention, kda, kda, "
                      "trained by tests/e2e/distill_chain.sh) run by transformers with its remote code "
                      "(modeling_hx_hybrid.py), CPU float32")
    for name, fx in EXTRA.items():
        guarded("%s run" % name, lambda: run_extra(out, name, fx, runs, hx["bf16_logits_rel"][name]))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("%d checks, %d failed; wrote %s" % (len(results["checks"]), results["failed"], out))
    return 1 if results["failed"] or "logits" not in fixture else 0


if __name__ == "__main__":
    sys.exit(main())
