# modeling_hx_hybrid.py - hx's Hybrid-KDA student for transformers (trust_remote_code), in every hx_hybrid checkpoint.
#
#   from transformers import AutoModelForCausalLM
#   model = AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)
#
# Computes what hx computes (hx docs/kda.md, docs/models.md): Qwen3 blocks whose mixer is
# layer_types[i] in {full_attention, kda, gdn} (hx_layer_types here: transformers 5 accepts only its own layer type
# names in layer_types). A kda/gdn layer: q, k, v projections -> short causal depthwise
# conv (conv_act identity|silu) -> heads, k and v repeated to the query heads -> L2 norm of q and k
# (x / sqrt(sum x^2 + 1e-6)), q * K^-0.5 -> log decay g = -exp(A_log) softplus(f_up(f_down x) + dt_bias)
# (per channel for kda, per head for gdn) and beta = sigmoid(b_proj x) -> the gated delta rule
# S_t = (I - beta k k^T) diag(exp g) S_{t-1} + beta k v^T, o_t = S_t^T q_t -> RMSNorm(o) * o_norm *
# sigmoid(g_up(g_down x) + bias) -> o_proj. The rule runs in float32 in chunks of 64 with every exponent <= 0
# (pure PyTorch), or through flash-linear-attention's chunk_kda when `fla` is importable and the tensors are
# on a GPU (set HX_HYBRID_NO_FLA=1 to force the PyTorch form). Generation recomputes the whole sequence at
# every step (no cache): exact, simple, O(T^2) for long continuations.
# An attention_mask with zeros (left or right padding) makes padded tokens no-ops: they are excluded as keys,
# write nothing into a KDA state and read as zeros in the convs; positions count real tokens only.
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from transformers import PreTrainedModel
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

try:
    from transformers import PreTrainedConfig as _ConfigBase
except ImportError:
    from transformers import PretrainedConfig as _ConfigBase

try:
    from fla.ops.kda import chunk_kda as _fla_chunk_kda
except ImportError:
    _fla_chunk_kda = None

CHUNK = 64


HX_MIXERS = ("full_attention", "kda", "gdn")


def _transformers_layer_type(mixer):
    """transformers validates layer_types against its own names: kda and gdn layers are its linear_attention."""
    return "full_attention" if mixer == "full_attention" else "linear_attention"


class HxHybridConfig(_ConfigBase):
    """hx's config.json. hx's per-layer mixers (full_attention|kda|gdn) are `hx_layer_types`; `layer_types` holds the
    names transformers accepts (full_attention|linear_attention). to_dict() writes hx's mixers back as `layer_types`,
    so save_pretrained gives a config.json that hx reads."""

    model_type = "hx_hybrid"

    def __init__(self, vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-6,
                 rope_theta=1e6, rope_parameters=None, max_position_embeddings=40960, layer_types=None,
                 linear_attn=None, tie_word_embeddings=True, initializer_range=0.02, hx_layer_types=None, **kwargs):
        mixers = list(hx_layer_types or layer_types or ["full_attention"] * num_hidden_layers)
        if len(mixers) != num_hidden_layers:
            raise ValueError(f"layer_types has {len(mixers)} entries, num_hidden_layers is {num_hidden_layers}")
        for t in mixers:
            if t not in HX_MIXERS:
                raise ValueError(f"layer type {t!r} is not one of hx's {HX_MIXERS} (an hx config.json names each "
                                 "layer's mixer)")
        self.hx_layer_types = mixers
        self.layer_types = [_transformers_layer_type(t) for t in mixers]
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.rms_norm_eps = rms_norm_eps
        if rope_parameters and "rope_theta" in rope_parameters:
            rope_theta = rope_parameters["rope_theta"]
        self.rope_theta = rope_theta
        self.rope_parameters = {"rope_theta": rope_theta, "rope_type": "default"}
        self.max_position_embeddings = max_position_embeddings
        self.linear_attn = dict(linear_attn or {"conv_size": 4, "conv_act": "identity", "gate_rank": head_dim})
        self.initializer_range = initializer_range
        kwargs.pop("tie_word_embeddings", None)
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self.tie_word_embeddings = tie_word_embeddings

    def to_dict(self):
        d = super().to_dict()
        d["layer_types"] = list(self.hx_layer_types)
        d.pop("hx_layer_types", None)
        return d


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Attention(nn.Module):
    """Qwen3 attention: per-head RMSNorm on q and k before RoPE (rotate-half), causal GQA softmax."""

    def __init__(self, c):
        super().__init__()
        self.Hq, self.Hkv, self.K, self.eps = c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.rms_norm_eps
        d = c.hidden_size
        self.q_proj = nn.Linear(d, self.Hq * self.K, bias=False)
        self.k_proj = nn.Linear(d, self.Hkv * self.K, bias=False)
        self.v_proj = nn.Linear(d, self.Hkv * self.K, bias=False)
        self.o_proj = nn.Linear(self.Hq * self.K, d, bias=False)
        self.q_norm = RMSNorm(self.K, self.eps)
        self.k_norm = RMSNorm(self.K, self.eps)
        self.theta = c.rope_theta

    def forward(self, x, mask, pos):
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.Hq, self.K))
        k = self.k_norm(self.k_proj(x).view(B, T, self.Hkv, self.K))
        v = self.v_proj(x).view(B, T, self.Hkv, self.K)
        inv = self.theta ** (-torch.arange(0, self.K, 2, dtype=torch.float32, device=x.device) / self.K)
        ang = pos.float()[..., None] * inv  # [B, T, K/2]
        cos = torch.cat([ang.cos()] * 2, -1)[:, :, None].to(x.dtype)
        sin = torch.cat([ang.sin()] * 2, -1)[:, :, None].to(x.dtype)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.Hq // self.Hkv
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        s = torch.einsum("bthk,bshk->bhts", q.float(), k.float()) / math.sqrt(self.K)
        allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()[None, None]
        if mask is not None:
            allowed = allowed & mask.bool()[:, None, None, :]
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=x.device)  # a padded query still sees itself
        s = s.masked_fill(~allowed, float("-inf"))
        o = torch.einsum("bhts,bshk->bthk", s.softmax(-1), v.float()).to(x.dtype)
        return self.o_proj(o.reshape(B, T, self.Hq * self.K))


