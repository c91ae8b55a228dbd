/* model.c - Qwen3 / Hybrid model: parameter table, lifecycle, one-allocation activation buffers (forward and backward:
 * model_forward.c, the mixers: model_mixer.c, the decode cache: model_cache.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/model_internal.h"

/*
 * Shapes: B batch, T time, N = B*T rows, d hidden, V vocab, F MLP width, Hq/Hkv heads, K head dim,
 * QD = Hq*K, KD = Hkv*K. A block (HF Qwen3DecoderLayer, pre-norm):
 *   ln1 = RMSNorm(res_in);  res_mid = res_in + Mixer(ln1);
 *   ln2 = RMSNorm(res_mid); res_out = res_mid + down(silu(gate(ln2)) * up(ln2))
 * then hidden_out = RMSNorm(res_L), logits = hidden_out E^T (tied) or W_lm^T.
 */

/* ---------------------------------------------------------------- parameter table */

int nn_ptab_add(nn_ptab *pt, const char *name, int ndim, int64_t r, int64_t c, nn_group g, int layer, int decay)
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

static int build_table(const nn_config *c, nn_ptab *pt, struct nn_layer_ix *lix, int *embed, int *norm, int *lm)
{
    char name[96];
    int d = c->d, F = c->ffn;
    *embed = nn_ptab_add(pt, "model.embed_tokens.weight", 2, c->vocab, d, NN_G_EMBED, -1, 1);
    for (int l = 0; l < c->n_layers; l++) {
        struct nn_layer_ix *ix = &lix[l];
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
        ix->ln1 = nn_ptab_add(pt, name, 1, d, 0, NN_G_NORM, l, 0);
        if (nn_mixer_add_params(pt, c, l, ix)) return -1;
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
        ix->ln2 = nn_ptab_add(pt, name, 1, d, 0, NN_G_NORM, l, 0);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
        ix->gate = nn_ptab_add(pt, name, 2, F, d, NN_G_MLP, l, 1);
        snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
        ix->up = nn_ptab_add(pt, name, 2, F, d, NN_G_MLP, l, 1);
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
        ix->down = nn_ptab_add(pt, name, 2, d, F, NN_G_MLP, l, 1);
    }
    *norm = nn_ptab_add(pt, "model.norm.weight", 1, d, 0, NN_G_NORM, -1, 0);
    *lm = c->tied ? -1 : nn_ptab_add(pt, "lm_head.weight", 2, c->vocab, d, NN_G_LM_HEAD, -1, 1);
    return 0;
}

