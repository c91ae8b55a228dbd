/* model.c - Qwen3 / Hybrid model: parameter table, one-allocation buffers, explicit forward and backward per layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/nn/model.h"
#include "engine/nn/kda_layer.h"

/*
 * Shapes: B batch, T time, N = B*T rows, d hidden, V vocab, F MLP width, Hq/Hkv heads, K head dim,
 * QD = Hq*K, KD = Hkv*K. A block (HF Qwen3DecoderLayer, pre-norm):
 *   ln1 = RMSNorm(res_in);  res_mid = res_in + Mixer(ln1);
 *   ln2 = RMSNorm(res_mid); res_out = res_mid + down(silu(gate(ln2)) * up(ln2))
 * then hidden_out = RMSNorm(res_L), logits = hidden_out E^T (tied) or W_lm^T.
 */

#define IGNORE_INDEX (-100)

/* Indices into the parameter table of one layer; mixer params follow mix0 consecutively. */
struct nn_layer_ix {
    int ln1, ln2, gate, up, down;
    int mix0, nmix;           /* first mixer parameter and how many */
    int q, k, v, o, qn, kn;   /* attention (full_attention layers) */
};

static inline float *P(const nn_model *m, int i) { return i < 0 ? NULL : m->p + m->params[i].off; }
static inline float *G(const nn_model *m, int i)
{
    return (i < 0 || !m->g || m->params[i].goff == SIZE_MAX) ? NULL : m->g + m->params[i].goff;
}

/* ---------------------------------------------------------------- parameter table */

typedef struct ptab {
    nn_param *t;
    int n, cap;
    size_t off;
} ptab;

static int ptab_add(ptab *pt, const char *name, int ndim, int64_t r, int64_t c, nn_group g, int layer, int decay)
{
    if (pt->n == pt->cap) {
        pt->cap = pt->cap ? 2 * pt->cap : 64;
        pt->t = xrealloc(pt->t, (size_t)pt->cap * sizeof *pt->t);
    }
    nn_param *p = &pt->t[pt->n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = r;
    p->shape[1] = ndim > 1 ? c : 0;
    p->numel = (size_t)r * (ndim > 1 ? (size_t)c : 1);
    p->off = pt->off;
    p->goff = SIZE_MAX;
    p->group = g;
    p->layer = layer;
    p->decay = decay;
    pt->off += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    return pt->n++;
}

/*
 * ===== Mixer dispatch =====
 * Each function below switches on the layer's mixer. full_attention is implemented here; kda / gdn come from
 * engine/nn/kda_layer.h (the KDA engineer wires nn_kda_* into these five places: params, act_floats, forward,
 * backward, cache_floats).
 */
/* The KDA / GDN layer's shape from the model config (docs/models.md section 3: K = V = head_dim). */
static void kda_cfg(nn_kda_cfg *k, const nn_config *c, int l)
{
    *k = (nn_kda_cfg){.d = c->d, .Hq = c->n_heads, .Hkv = c->n_kv_heads, .K = c->head_dim, .r = c->gate_rank,
                      .W = c->conv_size, .conv_act = !strcmp(c->conv_act, "silu"),
                      .per_head = c->mixer[l] == NN_MIX_GDN, .eps = c->norm_eps, .save = c->kda_save};
}

static int mixer_add_params(ptab *pt, const nn_config *c, int l, struct nn_layer_ix *ix)
{
    char name[96];
    int QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    ix->q = ix->k = ix->v = ix->o = ix->qn = ix->kn = -1;
    switch (c->mixer[l]) {
    case NN_MIX_ATTN:
#define ADD(field, suffix, nd, r, cc, decay)                                                   \
    snprintf(name, sizeof name, "model.layers.%d.self_attn.%s", l, suffix);                    \
    ix->field = ptab_add(pt, name, nd, r, cc, NN_G_ATTENTION, l, decay);
        ADD(q, "q_proj.weight", 2, QD, c->d, 1);
        ix->mix0 = ix->q;
        ADD(k, "k_proj.weight", 2, KD, c->d, 1);
        ADD(v, "v_proj.weight", 2, KD, c->d, 1);
        ADD(o, "o_proj.weight", 2, c->d, QD, 1);
        ADD(qn, "q_norm.weight", 1, c->head_dim, 0, 0);
        ADD(kn, "k_norm.weight", 1, c->head_dim, 0, 0);
#undef ADD
        ix->nmix = 6;
        return 0;
    case NN_MIX_KDA:
    case NN_MIX_GDN: {
        nn_kda_cfg kc;
        kda_cfg(&kc, c, l);
        if (nn_kda_cfg_check(&kc)) return error_prefix("layer %d", l);
        ix->mix0 = pt->n;
        for (int i = 0; i < NN_KDA_NPARAMS; i++) {
            int64_t s[2];
            int nd = nn_kda_param_shape(&kc, i, s);
            snprintf(name, sizeof name, "model.layers.%d.linear_attn.%s", l, nn_kda_param_names[i]);
            ptab_add(pt, name, nd, s[0], nd > 1 ? s[1] : 0, NN_G_KDA, l, nd > 1);
        }
        ix->nmix = NN_KDA_NPARAMS;
        return 0;
    }
    }
    return error("layer %d: unknown mixer %d", l, (int)c->mixer[l]);
}

/* Attention activations of one layer: qp, q [N,QD]; qrstd [N*Hq]; kp, k, v [N,KD]; krstd [N*Hkv]; att [N,QD];
 * lse [B*Hq*T]. */
typedef struct attn_act {
    float *qp, *qrstd, *q, *kp, *krstd, *k, *v, *att, *lse;
} attn_act;

static size_t attn_act_bind(attn_act *a, float *base, const nn_config *c, int N)
{
    size_t QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim, o = 0;
#define TAKE(f, n) do { if (a) a->f = base + o; o += ((size_t)(n) + 15) & ~(size_t)15; } while (0)
    TAKE(qp, N * QD); TAKE(qrstd, (size_t)N * c->n_heads); TAKE(q, N * QD);
    TAKE(kp, N * KD); TAKE(krstd, (size_t)N * c->n_kv_heads); TAKE(k, N * KD); TAKE(v, N * KD);
    TAKE(att, N * QD); TAKE(lse, (size_t)N * c->n_heads);
#undef TAKE
    return o;
}

static size_t mixer_act_floats(const nn_config *c, int l, int B, int T)
{
    switch (c->mixer[l]) {
    case NN_MIX_ATTN: return attn_act_bind(NULL, NULL, c, B * T);
    default: {
        nn_kda_cfg kc;
        kda_cfg(&kc, c, l);
        return nn_kda_acts_kept_floats(&kc, B, T); /* the rest is in the global block (kda_tmp_floats) */
    }
    }
}

/* The largest f(layer config, B, T) over the KDA layers, at least n. */
static size_t kda_max(const nn_config *c, int B, int T, size_t n, size_t (*f)(const nn_kda_cfg *, int, int))
{
    for (int l = 0; l < c->n_layers; l++)
        if (c->mixer[l] != NN_MIX_ATTN) {
            nn_kda_cfg kc;
            kda_cfg(&kc, c, l);
            if (f(&kc, B, T) > n) n = f(&kc, B, T);
        }
    return n;
}

/* The KDA activations every KDA layer reuses (nn_kda_acts_bind_shared): the largest layer's. */
static size_t kda_tmp_floats(const nn_config *c, int B, int T) { return kda_max(c, B, T, 0, nn_kda_acts_tmp_floats); }

/* Backward scratch shared by all layers: dq, datt, dqp [N,QD]; dk, dv, dkp [N,KD]. */
static size_t mixer_bwd_scratch_floats(const nn_config *c, int B, int T)
{
    size_t N = (size_t)B * T, QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim;
    return kda_max(c, B, T, 3 * N * QD + 3 * N * KD + 64, nn_kda_bwd_scratch_floats);
}

static size_t mixer_cache_floats(const nn_config *c, int l, int B, int Tmax)
{
    switch (c->mixer[l]) {
    case NN_MIX_ATTN: return 2 * (size_t)B * Tmax * c->n_kv_heads * c->head_dim; /* k, v [B,Tmax,Hkv,K] */
    default: {
        nn_kda_cfg kc; /* recurrent state + conv caches, independent of Tmax */
        kda_cfg(&kc, c, l);
        return nn_kda_state_floats(&kc, B);
    }
    }
}

/* Per-call context of the layer functions. */
typedef struct fwd_ctx {
    int B, T, N;
    const int32_t *pos, *seg, *q_start; /* device */
    nn_cache *cache;
    int train;
    const int32_t *hseg;   /* host copy of seg (KDA layers split packed rows into documents) */
    const int *valid;      /* host [B] or NULL: real tokens per sequence of a right-padded cached prefill */
} fwd_ctx;

/*
 * Attention forward (HF Qwen3Attention): x [N,d] -> y [N,d]
 *   qp = x Wq^T, kp = x Wk^T, v = x Wv^T; q = RoPE(RMSNorm_head(qp) * q_norm), k likewise;
 *   att = softmax(q k^T / sqrt(K) + causal/segment mask) v (GQA);  y = att Wo^T
 * With a cache, k and v of sequence b are stored at cache positions len[b].. and attention runs over the cache.
 */
static void attn_forward(nn_model *m, int l, const fwd_ctx *f, float *y, const float *x, float *actbuf,
                         float *cache_l)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    const struct nn_layer_ix *ix = &m->lix[l];
    int N = f->N, K = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads, QD = Hq * K, KD = Hkv * K;
    attn_act a;
    attn_act_bind(&a, actbuf, c, N);
    k_linear_fwd(be, a.qp, x, P(m, ix->q), N, c->d, QD, 0);
    k_linear_fwd(be, a.kp, x, P(m, ix->k), N, c->d, KD, 0);
    k_linear_fwd(be, a.v, x, P(m, ix->v), N, c->d, KD, 0);
    be->op->rmsnorm_fwd(be, a.q, a.qrstd, a.qp, P(m, ix->qn), N * Hq, K, c->norm_eps);
    be->op->rmsnorm_fwd(be, a.k, a.krstd, a.kp, P(m, ix->kn), N * Hkv, K, c->norm_eps);
    be->op->rope_fwd(be, a.q, f->pos, m->rope_inv, N, Hq, K);
    be->op->rope_fwd(be, a.k, f->pos, m->rope_inv, N, Hkv, K);
    k_attn_shape s = {.B = f->B, .Tq = f->T, .Tk = f->T, .Hq = Hq, .Hkv = Hkv, .K = K, .scale = 1.0f / sqrtf((float)K)};
    if (f->cache) {
        nn_cache *cc = f->cache;
        float *ck = cache_l, *cv = cache_l + (size_t)cc->B * cc->Tmax * KD;
        for (int b = 0; b < f->B; b++) {
            size_t dst = ((size_t)b * cc->Tmax + cc->len[b]) * KD, src = (size_t)b * f->T * KD;
            be->op->copy(be, ck + dst, a.k + src, (size_t)f->T * KD * sizeof(float));
            be->op->copy(be, cv + dst, a.v + src, (size_t)f->T * KD * sizeof(float));
        }
        s.Tk = cc->Tmax;
        be->op->attn_fwd(be, a.att, NULL, a.q, ck, cv, f->q_start, NULL, &s);
    } else {
        be->op->attn_fwd(be, a.att, a.lse, a.q, a.k, a.v, NULL, f->seg, &s);
    }
    k_linear_fwd(be, y, a.att, P(m, ix->o), N, QD, c->d, 0);
}