def delta_rule_chunked(q, k, v, g, beta):
    """q, k [B,T,H,K] (normalised, q scaled), v [B,T,H,V], g [B,T,H,K] <= 0, beta [B,T,H]; float32; -> o [B,T,H,V]."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    n = (T + CHUNK - 1) // CHUNK
    pad = n * CHUNK - T  # padded tokens: k = v = beta = g = 0 change no state, and their outputs are dropped
    q, k, v, g = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v, g))
    beta = F.pad(beta, (0, 0, 0, pad))
    # [B, H, n, C, ...]
    q, k, v, g = (t.view(B, n, CHUNK, H, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v, g))
    beta = beta.view(B, n, CHUNK, H).permute(0, 3, 1, 2)
    G = g.cumsum(-2)
    lower = torch.ones(CHUNK, CHUNK, dtype=torch.bool, device=q.device).tril()
    strict = lower.clone().fill_diagonal_(False)
    eye = torch.eye(CHUNK, dtype=q.dtype, device=q.device)
    S = q.new_zeros(B, H, K, V)
    out = []
    for c in range(n):
        Gc, qc, kc, vc, bc = G[:, :, c], q[:, :, c], k[:, :, c], v[:, :, c], beta[:, :, c]
        D = Gc[:, :, :, None, :] - Gc[:, :, None, :, :]  # [B,H,r,j,K]: G_r - G_j, <= 0 where j <= r
        E = torch.exp(D.masked_fill(~lower[:, :, None], float("-inf")))
        Aqk = torch.einsum("bhrk,bhjk,bhrjk->bhrj", qc, kc, E)
        A = torch.einsum("bhrk,bhjk,bhrjk->bhrj", kc, kc, E) * strict
        M = eye + bc[..., None] * A
        rhs = torch.cat([kc * torch.exp(Gc), vc], -1) * bc[..., None]
        WU = torch.linalg.solve_triangular(M, rhs, upper=False, unitriangular=True)
        W, U = WU[..., :K], WU[..., K:]
        Vn = U - W @ S
        out.append((qc * torch.exp(Gc)) @ S + Aqk @ Vn)
        Gl = Gc[:, :, -1]  # [B,H,K]
        S = torch.exp(Gl)[..., None] * S + (kc * torch.exp(Gl[:, :, None] - Gc)).transpose(-1, -2) @ Vn
    o = torch.stack(out, 2)  # [B,H,n,C,V]
    return o.permute(0, 2, 3, 1, 4).reshape(B, n * CHUNK, H, V)[:, :T]


class KDA(nn.Module):
    """hx's KDA mixer (gate per channel) or GDN (gate per head); parameter names as hx writes them."""

    def __init__(self, c, per_head):
        super().__init__()
        d, self.Hq, self.Hkv, self.K = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim
        la = c.linear_attn
        W, r = int(la.get("conv_size", 4)), int(la.get("gate_rank", 0) or self.K)
        self.act, self.per_head, self.eps = la.get("conv_act", "identity"), per_head, c.rms_norm_eps
        if self.act not in ("identity", "silu"):
            raise ValueError(f"linear_attn.conv_act {self.act!r} is not identity or silu")
        kf = self.Hq if per_head else self.Hq * self.K
        self.q_proj = nn.Linear(d, self.Hq * self.K, bias=False)
        self.k_proj = nn.Linear(d, self.Hkv * self.K, bias=False)
        self.v_proj = nn.Linear(d, self.Hkv * self.K, bias=False)
        self.q_conv = nn.Module()
        self.k_conv = nn.Module()
        self.v_conv = nn.Module()
        self.q_conv.weight = nn.Parameter(torch.zeros(self.Hq * self.K, W))
        self.k_conv.weight = nn.Parameter(torch.zeros(self.Hkv * self.K, W))
        self.v_conv.weight = nn.Parameter(torch.zeros(self.Hkv * self.K, W))
        self.f_down = nn.Linear(d, r, bias=False)
        self.f_up = nn.Linear(r, kf, bias=False)
        self.A_log = nn.Parameter(torch.zeros(self.Hq))
        self.dt_bias = nn.Parameter(torch.zeros(kf))
        self.b_proj = nn.Linear(d, self.Hq, bias=False)
        self.g_down = nn.Linear(d, r, bias=False)
        self.g_up = nn.Linear(r, self.Hq * self.K, bias=True)
        self.o_norm = RMSNorm(self.K, self.eps)
        self.o_proj = nn.Linear(self.Hq * self.K, d, bias=False)

    def conv(self, x, w):  # x [B,T,C], w [C,W]: y_t = sum_j w[:, j] x_{t-W+1+j}, zeros before the first token
        Wd = w.shape[1]
        y = F.conv1d(F.pad(x.transpose(1, 2), (Wd - 1, 0)), w.unsqueeze(1), groups=w.shape[0]).transpose(1, 2)
        return F.silu(y) if self.act == "silu" else y

    def forward(self, x, mask):
        B, T, _ = x.shape
        Hq, Hkv, K = self.Hq, self.Hkv, self.K
        keep = mask.to(x.dtype)[..., None] if mask is not None else None
        qp, kp, vp = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if keep is not None:
            qp, kp, vp = qp * keep, kp * keep, vp * keep
        q = self.conv(qp, self.q_conv.weight).float().view(B, T, Hq, K)
        k = self.conv(kp, self.k_conv.weight).float().view(B, T, Hkv, K)
        v = self.conv(vp, self.v_conv.weight).float().view(B, T, Hkv, K)
        rep = Hq // Hkv
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        q = q / torch.sqrt(q.pow(2).sum(-1, keepdim=True) + 1e-6) * K ** -0.5
        k = k / torch.sqrt(k.pow(2).sum(-1, keepdim=True) + 1e-6)
        f = (self.f_up(self.f_down(x)).float() + self.dt_bias.float()).view(B, T, Hq, 1 if self.per_head else K)
        g = (-torch.exp(self.A_log.float()).view(1, 1, Hq, 1) * F.softplus(f)).expand(B, T, Hq, K)
        beta = torch.sigmoid(self.b_proj(x).float())
        if mask is not None:
            g = g * mask.float()[:, :, None, None]
            beta = beta * mask.float()[:, :, None]
        if _fla_chunk_kda is not None and q.is_cuda and os.environ.get("HX_HYBRID_NO_FLA") != "1":
            o, _ = _fla_chunk_kda(q, k, v, g.contiguous(), beta, scale=1.0, initial_state=None,
                                  output_final_state=False, use_qk_l2norm_in_kernel=False)
            o = o.float()
        else:
            o = delta_rule_chunked(q, k, v, g, beta)
        og = self.g_up(self.g_down(x)).float().view(B, T, Hq, K)
        y = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + self.eps) * self.o_norm.weight.float() * torch.sigmoid(og)
        return self.o_proj(y.to(x.dtype).reshape(B, T, Hq * K))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        self.kind = kind
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        if kind == "full_attention":
            self.self_attn = Attention(c)
        else:
            self.linear_attn = KDA(c, per_head=kind == "gdn")
        self.mlp = MLP(c)

    def forward(self, h, mask, pos):
        x = self.input_layernorm(h)
        h = h + (self.self_attn(x, mask, pos) if self.kind == "full_attention" else self.linear_attn(x, mask))
        return h + self.mlp(self.post_attention_layernorm(h))


class HxHybridModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Layer(c, t) for t in c.hx_layer_types)
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, ids, mask=None):
        if mask is not None and bool(mask.all()):
            mask = None
        if mask is None:
            pos = torch.arange(ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
        else:
            pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, mask, pos)
        return self.norm(h)


class HxHybridForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = HxHybridConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["Layer"]
    _tied_weights_keys = {}  # a tied model reads the embedding as its head (hx writes no lm_head.weight then)
    _supports_cache_class = False

    @classmethod
    def _supports_default_dynamic_cache(cls):
        return False

    def __init__(self, config):
        super().__init__(config)
        self.model = HxHybridModel(config)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size,
                                                                         bias=False)
        self.post_init()

    def _init_weights(self, module):
        """Only for weights a checkpoint did not provide (transformers marks loaded ones _is_hf_initialized)."""
        std = self.config.initializer_range
        fresh = lambda p: p is not None and not getattr(p, "_is_hf_initialized", False)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            if fresh(module.weight):
                module.weight.data.normal_(0.0, std)
            if fresh(getattr(module, "bias", None)):
                module.bias.data.zero_()
        elif isinstance(module, RMSNorm) and fresh(module.weight):
            module.weight.data.fill_(1.0)

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(self, input_ids=None, attention_mask=None, labels=None, logits_to_keep=0, return_dict=None, **kwargs):
        h = self.model(input_ids, attention_mask)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        W = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        logits = F.linear(h, W).float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)
