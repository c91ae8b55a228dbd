#!/usr/bin/env python3
# gen_kda.py - generates kda_core / kda_layer / hybrid fixtures (the format of tests/fixtures/*) with PyTorch and
# transformers' kimi_linear reference functions. Run on the GPU machine:
#   pip install torch transformers safetensors && python3 tests/reference/gen_kda.py OUTDIR
# Every directory holds README.json (kind, config) and expected.safetensors (+ config.json, model.safetensors
# for hybrid). Semantics: docs/models.md sections 2-3, tests/fixtures/README.md.
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
import transformers

try:
    from transformers.models.kimi_linear import modeling_kimi_linear as kl
except ImportError:  # older layouts
    import importlib
    kl = importlib.import_module("transformers.models.kimi_linear.modeling_kimi_linear")

# transformers 5.x names them chunk_/recurrent_kimi_delta_attention (older trees: torch_ prefix); the hub kernel
# decorator falls back to these pure-PyTorch forms when no kernel hub is reachable.
chunk_kda = getattr(kl, "chunk_kimi_delta_attention", None) or kl.torch_chunk_kimi_delta_attention
recurrent_kda = getattr(kl, "recurrent_kimi_delta_attention", None) or kl.torch_recurrent_kimi_delta_attention
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def f32(d):
    return {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in d.items()}


def write(dirname, readme, tensors, extra=None):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "README.json"), "w") as f:
        json.dump(readme, f, indent=1)
    save_file(tensors, os.path.join(dirname, "expected.safetensors"))
    for name, (kind, obj) in (extra or {}).items():
        p = os.path.join(dirname, name)
        if kind == "json":
            with open(p, "w") as f:
                json.dump(obj, f, indent=1)
        else:
            save_file(obj, p, metadata={"format": "pt"})
    print("wrote", dirname)


# ---------------------------------------------------------------- kda_core
def gen_core(out, name, B, T, H, K, V, gmin, gmax, init, seed):
    g0 = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g0)
    q, k, v = r(B, T, H, K), r(B, T, H, K), r(B, T, H, V)
    g = gmin + (gmax - gmin) * torch.rand(B, T, H, K, generator=g0)
    beta = torch.rand(B, T, H, generator=g0) * 0.95 + 0.05
    s0 = r(B, H, K, V) * 0.5 if init else None
    do, dsT = r(B, T, H, V), r(B, H, K, V)
    ins = [x.to(DEV).requires_grad_(True) for x in (q, k, v, g, beta)]
    s0d = s0.to(DEV).requires_grad_(True) if init else None
    o, sT = chunk_kda(*ins[:3], g=ins[3], beta=ins[4], initial_state=s0d, output_final_state=True,
                      use_qk_l2norm_in_kernel=True)
    # cross-check against the token-by-token form
    o2, s2 = recurrent_kda(*ins[:3], g=ins[3], beta=ins[4], initial_state=s0d, output_final_state=True,
                           use_qk_l2norm_in_kernel=True)
    assert (o - o2).abs().max() <= 1e-3 * o2.abs().max() + 1e-6, "chunked and recurrent disagree"
    loss = (o * do.to(DEV)).sum() + (sT * dsT.to(DEV)).sum()
    grads = torch.autograd.grad(loss, ins + ([s0d] if init else []))
    t = {"q": q, "k": k, "v": v, "g": g, "beta": beta, "o": o, "final_state": sT, "do": do, "dfinal_state": dsT}
    for n, gr in zip(["dq", "dk", "dv", "dg", "dbeta", "dinitial_state"], grads):
        t[n] = gr
    if init:
        t["initial_state"] = s0
    write(os.path.join(out, name), {
        "kind": "kda_core",
        "what": f"KDA core B={B} T={T} H={H} K={K} V={V} g in [{gmin},{gmax}] initial_state={bool(init)}",
        "semantics": "q,k L2-normalised (eps 1e-6 inside rsqrt(sum x^2 + eps)); q scaled by K**-0.5; per step: "
                     "S = S*exp(g_t)[:,None]; S += k_t (beta_t (v_t - S^T k_t))^T; o_t = S^T q_t",
        "grads": "d/dx of sum(o*do) + sum(final_state*dfinal_state)",
        "transformers": transformers.__version__}, f32(t))


# ---------------------------------------------------------------- kda_layer (docs/models.md section 2)
PNAMES = ["q_proj.weight", "k_proj.weight", "v_proj.weight", "q_conv.weight", "k_conv.weight", "v_conv.weight",
          "f_down.weight", "f_up.weight", "A_log", "dt_bias", "b_proj.weight", "g_down.weight", "g_up.weight",
          "g_up.bias", "o_norm.weight", "o_proj.weight"]


