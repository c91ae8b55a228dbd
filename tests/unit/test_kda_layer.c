/* test_kda_layer.c - the KDA/GDN mixer layer: kda_layer fixture, finite-difference backward, decode == prefill. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/conform.h"
#include "nn/kda_layer.h"

static double layer_loss(void *ctx)
{
    tk_layer *L = ctx;
    size_t N = (size_t)L->B * L->T;
    float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(&L->c, L->B, L->T));
    float *y = xmalloc(sizeof(float) * N * L->c.d);
    nn_kda_acts a;
    nn_kda_acts_bind(&a, acts, &L->c, L->B, L->T);
    nn_kda_forward(L->kb, y, &a, L->x, &L->p, &L->c, NULL);
    double l = tk_dot(y, L->wy, N * L->c.d);
    free(acts); free(y);
    return l;
}

static void test_layer_backward_fd(void **state)
{
    (void)state;
    static const nn_kda_cfg cfgs[] = {
        {.d = 12, .Hq = 4, .Hkv = 2, .K = 4, .r = 3, .W = 4, .conv_act = 0, .per_head = 0, .eps = 1e-6f},
        {.d = 10, .Hq = 2, .Hkv = 2, .K = 5, .r = 5, .W = 4, .conv_act = 1, .per_head = 1, .eps = 1e-6f},
        {.d = 8, .Hq = 4, .Hkv = 1, .K = 3, .r = 2, .W = 3, .conv_act = 1, .per_head = 0, .eps = 1e-6f},
    };
    hx_rng r;
    hx_rng_seed(&r, 3);
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        tk_layer L;
        int T = ci == 0 ? 70 : 9; /* the first case crosses a chunk boundary */
        tk_layer_make(&L, &cfgs[ci], 2, T, 40 + ci);
        size_t N = (size_t)L.B * L.T;
        float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(&L.c, L.B, L.T));
        float *scr = xmalloc(sizeof(float) * nn_kda_bwd_scratch_floats(&L.c, L.B, L.T));
        float *y = xmalloc(sizeof(float) * N * L.c.d), *dx = xcalloc(N * L.c.d, 4);
        float *grads = xcalloc(nn_kda_params_floats(&L.c), 4);
        nn_kda_params g;
        nn_kda_params_bind(&g, grads, &L.c);
        nn_kda_acts a;
        nn_kda_acts_bind(&a, acts, &L.c, L.B, L.T);
        nn_kda_forward(L.kb, y, &a, L.x, &L.p, &L.c, NULL);
        nn_kda_backward(L.kb, dx, &g, L.wy, &a, L.x, &L.p, &L.c, scr);
        printf("config %zu (%s, conv %s, Hq/Hkv %d):\n", ci, L.c.per_head ? "gdn" : "kda",
               L.c.conv_act ? "silu" : "identity", L.c.Hq / L.c.Hkv);
        const float h = 3e-4f, tol = 1e-2; /* weights move every row: small h for the curvature */
        assert_true(tk_fd_check("dx", L.x, dx, N * L.c.d, layer_loss, &L, 12, h, &r) < tol);
        for (int i = 0; i < NN_KDA_NPARAMS; i++)
            assert_true(tk_fd_check(nn_kda_param_names[i], L.p.t[i], g.t[i], nn_kda_param_numel(&L.c, i),
                                    layer_loss, &L, 6, h, &r) < tol);
        free(acts); free(scr); free(y); free(dx); free(grads);
        tk_layer_free(&L);
    }
}