/* Backward of attn_forward (train, no cache): dx [N,d] += ..., gradients of trainable weights += ... */
static void attn_backward(nn_model *m, int l, const fwd_ctx *f, float *dx, const float *dy, const float *x,
                          float *actbuf, float *scratch)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    const struct nn_layer_ix *ix = &m->lix[l];
    int N = f->N, K = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads, QD = Hq * K, KD = Hkv * K;
    attn_act a;
    attn_act_bind(&a, actbuf, c, N);
    float *datt = scratch, *dq = datt + (size_t)N * QD, *dqp = dq + (size_t)N * QD, *dk = dqp + (size_t)N * QD,
          *dv = dk + (size_t)N * KD, *dkp = dv + (size_t)N * KD;
    be->op->zero(be, scratch, mixer_bwd_scratch_floats(c, f->B, f->T) * sizeof(float));
    /* y = att Wo^T */
    k_linear_bwd(be, datt, G(m, ix->o), dy, a.att, P(m, ix->o), N, QD, c->d);
    k_attn_shape s = {.B = f->B, .Tq = f->T, .Tk = f->T, .Hq = Hq, .Hkv = Hkv, .K = K, .scale = 1.0f / sqrtf((float)K)};
    be->op->attn_bwd(be, dq, dk, dv, datt, a.q, a.k, a.v, a.att, a.lse, f->seg, &s);
    /* q = RoPE(qn): rotate the gradient back; qn = RMSNorm(qp) * q_norm */
    be->op->rope_bwd(be, dq, f->pos, m->rope_inv, N, Hq, K);
    be->op->rope_bwd(be, dk, f->pos, m->rope_inv, N, Hkv, K);
    be->op->rmsnorm_bwd(be, dqp, G(m, ix->qn), dq, a.qp, P(m, ix->qn), a.qrstd, N * Hq, K);
    be->op->rmsnorm_bwd(be, dkp, G(m, ix->kn), dk, a.kp, P(m, ix->kn), a.krstd, N * Hkv, K);
    /* qp = x Wq^T, kp = x Wk^T, v = x Wv^T */
    k_linear_bwd(be, dx, G(m, ix->q), dqp, x, P(m, ix->q), N, c->d, QD);
    k_linear_bwd(be, dx, G(m, ix->k), dkp, x, P(m, ix->k), N, c->d, KD);
    k_linear_bwd(be, dx, G(m, ix->v), dv, x, P(m, ix->v), N, c->d, KD);
}

