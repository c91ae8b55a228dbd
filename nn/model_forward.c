/* model_forward.c - the model's forward, head (logits, cross-entropy), backward, and one block alone (layer-wise
 * alignment). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/model_internal.h"

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
    nn_fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = bt->seg ? seg : NULL, .q_start = qs, .cache = cache,
                 .train = m->act_mode == NN_ACT_TRAIN, .hseg = bt->seg, .valid = valid};
    m->cur_B = B;
    m->cur_T = T;
    m->cur_has_seg = bt->seg != NULL;
    m->fwd_train = f.train && !cache;
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
    nn_layer_act a;
    nn_model_layer_act(m, &a, 0, B, T);
    be->op->embedding_fwd(be, a.res_in, ids, P(m, m->embed_idx), N, d, c->vocab);
    for (int l = 0; l < L; l++) {
        struct nn_layer_ix *ix = &m->lix[l];
        nn_model_layer_act(m, &a, l, B, T);
        if (hidden && hidden[l]) be->op->download(be, hidden[l], a.res_in, (size_t)N * d * sizeof(float));
        float *next;
        if (l + 1 < L) {
            nn_layer_act an;
            nn_model_layer_act(m, &an, l + 1, B, T);
            next = an.res_in;
        } else
            next = g.res_final;
        nn_layer_forward_body(m, l, &f, &a, &g, cache ? cache->mem + cache->layer_off[l] : NULL);
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
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
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
    nn_fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = m->cur_has_seg ? seg : NULL, .train = 1, .hseg = hseg};
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
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
        nn_layer_act a;
        nn_model_layer_act(m, &a, l, B, T);
        if (m->act_recompute) nn_layer_forward_body(m, l, &f, &a, &g, NULL);
        /* res_out = res_mid + swi Wd^T, swi = silu(ln2 Wg^T) * (ln2 Wu^T), ln2 = RMSNorm(res_mid) */
        nn_mlp_backward(m, l, N, &a, &g);
        /* res_mid = res_in + Mixer(ln1) */
        be->op->zero(be, g.dln, (size_t)N * d * sizeof(float));
        nn_mixer_backward(m, l, &f, g.dln, g.dres, a.ln1, a.mix, g.mscratch);
        be->op->rmsnorm_bwd(be, g.dres, G(m, ix->ln1), g.dln, a.res_in, P(m, ix->ln1), a.rstd1, N, d);
    }
    float *dE = G(m, m->embed_idx);
    if (dE) be->op->embedding_bwd(be, dE, ids, g.dres, N, d, c->vocab);
    free(hseg);
    return 0;
}

/* ---------------------------------------------------------------- one block (layer-wise alignment) */

/* Uploads the positions and segments of bt and returns the layer context (m->io: ids | pos | seg | ...). */
static int layer_ctx(nn_model *m, const nn_batch *bt, nn_fwd_ctx *f)
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
    *f = (nn_fwd_ctx){.B = B, .T = T, .N = N, .pos = pos, .seg = bt->seg ? seg : NULL,
                      .train = m->act_mode == NN_ACT_TRAIN, .hseg = bt->seg};
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
    nn_fwd_ctx f = {0};
    if (layer_ctx(m, bt, &f)) return -1;
    int N = f.N, d = c->d, F = c->ffn;
    struct nn_layer_ix *ix = &m->lix[l];
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
    nn_layer_act a;
    nn_model_layer_act(m, &a, l, f.B, f.T);
    m->cur_B = f.B;
    m->cur_T = f.T;
    m->cur_has_seg = bt->seg != NULL;
    m->fwd_train = 0;
    be->op->copy(be, a.res_in, x, (size_t)N * d * sizeof(float));
    nn_layer_forward_body(m, l, &f, &a, &g, NULL);
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
    nn_fwd_ctx f = {.B = B, .T = T, .N = N, .pos = pos, .seg = m->cur_has_seg ? seg : NULL, .train = 1, .hseg = hseg};
    struct nn_layer_ix *ix = &m->lix[l];
    nn_glob_act g;
    nn_model_glob(m, &g, m->act_B, m->act_T);
    nn_layer_act a;
    nn_model_layer_act(m, &a, l, B, T);
    if (m->act_recompute) nn_layer_forward_body(m, l, &f, &a, &g, NULL);
    be->op->zero(be, g.dres, (size_t)N * d * sizeof(float));
    if (dblock) {
        /* block_out = res_mid + swi Wd^T;  swi = silu(gate) * up;  gate/up = ln2 W^T;  ln2 = RMSNorm(res_mid) */
        be->op->copy(be, g.dres, dblock, (size_t)N * d * sizeof(float));
        nn_mlp_backward(m, l, N, &a, &g);
    }
    /* res_mid = x + mix_out */
    if (dmix) be->op->add(be, g.dres, g.dres, dmix, (size_t)N * d);
    be->op->zero(be, g.dln, (size_t)N * d * sizeof(float));
    nn_mixer_backward(m, l, &f, g.dln, g.dres, a.ln1, a.mix, g.mscratch);
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