int nn_param_table(const nn_config *c, nn_param **table, int *n)
{
    nn_ptab pt = {0};
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
    nn_ptab pt = {0};
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
    if (m->argmax_d) be->op->free(be, m->argmax_d);
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

/* One range per tensor, not the whole buffer: the backend's copy of each tensor then starts where its own
 * allocations do (CUDA: 256 bytes), as the converted operands in its scratch do; a tensor at its 16-float offset
 * inside one bf16 copy of the buffer is only 32-byte aligned, which cuBLASLt's bf16 kernels were not reliable at. */
void nn_model_argmax(nn_model *m, int n, int32_t *tok, float *rows)
{
    k_backend *be = m->be;
    int V = m->cfg.vocab;
    if (n <= 0) return;
    if (be->op->argmax_rows) {
        if (n > m->argmax_cap) {
            if (m->argmax_d) be->op->free(be, m->argmax_d);
            m->argmax_cap = n > 64 ? n : 64;
            m->argmax_d = be->op->alloc(be, (size_t)m->argmax_cap * sizeof(int32_t));
        }
        be->op->argmax_rows(be, m->argmax_d, m->logits, n, V);
        be->op->download(be, tok, m->argmax_d, (size_t)n * sizeof(int32_t));
        return;
    }
    be->op->download(be, rows, m->logits, (size_t)n * V * sizeof(float));
    for (int r = 0; r < n; r++) {
        const float *x = rows + (size_t)r * V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (x[i] > x[best]) best = i;
        tok[r] = best;
    }
}

void nn_model_freeze(nn_model *m)
{
    if (m->frozen) return;
    if (m->be->op->weights_freeze)
        for (int i = 0; i < m->n_params; i++) m->be->op->weights_freeze(m->be, P(m, i), m->params[i].numel);
    m->frozen = 1;
}

void nn_model_thaw(nn_model *m)
{
    if (!m->frozen) return;
    if (m->be->op->weights_thaw)
        for (int i = 0; i < m->n_params; i++) m->be->op->weights_thaw(m->be, P(m, i));
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

static size_t layer_act_bind(nn_layer_act *a, float *base, const nn_config *c, int l, int B, int T)
{
    size_t N = (size_t)B * T, o = 0;
#define TAKE(f, n) do { if (a) a->f = base + o; o += ((size_t)(n) + 15) & ~(size_t)15; } while (0)
    TAKE(res_in, N * c->d); TAKE(ln1, N * c->d); TAKE(rstd1, N); TAKE(res_mid, N * c->d); TAKE(ln2, N * c->d);
    TAKE(rstd2, N); TAKE(gate, N * c->ffn); TAKE(up, N * c->ffn); TAKE(swi, N * c->ffn);
    TAKE(mix, nn_mixer_act_floats(c, l, B, T));
#undef TAKE
    return o;
}

static size_t glob_bind(nn_glob_act *g, float *base, const nn_config *c, int B, int T, int train)
{
    size_t N = (size_t)B * T, o = 0;
#define TAKE(f, n) do { if (g) g->f = base + o; o += ((size_t)(n) + 15) & ~(size_t)15; } while (0)
    TAKE(res_final, N * c->d); TAKE(rstd_f, N); TAKE(tmp, N * c->d); TAKE(rowbuf, (size_t)B * c->d);
    TAKE(kda_tmp, nn_mixer_kda_tmp_floats(c, B, T));
    if (train) {
        TAKE(dres, N * c->d); TAKE(dln, N * c->d); TAKE(dgate, N * c->ffn); TAKE(dup, N * c->ffn);
        TAKE(dswi, N * c->ffn); TAKE(dfn, N * c->d); TAKE(mscratch, nn_mixer_bwd_scratch_floats(c, B, T));
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

void nn_model_layer_act(const nn_model *m, nn_layer_act *a, int l, int B, int T)
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
void nn_layer_forward_body(nn_model *m, int l, const nn_fwd_ctx *f, const nn_layer_act *a, const nn_glob_act *g,
                               float *cache_l)
{
    const nn_config *c = &m->cfg;
    k_backend *be = m->be;
    struct nn_layer_ix *ix = &m->lix[l];
    int N = f->N, d = c->d, F = c->ffn;
    be->op->rmsnorm_fwd(be, a->ln1, a->rstd1, a->res_in, P(m, ix->ln1), N, d, c->norm_eps);
    nn_mixer_forward(m, l, f, g->tmp, a->ln1, a->mix, cache_l);
    if (be->op->add_rmsnorm_fwd) {
        be->op->add_rmsnorm_fwd(be, a->res_mid, a->ln2, a->rstd2, a->res_in, g->tmp, P(m, ix->ln2), N, d, c->norm_eps);
    } else {
        be->op->add(be, a->res_mid, a->res_in, g->tmp, (size_t)N * d);
        be->op->rmsnorm_fwd(be, a->ln2, a->rstd2, a->res_mid, P(m, ix->ln2), N, d, c->norm_eps);
    }
    k_linear_fwd(be, a->gate, a->ln2, P(m, ix->gate), N, d, F, 0);
    k_linear_fwd(be, a->up, a->ln2, P(m, ix->up), N, d, F, 0);
    be->op->swiglu_fwd(be, a->swi, a->gate, a->up, (size_t)N * F);
}

/* Backward of block l's MLP half: g->dres holds dL/d block_out and becomes dL/d res_mid (the residual carries it,
 * the path through ln2 adds to it); gradients of down, gate, up and the ln2 weight +=. */
void nn_mlp_backward(nn_model *m, int l, int N, const nn_layer_act *a, const nn_glob_act *g)
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

void nn_model_glob(const nn_model *m, nn_glob_act *g, int B, int T)
{
    glob_bind(g, m->act + m->act_off[m->cfg.n_layers], &m->cfg, B, T, m->act_mode == NN_ACT_TRAIN);
}

/* sized for the prepared batch, as every nn_model_glob of a step (its B x T fits in it) */
float *nn_model_kda_tmp(const nn_model *m)
{
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
    return g.kda_tmp;
}
