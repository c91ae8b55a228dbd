/* test_kda_docs.c - KDA/GDN layer over packed documents and right-padded prefill: a packed row == its documents
 * run alone (outputs and gradients, with and without room for the chunk-start states), finite differences, and
 * a ragged prefill with a state == each sequence alone (state, conv cache, outputs, decode after it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_kda_util.h"
#include "nn/kda_layer.h"

static const nn_kda_cfg cfgs[] = {
    {.d = 12, .Hq = 4, .Hkv = 2, .K = 4, .r = 3, .W = 4, .conv_act = 0, .per_head = 0, .eps = 1e-6f},
    {.d = 10, .Hq = 2, .Hkv = 1, .K = 5, .r = 5, .W = 3, .conv_act = 1, .per_head = 1, .eps = 1e-6f},
};

/* y = layer(x) over B rows of T tokens with segment ids seg (or NULL); dx, grads += d(y . wy) when given. */
static void run(tk_layer *L, const float *x, const float *wy, int B, int T, const int32_t *seg, float *y, float *dx,
                float *grads)
{
    const nn_kda_cfg *c = &L->c;
    float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(c, B, T));
    nn_kda_acts a;
    nn_kda_acts_bind(&a, acts, c, B, T);
    nn_kda_forward_docs(L->kb, y, &a, x, &L->p, c, NULL, seg, NULL);
    if (dx) {
        float *scr = xmalloc(sizeof(float) * nn_kda_bwd_scratch_floats(c, B, T));
        nn_kda_params g;
        nn_kda_params_bind(&g, grads, c);
        nn_kda_backward_docs(L->kb, dx, &g, wy, &a, x, &L->p, c, scr, seg);
        free(scr);
    }
    free(acts);
}

static double loss_packed(void *ctx)
{
    tk_layer *L = ctx;
    size_t n = (size_t)L->B * L->T * L->c.d;
    float *y = xmalloc(sizeof(float) * n);
    run(L, L->x, NULL, L->B, L->T, L->seg, y, NULL, NULL);
    double l = tk_dot(y, L->wy, n);
    free(y);
    return l;
}

/* Row b of T tokens cut into documents of the given lengths (0-terminated list per row). */
static void make_seg(int32_t *seg, int B, int T, const int docs[][5])
{
    for (int b = 0; b < B; b++) {
        int t = 0;
        for (int i = 0; docs[b][i]; i++)
            for (int j = 0; j < docs[b][i]; j++) seg[b * T + t++] = 100 * b + i;
        assert_int_equal(t, T);
    }
}

/*
 * Rows of documents (one crossing a chunk boundary, one of a single token) == each document alone: outputs,
 * dx, and parameter gradients (the sum of the documents'). Row 0 needs 2+1 chunks, row 1 1+1+1+1: 7 > the 4 the
 * activations hold, so the last documents' chunk-start states are recomputed by the backward.
 */
