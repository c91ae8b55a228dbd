/* model_cache.c - the decode cache: per-layer KV or recurrent state for B sequences of up to Tmax tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/model_internal.h"

/* ---------------------------------------------------------------- cache */

/* Layer offsets of a cache of B sequences of up to Tmax tokens into layer_off (may be NULL); total floats. */
static size_t cache_layout(const nn_config *c, size_t *layer_off, int B, int Tmax)
{
    size_t o = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (layer_off) layer_off[l] = o;
        o += (nn_mixer_cache_floats(c, l, B, Tmax) + 15) & ~(size_t)15;
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
        nn_mixer_kda_cfg(&kc, c, l);
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
