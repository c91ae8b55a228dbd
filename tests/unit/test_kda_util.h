/* test_kda_util.h - shared helpers of the KDA unit tests: random tensors, comparisons, finite differences, tiny
 * KDA layers, conformance fixtures, tiny hybrid and Qwen3 models. */
#ifndef TEST_KDA_UTIL_H
#define TEST_KDA_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"
#include "kernels/cpu/kda.h"
#include "nn/conform.h"
#include "nn/kda_layer.h"
#include "nn/model.h"

static inline float *tk_randn(hx_rng *r, size_t n, float scale)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = hx_rng_normal(r) * scale;
    return p;
}

static inline float *tk_uniform(hx_rng *r, size_t n, float lo, float hi)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)hx_rng_uniform(r);
    return p;
}

static inline float *tk_dup(const float *x, size_t n)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    memcpy(p, x, sizeof(float) * n);
    return p;
}

/* max |a-b| / max |b| */
static inline double tk_relerr(const float *a, const float *b, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = d;
        if (fabs(b[i]) > r) r = fabs(b[i]);
    }
    return r > 0 ? m / r : m;
}

static inline double tk_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/*
 * Finite-difference check of an analytic gradient: for `probes` random coordinates i of x, compares
 * (L(x + h e_i) - L(x - h e_i)) / 2h with grad[i]; error relative to max |grad|. loss() reads x.
 */
typedef double (*tk_loss_fn)(void *ctx);
static inline double tk_fd_check(const char *what, float *x, const float *grad, size_t n, tk_loss_fn loss,
                                 void *ctx, int probes, float h, hx_rng *r)
{
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
    for (int p = 0; p < probes; p++) {
        size_t i = (size_t)hx_rng_below(r, n);
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = loss(ctx);
        x[i] = x0 - h;
        double lm = loss(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * h);
        double e = fabs(fd - grad[i]) / (gmax > 0 ? gmax : 1.0);
        if (e > worst) worst = e;
    }
    printf("  fd %-16s max err %.2e (|grad| max %.3e)\n", what, worst, gmax);
    return worst;
}

/* A KDA layer on the CPU: random weights (seeded; the decay in a useful range, the output norm's weight near 1), an
 * input x [B, T, d] and the output's weights wy of the loss y . wy; seg: a test's segment ids [B, T], or NULL. */
typedef struct tk_layer {
    k_backend *kb;
    nn_kda_cfg c;
    int B, T;
    const int32_t *seg;
    float *params, *x, *wy;
    nn_kda_params p;
} tk_layer;

static inline void tk_layer_make(tk_layer *L, const nn_kda_cfg *c, int B, int T, uint64_t seed)
{
    hx_rng r;
    hx_rng_seed(&r, seed);
    *L = (tk_layer){.kb = k_cpu_new(2), .c = *c, .B = B, .T = T};
    L->params = tk_randn(&r, nn_kda_params_floats(c), 0.3f);
    nn_kda_params_bind(&L->p, L->params, c);
    for (int h = 0; h < c->Hq; h++) L->p.A_log[h] = logf(1.0f + 3.0f * (float)hx_rng_uniform(&r));
    for (int i = 0; i < c->K; i++) L->p.o_norm[i] = 1.0f + 0.2f * hx_rng_normal(&r);
    L->x = tk_randn(&r, (size_t)B * T * c->d, 1);
    L->wy = tk_randn(&r, (size_t)B * T * c->d, 1);
}

static inline void tk_layer_free(tk_layer *L)
{
    k_backend_free(L->kb);
    free(L->params); free(L->x); free(L->wy);
}

/* FN (nn_conform_kda_core or _layer) on tests/fixtures/FIXTURE: it passes, with WANT_OK compared quantities. */
static inline void tk_conform_fixture(int (*fn)(const char *, nn_check *), const char *fixture, int want_ok)
{
    nn_check c;
    nn_check_init(&c, stdout);
    const char *top = getenv("TOP");
    char *dir = xstrfmt("%s/tests/fixtures/%s", top ? top : ".", fixture);
    int rc = fn(dir, &c);
    if (rc < 0) printf("%s\n", hx_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_fail, 0);
    assert_int_equal(c.n_ok, want_ok);
    free(dir);
}

/* A tiny model with weights N(0, 0.2) (decisive logits), seeded: L layers cycling kda, attention, gdn (hybrid, silu
 * convs of 4, gate rank 8) or L attention layers (Qwen3); V tokens, width 32, 4 heads (2 kv) of 8, ffn 48. */
static inline nn_model *tk_tiny_model(k_backend *be, int hybrid, int V, int L, uint64_t seed)
{
    static const nn_mixer cycle[3] = {NN_MIX_KDA, NN_MIX_ATTN, NN_MIX_GDN};
    nn_config cfg;
    nn_config_qwen3(&cfg, V, 32, L, 4, 2, 8, 48);
    cfg.init_range = 0.2f;
    if (hybrid) {
        snprintf(cfg.model_type, sizeof cfg.model_type, "hx_hybrid");
        for (int l = 0; l < L; l++) cfg.mixer[l] = cycle[l % 3];
        cfg.conv_size = 4;
        cfg.gate_rank = 8;
        snprintf(cfg.conv_act, sizeof cfg.conv_act, "silu");
    }
    nn_model *m;
    if (nn_model_new(&m, &cfg, be) < 0) fail_msg("%s", hx_last_error());
    nn_model_init_random(m, seed);
    return m;
}

#endif