static void test_packed_equals_alone(void **state)
{
    (void)state;
    enum { B = 2, T = 80 };
    static const int docs[B][5] = {{70, 10, 0}, {5, 1, 63, 11, 0}};
    int32_t seg[B * T];
    make_seg(seg, B, T, docs);
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        tk_layer L;
        tk_layer_make(&L, &cfgs[ci], B, T, 10 + ci);
        const int d = L.c.d;
        size_t n = (size_t)B * T * d, np = nn_kda_params_floats(&L.c);
        float *y = xmalloc(sizeof(float) * n), *dx = xcalloc(n, sizeof(float)), *gr = xcalloc(np, sizeof(float));
        float *ya = xmalloc(sizeof(float) * n), *dxa = xcalloc(n, sizeof(float)), *gra = xcalloc(np, sizeof(float));
        float *ynoseg = xmalloc(sizeof(float) * n);
        run(&L, L.x, L.wy, B, T, seg, y, dx, gr);
        for (int b = 0, t = 0; b < B; b++, t = 0)
            for (int i = 0; docs[b][i]; t += docs[b][i], i++) {
                size_t o = ((size_t)b * T + t) * d;
                run(&L, L.x + o, L.wy + o, 1, docs[b][i], NULL, ya + o, dxa + o, gra);
            }
        double ey = tk_relerr(y, ya, n), edx = tk_relerr(dx, dxa, n), eg = 0;
        for (int i = 0; i < NN_KDA_NPARAMS; i++) {
            size_t off = (size_t)(L.p.t[i] - L.params);
            eg = fmax(eg, tk_relerr(gr + off, gra + off, nn_kda_param_numel(&L.c, i)));
        }
        /* without the segment ids the state and the convs run across the boundaries */
        run(&L, L.x, NULL, B, T, NULL, ynoseg, NULL, NULL);
        double ecross = tk_relerr(ynoseg, ya, n);
        printf("config %zu: packed vs alone: y %.2e, dx %.2e, grads %.2e (ignoring segments: %.2e)\n", ci, ey, edx,
               eg, ecross);
        /* fp32 relative errors: packing changes the GEMM shapes, and OpenBLAS's kernels for the host CPU sum in
         * another order for each (dx of config 1: 1.12e-6 on an AMD EPYC host, under 1e-6 on the Intel hosts
         * before); 4e-6 is ~34 fp32 ulps, far below the 1e-2 that ignoring a segment boundary gives. */
        assert_true(ey < 4e-6);
        assert_true(edx < 4e-6);
        assert_true(eg < 1e-5);
        assert_true(ecross > 1e-2);
        free(y); free(dx); free(gr); free(ya); free(dxa); free(gra); free(ynoseg);
        tk_layer_free(&L);
    }
}

/* Finite differences of dx and every parameter gradient through packed rows. */
static void test_packed_fd(void **state)
{
    (void)state;
    enum { B = 2, T = 70 };
    static const int docs[B][5] = {{66, 4, 0}, {3, 1, 66, 0}};
    int32_t seg[B * T];
    make_seg(seg, B, T, docs);
    hx_rng r;
    hx_rng_seed(&r, 5);
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        tk_layer L;
        tk_layer_make(&L, &cfgs[ci], B, T, 20 + ci);
        L.seg = seg;
        size_t n = (size_t)B * T * L.c.d, np = nn_kda_params_floats(&L.c);
        float *y = xmalloc(sizeof(float) * n), *dx = xcalloc(n, sizeof(float)), *gr = xcalloc(np, sizeof(float));
        run(&L, L.x, L.wy, B, T, seg, y, dx, gr);
        nn_kda_params g;
        nn_kda_params_bind(&g, gr, &L.c);
        printf("config %zu (%s, conv %s):\n", ci, L.c.per_head ? "gdn" : "kda", L.c.conv_act ? "silu" : "identity");
        const float h = 1e-3f, tol = 1e-2; /* 3e-4 is float32 noise for the gate's gradients here (with or without
                                              segments): the error grows as h shrinks */
        assert_true(tk_fd_check("dx", L.x, dx, n, loss_packed, &L, 12, h, &r) < tol);
        for (int i = 0; i < NN_KDA_NPARAMS; i++)
            assert_true(tk_fd_check(nn_kda_param_names[i], L.p.t[i], g.t[i], nn_kda_param_numel(&L.c, i),
                                    loss_packed, &L, 6, h, &r) < tol);
        free(y); free(dx); free(gr);
        tk_layer_free(&L);
    }
}

/* Sequence b's slice of a decode state of B sequences: S, then the three conv caches. */
static void state_slice(const nn_kda_cfg *c, nn_kda_state *st, int b, float *dst[4], size_t n[4])
{
    n[0] = (size_t)c->Hq * c->K * c->K;
    n[1] = (size_t)(c->W - 1) * c->Hq * c->K;
    n[2] = n[3] = (size_t)(c->W - 1) * c->Hkv * c->K;
    dst[0] = st->S + b * n[0];
    dst[1] = st->cq + b * n[1];
    dst[2] = st->ck + b * n[2];
    dst[3] = st->cv + b * n[3];
}

/*
 * A prefill of right-padded sequences (real lengths 70, 3, 1, 0 of T = 70) from a nonzero state, then one decode
 * step of all of them == each sequence alone: outputs, recurrent state and conv caches; the padding rows give 0.
 */