def layer_shapes(d, Hq, Hkv, K, r, W, per_head):
    kf = Hq if per_head else Hq * K
    return {"q_proj.weight": (Hq * K, d), "k_proj.weight": (Hkv * K, d), "v_proj.weight": (Hkv * K, d),
            "q_conv.weight": (Hq * K, W), "k_conv.weight": (Hkv * K, W), "v_conv.weight": (Hkv * K, W),
            "f_down.weight": (r, d), "f_up.weight": (kf, r), "A_log": (Hq,), "dt_bias": (kf,),
            "b_proj.weight": (Hq, d), "g_down.weight": (r, d), "g_up.weight": (Hq * K, r), "g_up.bias": (Hq * K,),
            "o_norm.weight": (K,), "o_proj.weight": (d, Hq * K)}


def layer_params(gen, d, Hq, Hkv, K, r, W, per_head, dtype=torch.float64):
    p = {}
    for n, s in layer_shapes(d, Hq, Hkv, K, r, W, per_head).items():
        fan = s[-1] if len(s) == 2 else 1
        p[n] = torch.randn(*s, generator=gen, dtype=dtype) / math.sqrt(fan)
    p["A_log"] = torch.log(1 + 15 * torch.rand(Hq, generator=gen, dtype=dtype))
    p["o_norm.weight"] = 1 + 0.1 * torch.randn(K, generator=gen, dtype=dtype)
    p["q_conv.weight"][:, -1] += 1
    p["k_conv.weight"][:, -1] += 1
    p["v_conv.weight"][:, -1] += 1
    return p


def causal_conv(x, w, act):  # x [B,T,C], w [C,W]
    W = w.shape[1]
    y = F.conv1d(F.pad(x.transpose(1, 2), (W - 1, 0)), w.unsqueeze(1), groups=w.shape[0]).transpose(1, 2)
    return F.silu(y) if act == "silu" else y


def kda_layer(p, x, Hq, Hkv, K, act, per_head, eps):
    B, T, d = x.shape
    q = causal_conv(x @ p["q_proj.weight"].T, p["q_conv.weight"], act).view(B, T, Hq, K)
    k = causal_conv(x @ p["k_proj.weight"].T, p["k_conv.weight"], act).view(B, T, Hkv, K)
    v = causal_conv(x @ p["v_proj.weight"].T, p["v_conv.weight"], act).view(B, T, Hkv, K)
    rep = Hq // Hkv
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    f = (x @ p["f_down.weight"].T) @ p["f_up.weight"].T + p["dt_bias"]
    f = f.view(B, T, Hq, 1 if per_head else K)
    sp = torch.where(f > 20, f, torch.log1p(torch.exp(torch.clamp(f, max=20))))
    g = (-torch.exp(p["A_log"]).view(1, 1, Hq, 1) * sp).expand(B, T, Hq, K)
    beta = torch.sigmoid(x @ p["b_proj.weight"].T)
    o, _ = chunk_kda(q, k, v, g=g, beta=beta, initial_state=None, output_final_state=False,
                     use_qk_l2norm_in_kernel=True)
    o = o.to(x.dtype)
    og = ((x @ p["g_down.weight"].T) @ p["g_up.weight"].T + p["g_up.bias"]).view(B, T, Hq, K)
    yn = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + eps) * p["o_norm.weight"] * torch.sigmoid(og)
    return yn.reshape(B, T, Hq * K) @ p["o_proj.weight"].T


def gen_layer(out, name, B, T, d, Hq, Hkv, K, r, act, gate, seed):
    gen = torch.Generator().manual_seed(seed)
    per_head = gate == "per_head"
    p = layer_params(gen, d, Hq, Hkv, K, r, 4, per_head)
    x = torch.randn(B, T, d, generator=gen, dtype=torch.float64)
    dy = torch.randn(B, T, d, generator=gen, dtype=torch.float64)
    pd = {n: t.to(DEV).requires_grad_(True) for n, t in p.items()}
    xd = x.to(DEV).requires_grad_(True)
    y = kda_layer(pd, xd, Hq, Hkv, K, act, per_head, 1e-6)
    grads = torch.autograd.grad((y * dy.to(DEV)).sum(), [xd] + [pd[n] for n in PNAMES])
    t = {"x": x, "y": y, "dy": dy, "dx": grads[0]}
    for n, gr in zip(PNAMES, grads[1:]):
        t["param." + n] = p[n]
        t["grad." + n] = gr
    cfg = {"hidden_size": d, "num_heads": Hq, "num_kv_heads": Hkv, "head_dim": K, "gate_rank": r, "conv_size": 4,
           "conv_act": act, "gate": gate, "norm_eps": 1e-6}
    write(os.path.join(out, name), {
        "kind": "kda_layer", "config": cfg,
        "what": "one hx KDA mixer layer (see docs/models.md section 2): y = layer(x); grads of sum(y*dy)",
        "reference": "PyTorch autograd in float64 around transformers kimi_linear chunk_kimi_delta_attention",
        "transformers": transformers.__version__}, f32(t))


