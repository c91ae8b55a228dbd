/* model_mixer.c - the mixer dispatch of a layer: full attention here, KDA / GDN from kda_layer.c (params, activation
 * sizes, forward, backward, cache). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/model_internal.h"

/*
 * ===== Mixer dispatch =====
 * Each function below switches on the layer's mixer. full_attention is implemented here; kda / gdn come from
 * nn/kda_layer.h (the KDA engineer wires nn_kda_* into these five places: params, act_floats, forward,
 * backward, cache_floats).
 */
/* The KDA / GDN layer's shape from the model config (docs/models.md section 3: K = V = head_dim). */
void nn_mixer_kda_cfg(nn_kda_cfg *k, const nn_config *c, int l)
{
    *k = (nn_kda_cfg){.d = c->d, .Hq = c->n_heads, .Hkv = c->n_kv_heads, .K = c->head_dim, .r = c->gate_rank,
                      .W = c->conv_size, .conv_act = !strcmp(c->conv_act, "silu"),
                      .per_head = c->mixer[l] == NN_MIX_GDN, .eps = c->norm_eps, .save = c->kda_save};
}

int nn_mixer_add_params(nn_ptab *pt, const nn_config *c, int l, struct nn_layer_ix *ix)
{
    char name[96];
    int QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    ix->q = ix->k = ix->v = ix->o = ix->qn = ix->kn = -1;
    switch (c->mixer[l]) {
    case NN_MIX_ATTN:
#define ADD(field, suffix, nd, r, cc, decay)                                                   \
    snprintf(name, sizeof name, "model.layers.%d.self_attn.%s", l, suffix);                    \
    ix->field = nn_ptab_add(pt, name, nd, r, cc, NN_G_ATTENTION, l, decay);
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
        nn_mixer_kda_cfg(&kc, c, l);
        if (nn_kda_cfg_check(&kc)) return error_prefix("layer %d", l);
        ix->mix0 = pt->n;
        for (int i = 0; i < NN_KDA_NPARAMS; i++) {
            int64_t s[2];
            int nd = nn_kda_param_shape(&kc, i, s);
            snprintf(name, sizeof name, "model.layers.%d.linear_attn.%s", l, nn_kda_param_names[i]);
            nn_ptab_add(pt, name, nd, s[0], nd > 1 ? s[1] : 0, NN_G_KDA, l, nd > 1);
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

size_t nn_mixer_act_floats(const nn_config *c, int l, int B, int T)
{
    switch (c->mixer[l]) {
    case NN_MIX_ATTN: return attn_act_bind(NULL, NULL, c, B * T);
    default: {
        nn_kda_cfg kc;
        nn_mixer_kda_cfg(&kc, c, l);
        return nn_kda_acts_kept_floats(&kc, B, T); /* the rest is in the global block (nn_mixer_kda_tmp_floats) */
    }
    }
}

/* The largest f(layer config, B, T) over the KDA layers, at least n. */
static size_t kda_max(const nn_config *c, int B, int T, size_t n, size_t (*f)(const nn_kda_cfg *, int, int))
{
    for (int l = 0; l < c->n_layers; l++)
        if (c->mixer[l] != NN_MIX_ATTN) {
            nn_kda_cfg kc;
            nn_mixer_kda_cfg(&kc, c, l);
            if (f(&kc, B, T) > n) n = f(&kc, B, T);
        }
    return n;
}

/* The KDA activations every KDA layer reuses (nn_kda_acts_bind_shared): the largest layer's. */
size_t nn_mixer_kda_tmp_floats(const nn_config *c, int B, int T) { return kda_max(c, B, T, 0, nn_kda_acts_tmp_floats); }

/* Backward scratch shared by all layers: dq, datt, dqp [N,QD]; dk, dv, dkp [N,KD]. */
size_t nn_mixer_bwd_scratch_floats(const nn_config *c, int B, int T)
{
    size_t N = (size_t)B * T, QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim;
    return kda_max(c, B, T, 3 * N * QD + 3 * N * KD + 64, nn_kda_bwd_scratch_floats);
}

size_t nn_mixer_cache_floats(const nn_config *c, int l, int B, int Tmax)
{
    switch (c->mixer[l]) {
    case NN_MIX_ATTN: return 2 * (size_t)B * Tmax * c->n_kv_heads * c->head_dim; /* k, v [B,Tmax,Hkv,K] */
    default: {
        nn_kda_cfg kc; /* recurrent state + conv caches, independent of Tmax */
        nn_mixer_kda_cfg(&kc, c, l);
        return nn_kda_state_floats(&kc, B);
    }
    }
}

/*
 * Attention forward (HF Qwen3Attention): x [N,d] -> y [N,d]
 *   qp = x Wq^T, kp = x Wk^T, v = x Wv^T; q = RoPE(RMSNorm_head(qp) * q_norm), k likewise;
 *   att = softmax(q k^T / sqrt(K) + causal/segment mask) v (GQA);  y = att Wo^T
 * With a cache, k and v of sequence b are stored at cache positions len[b].. and attention runs over the cache.
 */
static void attn_forward(nn_model *m, int l, const nn_fwd_ctx *f, float *y, const float *x, float *actbuf,
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
    k_attn_shape s = {.B = f->B, .Tq = f->T, .Tk = f->T, .Hq = Hq, .Hkv = Hkv, .K = K, .scale = 1.0f / sqrtf((float)K)};
    if (f->cache && be->op->rope_cache_fwd) {
        /* the rotations and the cache append in one op (f->q_start holds cache->len on the device) */
        nn_cache *cc = f->cache;
        float *ck = cache_l, *cv = cache_l + (size_t)cc->B * cc->Tmax * KD;
        be->op->rope_cache_fwd(be, a.q, a.k, a.v, ck, cv, f->pos, f->q_start, m->rope_inv, f->B, f->T, Hq, Hkv, K,
                               cc->Tmax);
        s.Tk = cc->Tmax;
        be->op->attn_fwd(be, a.att, NULL, a.q, ck, cv, f->q_start, NULL, &s);
        k_linear_fwd(be, y, a.att, P(m, ix->o), N, QD, c->d, 0);
        return;
    }
    be->op->rope_fwd(be, a.q, f->pos, m->rope_inv, N, Hq, K);
    be->op->rope_fwd(be, a.k, f->pos, m->rope_inv, N, Hkv, K);
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
static void attn_backward(nn_model *m, int l, const nn_fwd_ctx *f, float *dx, const float *dy, const float *x,
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
    be->op->zero(be, scratch, nn_mixer_bwd_scratch_floats(c, f->B, f->T) * sizeof(float));
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

/* KDA / GDN (nn/kda_layer.c): the layer's tensors are consecutive in the table from mix0. With a cache, the
 * recurrent state and conv caches continue from the previous call (prefill, then decode with T = 1). */
static void kda_views(const nn_model *m, int l, nn_kda_cfg *kc, nn_kda_params *p, nn_kda_params *g)
{
    nn_mixer_kda_cfg(kc, &m->cfg, l);
    for (int i = 0; i < NN_KDA_NPARAMS; i++) {
        p->t[i] = P(m, m->lix[l].mix0 + i);
        if (g) g->t[i] = G(m, m->lix[l].mix0 + i);
    }
}

static void kda_forward(nn_model *m, int l, const nn_fwd_ctx *f, float *y, const float *x, float *act, float *cache_l)
{
    nn_kda_cfg kc;
    nn_kda_params p;
    nn_kda_acts a;
    nn_kda_state st;
    kda_views(m, l, &kc, &p, NULL);
    nn_kda_acts_bind_shared(&a, act, nn_model_kda_tmp(m), &kc, f->B, f->T);
    if (f->cache) {
        if (f->cache->B != f->B) BUG("KDA layer %d: batch %d with a cache of %d sequences", l, f->B, f->cache->B);
        nn_kda_state_bind(&st, cache_l, &kc, f->B);
    }
    nn_kda_forward_docs(m->be, y, &a, x, &p, &kc, f->cache ? &st : NULL, f->cache ? NULL : f->hseg,
                        f->cache ? f->valid : NULL);
}

static void kda_backward(nn_model *m, int l, const nn_fwd_ctx *f, float *dx, const float *dy, const float *x,
                         float *act, float *scratch)
{
    nn_kda_cfg kc;
    nn_kda_params p, g;
    nn_kda_acts a;
    kda_views(m, l, &kc, &p, &g);
    nn_kda_acts_bind_shared(&a, act, nn_model_kda_tmp(m), &kc, f->B, f->T);
    if (m->act_recompute) a.shared_tmp = 0; /* this layer's forward has just run again: they are its own */
    nn_kda_backward_docs(m->be, dx, &g, dy, &a, x, &p, &kc, scratch, f->hseg);
}

void nn_mixer_forward(nn_model *m, int l, const nn_fwd_ctx *f, float *y, const float *x, float *act, float *cache_l)
{
    switch (m->cfg.mixer[l]) {
    case NN_MIX_ATTN: attn_forward(m, l, f, y, x, act, cache_l); return;
    case NN_MIX_KDA: case NN_MIX_GDN: kda_forward(m, l, f, y, x, act, cache_l); return;
    default: BUG("layer %d: mixer %d has no forward", l, (int)m->cfg.mixer[l]);
    }
}

void nn_mixer_backward(nn_model *m, int l, const nn_fwd_ctx *f, float *dx, const float *dy, const float *x,
                           float *act, float *scratch)
{
    switch (m->cfg.mixer[l]) {
    case NN_MIX_ATTN: attn_backward(m, l, f, dx, dy, x, act, scratch); return;
    case NN_MIX_KDA: case NN_MIX_GDN: kda_backward(m, l, f, dx, dy, x, act, scratch); return;
    default: BUG("layer %d: mixer %d has no backward", l, (int)m->cfg.mixer[l]);
    }
}
/* ===== end of mixer dispatch ===== */