/* KDA / GDN (engine/nn/kda_layer.c): the layer's tensors are consecutive in the table from mix0. With a cache, the
 * recurrent state and conv caches continue from the previous call (prefill, then decode with T = 1). */
static void kda_views(const nn_model *m, int l, nn_kda_cfg *kc, nn_kda_params *p, nn_kda_params *g)
{
    kda_cfg(kc, &m->cfg, l);
    for (int i = 0; i < NN_KDA_NPARAMS; i++) {
        p->t[i] = P(m, m->lix[l].mix0 + i);
        if (g) g->t[i] = G(m, m->lix[l].mix0 + i);
    }
}

static float *kda_tmp_at(const nn_model *m); /* the global block's kda_tmp (below) */

static void kda_forward(nn_model *m, int l, const fwd_ctx *f, float *y, const float *x, float *act, float *cache_l)
{
    nn_kda_cfg kc;
    nn_kda_params p;
    nn_kda_acts a;
    nn_kda_state st;
    kda_views(m, l, &kc, &p, NULL);
    nn_kda_acts_bind_shared(&a, act, kda_tmp_at(m), &kc, f->B, f->T);
    if (f->cache) {
        if (f->cache->B != f->B) BUG("KDA layer %d: batch %d with a cache of %d sequences", l, f->B, f->cache->B);
        nn_kda_state_bind(&st, cache_l, &kc, f->B);
    }
    nn_kda_forward_docs(m->be, y, &a, x, &p, &kc, f->cache ? &st : NULL, f->cache ? NULL : f->hseg,
                        f->cache ? f->valid : NULL);
}

static void kda_backward(nn_model *m, int l, const fwd_ctx *f, float *dx, const float *dy, const float *x, float *act,
                         float *scratch)
{
    nn_kda_cfg kc;
    nn_kda_params p, g;
    nn_kda_acts a;
    kda_views(m, l, &kc, &p, &g);
    nn_kda_acts_bind_shared(&a, act, kda_tmp_at(m), &kc, f->B, f->T);
    if (m->act_recompute) a.shared_tmp = 0; /* this layer's forward has just run again: they are its own */
    nn_kda_backward_docs(m->be, dx, &g, dy, &a, x, &p, &kc, scratch, f->hseg);
}

static void mixer_forward(nn_model *m, int l, const fwd_ctx *f, float *y, const float *x, float *act, float *cache_l)
{
    switch (m->cfg.mixer[l]) {
    case NN_MIX_ATTN: attn_forward(m, l, f, y, x, act, cache_l); return;
    case NN_MIX_KDA: case NN_MIX_GDN: kda_forward(m, l, f, y, x, act, cache_l); return;
    default: BUG("layer %d: mixer %d has no forward", l, (int)m->cfg.mixer[l]);
    }
}

static void mixer_backward(nn_model *m, int l, const fwd_ctx *f, float *dx, const float *dy, const float *x,
                           float *act, float *scratch)
{
    switch (m->cfg.mixer[l]) {
    case NN_MIX_ATTN: attn_backward(m, l, f, dx, dy, x, act, scratch); return;
    case NN_MIX_KDA: case NN_MIX_GDN: kda_backward(m, l, f, dx, dy, x, act, scratch); return;
    default: BUG("layer %d: mixer %d has no backward", l, (int)m->cfg.mixer[l]);
    }
}
/* ===== end of mixer dispatch ===== */

static int build_table(const nn_config *c, ptab *pt, struct nn_layer_ix *lix, int *embed, int *norm, int *lm)
{
    char name[96];
    int d = c->d, F = c->ffn;
    *embed = ptab_add(pt, "model.embed_tokens.weight", 2, c->vocab, d, NN_G_EMBED, -1, 1);
    for (int l = 0; l < c->n_layers; l++) {
        struct nn_layer_ix *ix = &lix[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        ix->ln1 = ptab_add(pt, name, 1, d, 0, NN_G_NORM, l, 0);
        if (mixer_add_params(pt, c, l, ix)) return -1;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        ix->ln2 = ptab_add(pt, name, 1, d, 0, NN_G_NORM, l, 0);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
        ix->gate = ptab_add(pt, name, 2, F, d, NN_G_MLP, l, 1);
        snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
        ix->up = ptab_add(pt, name, 2, F, d, NN_G_MLP, l, 1);
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
        ix->down = ptab_add(pt, name, 2, d, F, NN_G_MLP, l, 1);
    }
    *norm = ptab_add(pt, "model.norm.weight", 1, d, 0, NN_G_NORM, -1, 0);
    *lm = c->tied ? -1 : ptab_add(pt, "lm_head.weight", 2, c->vocab, d, NN_G_LM_HEAD, -1, 1);
    return 0;
}

int nn_param_table(const nn_config *c, nn_param **table, int *n)
{
    ptab pt = {0};
    struct nn_layer_ix *lix = xcalloc((size_t)c->n_layers, sizeof *lix);
    int e, no, lm;
    int r = build_table(c, &pt, lix, &e, &no, &lm);
    free(lix);
    if (r) {
        free(pt.t);
        return -1;
    }
    *table = pt.t;
    *n = pt.n;
    return 0;
}

size_t nn_config_n_params(const nn_config *c)
{
    nn_param *t;
    int n;
    if (nn_param_table(c, &t, &n)) return 0;
    size_t s = 0;
    for (int i = 0; i < n; i++) s += t[i].numel;
    free(t);
    return s;
}

/* ---------------------------------------------------------------- lifecycle */

int nn_model_new(nn_model **out, const nn_config *c, k_backend *be)
{
    *out = NULL;
    if (nn_config_check(c, "model config")) return -1;
    nn_model *m = xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->cfg.kda_save = be->op->kda_save ? be->op->kda_save(be, c->head_dim, c->head_dim) : 0;
    m->be = be;
    m->lix = xcalloc((size_t)c->n_layers, sizeof *m->lix);
    ptab pt = {0};
    if (build_table(c, &pt, m->lix, &m->embed_idx, &m->norm_idx, &m->lm_head_idx)) {
        free(pt.t);
        free(m->lix);
        free(m);
        return -1;
    }
    m->params = pt.t;
    m->n_params = pt.n;
    m->n_floats = pt.off;
    m->p = be->op->alloc(be, m->n_floats * sizeof(float));
    float inv[512];
    nn_rope_inv_freq(c, inv);
    m->rope_inv = be->op->alloc(be, 512 * sizeof(float));
    be->op->upload(be, m->rope_inv, inv, (size_t)(c->head_dim / 2) * sizeof(float));
    m->act_off = xcalloc((size_t)c->n_layers + 1, sizeof *m->act_off);
    m->act_mode = -1;
    *out = m;
    return 0;
}

void nn_model_free(nn_model *m)
{
    if (!m) return;
    k_backend *be = m->be;
    nn_model_thaw(m);
    be->op->free(be, m->p);
    be->op->free(be, m->rope_inv);
    if (m->g) be->op->free(be, m->g);
    if (m->m) be->op->free(be, m->m);
    if (m->v) be->op->free(be, m->v);
    if (m->act) be->op->free(be, m->act);
    if (m->io) be->op->free(be, m->io);
    free(m->act_off);
    free(m->params);
    free(m->lix);
    free(m);
}

void nn_model_init_random(nn_model *m, uint64_t seed)
{
    hx_rng rng;
    hx_rng_seed(&rng, seed);
    float *host = xmalloc(m->n_floats * sizeof(float));
    memset(host, 0, m->n_floats * sizeof(float));
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = &m->params[i];
        float *x = host + p->off;
        if (p->ndim == 1 && p->group != NN_G_KDA)
            for (size_t j = 0; j < p->numel; j++) x[j] = 1.0f; /* RMSNorm weights */
        else
            for (size_t j = 0; j < p->numel; j++) x[j] = m->cfg.init_range * hx_rng_normal(&rng);
    }
    m->be->op->upload(m->be, m->p, host, m->n_floats * sizeof(float));
    free(host);
}

