/* test_kda_core.c - KDA core and small ops: chunked == recurrent, finite-difference backward, the kda_core fixture. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/conform.h"
#include "nn/kda_layer.h"

typedef struct core_case {
    int B, T, H, K, V;
    float gmin, gmax; /* per-step log decay range */
    int init;
} core_case;

typedef struct core_in {
    int B, T, H, K, V;
    float *q, *k, *v, *g, *beta, *s0, *dout, *dsT;
} core_in;

static void core_in_make(core_in *c, const core_case *cc, uint64_t seed)
{
    hx_rng r;
    hx_rng_seed(&r, seed);
    c->B = cc->B; c->T = cc->T; c->H = cc->H; c->K = cc->K; c->V = cc->V;
    size_t nk = (size_t)c->B * c->T * c->H * c->K, nv = (size_t)c->B * c->T * c->H * c->V;
    size_t ns = (size_t)c->B * c->H * c->K * c->V;
    c->q = tk_randn(&r, nk, 1);
    c->k = tk_randn(&r, nk, 1);
    kcpu_l2norm_fwd(c->q, c->q, nk / c->K, c->K, 1.0f / sqrtf((float)c->K), 1e-6f);
    kcpu_l2norm_fwd(c->k, c->k, nk / c->K, c->K, 1.0f, 1e-6f);
    c->v = tk_randn(&r, nv, 1);
    c->g = tk_uniform(&r, nk, cc->gmin, cc->gmax);
    c->beta = tk_uniform(&r, nk / c->K, 0.05f, 1.0f);
    c->s0 = cc->init ? tk_randn(&r, ns, 0.5f) : NULL;
    c->dout = tk_randn(&r, nv, 1);
    c->dsT = tk_randn(&r, ns, 1);
}

static void core_in_free(core_in *c)
{
    free(c->q); free(c->k); free(c->v); free(c->g); free(c->beta); free(c->s0); free(c->dout); free(c->dsT);
}

static void test_chunked_equals_recurrent(void **state)
{
    (void)state;
    static const core_case cases[] = {
        {2, 150, 3, 16, 24, -0.1f, 0.0f, 1},   /* weak decay, K != V, 3 chunks (last partial), initial state */
        {1, 37, 2, 8, 8, -3.0f, -0.5f, 0},     /* T < 64 */
        {2, 128, 2, 16, 16, -30.0f, -5.0f, 1}, /* strong decay: exp(G) underflows inside a chunk */
        {1, 64, 1, 32, 16, -1e-3f, 0.0f, 0},   /* exactly one chunk, almost no decay */
        {1, 65, 2, 8, 12, -200.0f, -100.0f, 1},/* extreme decay, a 1-token last chunk */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const core_case *cc = &cases[ci];
        core_in c;
        core_in_make(&c, cc, 100 + ci);
        size_t nv = (size_t)c.B * c.T * c.H * c.V, ns = (size_t)c.B * c.H * c.K * c.V;
        float *o1 = xmalloc(sizeof(float) * nv), *o2 = xmalloc(sizeof(float) * nv);
        float *s1 = xmalloc(sizeof(float) * ns), *s2 = xcalloc(ns, sizeof(float));
        float *sch = xmalloc(sizeof(float) * ns * k_kda_nchunks(c.T));
        kcpu_kda_fwd(o1, s1, sch, c.q, c.k, c.v, c.g, c.beta, c.s0, c.B, c.T, c.H, c.K, c.V);
        if (c.s0) memcpy(s2, c.s0, sizeof(float) * ns);
        kcpu_kda_recurrent(o2, s2, c.q, c.k, c.v, c.g, c.beta, c.B, c.T, c.H, c.K, c.V);
        double eo = tk_relerr(o1, o2, nv), es = tk_relerr(s1, s2, ns);
        printf("case %zu: T=%d g in [%g,%g]: o rel err %.2e, final state %.2e\n", ci, c.T, cc->gmin, cc->gmax, eo,
               es);
        assert_true(eo < 1e-5);
        assert_true(es < 1e-5);
        /* decode steps from the same start give the same outputs */
        float *s3 = xcalloc(ns, sizeof(float)), *o3 = xmalloc(sizeof(float) * nv);
        if (c.s0) memcpy(s3, c.s0, sizeof(float) * ns);
        size_t HK = (size_t)c.H * c.K, HV = (size_t)c.H * c.V;
        float *qt = xmalloc(sizeof(float) * c.B * HK), *kt = xmalloc(sizeof(float) * c.B * HK);
        float *gt = xmalloc(sizeof(float) * c.B * HK), *vt = xmalloc(sizeof(float) * c.B * HV);
        float *bt = xmalloc(sizeof(float) * c.B * c.H), *ot = xmalloc(sizeof(float) * c.B * HV);
        for (int t = 0; t < c.T; t++) {
            for (int b = 0; b < c.B; b++) {
                size_t row = (size_t)b * c.T + t;
                memcpy(qt + b * HK, c.q + row * HK, sizeof(float) * HK);
                memcpy(kt + b * HK, c.k + row * HK, sizeof(float) * HK);
                memcpy(gt + b * HK, c.g + row * HK, sizeof(float) * HK);
                memcpy(vt + b * HV, c.v + row * HV, sizeof(float) * HV);
                memcpy(bt + b * c.H, c.beta + row * c.H, sizeof(float) * c.H);
            }
            kcpu_kda_step(ot, s3, qt, kt, vt, gt, bt, c.B, c.H, c.K, c.V);
            for (int b = 0; b < c.B; b++) memcpy(o3 + ((size_t)b * c.T + t) * HV, ot + b * HV, sizeof(float) * HV);
        }
        assert_true(tk_relerr(o3, o2, nv) < 1e-6);
        assert_true(tk_relerr(s3, s2, ns) < 1e-6);
        free(s3); free(o3); free(qt); free(kt); free(gt); free(vt); free(bt); free(ot);
        free(o1); free(o2); free(s1); free(s2); free(sch);
        core_in_free(&c);
    }
}