# ---------------------------------------------------------------- hybrid model (docs/models.md section 3)
def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, theta):  # x [B,T,H,K], rotate-half
    K = x.shape[-1]
    inv = theta ** (-torch.arange(0, K, 2, dtype=torch.float64, device=x.device) / K)
    ang = pos[:, None].to(torch.float64) * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1)[None, :, None], torch.cat([ang.sin()] * 2, -1)[None, :, None]
    x1, x2 = x[..., :K // 2], x[..., K // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attention(p, pre, x, c):
    B, T, d = x.shape
    Hq, Hkv, K = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    eps = c["rms_norm_eps"]
    q = (x @ p[pre + "q_proj.weight"].T).view(B, T, Hq, K)
    k = (x @ p[pre + "k_proj.weight"].T).view(B, T, Hkv, K)
    v = (x @ p[pre + "v_proj.weight"].T).view(B, T, Hkv, K)
    q, k = rmsnorm(q, p[pre + "q_norm.weight"], eps), rmsnorm(k, p[pre + "k_norm.weight"], eps)
    pos = torch.arange(T, device=x.device)
    theta = c["rope_parameters"]["rope_theta"]
    q, k = rope(q, pos, theta), rope(k, pos, theta)
    rep = Hq // Hkv
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    s = torch.einsum("bthk,bshk->bhts", q, k) / math.sqrt(K)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1), float("-inf"))
    o = torch.einsum("bhts,bshk->bthk", s.softmax(-1), v).reshape(B, T, Hq * K)
    return o @ p[pre + "o_proj.weight"].T


def hybrid_forward(p, ids, c):
    eps = c["rms_norm_eps"]
    h = p["model.embed_tokens.weight"][ids]
    for i, lt in enumerate(c["layer_types"]):
        pre = f"model.layers.{i}."
        x = rmsnorm(h, p[pre + "input_layernorm.weight"], eps)
        if lt == "full_attention":
            h = h + attention(p, pre + "self_attn.", x, c)
        else:
            lp = {n: p[pre + "linear_attn." + n] for n in PNAMES}
            h = h + kda_layer(lp, x, c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"],
                              c["linear_attn"]["conv_act"], lt == "gdn", eps)
        x = rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps)
        m = pre + "mlp."
        h = h + (F.silu(x @ p[m + "gate_proj.weight"].T) * (x @ p[m + "up_proj.weight"].T)) @ p[m + "down_proj.weight"].T
    h = rmsnorm(h, p["model.norm.weight"], eps)
    W = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    return h @ W.T