int nn_model_find(const nn_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

float *nn_model_param(const nn_model *m, const char *name) { return P(m, nn_model_find(m, name)); }
float *nn_model_grad(const nn_model *m, const char *name) { return G(m, nn_model_find(m, name)); }

void nn_model_freeze(nn_model *m)
{
    if (m->frozen) return;
    if (m->be->op->weights_freeze) m->be->op->weights_freeze(m->be, m->p, m->n_floats);
    m->frozen = 1;
}

void nn_model_thaw(nn_model *m)
{
    if (!m->frozen) return;
    if (m->be->op->weights_thaw) m->be->op->weights_thaw(m->be, m->p);
    m->frozen = 0;
}

int nn_model_set_trainable(nn_model *m, unsigned mask)
{
    k_backend *be = m->be;
    if (m->frozen && mask) return error("nn_model_set_trainable: the model's weights are frozen for inference");
    if (m->g) be->op->free(be, m->g);
    if (m->m) be->op->free(be, m->m);
    if (m->v) be->op->free(be, m->v);
    m->g = m->m = m->v = NULL;
    m->trainable = mask;
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        nn_param *p = &m->params[i];
        if (mask & NN_GROUP_BIT(p->group)) {
            p->goff = off;
            off += (p->numel + 15) & ~(size_t)15;
        } else
            p->goff = SIZE_MAX;
    }
    m->n_gfloats = off;
    if (off) {
        m->g = be->op->alloc(be, off * sizeof(float));
        m->m = be->op->alloc(be, off * sizeof(float));
        m->v = be->op->alloc(be, off * sizeof(float));
    }
    return 0;
}

void nn_model_zero_grad(nn_model *m)
{
    if (m->g) m->be->op->zero(m->be, m->g, m->n_gfloats * sizeof(float));
}

/* ---------------------------------------------------------------- activations */

/* One layer's block: res_in, ln1, res_mid, ln2 [N,d]; rstd1, rstd2 [N]; gate, up, swi [N,F]; mixer acts. */
typedef struct layer_act {
    float *res_in, *ln1, *rstd1, *res_mid, *ln2, *rstd2, *gate, *up, *swi, *mix;
} layer_act;

static size_t layer_act_bind(layer_act *a, float *base, const nn_config *c, int l, int B, int T)
{
    size_t N = (size_t)B * T, o = 0;
#define TAKE(f, n) do { if (a) a->f = base + o; o += ((size_t)(n) + 15) & ~(size_t)15; } while (0)
    TAKE(res_in, N * c->d); TAKE(ln1, N * c->d); TAKE(rstd1, N); TAKE(res_mid, N * c->d); TAKE(ln2, N * c->d);
    TAKE(rstd2, N); TAKE(gate, N * c->ffn); TAKE(up, N * c->ffn); TAKE(swi, N * c->ffn);
    TAKE(mix, mixer_act_floats(c, l, B, T));
#undef TAKE
    return o;
}

/* Global buffers after the layer blocks. */
typedef struct glob_act {
    float *res_final, *rstd_f, *tmp, *dres, *dln, *dgate, *dup, *dswi, *dfn, *mscratch, *rowbuf, *kda_tmp;
} glob_act;

static size_t glob_bind(glob_act *g, float *base, const nn_config *c, int B, int T, int train)
{
    size_t N = (size_t)B * T, o = 0;
#define TAKE(f, n) do { if (g) g->f = base + o; o += ((size_t)(n) + 15) & ~(size_t)15; } while (0)
    TAKE(res_final, N * c->d); TAKE(rstd_f, N); TAKE(tmp, N * c->d); TAKE(rowbuf, (size_t)B * c->d);
    TAKE(kda_tmp, kda_tmp_floats(c, B, T));
    if (train) {
        TAKE(dres, N * c->d); TAKE(dln, N * c->d); TAKE(dgate, N * c->ffn); TAKE(dup, N * c->ffn);
        TAKE(dswi, N * c->ffn); TAKE(dfn, N * c->d); TAKE(mscratch, mixer_bwd_scratch_floats(c, B, T));
    } else if (g) {
        g->dres = g->dln = g->dgate = g->dup = g->dswi = g->dfn = g->mscratch = NULL;
    }
#undef TAKE
    return o;
}

void nn_model_set_recompute(nn_model *m, int on) { m->recompute = on != 0; }
void nn_model_set_head_floats(nn_model *m, size_t n) { m->head_floats = n; }

int nn_model_prepare(nn_model *m, int B, int T, int mode)
{
    const nn_config *c = &m->cfg;
    if (B <= 0 || T <= 0) return error("nn_model_prepare: empty batch %d x %d", B, T);
    int train = mode == NN_ACT_TRAIN, recompute = train && m->recompute;
    if (m->act && mode == m->act_mode && recompute == m->act_recompute && B <= m->act_B && T <= m->act_T &&
        (size_t)B * T <= (size_t)m->act_B * m->act_T)
        return 0;
    k_backend *be = m->be;
    if (m->act) be->op->free(be, m->act);
    if (m->io) be->op->free(be, m->io);
    size_t N = (size_t)B * T, o = 0, work = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t sz = layer_act_bind(NULL, NULL, c, l, B, T);
        if (recompute) { /* the layer's input here, the rest in the shared block */
            m->act_off[l] = o;
            o += (N * c->d + 15) & ~(size_t)15;
            if (sz > work) work = sz;
        } else if (train) {
            m->act_off[l] = o;
            o += sz;
        } else {
            m->act_off[l] = 0;
            if (sz > o) o = sz;
        }
    }
    m->act_work = o;
    o += work;
    m->act_recompute = recompute;
    m->act_off[c->n_layers] = o;
    o += glob_bind(NULL, NULL, c, B, T, train);
    size_t hid = o;
    o += (N * c->d + 15) & ~(size_t)15;
    size_t lg = o, V = (size_t)c->vocab;
    const size_t hf = m->head_floats ? m->head_floats : NN_HEAD_FLOATS;
    m->head_rows = N * V <= hf ? (int)N : (int)(hf / V > 0 ? hf / V : 1);
    /* NN_ACT_HIDDEN keeps no logits: nn_model_head_rows writes them where its caller says */
    o += mode == NN_ACT_GEN     ? (size_t)B * V
         : mode == NN_ACT_SCORE ? N * V
         : mode == NN_ACT_TRAIN ? (size_t)m->head_rows * V
                                : 0;
    size_t lr = o;
    o += N + 16;
    m->act = be->op->alloc(be, o * sizeof(float));
    m->act_floats = o;
    m->hidden_out = m->act + hid;
    m->logits = m->act + lg;
    m->loss_rows = m->act + lr;
    m->io = be->op->alloc(be, (4 * N + (size_t)B + 16) * sizeof(int32_t));
    m->act_B = B;
    m->act_T = T;
    m->act_mode = mode;
    return 0;
}