/* loss = sum(o*do) + sum(sT*dsT) of the chunked forward, in double */
static double core_loss(void *ctx)
{
    core_in *c = ctx;
    size_t nv = (size_t)c->B * c->T * c->H * c->V, ns = (size_t)c->B * c->H * c->K * c->V;
    float *o = xmalloc(sizeof(float) * nv), *sT = xmalloc(sizeof(float) * ns);
    kcpu_kda_fwd(o, sT, NULL, c->q, c->k, c->v, c->g, c->beta, c->s0, c->B, c->T, c->H, c->K, c->V);
    double l = tk_dot(o, c->dout, nv) + tk_dot(sT, c->dsT, ns);
    free(o); free(sT);
    return l;
}

static void test_core_backward_fd(void **state)
{
    (void)state;
    static const core_case cases[] = {
        {1, 70, 2, 6, 5, -1.0f, -0.01f, 1},  /* two chunks: gradients cross the chunk boundary through the state */
        {2, 20, 1, 4, 7, -4.0f, -1.0f, 0},   /* strong decay, one partial chunk */
    };
    hx_rng r;
    hx_rng_seed(&r, 7);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        core_in c;
        core_in_make(&c, &cases[ci], 200 + ci);
        size_t nk = (size_t)c.B * c.T * c.H * c.K, nv = (size_t)c.B * c.T * c.H * c.V;
        size_t ns = (size_t)c.B * c.H * c.K * c.V, nb = (size_t)c.B * c.T * c.H;
        float *o = xmalloc(sizeof(float) * nv), *sT = xmalloc(sizeof(float) * ns);
        float *sch = xmalloc(sizeof(float) * ns * k_kda_nchunks(c.T));
        kcpu_kda_fwd(o, sT, sch, c.q, c.k, c.v, c.g, c.beta, c.s0, c.B, c.T, c.H, c.K, c.V);
        float *dq = xcalloc(nk, 4), *dk = xcalloc(nk, 4), *dg = xcalloc(nk, 4), *dv = xcalloc(nv, 4);
        float *db = xcalloc(nb, 4), *ds0 = xcalloc(ns, 4);
        kcpu_kda_bwd(dq, dk, dv, dg, db, c.s0 ? ds0 : NULL, c.dout, c.dsT, c.q, c.k, c.v, c.g, c.beta, sch, c.B, c.T,
                     c.H, c.K, c.V);
        const float h = 4e-3f, tol = 1e-2;
        assert_true(tk_fd_check("dq", c.q, dq, nk, core_loss, &c, 40, h, &r) < tol);
        assert_true(tk_fd_check("dk", c.k, dk, nk, core_loss, &c, 40, h, &r) < tol);
        assert_true(tk_fd_check("dv", c.v, dv, nv, core_loss, &c, 40, h, &r) < tol);
        assert_true(tk_fd_check("dg", c.g, dg, nk, core_loss, &c, 40, h, &r) < tol);
        assert_true(tk_fd_check("dbeta", c.beta, db, nb, core_loss, &c, 40, h, &r) < tol);
        if (c.s0) assert_true(tk_fd_check("dinitial_state", c.s0, ds0, ns, core_loss, &c, 40, h, &r) < tol);
        free(o); free(sT); free(sch); free(dq); free(dk); free(dg); free(dv); free(db); free(ds0);
        core_in_free(&c);
    }
}

