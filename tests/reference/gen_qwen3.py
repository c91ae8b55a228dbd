#!/usr/bin/env python3
# gen_qwen3.py - generates `qwen3` fixtures (the format of tests/fixtures/qwen3_tiny_tied) with PyTorch and
# transformers' Qwen3ForCausalLM, for other shapes, and turns any checkpoint (e.g. one hx wrote) into a fixture.
# Run on the GPU machine (or any machine with torch + transformers):
#   pip install torch transformers safetensors
#   python3 tests/reference/gen_qwen3.py shapes OUTDIR          # qwen3_mqa, qwen3_untied, qwen3_odd_heads, ...
#   python3 tests/reference/gen_qwen3.py checkpoint CKPT OUTDIR # fixture from an existing HF checkpoint dir
# then `hx conform OUTDIR/<name>` on each. The second form checks that a checkpoint hx wrote loads in transformers
# and gives the logits hx computes (hx conform compares them).
# Contract (tests/fixtures/README.md, kind qwen3): weights bf16 in model.safetensors; expected.safetensors in
# float32 computed from the bf16 weights in float32 (the model is cast to bf16 and back, so transformers' RoPE
# inv_freq buffer is bf16-rounded exactly as in the shipped fixture; hx does the same for bf16 configs):
#   input_ids, labels (int32), logits, loss (mean over labels != -100, NOT shifted), hidden_states.<i>,
#   grad.<param> for every parameter (tied: the embedding gradient includes the lm_head use),
#   generate.prompt (int32 [1, P]) and generate.output (int32 [1, P + 12], greedy with a KV cache).
import json
import os
import shutil
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM

DEV = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

SHAPES = {
    # name: (vocab, hidden, layers, heads, kv_heads, head_dim, ffn, tied, theta)
    "qwen3_mqa": (384, 64, 3, 4, 1, 32, 160, True, 1e6),
    "qwen3_untied": (384, 64, 2, 4, 2, 32, 160, False, 1e6),
    "qwen3_odd_heads": (300, 60, 2, 3, 3, 20, 96, True, 10000.0),
    "qwen3_headdim_ne": (256, 48, 2, 6, 2, 16, 128, False, 5e5),  # Hq * K != hidden
    "qwen3_long": (512, 64, 2, 4, 2, 16, 128, True, 1e6),         # T = 150 > the 64-key attention tile
}


def expected(model, out, seed, T=24, B=2, P=8, new=12, readme_extra=None):
    g = torch.Generator().manual_seed(seed)
    V = model.config.vocab_size
    ids = torch.randint(3, V, (B, T), generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[0, :5] = -100
    prompt = torch.randint(3, V, (1, P), generator=g)
    model = model.float().to(DEV)  # bf16 weights (and inv_freq) -> float32, exactly representable
    model.train(False)
    model.zero_grad()
    o = model(input_ids=ids.to(DEV), output_hidden_states=True)
    logits = o.logits
    loss = F.cross_entropy(logits.reshape(-1, V), labels.to(DEV).reshape(-1), ignore_index=-100)
    loss.backward()
    t = {
        "input_ids": ids.to(torch.int32),
        "labels": labels.to(torch.int32),
        "logits": logits.detach().float().cpu(),
        "loss": loss.detach().float().cpu().reshape(1),
        "generate.prompt": prompt.to(torch.int32),
    }
    for i, h in enumerate(o.hidden_states):
        t["hidden_states.%d" % i] = h.detach().float().cpu().contiguous()
    for name, p in model.named_parameters():
        if p.grad is not None:
            t["grad." + name] = p.grad.detach().float().cpu().contiguous()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        gen = model.generate(prompt.to(DEV), max_new_tokens=new, do_sample=False, use_cache=True,
                             eos_token_id=None, pad_token_id=0)
    t["generate.output"] = gen.to(torch.int32).cpu()
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(out, "expected.safetensors"))
    readme = {
        "kind": "qwen3",
        "what": "Qwen3ForCausalLM, weights bf16; expected.* computed in fp32 from the bf16 weights",
        "loss": "mean over positions with label != -100 of -log softmax(logits[b,t])[labels[b,t]] (NOT shifted)",
        "hidden_states.i": "output of embedding (i=0) and of each decoder layer (i>=1; last one is after final norm per HF)",
        "grad.NAME": "d loss / d parameter NAME (tied: grad of model.embed_tokens.weight includes lm_head)",
        "generate": "greedy, %d new tokens, KV cache" % new,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    readme.update(readme_extra or {})
    with open(os.path.join(out, "README.json"), "w") as f:
        json.dump(readme, f, indent=1)
    print("wrote", out)


def gen_shape(outdir, name, shape, seed):
    V, d, L, H, Hkv, K, ffn, tied, theta = shape
    cfg = Qwen3Config(vocab_size=V, hidden_size=d, intermediate_size=ffn, num_hidden_layers=L,
                      num_attention_heads=H, num_key_value_heads=Hkv, head_dim=K, tie_word_embeddings=tied,
                      rope_theta=theta, max_position_embeddings=512, rms_norm_eps=1e-6, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, attention_bias=False, use_sliding_window=False)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg)
    with torch.no_grad():  # norms away from 1 so that their gradients and effects are visible
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    out = os.path.join(outdir, name)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    T = 150 if name == "qwen3_long" else 24
    expected(model, out, seed + 1, T=T)


def from_checkpoint(ckpt, out):
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(ckpt):
        if f == "config.json" or f.endswith(".safetensors") or f.endswith(".index.json"):
            shutil.copy(os.path.join(ckpt, f), os.path.join(out, f))
    # The fixture convention: a bf16 checkpoint is a model cast to bf16 (`.to(torch.bfloat16)`), which also casts
    # transformers' RoPE inv_freq buffer to bf16; hx reproduces that for configs whose dtype is bfloat16.
    with open(os.path.join(ckpt, "config.json")) as f:
        raw = json.load(f)
    model = Qwen3ForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    if raw.get("dtype", raw.get("torch_dtype")) == "bfloat16":
        model = model.to(torch.bfloat16)
    expected(model, out, 7, readme_extra={"what": "checkpoint %s loaded by transformers" % ckpt})


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "shapes":
        for i, (name, shape) in enumerate(SHAPES.items()):
            gen_shape(sys.argv[2], name, shape, 100 + i)
    elif len(sys.argv) == 4 and sys.argv[1] == "checkpoint":
        from_checkpoint(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__ if __doc__ else "usage: gen_qwen3.py shapes OUTDIR | checkpoint CKPT OUTDIR")


if __name__ == "__main__":
    main()
