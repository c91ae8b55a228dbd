/* model_check.h - whole-model checks of one device against the CPU engine: a training step, greedy generation, scoring. */
#ifndef HX_TESTS_MODEL_CHECK_H
#define HX_TESTS_MODEL_CHECK_H
/*
 * Shared by tests/cuda/cuda_model.c (device "cuda", bf16-matmul tolerances) and tests/unit/test_devguard.c
 * (device "guard": the CPU ops behind page protection, so every tolerance is 0 and any host dereference of
 * device memory in the engine faults). Each mc_* function runs the same work on the CPU backend and on the
 * device and prints one line per compared quantity; it returns the number of failed comparisons.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/generate.h"
#include "nn/model.h"
#include "nn/train.h"
#include "kernels/kernels.h"

typedef struct mc_tol {
    double loss;    /* relative error of the loss */
    double grad;    /* ||g_dev - g_cpu|| / ||g_cpu|| over all gradients of the first step */
    double weight;  /* ||p_dev - p_cpu|| / ||p_cpu|| after the steps */
    double score;   /* relative error of a continuation's summed log-probability (nn_score) */
    double tie;     /* generation: a different greedy token is accepted only where the CPU's logits of the two
                     * tokens differ by at most tie * max|logit| (a near-tie that bf16 rounding may flip) */
} mc_tol;

/* Tiny configs: Qwen3 with GQA, and a hybrid with every mixer kind (kda, full attention, gdn). */
static inline void mc_cfg_qwen3(nn_config *c)
{
    nn_config_qwen3(c, 131, 64, 2, 4, 2, 16, 96);
}

/* layers kda, full attention, gdn, kda (silu convs of 4) at the given widths */
static inline void mc_cfg_hybrid_shape(nn_config *c, int d, int n_heads, int n_kv_heads, int head_dim, int ffn,
                                       int gate_rank)
{
    nn_config_qwen3(c, 97, d, 4, n_heads, n_kv_heads, head_dim, ffn);
    snprintf(c->model_type, sizeof c->model_type, "hx_hybrid");
    c->mixer[0] = NN_MIX_KDA; c->mixer[1] = NN_MIX_ATTN; c->mixer[2] = NN_MIX_GDN; c->mixer[3] = NN_MIX_KDA;
    c->conv_size = 4;
    c->gate_rank = gate_rank;
    snprintf(c->conv_act, sizeof c->conv_act, "silu");
}

static inline void mc_cfg_hybrid(nn_config *c) { mc_cfg_hybrid_shape(c, 32, 4, 2, 8, 48, 8); }

/* A model with HF-style random weights (seeded; the same on every backend) and A_log = log(1 + 3j) for a
 * realistic KDA decay; init_scale multiplies the init range (peaked logits for generation). */
static inline nn_model *mc_model(k_backend *be, const nn_config *c0, uint64_t seed, float init_scale)
{
    nn_config c = *c0;
    c.init_range *= init_scale;
    nn_model *m;
    if (nn_model_new(&m, &c, be)) {
        fprintf(stderr, "model: %s\n", hx_last_error());
        exit(1);
    }
    nn_model_init_random(m, seed);
    float *h = xmalloc(m->n_floats * sizeof(float));
    be->op->download(be, h, m->p, m->n_floats * sizeof(float));
    for (int i = 0; i < m->n_params; i++)
        if (strstr(m->params[i].name, "A_log"))
            for (size_t j = 0; j < m->params[i].numel; j++) h[m->params[i].off + j] = logf(1.0f + 3.0f * j);
    be->op->upload(be, m->p, h, m->n_floats * sizeof(float));
    free(h);
    return m;
}