/* ---- small ops: each loss is sum(y * w) for a fixed random w ---- */
typedef struct op_ctx {
    int which, act, per_head, B, T, C, W, H, K;
    size_t N;
    float *x, *w, *cache, *z, *A, *dt, *wy;
    size_t ny;
} op_ctx;

static void op_forward(op_ctx *o, float *y)
{
    switch (o->which) {
    case 0: kcpu_conv_fwd(y, NULL, o->x, o->w, o->cache, o->B, o->T, o->C, o->W, o->act); break;
    case 1: kcpu_l2norm_fwd(y, o->x, o->N, o->K, 0.7f, 1e-6f); break;
    case 2: kcpu_gate_fwd(y, o->x, o->A, o->dt, o->N, o->H, o->K, o->per_head); break;
    case 3: kcpu_gated_rmsnorm_fwd(y, o->x, o->z, o->w, o->N, o->H, o->K, 1e-6f); break;
    case 4: kcpu_sigmoid_fwd(y, o->x, o->N); break;
    }
}

static double op_loss(void *ctx)
{
    op_ctx *o = ctx;
    float *y = xmalloc(sizeof(float) * o->ny);
    op_forward(o, y);
    double l = tk_dot(y, o->wy, o->ny);
    free(y);
    return l;
}

static void test_small_ops_fd(void **state)
{
    (void)state;
    hx_rng r;
    hx_rng_seed(&r, 11);
    const float h = 2e-3f, tol = 5e-3;
    /* conv: identity and silu, with and without a cache */
    for (int act = 0; act < 2; act++)
        for (int withc = 0; withc < 2; withc++) {
            op_ctx o = {.which = 0, .act = act, .B = 2, .T = 9, .C = 5, .W = 4};
            o.x = tk_randn(&r, 2 * 9 * 5, 1);
            o.w = tk_randn(&r, 5 * 4, 1);
            o.cache = withc ? tk_randn(&r, 2 * 3 * 5, 1) : NULL;
            o.ny = 2 * 9 * 5;
            o.wy = tk_randn(&r, o.ny, 1);
            float *dx = xcalloc(o.ny, 4), *dw = xcalloc(20, 4);
            kcpu_conv_bwd(dx, dw, o.wy, o.x, o.w, o.cache, o.B, o.T, o.C, o.W, act);
            assert_true(tk_fd_check(act ? "conv silu dx" : "conv id dx", o.x, dx, o.ny, op_loss, &o, 30, h, &r) < tol);
            assert_true(tk_fd_check(act ? "conv silu dw" : "conv id dw", o.w, dw, 20, op_loss, &o, 20, h, &r) < tol);
            /* the cache continues a sequence: conv(x[0:5]) then conv(x[5:9]) with the cache == conv(x) */
            float *y = xmalloc(sizeof(float) * o.ny), *y1 = xmalloc(sizeof(float) * 2 * 5 * 5);
            float *y2 = xmalloc(sizeof(float) * 2 * 4 * 5), *cc = xmalloc(sizeof(float) * 2 * 3 * 5);
            float *xa = xmalloc(sizeof(float) * 2 * 5 * 5), *xb = xmalloc(sizeof(float) * 2 * 4 * 5);
            for (int b = 0; b < 2; b++) {
                memcpy(xa + b * 25, o.x + b * 45, sizeof(float) * 25);
                memcpy(xb + b * 20, o.x + b * 45 + 25, sizeof(float) * 20);
            }
            kcpu_conv_fwd(y, NULL, o.x, o.w, o.cache, 2, 9, 5, 4, act);
            kcpu_conv_fwd(y1, cc, xa, o.w, o.cache, 2, 5, 5, 4, act);
            kcpu_conv_fwd(y2, cc, xb, o.w, cc, 2, 4, 5, 4, act);
            for (int b = 0; b < 2; b++) {
                assert_true(tk_relerr(y1 + b * 25, y + b * 45, 25) < 1e-6);
                assert_true(tk_relerr(y2 + b * 20, y + b * 45 + 25, 20) < 1e-6);
            }
            free(y); free(y1); free(y2); free(cc); free(xa); free(xb);
            free(o.x); free(o.w); free(o.cache); free(o.wy); free(dx); free(dw);
        }
    { /* l2norm */
        op_ctx o = {.which = 1, .N = 6, .K = 7};
        o.ny = 42;
        o.x = tk_randn(&r, 42, 1);
        o.wy = tk_randn(&r, 42, 1);
        float *dx = xcalloc(42, 4);
        kcpu_l2norm_bwd(dx, o.wy, o.x, 6, 7, 0.7f, 1e-6f);
        assert_true(tk_fd_check("l2norm dx", o.x, dx, 42, op_loss, &o, 30, h, &r) < tol);
        free(o.x); free(o.wy); free(dx);
    }
    for (int ph = 0; ph < 2; ph++) { /* decay gate per channel and per head */
        op_ctx o = {.which = 2, .per_head = ph, .N = 5, .H = 3, .K = 4};
        int Kf = ph ? 1 : 4;
        o.ny = 5 * 3 * 4;
        o.x = tk_randn(&r, 5 * 3 * Kf, 2);
        o.A = tk_uniform(&r, 3, 0.0f, 2.7f);
        o.dt = tk_randn(&r, 3 * Kf, 1);
        o.wy = tk_randn(&r, o.ny, 1);
        float *df = xcalloc(15 * Kf, 4), *dA = xcalloc(3, 4), *ddt = xcalloc(3 * Kf, 4);
        kcpu_gate_bwd(df, dA, ddt, o.wy, o.x, o.A, o.dt, 5, 3, 4, ph);
        assert_true(tk_fd_check(ph ? "gate/head df" : "gate/chan df", o.x, df, 15 * Kf, op_loss, &o, 30, h, &r) < tol);
        assert_true(tk_fd_check(ph ? "gate/head dA" : "gate/chan dA", o.A, dA, 3, op_loss, &o, 3, h, &r) < tol);
        assert_true(tk_fd_check(ph ? "gate/head ddt" : "gate/chan ddt", o.dt, ddt, 3 * Kf, op_loss, &o, 10, h, &r) <
                    tol);
        free(o.x); free(o.A); free(o.dt); free(o.wy); free(df); free(dA); free(ddt);
    }
    { /* gated RMSNorm */
        op_ctx o = {.which = 3, .N = 4, .H = 3, .K = 6};
        o.ny = 72;
        o.x = tk_randn(&r, 72, 1);
        o.z = tk_randn(&r, 72, 1);
        o.w = tk_randn(&r, 6, 1);
        o.wy = tk_randn(&r, 72, 1);
        float *dx = xcalloc(72, 4), *dz = xcalloc(72, 4), *dw = xcalloc(6, 4);
        kcpu_gated_rmsnorm_bwd(dx, dz, dw, o.wy, o.x, o.z, o.w, 4, 3, 6, 1e-6f);
        assert_true(tk_fd_check("gnorm dx", o.x, dx, 72, op_loss, &o, 30, h, &r) < tol);
        assert_true(tk_fd_check("gnorm dz", o.z, dz, 72, op_loss, &o, 30, h, &r) < tol);
        assert_true(tk_fd_check("gnorm dw", o.w, dw, 6, op_loss, &o, 6, h, &r) < tol);
        free(o.x); free(o.z); free(o.w); free(o.wy); free(dx); free(dz); free(dw);
    }
    { /* sigmoid, head repeat */
        op_ctx o = {.which = 4, .N = 20};
        o.ny = 20;
        o.x = tk_randn(&r, 20, 2);
        o.wy = tk_randn(&r, 20, 1);
        float *y = xmalloc(80), *dx = xcalloc(20, 4);
        kcpu_sigmoid_fwd(y, o.x, 20);
        kcpu_sigmoid_bwd(dx, o.wy, y, 20);
        assert_true(tk_fd_check("sigmoid dx", o.x, dx, 20, op_loss, &o, 10, h, &r) < tol);
        float in[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, out[2 * 4 * 3], din[12] = {0};
        kcpu_head_repeat_fwd(out, in, 2, 4, 2, 3);
        assert_true(out[3] == 1 && out[6] == 4 && out[9] == 4 && out[12 + 6] == 10);
        kcpu_head_repeat_bwd(din, out, 2, 4, 2, 3);
        assert_true(din[0] == 2 && din[11] == 24);
        free(o.x); free(o.wy); free(y); free(dx);
    }
}

static void test_kda_core_fixture(void **state)
{
    (void)state;
    tk_conform_fixture(nn_conform_kda_core, "kda_core_small", 8);
    nn_check c;
    nn_check_init(&c, stdout);
    /* a missing fixture is an error naming the file */
    assert_int_equal(nn_conform_kda_core("/nonexistent-dir", &c), -1);
    assert_non_null(strstr(hx_last_error(), "/nonexistent-dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_equals_recurrent),
        cmocka_unit_test(test_core_backward_fd),
        cmocka_unit_test(test_small_ops_fd),
        cmocka_unit_test(test_kda_core_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
