#!/usr/bin/env python3
# gen_bench.py - transformers' side of the generation table of `make bench-cuda gen` (scripts/bench_cuda.sh).
"""Qwen3-0.6B shape (tests/cuda/qwen3_0.6b.json), random init (seed 0), bf16, SDPA, on the same card as hx.
Prints "RESULT <name> <value>" lines named as scripts/bench_cuda.sh's hx lines:
  ref_decode_step_qwen3_0.6B_B<B>_T<T>   ms per decode step, generate with a static cache (compiled by
                                          transformers when torch.compile works here), (t(33 new) - t(1 new)) / 32
  ref_ttft_qwen3_0.6B_T<T>               ms: one forward of T tokens (logits_to_keep=1) and the argmax
  ref_eval_items_per_s                   items/s: 1,024 prompts of 40..80 random tokens (seed 3, as hx bench eval
                                          --seq 80), batch 32, left padding to 80, greedy, exactly 32 new tokens
                                          (no eos), static cache
The weights are the same shape and init distribution as hx's, not the same values: with no stop token both sides
generate exactly 32 tokens per item, so the work is the same.
Usage: gen_bench.py [decode] [ttft] [eval]   (default: all three; GEN_BENCH_FAST=1: B=1 at 4K only)
"""
import json
import os
import sys
import time

import torch

CFG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cuda", "qwen3_0.6b.json")


def model():
    from transformers import Qwen3Config, Qwen3ForCausalLM
    c = json.load(open(CFG))
    c.pop("architectures", None)
    c.pop("torch_dtype", None)
    cfg = Qwen3Config(**c, attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device("cuda"):
        m = Qwen3ForCausalLM(cfg)
    return m.to(torch.bfloat16).eval()


def result(name, v, extra=""):
    print(f"RESULT {name} {v:.4f}")
    print(f"  {name:40s} {v:10.3f} {extra}", flush=True)


def gen(m, ids, mask, new):
    with torch.no_grad():
        return m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                          do_sample=False, cache_implementation="static", pad_token_id=0, eos_token_id=None)


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench_decode(m, points):
    for B, T in points:
        try:
            ids = torch.randint(0, m.config.vocab_size, (B, T), device="cuda")
            mask = torch.ones_like(ids)
            gen(m, ids, mask, 33)  # warm-up: compiles the step for this cache shape
            t1 = min(timed(lambda: gen(m, ids, mask, 1)) for _ in range(2))
            t33 = min(timed(lambda: gen(m, ids, mask, 33)) for _ in range(2))
            result(f"ref_decode_step_qwen3_0.6B_B{B}_T{T}", (t33 - t1) / 32 * 1e3, "ms/step")
        except torch.OutOfMemoryError:
            print(f"  decode B={B} T={T}: out of memory", flush=True)
        torch.cuda.empty_cache()


def bench_ttft(m, lengths):
    for T in lengths:
        try:
            ids = torch.randint(0, m.config.vocab_size, (1, T), device="cuda")

            def run():
                with torch.no_grad():
                    m(input_ids=ids, logits_to_keep=1, use_cache=True).logits.argmax(-1)

            run()
            result(f"ref_ttft_qwen3_0.6B_T{T}", sorted(timed(run) for _ in range(3))[1] * 1e3, "ms")
        except torch.OutOfMemoryError:
            print(f"  ttft T={T}: out of memory", flush=True)
        torch.cuda.empty_cache()


def bench_eval(m, n=1024, batch=32, lo=40, hi=80, new=32):
    g = torch.Generator().manual_seed(3)
    lens = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    prompts = [torch.randint(0, m.config.vocab_size, (L,), generator=g) for L in lens]
    batches = []
    for i in range(0, n, batch):
        ids = torch.zeros((batch, hi), dtype=torch.long)
        mask = torch.zeros((batch, hi), dtype=torch.long)
        for j, p in enumerate(prompts[i:i + batch]):  # left padding, every batch to the same width
            ids[j, hi - len(p):] = p
            mask[j, hi - len(p):] = 1
        batches.append((ids.cuda(), mask.cuda()))
    gen(m, *batches[0], new)  # warm-up (compiles)
    dt = timed(lambda: [gen(m, ids, mask, new) for ids, mask in batches])
    result("ref_eval_items_per_s", n / dt, f"items/s ({n} items, batch {batch}, {dt:.2f} s)")


if __name__ == "__main__":
    what = sys.argv[1:] or ["decode", "ttft", "eval"]
    import transformers
    print(f"# torch {torch.__version__}, transformers {transformers.__version__} on {torch.cuda.get_device_name()}",
          flush=True)
    m = model()
    fast = os.environ.get("GEN_BENCH_FAST") == "1"
    table = {
        # each cache shape compiles its own step (tens of seconds): the points the targets name
        "decode": lambda: bench_decode(m, [(1, 4096)] if fast else [(1, 4096), (1, 32768), (64, 4096)]),
        "ttft": lambda: bench_ttft(m, [4096] if fast else [4096, 32768]),
        "eval": lambda: bench_eval(m),
    }
    for name in what:
        t0 = time.perf_counter()
        try:
            table[name]()
        except Exception as e:  # one failing part must not hide the others
            print(f"  {name}: skipped ({type(e).__name__}: {e})", flush=True)
        print(f"  ({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