/* Prefill of the whole sequence == prefill of a prefix then decode token by token (and chunked prefill). */
static void test_layer_decode_equals_prefill(void **state)
{
    (void)state;
    static const nn_kda_cfg cfgs[] = {
        {.d = 16, .Hq = 4, .Hkv = 2, .K = 8, .r = 8, .W = 4, .conv_act = 0, .per_head = 0, .eps = 1e-6f},
        {.d = 16, .Hq = 2, .Hkv = 1, .K = 8, .r = 4, .W = 4, .conv_act = 1, .per_head = 1, .eps = 1e-6f},
    };
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        const int B = 2, T = 80, P = 67; /* prefix of 67 = one chunk + 3, then 13 decode steps */
        tk_layer L;
        tk_layer_make(&L, &cfgs[ci], B, T, 90 + ci);
        const nn_kda_cfg *c = &L.c;
        size_t N = (size_t)B * T;
        float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(c, B, T));
        float *yfull = xmalloc(sizeof(float) * N * c->d);
        nn_kda_acts a;
        nn_kda_acts_bind(&a, acts, c, B, T);
        nn_kda_forward(L.kb, yfull, &a, L.x, &L.p, c, NULL);

        float *stbuf = xcalloc(nn_kda_state_floats(c, B), sizeof(float));
        nn_kda_state st;
        nn_kda_state_bind(&st, stbuf, c, B);
        float *xp = xmalloc(sizeof(float) * B * P * c->d), *yp = xmalloc(sizeof(float) * B * P * c->d);
        for (int b = 0; b < B; b++) memcpy(xp + (size_t)b * P * c->d, L.x + (size_t)b * T * c->d, sizeof(float) * P * c->d);
        nn_kda_acts_bind(&a, acts, c, B, P);
        nn_kda_forward(L.kb, yp, &a, xp, &L.p, c, &st);
        double worst = 0;
        for (int b = 0; b < B; b++)
            worst = fmax(worst, tk_relerr(yp + (size_t)b * P * c->d, yfull + (size_t)b * T * c->d, (size_t)P * c->d));
        float *xt = xmalloc(sizeof(float) * B * c->d), *yt = xmalloc(sizeof(float) * B * c->d);
        for (int t = P; t < T; t++) {
            for (int b = 0; b < B; b++) memcpy(xt + b * c->d, L.x + ((size_t)b * T + t) * c->d, sizeof(float) * c->d);
            nn_kda_acts_bind(&a, acts, c, B, 1);
            nn_kda_forward(L.kb, yt, &a, xt, &L.p, c, &st);
            for (int b = 0; b < B; b++)
                worst = fmax(worst, tk_relerr(yt + b * c->d, yfull + ((size_t)b * T + t) * c->d, c->d));
        }
        printf("config %zu: decode vs prefill max rel err %.2e\n", ci, worst);
        assert_true(worst < 1e-4);
        free(acts); free(yfull); free(stbuf); free(xp); free(yp); free(xt); free(yt);
        tk_layer_free(&L);
    }
}

/* Every activation buffer starts 64-byte aligned from an aligned base, whatever the sizes: the CUDA chunk kernels read
 * q, k, v, g, o and s_chunks 16 bytes at a time; odd N * Hq (beta, a GDN layer's f) and N * r (fd) once shifted
 * every later buffer by 8 bytes ("misaligned address" in kcp_out on an H200, the hybrid head_dim 128 of
 * cuda_stream). */
static void test_acts_aligned(void **state)
{
    (void)state;
    static const nn_kda_cfg cfgs[] = {
        {.d = 16, .Hq = 3, .Hkv = 1, .K = 128, .r = 5, .W = 4, .per_head = 0, .save = 12288},
        {.d = 16, .Hq = 5, .Hkv = 5, .K = 32, .r = 7, .W = 4, .per_head = 1},
    };
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++)
        for (int T = 1; T <= 131; T += 13) {
            size_t n = nn_kda_acts_floats(&cfgs[ci], 1, T);
            float *base = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
            nn_kda_acts a;
            nn_kda_acts_bind(&a, base, &cfgs[ci], 1, T);
            const float *p[] = {a.qp, a.kp, a.vp, a.fd, a.f, a.g, a.beta, a.o, a.gd, a.og, a.yn, a.s_chunks, a.ones,
                                a.qc, a.kc, a.vc, a.qn, a.kn, a.vr, a.knk, a.bl};
            for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
                if ((uintptr_t)p[i] & 63) fail_msg("config %zu T %d: buffer %zu at offset %td floats", ci, T, i, p[i] - base);
                assert_true(p[i] >= base && p[i] <= base + n);
            }
            free(base);
        }
}

static void test_kda_layer_fixture(void **state)
{
    (void)state;
    tk_conform_fixture(nn_conform_kda_layer, "kda_layer_small", 2 + NN_KDA_NPARAMS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kda_layer_fixture),
        cmocka_unit_test(test_acts_aligned),
        cmocka_unit_test(test_layer_backward_fd),
        cmocka_unit_test(test_layer_decode_equals_prefill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