static inline double mc_relnorm(const float *a, const float *b, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

static inline int mc_report(const char *what, double err, double tol)
{
    int ok = err <= tol;
    printf("  %-46s err %.3e  tol %.0e  %s\n", what, err, tol, ok ? "ok" : "FAIL");
    return !ok;
}

static inline float *mc_download(nn_model *m, const float *dev, size_t n)
{
    float *h = xmalloc((n ? n : 1) * sizeof(float));
    m->be->op->download(m->be, h, dev, n * sizeof(float));
    return h;
}

/* Packed random documents (eos-separated) for the trainer. */
static inline void mc_data(nn_data *d, int vocab, size_t n, uint64_t seed)
{
    hx_rng r;
    hx_rng_seed(&r, seed);
    memset(d, 0, sizeof *d);
    d->tok = xmalloc(n * sizeof(int32_t));
    d->n = n;
    d->eos = vocab - 1;
    for (size_t i = 0; i < n; i++) {
        d->tok[i] = (i % 37 == 36) ? d->eos : (int32_t)hx_rng_below(&r, (uint64_t)vocab - 1);
        d->n_docs += d->tok[i] == d->eos;
    }
}

/*
 * `steps` AdamW steps (B x T packed rows with document segments, clip 1, lr 1e-3) on the CPU and on dev from the
 * same weights: compares every step's loss and grad norm, all gradients of step 1, and the weights at the end.
 */
static inline int mc_train(k_backend *cpu, k_backend *dev, const nn_config *c, const char *name, int B, int T,
                           int steps, const mc_tol *tol)
{
    printf("%s: training %d steps, B %d T %d on %s vs cpu\n", name, steps, B, T, dev->name);
    nn_model *m[2] = {mc_model(cpu, c, 11, 1), mc_model(dev, c, 11, 1)};
    nn_data data;
    mc_data(&data, c->vocab, (size_t)B * T * (steps + 1) + 1, 3);
    nn_sched s = {.kind = NN_SCHED_CONSTANT, .lr = 1e-3, .min_lr = 0, .decay_frac = 0, .warmup = 0, .total = steps};
    nn_trainer tr[2];
    int fails = 0;
    for (int i = 0; i < 2; i++)
        if (nn_model_set_trainable(m[i], NN_ALL_GROUPS) || nn_trainer_init(&tr[i], m[i], &data, B, T, &s, 1)) {
            fprintf(stderr, "trainer: %s\n", hx_last_error());
            exit(1);
        }
    for (int st = 0; st < steps; st++) {
        double loss[2], gn[2], lr;
        float *g[2];
        for (int i = 0; i < 2; i++) {
            /* the step, split so that step 1's gradients can be read before AdamW */
            nn_trainer *t = &tr[i];
            nn_model_zero_grad(m[i]);
            nn_loader_next(&t->ld, t->ids, t->tg, t->seg, t->pos);
            nn_batch bt = {.B = B, .T = T, .ids = t->ids, .pos = t->pos, .seg = t->seg};
            int cnt;
            if (nn_model_forward(m[i], &bt, NULL, NULL, NULL) || nn_model_xent(m[i], t->tg, 1, 1.0f, &loss[i], &cnt) ||
                nn_model_backward(m[i])) {
                fprintf(stderr, "%s step %d: %s\n", name, st + 1, hx_last_error());
                exit(1);
            }
            g[i] = st == 0 ? mc_download(m[i], m[i]->g, m[i]->n_gfloats) : NULL;
            if (nn_train_update(t, &gn[i], &lr)) {
                fprintf(stderr, "%s update %d: %s\n", name, st + 1, hx_last_error());
                exit(1);
            }
        }
        char what[96];
        snprintf(what, sizeof what, "step %d loss (cpu %.6f, %s %.6f)", st + 1, loss[0], dev->name, loss[1]);
        fails += mc_report(what, fabs(loss[1] - loss[0]) / fabs(loss[0]), tol->loss);
        snprintf(what, sizeof what, "step %d grad norm (cpu %.5f)", st + 1, gn[0]);
        fails += mc_report(what, fabs(gn[1] - gn[0]) / gn[0], tol->grad);
        if (st == 0) {
            fails += mc_report("step 1 gradients, all tensors", mc_relnorm(g[1], g[0], m[0]->n_gfloats), tol->grad);
            double worst = 0;
            const char *wn = "";
            for (int p = 0; p < m[0]->n_params; p++) {
                const nn_param *pp = &m[0]->params[p];
                double e = mc_relnorm(g[1] + pp->goff, g[0] + pp->goff, pp->numel);
                if (e > worst) worst = e, wn = pp->name;
            }
            snprintf(what, sizeof what, "step 1 worst tensor %.30s", wn);
            fails += mc_report(what, worst, tol->grad * 3);
            free(g[0]);
            free(g[1]);
        }
    }
    float *p0 = mc_download(m[0], m[0]->p, m[0]->n_floats), *p1 = mc_download(m[1], m[1]->p, m[1]->n_floats);
    fails += mc_report("weights after the steps", mc_relnorm(p1, p0, m[0]->n_floats), tol->weight);
    float *v0 = mc_download(m[0], m[0]->v, m[0]->n_gfloats), *v1 = mc_download(m[1], m[1]->v, m[1]->n_gfloats);
    fails += mc_report("AdamW second moments", mc_relnorm(v1, v0, m[0]->n_gfloats), 2 * tol->grad);
    free(p0); free(p1); free(v0); free(v1);
    for (int i = 0; i < 2; i++) {
        nn_trainer_release(&tr[i]);
        nn_model_free(m[i]);
    }
    free(data.tok);
    return fails;
}

/* CPU logits of the last position of seq[0..n) */
static inline float *mc_last_logits(nn_model *m, const int32_t *seq, int n)
{
    int row = n - 1;
    nn_batch bt = {.B = 1, .T = n, .ids = seq};
    if (nn_model_prepare(m, 1, n, NN_ACT_GEN) || nn_model_forward(m, &bt, NULL, &row, NULL)) {
        fprintf(stderr, "forward: %s\n", hx_last_error());
        exit(1);
    }
    return mc_download(m, m->logits, (size_t)m->cfg.vocab);
}

/*
 * Greedy generation of 3 prompts of different lengths (batched prefill + KV cache / recurrent state decode) on
 * both backends, and the scores of continuations: tokens must be equal up to a near-tie (tol->tie), scores
 * within tol->score.
 */
static inline int mc_generate(k_backend *cpu, k_backend *dev, const nn_config *c, const char *name, const mc_tol *tol)
{
    enum { NP = 3, NEW = 24 };
    printf("%s: greedy generation of %d prompts x %d tokens on %s vs cpu\n", name, NP, NEW, dev->name);
    nn_model *m[2] = {mc_model(cpu, c, 21, 10), mc_model(dev, c, 21, 10)};
    int lens[NP] = {5, 70, 19};
    int32_t *pr[NP];
    hx_rng r;
    hx_rng_seed(&r, 4);
    for (int i = 0; i < NP; i++) {
        pr[i] = xmalloc((size_t)lens[i] * sizeof(int32_t));
        for (int t = 0; t < lens[i]; t++) pr[i][t] = (int32_t)hx_rng_below(&r, (uint64_t)c->vocab);
    }
    int32_t *out[2][NP];
    int nout[2][NP], fails = 0;
    nn_gen_opts o = {.max_new = NEW};
    for (int i = 0; i < 2; i++)
        if (nn_generate(m[i], (const int32_t *const *)pr, lens, NP, &o, out[i], nout[i])) {
            fprintf(stderr, "%s generate: %s\n", name, hx_last_error());
            exit(1);
        }
    for (int b = 0; b < NP; b++) {
        int j = 0;
        while (j < nout[0][b] && j < nout[1][b] && out[0][b][j] == out[1][b][j]) j++;
        char what[96];
        if (j == nout[0][b] && nout[0][b] == nout[1][b]) {
            snprintf(what, sizeof what, "prompt %d (len %d): %d tokens equal", b, lens[b], j);
            fails += mc_report(what, 0, 0);
            continue;
        }
        /* first difference at j: how close were the two tokens in the CPU's logits? */
        int32_t *seq = xmalloc((size_t)(lens[b] + j) * sizeof(int32_t));
        memcpy(seq, pr[b], (size_t)lens[b] * sizeof(int32_t));
        memcpy(seq + lens[b], out[0][b], (size_t)j * sizeof(int32_t));
        float *lg = mc_last_logits(m[0], seq, lens[b] + j);
        double mx = 0;
        for (int v = 0; v < c->vocab; v++) mx = fmax(mx, fabs(lg[v]));
        double gap = j < nout[1][b] ? fabs(lg[out[0][b][j]] - lg[out[1][b][j]]) / mx : INFINITY;
        snprintf(what, sizeof what, "prompt %d: token %d differs (near-tie gap)", b, j);
        fails += mc_report(what, gap, tol->tie);
        free(lg);
        free(seq);
    }
    /* scoring: the CPU's generated continuations, as nn_score items */
    const int32_t *ctx[NP], *cont[NP];
    int nctx[NP], ncont[NP];
    for (int b = 0; b < NP; b++) {
        ctx[b] = pr[b], nctx[b] = lens[b], cont[b] = out[0][b], ncont[b] = nout[0][b];
    }
    double lp[2][NP];
    int gr[2][NP];
    for (int i = 0; i < 2; i++)
        if (nn_score(m[i], ctx, nctx, cont, ncont, NP, 2, lp[i], gr[i], NULL)) {
            fprintf(stderr, "%s score: %s\n", name, hx_last_error());
            exit(1);
        }
    for (int b = 0; b < NP; b++) {
        char what[96];
        snprintf(what, sizeof what, "score of item %d (cpu %.4f, %s %.4f)", b, lp[0][b], dev->name, lp[1][b]);
        fails += mc_report(what, fabs(lp[1][b] - lp[0][b]) / fmax(1.0, fabs(lp[0][b])), tol->score);
    }
    for (int b = 0; b < NP; b++) {
        free(pr[b]);
        free(out[0][b]);
        free(out[1][b]);
    }
    nn_model_free(m[0]);
    nn_model_free(m[1]);
    return fails;
}

/*
 * Activation recomputation: two copies of a model on dev, one recomputing; the kernels are
 * deterministic (no float atomics, cuBLASLt plans cached per shape), so losses, gradient norms and the weights
 * after the steps must be equal bit for bit. Also: nothing is allocated after the first step (the activation
 * arena is sized by nn_model_prepare, the op scratch grows during step 1 at most), and the peak drops.
 */
static inline int mc_recompute(k_backend *dev, const nn_config *c, const char *name, int B, int T, int steps)
{
    printf("%s: recomputation, %d steps, B %d T %d on %s\n", name, steps, B, T, dev->name);
    nn_model *m[2] = {mc_model(dev, c, 13, 1), mc_model(dev, c, 13, 1)};
    nn_model_set_recompute(m[1], 1);
    nn_data data;
    mc_data(&data, c->vocab, (size_t)B * T * (steps + 1) + 1, 5);
    nn_sched s = {.kind = NN_SCHED_CONSTANT, .lr = 1e-3, .total = steps};
    nn_trainer tr[2];
    int fails = 0;
    size_t peak[2] = {0, 0}, after1[2] = {0, 0}, base[2];
    double loss[2][8], gn[2][8], lr;
    for (int i = 0; i < 2; i++) {
        base[i] = dev->mem_in_use; /* both models' weights (and model 0's training buffers for model 1) */
        if (nn_model_set_trainable(m[i], NN_ALL_GROUPS) || nn_trainer_init(&tr[i], m[i], &data, B, T, &s, 1)) {
            fprintf(stderr, "trainer: %s\n", hx_last_error());
            exit(1);
        }
        for (int st = 0; st < steps && st < 8; st++) {
            k_mem_reset_peak(dev);
            if (nn_train_step(&tr[i], &loss[i][st], &gn[i][st], &lr)) {
                fprintf(stderr, "%s: %s\n", name, hx_last_error());
                exit(1);
            }
            dev->op->sync(dev);
            if (dev->mem_peak - base[i] > peak[i]) peak[i] = dev->mem_peak - base[i];
            if (st == 0) after1[i] = dev->mem_in_use;
            else if (dev->mem_in_use != after1[i]) {
                printf("  step %d allocated: %zu -> %zu bytes  FAIL\n", st + 1, after1[i], dev->mem_in_use);
                fails++;
            }
        }
    }
    for (int st = 0; st < steps && st < 8; st++)
        if (memcmp(&loss[0][st], &loss[1][st], sizeof(double)) || memcmp(&gn[0][st], &gn[1][st], sizeof(double))) {
            printf("  step %d loss %.9g vs %.9g, grad norm %.9g vs %.9g  FAIL\n", st + 1, loss[0][st], loss[1][st],
                   gn[0][st], gn[1][st]);
            fails++;
        }
    float *p0 = mc_download(m[0], m[0]->p, m[0]->n_floats), *p1 = mc_download(m[1], m[1]->p, m[1]->n_floats);
    int same = !memcmp(p0, p1, m[0]->n_floats * sizeof(float));
    printf("  weights after %d steps bit-identical: %s; training memory (grads, moments, activations, scratch) at "
           "its peak %zu -> %zu bytes (activations %zu -> %zu floats)\n", steps,
           same ? "ok" : "FAIL", peak[0], peak[1], m[0]->act_floats, m[1]->act_floats);
    fails += !same;
    fails += !(m[1]->act_floats < m[0]->act_floats);
    free(p0);
    free(p1);
    for (int i = 0; i < 2; i++) {
        nn_trainer_release(&tr[i]);
        nn_model_free(m[i]);
    }
    free(data.tok);
    return fails;
}

#endif
