/* generate.c - greedy generation (batched prefill + KV-cache decode), full-recompute reference, and scoring. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/generate.h"

static int argmax_row(const float *x, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int nn_generate(nn_model *m, const int32_t *const *prompts, const int *lens, int B, const nn_gen_opts *o,
                int32_t **out, int *n_out)
{
    k_backend *be = m->be;
    int V = m->cfg.vocab, Tp = 0, pad = m->cfg.pad_id >= 0 ? m->cfg.pad_id : 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 1) return error("generate: prompt %d is empty", b);
        Tp = lens[b] > Tp ? lens[b] : Tp;
        out[b] = xmalloc((size_t)(o->max_new > 0 ? o->max_new : 1) * sizeof(int32_t));
        n_out[b] = 0;
    }
    if (o->max_new <= 0) return 0;
    nn_cache *cache;
    if (nn_model_prepare(m, B, Tp, NN_ACT_GEN) || nn_cache_new(&cache, m, B, Tp + o->max_new)) return -1;
    int32_t *ids = xmalloc((size_t)B * Tp * sizeof(int32_t));
    int *rows = xmalloc((size_t)B * sizeof(int)), *done = xcalloc((size_t)B, sizeof(int));
    int32_t *toks = xmalloc((size_t)B * sizeof(int32_t));
    float *logits = be->op->argmax_rows ? NULL : xmalloc((size_t)B * V * sizeof(float)); /* nn_model_argmax's */
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < Tp; t++) ids[b * Tp + t] = t < lens[b] ? prompts[b][t] : pad;
        rows[b] = lens[b] - 1;
    }
    nn_batch bt = {.B = B, .T = Tp, .ids = ids};
    double t0 = hx_now(), t1 = t0;
    int r = nn_model_forward(m, &bt, cache, rows, NULL), steps = 0;
    for (int b = 0; b < B; b++) cache->len[b] = lens[b];
    int live = B;
    for (int step = 0; !r && live > 0; step++) {
        nn_model_argmax(m, B, toks, logits);
        if (step == 0) t1 = hx_now();
        for (int b = 0; b < B; b++) {
            int tok = toks[b];
            ids[b] = done[b] ? pad : tok;
            rows[b] = 0;
            if (done[b]) continue;
            out[b][n_out[b]++] = tok;
            int stop = n_out[b] >= o->max_new;
            for (int i = 0; i < o->n_stop_ids && !stop; i++) stop = tok == o->stop_ids[i];
            if (!stop && o->stop) stop = o->stop(o->stop_ud, b, out[b], n_out[b]);
            if (stop) {
                done[b] = 1;
                live--;
            }
        }
        if (!live) break;
        nn_batch one = {.B = B, .T = 1, .ids = ids};
        r = nn_model_forward(m, &one, cache, rows, NULL);
        for (int b = 0; b < B; b++) cache->len[b]++;
        steps++;
    }
    if (o->times) {
        double t2 = hx_now();
        o->times->prefill_s = t1 - t0;
        o->times->decode_s = steps ? t2 - t1 : 0;
        o->times->decode_steps = steps;
    }
    free(ids);
    free(rows);
    free(done);
    free(toks);
    free(logits);
    nn_cache_free(m, cache);
    return r;
}

int nn_generate_recompute(nn_model *m, const int32_t *prompt, int len, int max_new, int32_t *out)
{
    int V = m->cfg.vocab;
    int32_t *seq = xmalloc((size_t)(len + max_new) * sizeof(int32_t));
    memcpy(seq, prompt, (size_t)len * sizeof(int32_t));
    float *logits = xmalloc((size_t)V * sizeof(float));
    int32_t tok;
    int r = nn_model_prepare(m, 1, len + max_new, NN_ACT_GEN);
    for (int s = 0; !r && s < max_new; s++) {
        int T = len + s, row = T - 1;
        nn_batch bt = {.B = 1, .T = T, .ids = seq};
        r = nn_model_forward(m, &bt, NULL, &row, NULL);
        if (r) break;
        nn_model_argmax(m, 1, &tok, logits);
        seq[T] = out[s] = tok;
    }
    free(seq);
    free(logits);
    return r;
}

int nn_score(nn_model *m, const int32_t *const *ctx, const int *n_ctx, const int32_t *const *cont, const int *n_cont,
             int n, int batch, double *logp, int *greedy, float **per_token)
{
    k_backend *be = m->be;
    int V = m->cfg.vocab, pad = m->cfg.pad_id >= 0 ? m->cfg.pad_id : 0;
    if (batch < 1) batch = 1;
    for (int i0 = 0; i0 < n; i0 += batch) {
        int B = n - i0 < batch ? n - i0 : batch, T = 0;
        for (int b = 0; b < B; b++) {
            if (n_ctx[i0 + b] < 1 || n_cont[i0 + b] < 1) return error("score: item %d has an empty context or continuation", i0 + b);
            int L = n_ctx[i0 + b] + n_cont[i0 + b] - 1; /* the last token is only a target */
            T = L > T ? L : T;
        }
        if (nn_model_prepare(m, B, T, NN_ACT_SCORE)) return -1;
        int32_t *ids = xmalloc((size_t)B * T * sizeof(int32_t)), *tg = xmalloc((size_t)B * T * sizeof(int32_t));
        for (int b = 0; b < B; b++) {
            int i = i0 + b, nc = n_ctx[i], L = nc + n_cont[i];
            for (int t = 0; t < T; t++) {
                int tok = t < nc ? ctx[i][t] : t < L ? cont[i][t - nc] : pad;
                int nxt = t + 1 < nc ? -100 : t + 1 < L ? cont[i][t + 1 - nc] : -100;
                ids[b * T + t] = tok;
                tg[b * T + t] = nxt;
            }
        }
        nn_batch bt = {.B = B, .T = T, .ids = ids};
        int r = nn_model_forward(m, &bt, NULL, NULL, NULL);
        if (!r && greedy) { /* argmax check needs the logits before xent overwrites nothing (grad off) */
            float *row = xmalloc((size_t)V * sizeof(float));
            for (int b = 0; b < B; b++) {
                int i = i0 + b, ok = 1;
                for (int t = n_ctx[i] - 1; t < n_ctx[i] + n_cont[i] - 1 && ok; t++) {
                    be->op->download(be, row, m->logits + ((size_t)b * T + t) * V, (size_t)V * sizeof(float));
                    ok = argmax_row(row, V) == tg[b * T + t];
                }
                greedy[i] = ok;
            }
            free(row);
        }
        if (!r) r = nn_model_xent(m, tg, 0, 0, NULL, NULL);
        if (!r) {
            float *lr = xmalloc((size_t)B * T * sizeof(float));
            be->op->download(be, lr, m->loss_rows, (size_t)B * T * sizeof(float));
            for (int b = 0; b < B; b++) {
                int i = i0 + b;
                double s = 0;
                if (per_token) per_token[i] = xmalloc((size_t)n_cont[i] * sizeof(float));
                for (int j = 0; j < n_cont[i]; j++) {
                    float lp = -lr[b * T + n_ctx[i] - 1 + j];
                    s += lp;
                    if (per_token) per_token[i][j] = lp;
                }
                logp[i] = s;
            }
            free(lr);
        }
        free(ids);
        free(tg);
        if (r) return -1;
    }
    return 0;
}
