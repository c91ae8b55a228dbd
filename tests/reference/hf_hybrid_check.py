#!/usr/bin/env python3
# hf_hybrid_check.py - on the GPU machine: loads an hx-written Hybrid-KDA checkpoint with transformers
# (AutoModelForCausalLM, trust_remote_code) and checks it computes what hx computed; writes a `hybrid` fixture.
#
#   python3 tests/reference/hf_hybrid_check.py [OUTDIR]        (default $OUT/hf_hybrid_transformers)
#
# Input (committed, written by hx: tests/reference/hf_hybrid_make.sh):
#   tests/reference/hf_hybrid_model/          config.json (auto_map), model.safetensors, modeling_hx_hybrid.py,
#                                             tokenizer.json, tokenizer_config.json, generation_config.json
#   tests/reference/hf_hybrid_model.hx.json   what hx computed on the CPU: `hx tokenize` ids, `hx score` log-probs
#                                             and greedy flags, `hx generate` completions (plain and --chat)
# Checks, for CPU float32, CUDA float32 and CUDA bfloat16 (when a GPU is there):
#   the tokenizer (AutoTokenizer) encodes as hx does; the chat template renders what hx's --chat feeds the model;
#   score log-probs equal hx's (float32: 1e-3 absolute + 1e-4 relative; bfloat16: 0.05 relative + 0.1) and the greedy
#   flags are equal (float32); model.generate() (greedy, the checkpoint's generation_config) gives hx's completions
#   token for token (float32), and its tokens equal a plain argmax loop over the model's logits.
# Output OUTDIR: README.json (kind hybrid), config.json, model.safetensors (copied), expected.safetensors (input_ids,
# logits of transformers on the CPU in float32, generate.prompt, generate.output: 12 greedy tokens, no eos stop) --
# a fixture `hx conform` checks (copy it to tests/fixtures/hf_hybrid_transformers/) -- and results.json, every
# number measured. Exit status 1 if any check failed (the outputs are still written).
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
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "hf_hybrid_model")
HX = os.path.join(HERE, "hf_hybrid_model.hx.json")
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


def run_device(tok, hx, dev, dtype, label, fixture):
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(MODEL, trust_remote_code=True, dtype=dtype).to(dev).eval()
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
    if fixture is not None:
        ids = torch.tensor(hx["fixture"]["input_ids"], device=dev)
        with torch.no_grad():
            fixture["logits"] = model(input_ids=ids).logits.float().cpu()
        prompt = torch.tensor([hx["fixture"]["prompt"]], device=dev)
        fixture["input_ids"] = ids.cpu().to(torch.int32)
        fixture["generate.prompt"] = prompt.cpu().to(torch.int32)
        fixture["generate.output"] = argmax_loop(model, prompt, GEN_NEW).cpu().to(torch.int32)
    return model


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("OUT", "."), "hf_hybrid_transformers")
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
        if tok is None:
            break
        guarded("%s run" % label, lambda: run_device(tok, hx, dev, dtype, label, fixture if label == "cpu-f32" else None))
    if "logits" in fixture:
        for f in ("config.json", "model.safetensors"):
            shutil.copy(os.path.join(MODEL, f), os.path.join(out, f))
        save_file({k: v.contiguous() for k, v in fixture.items()}, os.path.join(out, "expected.safetensors"))
        with open(os.path.join(out, "README.json"), "w") as f:
            json.dump({"kind": "hybrid",
                       "what": "an hx-written Hybrid-KDA checkpoint (tests/reference/hf_hybrid_model) run by transformers "
                               "with its remote code (modeling_hx_hybrid.py), CPU float32: logits of input_ids and 12 "
                               "greedy tokens (no eos stop) after generate.prompt",
                       "generate": "greedy, 12 new tokens (argmax over the full sequence each step)",
                       "generator": "tests/reference/hf_hybrid_check.py",
                       "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("%d checks, %d failed; wrote %s" % (len(results["checks"]), results["failed"], out))
    return 1 if results["failed"] or "logits" not in fixture else 0


if __name__ == "__main__":
    sys.exit(main())