static void get_layer_act(const nn_model *m, layer_act *a, int l, int B, int T)
{
    if (m->act_recompute) {
        layer_act_bind(a, m->act + m->act_work, &m->cfg, l, B, T);
        a->res_in = m->act + m->act_off[l];
    } else
        layer_act_bind(a, m->act + m->act_off[l], &m->cfg, l, B, T);
}

/* Block l from its input a->res_in up to what its backward reads: ln1, the mixer's activations, res_mid, ln2,
 * gate, up, swi; g->tmp keeps the mixer's output. The forward, the one-block forward and recomputation (the same
 * ops on the same input, so the same values) all go through here; the down projection is the caller's. */
static void layer_forward_body(nn_model *m, int l, const fwd_ctx *f, const layer_act *a, const glob_act *g,
                               float *cache_l)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    struct nn_layer_ix *ix = &m->lix[l];
    int N = f->N, d = c->d, F = c->ffn;
    be->op->rmsnorm_fwd(be, a->ln1, a->rstd1, a->res_in, P(m, ix->ln1), N, d, c->norm_eps);
    mixer_forward(m, l, f, g->tmp, a->ln1, a->mix, cache_l);
    be->op->add(be, a->res_mid, a->res_in, g->tmp, (size_t)N * d);
    be->op->rmsnorm_fwd(be, a->ln2, a->rstd2, a->res_mid, P(m, ix->ln2), N, d, c->norm_eps);
    k_linear_fwd(be, a->gate, a->ln2, P(m, ix->gate), N, d, F, 0);
    k_linear_fwd(be, a->up, a->ln2, P(m, ix->up), N, d, F, 0);
    be->op->swiglu_fwd(be, a->swi, a->gate, a->up, (size_t)N * F);
}

/* Backward of block l's MLP half: g->dres holds dL/d block_out and becomes dL/d res_mid (the residual carries it,
 * the path through ln2 adds to it); gradients of down, gate, up and the ln2 weight +=. */
static void mlp_backward(nn_model *m, int l, int N, const layer_act *a, const glob_act *g)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    struct nn_layer_ix *ix = &m->lix[l];
    int d = c->d, F = c->ffn;
    be->op->zero(be, g->dswi, (size_t)N * F * sizeof(float));
    k_linear_bwd(be, g->dswi, G(m, ix->down), g->dres, a->swi, P(m, ix->down), N, F, d);
    be->op->zero(be, g->dgate, (size_t)N * F * sizeof(float));
    be->op->zero(be, g->dup, (size_t)N * F * sizeof(float));
    be->op->swiglu_bwd(be, g->dgate, g->dup, g->dswi, a->gate, a->up, (size_t)N * F);
    be->op->zero(be, g->dln, (size_t)N * d * sizeof(float));
    k_linear_bwd(be, g->dln, G(m, ix->gate), g->dgate, a->ln2, P(m, ix->gate), N, d, F);
    k_linear_bwd(be, g->dln, G(m, ix->up), g->dup, a->ln2, P(m, ix->up), N, d, F);
    be->op->rmsnorm_bwd(be, g->dres, G(m, ix->ln2), g->dln, a->res_mid, P(m, ix->ln2), a->rstd2, N, d);
}

static void get_glob(const nn_model *m, glob_act *g, int B, int T)
{
    glob_bind(g, m->act + m->act_off[m->cfg.n_layers], &m->cfg, B, T, m->act_mode == NN_ACT_TRAIN);
}

/* sized for the prepared batch, as every get_glob of a step (its B x T fits in it) */
static float *kda_tmp_at(const nn_model *m)
{
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    return g.kda_tmp;
}

/* ---------------------------------------------------------------- forward */

