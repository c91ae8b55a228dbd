#!/usr/bin/env python3
# bench_torch.py - PyTorch/transformers and flash-linear-attention baselines for `make bench-cuda` (GPU machine).
"""Prints "RESULT <name> <ms>" lines with the same names as build/bench_cuda, measured with CUDA events
(median of repeats after warm-up) on the same card:
  kda_fwd_B8_T4096, kda_fwdbwd_B8_T4096, kda_*_B1_T32768  fla.ops.kda.chunk_kda, bf16, H=16, K=V=128
  attn_fwd_T*, attn_bwd_T2048                              torch SDPA (flash), bf16, Hq=16 Hkv=8 K=128
  linear_16384x1024x3072, xent_4096x151936                 torch bf16 matmul / fp32 cross-entropy
  train_step_qwen3_0.6B_B8_T2048                           transformers Qwen3 (random weights), SDPA, fused AdamW
  prefill_qwen3_0.6B_T*                                    transformers, bf16, logits_to_keep=1
Usage: bench_torch.py [kda|attn|dense|train|prefill|all]...  (PYTHONPATH must hold fla for kda)
"""
import sys
import torch


def bench(fn, warmup=2, reps=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def result(name, ms, extra=""):
    print(f"RESULT {name} {ms:.4f}")
    print(f"  {name:34s} {ms:10.3f} ms {extra}", flush=True)


def bench_kda():
    from fla.ops.kda import chunk_kda
    for B, T in ((8, 4096), (1, 32768)):
        H, K, V = 16, 128, 128
        dev, dt = "cuda", torch.bfloat16
        q = torch.randn(B, T, H, K, device=dev, dtype=dt, requires_grad=True)
        k = torch.randn(B, T, H, K, device=dev, dtype=dt, requires_grad=True)
        v = torch.randn(B, T, H, V, device=dev, dtype=dt, requires_grad=True)
        g = (-torch.rand(B, T, H, K, device=dev, dtype=torch.float32) * 0.1).to(dt).requires_grad_(True)
        beta = torch.rand(B, T, H, device=dev, dtype=dt).requires_grad_(True)
        do = torch.randn(B, T, H, V, device=dev, dtype=dt)

        def fwd():
            with torch.no_grad():
                chunk_kda(q=q, k=k, v=v, g=g, beta=beta, use_qk_l2norm_in_kernel=True)

        def fwdbwd():
            o, _ = chunk_kda(q=q, k=k, v=v, g=g, beta=beta, use_qk_l2norm_in_kernel=True)
            o.backward(do)

        result(f"kda_fwd_B{B}_T{T}", bench(fwd))
        result(f"kda_fwdbwd_B{B}_T{T}", bench(fwdbwd))
        del q, k, v, g, beta, do
        torch.cuda.empty_cache()


def bench_attn():
    import torch.nn.functional as F
    for T, bwd in ((2048, True), (4096, False)):
        q = torch.randn(1, 16, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(1, 8, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(1, 8, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)

        def fwd():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        result(f"attn_fwd_T{T}", bench(fwd))
        if bwd:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            do = torch.randn_like(o)
            result(f"attn_bwd_T{T}", bench(lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True)))


def bench_dense():
    x = torch.randn(16384, 1024, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(3072, 1024, device="cuda", dtype=torch.bfloat16)
    result("linear_16384x1024x3072", bench(lambda: x @ w.t(), reps=10))
    z = torch.randn(4096, 151936, device="cuda")
    t = torch.randint(0, 151936, (4096,), device="cuda")
    z.requires_grad_(True)

    def xe():
        torch.autograd.grad(torch.nn.functional.cross_entropy(z, t), z)

    result("xent_4096x151936", bench(xe))


def qwen3_06b():
    from transformers import Qwen3Config, Qwen3ForCausalLM
    cfg = Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                      num_attention_heads=16, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                      max_position_embeddings=131072, rope_theta=1e6, attn_implementation="sdpa")
    torch.manual_seed(0)
    return Qwen3ForCausalLM(cfg)


def bench_train():
    m = qwen3_06b().cuda()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True)
    B, T = 8, 2048
    ids = torch.randint(0, 151936, (B, T), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = m(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    ms = bench(step, warmup=2, reps=5)
    result("train_step_qwen3_0.6B_B8_T2048", ms, f"{B * T / ms * 1e3 / 1e3:.1f}K tokens/s "
           f"peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    del m, opt
    torch.cuda.empty_cache()


def bench_prefill():
    m = qwen3_06b().to("cuda", torch.bfloat16).eval()
    for T in (4096, 16384, 32768, 65536, 131072):
        ids = torch.randint(0, 151936, (1, T), device="cuda")

        def run():
            with torch.no_grad():
                m(input_ids=ids, logits_to_keep=1, use_cache=True)

        try:
            result(f"prefill_qwen3_0.6B_T{T}", bench(run, warmup=1, reps=3))
        except torch.OutOfMemoryError:
            print(f"  prefill T={T}: out of memory")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    what = sys.argv[1:] or ["all"]
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    table = {"kda": bench_kda, "attn": bench_attn, "dense": bench_dense, "train": bench_train,
             "prefill": bench_prefill}
    for name, fn in table.items():
        if "all" in what or name in what:
            try:
                fn()
            except Exception as e:  # one missing package must not hide the other baselines
                print(f"  {name}: skipped ({type(e).__name__}: {e})", flush=True)