static void test_ragged_prefill(void **state)
{
    (void)state;
    enum { B = 4, T = 70 };
    static const int lens[B] = {70, 3, 1, 0};
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        tk_layer L;
        tk_layer_make(&L, &cfgs[ci], B, T + 1, 30 + ci); /* x: T prefill rows then 1 decode row per sequence */
        const nn_kda_cfg *c = &L.c;
        const int d = c->d;
        hx_rng r;
        hx_rng_seed(&r, 31 + ci);
        size_t nst = nn_kda_state_floats(c, B), n1 = nn_kda_state_floats(c, 1);
        float *stbuf = tk_randn(&r, nst, 0.3f), *st1buf = xmalloc(sizeof(float) * n1);
        float *x = xmalloc(sizeof(float) * B * T * d), *xt = xmalloc(sizeof(float) * B * d);
        for (int b = 0; b < B; b++) {
            memcpy(x + (size_t)b * T * d, L.x + (size_t)b * (T + 1) * d, sizeof(float) * T * d);
            memcpy(xt + (size_t)b * d, L.x + ((size_t)b * (T + 1) + lens[b]) * d, sizeof(float) * d);
        }
        float *stinit = tk_dup(stbuf, nst);
        nn_kda_state st, s1, s0;
        nn_kda_state_bind(&st, stbuf, c, B);
        nn_kda_state_bind(&s0, stinit, c, B);
        nn_kda_state_bind(&s1, st1buf, c, 1);
        float *acts = xmalloc(sizeof(float) * nn_kda_acts_floats(c, B, T));
        float *y = xmalloc(sizeof(float) * B * T * d), *yt = xmalloc(sizeof(float) * B * d);
        float *ya = xmalloc(sizeof(float) * T * d);
        nn_kda_acts a;
        nn_kda_acts_bind(&a, acts, c, B, T);
        nn_kda_forward_docs(L.kb, y, &a, x, &L.p, c, &st, NULL, lens);
        nn_kda_acts_bind(&a, acts, c, B, 1);
        nn_kda_forward(L.kb, yt, &a, xt, &L.p, c, &st);
        double ey = 0, es = 0, et = 0, pad = 0;
        for (int b = 0; b < B; b++) {
            float *src[4], *one[4];
            size_t n[4];
            state_slice(c, &s0, b, src, n);
            state_slice(c, &s1, 0, one, n);
            for (int i = 0; i < 4; i++) memcpy(one[i], src[i], sizeof(float) * n[i]);
            if (lens[b] > 0) {
                nn_kda_acts_bind(&a, acts, c, 1, lens[b]);
                nn_kda_forward(L.kb, ya, &a, x + (size_t)b * T * d, &L.p, c, &s1);
                ey = fmax(ey, tk_relerr(y + (size_t)b * T * d, ya, (size_t)lens[b] * d));
            }
            for (size_t i = ((size_t)b * T + lens[b]) * d; i < (size_t)(b + 1) * T * d; i++) pad = fmax(pad, fabs(y[i]));
            nn_kda_acts_bind(&a, acts, c, 1, 1);
            nn_kda_forward(L.kb, ya, &a, xt + (size_t)b * d, &L.p, c, &s1);
            et = fmax(et, tk_relerr(yt + (size_t)b * d, ya, d));
            float *got[4];
            state_slice(c, &st, b, got, n);
            for (int i = 0; i < 4; i++) es = fmax(es, tk_relerr(got[i], one[i], n[i]));
        }
        printf("config %zu: ragged prefill vs alone: y %.2e, state and conv caches %.2e, decode %.2e, pads %.1e\n",
               ci, ey, es, et, pad);
        assert_true(ey < 1e-6);
        assert_true(es < 1e-6);
        assert_true(et < 1e-6);
        assert_true(pad == 0);
        free(stbuf); free(st1buf); free(stinit); free(x); free(xt); free(acts); free(y); free(yt); free(ya);
        tk_layer_free(&L);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_equals_alone),
        cmocka_unit_test(test_packed_fd),
        cmocka_unit_test(test_ragged_prefill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