int nn_model_forward(nn_model *m, const nn_batch *bt, nn_cache *cache, const int *logits_rows, float **hidden)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    int B = bt->B, T = bt->T, N = B * T, d = c->d, F = c->ffn, L = c->n_layers;
    if (!m->act || B > m->act_B || (size_t)N > (size_t)m->act_B * m->act_T)
        return error("nn_model_forward: batch %d x %d exceeds the prepared %d x %d", B, T, m->act_B, m->act_T);
    if ((m->act_mode == NN_ACT_GEN) != (logits_rows != NULL))
        return error("nn_model_forward: logits_rows must be given exactly in NN_ACT_GEN mode");
    if (cache && (m->act_mode == NN_ACT_TRAIN || bt->seg))
        return error("nn_model_forward: a cache is for inference without segments");
    if (cache && B != cache->B) return error("nn_model_forward: batch %d but cache for %d sequences", B, cache->B);
    for (int i = 0; i < N; i++)
        if (bt->ids[i] < 0 || bt->ids[i] >= c->vocab)
            return error("token id %d at position %d outside the vocabulary (%d)", bt->ids[i], i, c->vocab);
    if (cache)
        for (int b = 0; b < B; b++)
            if (cache->len[b] + T > cache->Tmax)
                return error("sequence %d: %d cached + %d new tokens exceed the cache (%d)", b, cache->len[b], T,
                             cache->Tmax);
    /* device ints: ids | pos | seg | targets | q_start */
    int32_t *ids = m->io, *pos = ids + N, *seg = pos + N, *qs = seg + 2 * (size_t)N;
    int32_t *hpos = xmalloc((size_t)N * sizeof(int32_t)), hqs[1024], *hq = B <= 1024 ? hqs : xmalloc((size_t)B * 4);
    for (int b = 0; b < B; b++) {
        hq[b] = cache ? cache->len[b] : 0;
        for (int t = 0; t < T; t++) hpos[b * T + t] = bt->pos ? bt->pos[b * T + t] : hq[b] + t;
    }
    be->op->upload(be, ids, bt->ids, (size_t)N * 4);
    be->op->upload(be, pos, hpos, (size_t)N * 4);
    be->op->upload(be, qs, hq, (size_t)B * 4);
    if (bt->seg) be->op->upload(be, seg, bt->seg, (size_t)N * 4);
    free(hpos);
    if (hq != hqs) free(hq);
    /* With a cache, the tokens of sequence b after logits_rows[b] are right padding (nn_generate's prefill of
     * prompts of different lengths): attention layers write them to the KV cache, where the caller's cache->len
     * overwrites them, and KDA layers leave them out of the recurrent state and conv cache. */
    int *valid = NULL;
    if (cache && logits_rows) {
        valid = xmalloc((size_t)B * sizeof *valid);
        for (int b = 0; b < B; b++) valid[b] = logits_rows[b] >= 0 && logits_rows[b] < T ? logits_rows[b] + 1 : T;
    }
    fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = bt->seg ? seg : NULL, .q_start = qs, .cache = cache,
                 .train = m->act_mode == NN_ACT_TRAIN, .hseg = bt->seg, .valid = valid};
    m->cur_B = B;
    m->cur_T = T;
    m->cur_has_seg = bt->seg != NULL;
    m->fwd_train = f.train && !cache;
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    layer_act a;
    get_layer_act(m, &a, 0, B, T);
    be->op->embedding_fwd(be, a.res_in, ids, P(m, m->embed_idx), N, d, c->vocab);
    for (int l = 0; l < L; l++) {
        struct nn_layer_ix *ix = &m->lix[l];
        get_layer_act(m, &a, l, B, T);
        if (hidden && hidden[l]) be->op->download(be, hidden[l], a.res_in, (size_t)N * d * sizeof(float));
        float *next;
        if (l + 1 < L) {
            layer_act an;
            get_layer_act(m, &an, l + 1, B, T);
            next = an.res_in;
        } else
            next = g.res_final;
        layer_forward_body(m, l, &f, &a, &g, cache ? cache->mem + cache->layer_off[l] : NULL);
        k_linear_fwd(be, g.tmp, a.swi, P(m, ix->down), N, F, d, 0);
        be->op->add(be, next, a.res_mid, g.tmp, (size_t)N * d);
    }
    free(valid);
    be->op->rmsnorm_fwd(be, m->hidden_out, g.rstd_f, g.res_final, P(m, m->norm_idx), N, d, c->norm_eps);
    if (hidden && hidden[L]) be->op->download(be, hidden[L], m->hidden_out, (size_t)N * d * sizeof(float));
    const float *E = P(m, c->tied ? m->embed_idx : m->lm_head_idx);
    if (logits_rows) {
        for (int b = 0; b < B; b++) {
            if (logits_rows[b] < 0 || logits_rows[b] >= T) return error("logits row %d outside 0..%d", logits_rows[b], T - 1);
            be->op->copy(be, g.rowbuf + (size_t)b * d, m->hidden_out + ((size_t)b * T + logits_rows[b]) * d,
                         (size_t)d * sizeof(float));
        }
        k_linear_fwd(be, m->logits, g.rowbuf, E, B, d, c->vocab, 0);
    }
    /* NN_ACT_TRAIN in more than one head chunk, NN_ACT_HIDDEN: the logits come by chunks (nn_model_head, _head_rows) */
    m->logits_ready = m->act_mode == NN_ACT_SCORE || (m->act_mode == NN_ACT_TRAIN && N <= m->head_rows);
    if (m->logits_ready) k_linear_fwd(be, m->logits, m->hidden_out, E, N, d, c->vocab, 0);
    m->head_done = 0;
    return 0;
}

static const float *lm_weight(const nn_model *m) { return P(m, m->cfg.tied ? m->embed_idx : m->lm_head_idx); }

void nn_model_head_rows(nn_model *m, float *out, int r0, int n)
{
    const int d = m->cfg.d;
    k_linear_fwd(m->be, out, m->hidden_out + (size_t)r0 * d, lm_weight(m), n, d, m->cfg.vocab, 0);
}

int nn_model_head(nn_model *m, int grad, nn_head_fn fn, void *ctx)
{
    k_backend *be = m->be;
    const int N = m->cur_B * m->cur_T, d = m->cfg.d, V = m->cfg.vocab;
    if (m->act_mode != NN_ACT_TRAIN || !m->fwd_train)
        return error("nn_model_head: needs a training forward (NN_ACT_TRAIN, no cache) before");
    if (grad && !m->g) return error("nn_model_head: no trainable groups (nn_model_set_trainable)");
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    const int lm = m->cfg.tied ? m->embed_idx : m->lm_head_idx;
    if (grad) be->op->zero(be, g.dfn, (size_t)N * d * sizeof(float));
    for (int r0 = 0; r0 < N; r0 += m->head_rows) {
        const int n = N - r0 < m->head_rows ? N - r0 : m->head_rows;
        if (!m->logits_ready) nn_model_head_rows(m, m->logits, r0, n); /* (ready: one chunk, from the forward) */
        m->logits_ready = 0; /* fn may overwrite them with their gradient */
        if (fn(ctx, m->logits, r0, n)) return -1;
        /* logits = hidden_out E^T, for these rows */
        if (grad)
            k_linear_bwd(be, g.dfn + (size_t)r0 * d, G(m, lm), m->logits, m->hidden_out + (size_t)r0 * d,
                         P(m, lm), n, d, V);
    }
    m->head_done = grad;
    return 0;
}

int nn_model_logits(nn_model *m, float *host)
{
    const int N = m->cur_B * m->cur_T, V = m->cfg.vocab;
    if (m->act_mode == NN_ACT_GEN || m->act_mode == NN_ACT_HIDDEN)
        return error("nn_model_logits: NN_ACT_GEN keeps one row per sequence, NN_ACT_HIDDEN none");
    if (m->logits_ready) {
        m->be->op->download(m->be, host, m->logits, (size_t)N * V * sizeof(float));
        return 0;
    }
    if (m->act_mode == NN_ACT_SCORE) return error("nn_model_logits: the logits were overwritten since the forward");
    for (int r0 = 0; r0 < N; r0 += m->head_rows) {
        const int n = N - r0 < m->head_rows ? N - r0 : m->head_rows;
        nn_model_head_rows(m, m->logits, r0, n);
        m->be->op->download(m->be, host + (size_t)r0 * V, m->logits, (size_t)n * V * sizeof(float));
    }
    return 0;
}

/* nn_model_xent's loss on a chunk of rows: the targets and the gradient scale */
typedef struct xent_ctx {
    nn_model *m;
    const int32_t *tg; /* device [N] */
    int grad;
    float dscale;
} xent_ctx;

static int xent_chunk(void *p, float *logits, int r0, int n)
{
    xent_ctx *x = p;
    k_backend *be = x->m->be;
    be->op->xent_fwd_bwd(be, x->m->loss_rows + r0, x->grad ? logits : NULL, logits, x->tg + r0, n,
                         x->m->cfg.vocab, IGNORE_INDEX, x->dscale);
    return 0;
}

