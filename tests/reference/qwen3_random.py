#!/usr/bin/env python3
# qwen3_random.py - writes a random-init Qwen3-0.6B Hugging Face directory (the real config, transformers'
# Qwen3ForCausalLM) with the Qwen3 tokenizer, for the paper-scale smoke run on a machine without the real weights
# or the internet (docs/gendistill.md, "Paper scale on one GPU").
# Run on the GPU machine (torch + transformers there):
#   python3 tests/reference/qwen3_random.py OUTDIR --tokenizer TOKENIZER_JSON [--seed 0]
# TOKENIZER_JSON is Qwen3's tokenizer.json: the store entry of the recipe's `tok` stage made on the CPU machine
# with `tokenizer: {source: load, path: qwen3}` (the pinned copy under third_party/), found by
# scripts/paper_smoke.sh. The weights are bf16 (model.safetensors, 1.2 GB), initialised as transformers does
# (normal, std = initializer_range) from --seed, so the same seed writes the same bytes.
import argparse
import json
import os
import shutil

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

# Qwen/Qwen3-0.6B's config.json (the fields that define the model)
QWEN3_06B = dict(
    vocab_size=151936,
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    hidden_act="silu",
    max_position_embeddings=40960,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    attention_bias=False,
    attention_dropout=0.0,
    initializer_range=0.02,
    use_sliding_window=False,
    bos_token_id=151643,
    eos_token_id=151645,
)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", help="the directory to write (created)")
    ap.add_argument("--tokenizer", required=True, help="Qwen3's tokenizer.json")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    with open(a.tokenizer) as f:
        tok = json.load(f)
    n_tok = len(tok["model"]["vocab"]) + len(tok.get("added_tokens", []))
    if n_tok > QWEN3_06B["vocab_size"]:
        raise SystemExit(f"{a.tokenizer}: {n_tok} tokens, more than Qwen3-0.6B's {QWEN3_06B['vocab_size']} rows")
    torch.manual_seed(a.seed)
    cfg = Qwen3Config(**QWEN3_06B)
    model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)  # save_pretrained records the dtype (torch_dtype / dtype)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    shutil.copyfile(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 131072, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "bos_token": None, "add_bos_token": False}, f, indent=1)
    n = sum(p.numel() for p in model.parameters())
    print(f"{a.out}: random Qwen3-0.6B, {n} parameters (seed {a.seed}), tokenizer of {n_tok} tokens")


if __name__ == "__main__":
    main()