def gen_hybrid(out, name, layer_types, vocab=384, d=64, Hq=4, Hkv=2, K=32, ffn=160, r=16, act="identity",
               B=2, T=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hybrid_tiny",
                           "config.json")) as f:
        c = json.load(f)
    c.update({"vocab_size": vocab, "hidden_size": d, "intermediate_size": ffn, "num_hidden_layers": len(layer_types),
              "num_attention_heads": Hq, "num_key_value_heads": Hkv, "head_dim": K, "layer_types": layer_types,
              "linear_attn": {"conv_size": 4, "conv_act": act, "gate_rank": r}})
    p = {"model.embed_tokens.weight": 0.5 * torch.randn(vocab, d, generator=gen, dtype=torch.float64),
         "model.norm.weight": 1 + 0.1 * torch.randn(d, generator=gen, dtype=torch.float64)}
    for i, lt in enumerate(layer_types):
        pre = f"model.layers.{i}."
        for n in ("input_layernorm.weight", "post_attention_layernorm.weight"):
            p[pre + n] = 1 + 0.1 * torch.randn(d, generator=gen, dtype=torch.float64)
        for n, s in (("gate_proj", (ffn, d)), ("up_proj", (ffn, d)), ("down_proj", (d, ffn))):
            p[pre + "mlp." + n + ".weight"] = torch.randn(*s, generator=gen, dtype=torch.float64) / math.sqrt(s[1])
        if lt == "full_attention":
            for n, s in (("q_proj", (Hq * K, d)), ("k_proj", (Hkv * K, d)), ("v_proj", (Hkv * K, d)),
                         ("o_proj", (d, Hq * K))):
                p[pre + "self_attn." + n + ".weight"] = torch.randn(*s, generator=gen, dtype=torch.float64) / math.sqrt(s[1])
            for n in ("q_norm", "k_norm"):
                p[pre + "self_attn." + n + ".weight"] = 1 + 0.1 * torch.randn(K, generator=gen, dtype=torch.float64)
        else:
            for n, t in layer_params(gen, d, Hq, Hkv, K, r, 4, lt == "gdn").items():
                p[pre + "linear_attn." + n] = t
    ids = torch.randint(0, vocab, (B, T), generator=gen)
    labels = torch.randint(0, vocab, (B, T), generator=gen)
    labels[:, :3] = -100
    pd = {n: t.to(DEV).requires_grad_(True) for n, t in p.items()}
    logits = hybrid_forward(pd, ids.to(DEV), c)
    lab = labels.to(DEV)
    mask = lab != -100
    loss = F.cross_entropy(logits[mask], lab[mask])
    names = sorted(pd)
    grads = torch.autograd.grad(loss, [pd[n] for n in names])
    t = {"input_ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits, "loss": loss.reshape(1)}
    for n, gr in zip(names, grads):
        t["grad." + n] = gr
    prompt = ids[:1, :8].to(DEV)
    seq = prompt
    with torch.no_grad():
        for _ in range(12):  # greedy; the reference recomputes the whole sequence each step
            nxt = hybrid_forward(pd, seq, c)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
    t["generate.prompt"] = prompt.to(torch.int32)
    t["generate.output"] = seq.to(torch.int32)
    tensors = {k: (v.detach().cpu().contiguous() if v.dtype == torch.int32 else v.detach().to(torch.float32).cpu().contiguous())
               for k, v in t.items()}
    write(os.path.join(out, name), {
        "kind": "hybrid",
        "what": "hx Hybrid model: Qwen3 blocks, mixers per layer_types (see docs/models.md section 3); KDA layers have "
                "no RoPE and no q/k norm; weights float32; reference computed in float64",
        "loss": "as in the qwen3 kind (mean over labels != -100, not shifted)",
        "generate": "greedy, 12 new tokens (reference recomputes the full sequence each step)",
        "transformers": transformers.__version__, "torch": torch.__version__},
        tensors, {"config.json": ("json", c), "model.safetensors": ("st", f32(p))})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures_kda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # kda_core: T not a multiple of 64, T < 64, K != V, strong and weak decay, with and without initial state
    gen_core(out, "kda_core_t100_kv", 2, 100, 3, 16, 24, -1.0, -0.01, True, 1)
    gen_core(out, "kda_core_t37", 1, 37, 2, 32, 32, -0.5, 0.0, False, 2)
    gen_core(out, "kda_core_strong", 2, 130, 2, 16, 16, -12.0, -3.0, True, 3)
    gen_core(out, "kda_core_weak", 1, 192, 4, 8, 12, -1e-3, 0.0, False, 4)
    gen_core(out, "kda_core_t1", 2, 1, 2, 8, 8, -1.0, -0.1, True, 5)
    # kda_layer: Hq/Hkv = 1, 2, 4; identity and silu; per_channel (kda) and per_head (gdn)
    gen_layer(out, "kda_layer_rep1", 2, 70, 48, 4, 4, 16, 16, "identity", "per_channel", 11)
    gen_layer(out, "kda_layer_rep2_silu", 1, 130, 64, 4, 2, 16, 8, "silu", "per_channel", 12)
    gen_layer(out, "kda_layer_rep4_gdn", 2, 33, 32, 4, 1, 8, 8, "identity", "per_head", 13)
    gen_layer(out, "kda_layer_gdn_silu", 1, 64, 48, 2, 2, 24, 12, "silu", "per_head", 14)
    # hybrid models
    gen_hybrid(out, "hybrid_mixed", ["kda", "full_attention", "gdn", "kda"], seed=21)
    gen_hybrid(out, "hybrid_all_kda_silu", ["kda", "kda", "kda"], act="silu", Hkv=4, T=70, seed=22)


if __name__ == "__main__":
    main()