int nn_model_xent(nn_model *m, const int32_t *targets, int grad, float grad_scale, double *loss, int *count)
{
    k_backend *be = m->be;
    int N = m->cur_B * m->cur_T, V = m->cfg.vocab;
    if (m->act_mode != NN_ACT_TRAIN && m->act_mode != NN_ACT_SCORE)
        return error("nn_model_xent: needs every row's logits (NN_ACT_TRAIN or NN_ACT_SCORE)");
    int cnt = 0;
    for (int i = 0; i < N; i++) cnt += targets[i] != IGNORE_INDEX && targets[i] >= 0 && targets[i] < V;
    int32_t *tg = m->io + 3 * (size_t)N;
    be->op->upload(be, tg, targets, (size_t)N * 4);
    float dscale = cnt ? grad_scale / cnt : 0;
    if (m->act_mode == NN_ACT_TRAIN) {
        xent_ctx x = {m, tg, grad, dscale};
        if (nn_model_head(m, grad, xent_chunk, &x)) return -1;
    } else {
        if (grad) return error("nn_model_xent: a gradient needs a training forward (NN_ACT_TRAIN)");
        be->op->xent_fwd_bwd(be, m->loss_rows, NULL, m->logits, tg, N, V, IGNORE_INDEX, dscale);
    }
    float *lr = xmalloc((size_t)N * sizeof(float));
    be->op->download(be, lr, m->loss_rows, (size_t)N * sizeof(float));
    double s = 0;
    for (int i = 0; i < N; i++) s += lr[i];
    free(lr);
    if (loss) *loss = cnt ? s / cnt : 0;
    if (count) *count = cnt;
    return 0;
}

/* ---------------------------------------------------------------- backward */

/* Host copy of the device segment ids seg [N] of the last forward when KDA layers need them, or NULL. */
static int32_t *host_seg(nn_model *m, const int32_t *seg, int N)
{
    if (!seg || !nn_config_has_linear(&m->cfg)) return NULL;
    int32_t *h = xmalloc((size_t)N * sizeof *h);
    m->be->op->download(m->be, h, seg, (size_t)N * sizeof *h);
    return h;
}

int nn_model_backward(nn_model *m)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    if (!m->fwd_train) return error("nn_model_backward: the last forward was not a training forward");
    if (!m->g) return error("nn_model_backward: no trainable groups (nn_model_set_trainable)");
    int B = m->cur_B, T = m->cur_T, N = B * T, d = c->d, L = c->n_layers;
    int32_t *ids = m->io, *pos = ids + N, *seg = pos + N;
    int32_t *hseg = host_seg(m, m->cur_has_seg ? seg : NULL, N);
    fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = m->cur_has_seg ? seg : NULL, .train = 1, .hseg = hseg};
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    /* logits = hidden_out E^T: done by nn_model_head, which left d(loss)/d(hidden_out) in g.dfn */
    if (!m->head_done) {
        free(hseg);
        return error("nn_model_backward: no loss gradient since the forward (nn_model_xent or nn_model_head, grad)");
    }
    m->head_done = 0;
    /* hidden_out = RMSNorm(res_final) */
    be->op->zero(be, g.dres, (size_t)N * d * sizeof(float));
    be->op->rmsnorm_bwd(be, g.dres, G(m, m->norm_idx), g.dfn, g.res_final, P(m, m->norm_idx), g.rstd_f, N, d);
    for (int l = L - 1; l >= 0; l--) {
        struct nn_layer_ix *ix = &m->lix[l];
        layer_act a;
        get_layer_act(m, &a, l, B, T);
        if (m->act_recompute) layer_forward_body(m, l, &f, &a, &g, NULL);
        /* res_out = res_mid + swi Wd^T, swi = silu(ln2 Wg^T) * (ln2 Wu^T), ln2 = RMSNorm(res_mid) */
        mlp_backward(m, l, N, &a, &g);
        /* res_mid = res_in + Mixer(ln1) */
        be->op->zero(be, g.dln, (size_t)N * d * sizeof(float));
        mixer_backward(m, l, &f, g.dln, g.dres, a.ln1, a.mix, g.mscratch);
        be->op->rmsnorm_bwd(be, g.dres, G(m, ix->ln1), g.dln, a.res_in, P(m, ix->ln1), a.rstd1, N, d);
    }
    float *dE = G(m, m->embed_idx);
    if (dE) be->op->embedding_bwd(be, dE, ids, g.dres, N, d, c->vocab);
    free(hseg);
    return 0;
}

/* ---------------------------------------------------------------- one block (layer-wise alignment) */

/* Uploads the positions and segments of bt and returns the layer context (m->io: ids | pos | seg | ...). */
static int layer_ctx(nn_model *m, const nn_batch *bt, fwd_ctx *f)
{
    int B = bt->B, T = bt->T, N = B * T;
    if (!m->act || m->act_mode == NN_ACT_GEN || B > m->act_B || (size_t)N > (size_t)m->act_B * m->act_T)
        return error("nn_model_layer_forward: batch %d x %d needs NN_ACT_TRAIN (or SCORE) activations of that size", B, T);
    int32_t *pos = m->io + N, *seg = pos + N;
    int32_t *hpos = xmalloc((size_t)N * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) hpos[b * T + t] = bt->pos ? bt->pos[b * T + t] : t;
    m->be->op->upload(m->be, pos, hpos, (size_t)N * 4);
    free(hpos);
    if (bt->seg) m->be->op->upload(m->be, seg, bt->seg, (size_t)N * 4);
    *f = (fwd_ctx){.B = B, .T = T, .N = N, .pos = pos, .seg = bt->seg ? seg : NULL, .train = m->act_mode == NN_ACT_TRAIN,
                   .hseg = bt->seg};
    return 0;
}

/*
 * Block l alone: x [N,d] = hidden_states.l (device);  ln1 = RMSNorm(x);  mix_out = Mixer(ln1);
 * res_mid = x + mix_out;  block_out = res_mid + down(silu(gate(ln2)) * up(ln2)), ln2 = RMSNorm(res_mid).
 * Keeps layer l's activations for nn_model_layer_backward; a whole-model backward cannot follow.
 */
int nn_model_layer_forward(nn_model *m, int l, const nn_batch *bt, const float *x, float *mix_out, float *block_out)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    if (l < 0 || l >= c->n_layers) return error("nn_model_layer_forward: layer %d outside 0..%d", l, c->n_layers - 1);
    fwd_ctx f = {0};
    if (layer_ctx(m, bt, &f)) return -1;
    int N = f.N, d = c->d, F = c->ffn;
    struct nn_layer_ix *ix = &m->lix[l];
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    layer_act a;
    get_layer_act(m, &a, l, f.B, f.T);
    m->cur_B = f.B;
    m->cur_T = f.T;
    m->cur_has_seg = bt->seg != NULL;
    m->fwd_train = 0;
    be->op->copy(be, a.res_in, x, (size_t)N * d * sizeof(float));
    layer_forward_body(m, l, &f, &a, &g, NULL);
    if (mix_out) be->op->copy(be, mix_out, g.tmp, (size_t)N * d * sizeof(float));
    if (block_out) {
        k_linear_fwd(be, g.tmp, a.swi, P(m, ix->down), N, F, d, 0);
        be->op->add(be, block_out, a.res_mid, g.tmp, (size_t)N * d);
    }
    return 0;
}

/* Backward of nn_model_layer_forward (the last call for layer l, same batch): dmix = dL/dmix_out and/or
 * dblock = dL/dblock_out (either NULL); gradients of layer l's trainable parameters +=, dx (may be NULL) +=. */
int nn_model_layer_backward(nn_model *m, int l, const float *dmix, const float *dblock, float *dx)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    if (l < 0 || l >= c->n_layers) return error("nn_model_layer_backward: layer %d outside 0..%d", l, c->n_layers - 1);
    if (!m->g) return error("nn_model_layer_backward: no trainable groups (nn_model_set_trainable)");
    if (m->act_mode != NN_ACT_TRAIN || m->fwd_train) return error("nn_model_layer_backward: no nn_model_layer_forward before");
    int B = m->cur_B, T = m->cur_T, N = B * T, d = c->d;
    int32_t *pos = m->io + N, *seg = pos + N;
    int32_t *hseg = host_seg(m, m->cur_has_seg ? seg : NULL, N);
    fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = m->cur_has_seg ? seg : NULL, .train = 1, .hseg = hseg};
    struct nn_layer_ix *ix = &m->lix[l];
    glob_act g;
    get_glob(m, &g, m->act_B, m->act_T);
    layer_act a;
    get_layer_act(m, &a, l, B, T);
    if (m->act_recompute) layer_forward_body(m, l, &f, &a, &g, NULL);
    be->op->zero(be, g.dres, (size_t)N * d * sizeof(float));
    if (dblock) {
        /* block_out = res_mid + swi Wd^T;  swi = silu(gate) * up;  gate/up = ln2 W^T;  ln2 = RMSNorm(res_mid) */
        be->op->copy(be, g.dres, dblock, (size_t)N * d * sizeof(float));
        mlp_backward(m, l, N, &a, &g);
    }
    /* res_mid = x + mix_out */
    if (dmix) be->op->add(be, g.dres, g.dres, dmix, (size_t)N * d);
    be->op->zero(be, g.dln, (size_t)N * d * sizeof(float));
    mixer_backward(m, l, &f, g.dln, g.dres, a.ln1, a.mix, g.mscratch);
    /* ln1 = RMSNorm(x): dx += through the norm and the residual */
    if (dx) {
        be->op->rmsnorm_bwd(be, dx, G(m, ix->ln1), g.dln, a.res_in, P(m, ix->ln1), a.rstd1, N, d);
        be->op->add(be, dx, dx, g.dres, (size_t)N * d);
    } else if (G(m, ix->ln1)) {
        be->op->zero(be, g.dfn, (size_t)N * d * sizeof(float));
        be->op->rmsnorm_bwd(be, g.dfn, G(m, ix->ln1), g.dln, a.res_in, P(m, ix->ln1), a.rstd1, N, d);
    }
    free(hseg);
    return 0;
}

/* ---------------------------------------------------------------- cache */

/* Layer offsets of a cache of B sequences of up to Tmax tokens into layer_off (may be NULL); total floats. */
static size_t cache_layout(const nn_config *c, size_t *layer_off, int B, int Tmax)
{
    size_t o = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (layer_off) layer_off[l] = o;
        o += (mixer_cache_floats(c, l, B, Tmax) + 15) & ~(size_t)15;
    }
    return o;
}

int nn_cache_new(nn_cache **out, nn_model *m, int B, int Tmax)
{
    if (B <= 0 || Tmax <= 0) return error("nn_cache_new: empty cache %d x %d", B, Tmax);
    nn_cache *c = xcalloc(1, sizeof *c);
    c->B = c->B_cap = B;
    c->Tmax = Tmax;
    c->layer_off = xcalloc((size_t)m->cfg.n_layers, sizeof *c->layer_off);
    c->len = xcalloc((size_t)B, sizeof *c->len);
    size_t o = cache_layout(&m->cfg, c->layer_off, B, Tmax);
    c->mem = m->be->op->alloc(m->be, (o ? o : 16) * sizeof(float));
    *out = c;
    return 0;
}

void nn_cache_reset(nn_model *m, nn_cache *c)
{
    size_t o = cache_layout(&m->cfg, NULL, c->B, c->Tmax);
    m->be->op->zero(m->be, c->mem, o * sizeof(float));
    memset(c->len, 0, (size_t)c->B * sizeof *c->len);
}

int nn_cache_rebatch(nn_model *m, nn_cache *c, int B)
{
    if (B < 1 || B > c->B_cap) return error("nn_cache_rebatch: %d sequences in a cache made for %d", B, c->B_cap);
    c->B = B;
    cache_layout(&m->cfg, c->layer_off, B, c->Tmax);
    nn_cache_reset(m, c);
    return 0;
}

int nn_cache_copy_seq(nn_model *m, nn_cache *dst, int db, const nn_cache *src, int sb)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    if (db < 0 || db >= dst->B || sb < 0 || sb >= src->B)
        return error("nn_cache_copy_seq: sequence %d of %d into %d of %d", sb, src->B, db, dst->B);
    int n = src->len[sb];
    if (n > dst->Tmax) return error("nn_cache_copy_seq: %d tokens into a cache of %d", n, dst->Tmax);
    for (int l = 0; l < c->n_layers; l++) {
        float *d = dst->mem + dst->layer_off[l];
        const float *s = src->mem + src->layer_off[l];
        if (c->mixer[l] == NN_MIX_ATTN) { /* k then v, each [B,Tmax,KD]: the sequence's first n rows */
            size_t KD = (size_t)c->n_kv_heads * c->head_dim, bytes = (size_t)n * KD * sizeof(float);
            size_t dk = (size_t)db * dst->Tmax * KD, sk = (size_t)sb * src->Tmax * KD;
            size_t dv = (size_t)dst->B * dst->Tmax * KD, sv = (size_t)src->B * src->Tmax * KD;
            if (bytes) {
                be->op->copy(be, d + dk, s + sk, bytes);
                be->op->copy(be, d + dv + dk, s + sv + sk, bytes);
            }
            continue;
        }
        nn_kda_cfg kc; /* recurrent state and conv caches: each part [B, ...] */
        kda_cfg(&kc, c, l);
        nn_kda_state ds, ss;
        nn_kda_state_bind(&ds, d, &kc, dst->B);
        nn_kda_state_bind(&ss, (float *)s, &kc, src->B);
        size_t nS = (size_t)kc.Hq * kc.K * kc.K, nq = (size_t)(kc.W - 1) * kc.Hq * kc.K,
               nk = (size_t)(kc.W - 1) * kc.Hkv * kc.K;
        be->op->copy(be, ds.S + db * nS, ss.S + sb * nS, nS * sizeof(float));
        if (nq) be->op->copy(be, ds.cq + db * nq, ss.cq + sb * nq, nq * sizeof(float));
        if (nk) {
            be->op->copy(be, ds.ck + db * nk, ss.ck + sb * nk, nk * sizeof(float));
            be->op->copy(be, ds.cv + db * nk, ss.cv + sb * nk, nk * sizeof(float));
        }
    }
    dst->len[db] = n;
    return 0;
}

void nn_cache_free(nn_model *m, nn_cache *c)
{
    if (!c) return;
    m->be->op->free(m->be, c->mem);
    free(c->layer_off);
    free(c->len);
    free(c);
}
