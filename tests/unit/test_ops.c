/* test_ops.c - CPU ops against double-precision references and finite differences (every backward). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"

static k_backend *be;
static hx_rng rng;

static float *randv(size_t n, float scale)
{
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * hx_rng_normal(&rng);
    return x;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Finite differences of a scalar loss L(x) against the analytic gradient on up to `samples` coordinates
 * (central differences, step h). The error is relative to the largest analytic gradient: float32 forward
 * passes give ~1e-3 relative noise at h = 1e-2, so 2e-2 is a clear margin that still catches a wrong formula. */
typedef double (*loss_fn)(void *ctx);
static void fd_check(const char *name, loss_fn L, void *ctx, float *x, const float *grad, size_t n, float h,
                     double tol)
{
    double gmax = 0, emax = 0;
    for (size_t i = 0; i < n; i++) gmax = fabs(grad[i]) > gmax ? fabs(grad[i]) : gmax;
    size_t step = n > 60 ? n / 60 : 1;
    for (size_t i = 0; i < n; i += step) {
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = L(ctx);
        x[i] = x0 - h;
        double lm = L(ctx);
        x[i] = x0;
        double num = (lp - lm) / (2.0 * h), e = fabs(num - grad[i]);
        emax = e > emax ? e : emax;
    }
    double rel = emax / (gmax > 1e-6 ? gmax : 1e-6);
    if (rel > tol) fail_msg("%s: finite-difference error %.3e relative (max grad %.3e)", name, rel, gmax);
}

/* ---- matmul ---- */
static void test_matmul(void **state)
{
    (void)state;
    int M = 13, N = 7, K = 29;
    float *A = randv((size_t)M * K, 1), *B = randv((size_t)K * N, 1), *C = randv((size_t)M * N, 1);
    float *C0 = xmalloc((size_t)M * N * 4);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            memcpy(C0, C, (size_t)M * N * 4);
            int lda = ta ? M : K, ldb = tb ? K : N;
            be->op->matmul(be, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C0, N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++)
                        s += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                    assert_float_equal(C0[i * N + j], 0.5 * s + 2.0 * C[i * N + j], 1e-4);
                }
        }
    free(A); free(B); free(C); free(C0);
}

/* ---- RMSNorm ---- */
typedef struct { int N, d; float *x, *w, *dy, *out, *rstd; } rms_ctx;
static double rms_loss(void *p)
{
    rms_ctx *c = p;
    be->op->rmsnorm_fwd(be, c->out, c->rstd, c->x, c->w, c->N, c->d, 1e-6f);
    return dot(c->out, c->dy, (size_t)c->N * c->d);
}
static void test_rmsnorm(void **state)
{
    (void)state;
    rms_ctx c = {.N = 37, .d = 48};
    size_t n = (size_t)c.N * c.d;
    c.x = randv(n, 1); c.w = randv(c.d, 1); c.dy = randv(n, 1); c.out = xmalloc(n * 4); c.rstd = xmalloc(c.N * 4);
    rms_loss(&c);
    for (int r = 0; r < c.N; r++) { /* reference value */
        double ss = 0;
        for (int i = 0; i < c.d; i++) ss += (double)c.x[r * c.d + i] * c.x[r * c.d + i];
        double rr = 1 / sqrt(ss / c.d + 1e-6);
        for (int i = 0; i < c.d; i++) assert_float_equal(c.out[r * c.d + i], c.x[r * c.d + i] * rr * c.w[i], 1e-5);
    }
    float *dx = xcalloc(n, 4), *dw = xcalloc(c.d, 4);
    be->op->rmsnorm_bwd(be, dx, dw, c.dy, c.x, c.w, c.rstd, c.N, c.d);
    fd_check("rmsnorm dx", rms_loss, &c, c.x, dx, n, 1e-2f, 2e-2);
    fd_check("rmsnorm dw", rms_loss, &c, c.w, dw, c.d, 1e-2f, 2e-2);
    /* accumulation: a second backward doubles the gradients */
    float *dx2 = xmalloc(n * 4);
    memcpy(dx2, dx, n * 4);
    be->op->rmsnorm_bwd(be, dx2, NULL, c.dy, c.x, c.w, c.rstd, c.N, c.d);
    for (size_t i = 0; i < n; i++) assert_float_equal(dx2[i], 2 * dx[i], 1e-5);
    free(c.x); free(c.w); free(c.dy); free(c.out); free(c.rstd); free(dx); free(dw); free(dx2);
}

/* ---- RoPE: rotation (norm-preserving, position 0 is identity, relative-position property); bwd = transpose ---- */
static void test_rope(void **state)
{
    (void)state;
    int N = 9, H = 3, K = 16;
    size_t n = (size_t)N * H * K;
    float inv[8];
    for (int i = 0; i < K / 2; i++) inv[i] = 1.0f / powf(10000.0f, (float)(2 * i) / K);
    int32_t pos[9] = {0, 1, 2, 5, 17, 100, 3, 0, 1000};
    float *x = randv(n, 1), *y = randv(n, 1), *rx = xmalloc(n * 4), *rty = xmalloc(n * 4);
    memcpy(rx, x, n * 4);
    memcpy(rty, y, n * 4);
    be->op->rope_fwd(be, rx, pos, inv, N, H, K);
    be->op->rope_bwd(be, rty, pos, inv, N, H, K);
    assert_float_equal(dot(rx, y, n), dot(x, rty, n), 1e-3);             /* <Rx, y> = <x, R^T y> */
    for (int i = 0; i < H * K; i++) assert_float_equal(rx[i], x[i], 1e-6); /* pos 0 */
    assert_float_equal(dot(rx, rx, n), dot(x, x, n), 1e-3);
    /* element check: pos 5, head 1, pair 2 */
    int r = 3, h = 1, i = 2;
    float ang = (float)pos[r] * inv[i], c = cosf(ang), s = sinf(ang);
    const float *xr = x + ((size_t)r * H + h) * K;
    assert_float_equal(rx[((size_t)r * H + h) * K + i], xr[i] * c - xr[i + K / 2] * s, 1e-5);
    assert_float_equal(rx[((size_t)r * H + h) * K + i + K / 2], xr[i + K / 2] * c + xr[i] * s, 1e-5);
    be->op->rope_bwd(be, rx, pos, inv, N, H, K); /* R^T R = I */
    for (size_t j = 0; j < n; j++) assert_float_equal(rx[j], x[j], 1e-5);
    free(x); free(y); free(rx); free(rty);
}

/* ---- attention ---- */
/* Naive double-precision reference with a T x T score matrix. */
static void attn_naive(float *out, const float *q, const float *k, const float *v, const int32_t *seg, int B, int T,
                       int Hq, int Hkv, int K)
{
    double *p = xmalloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++)
            for (int i = 0; i < T; i++) {
                int kh = h / (Hq / Hkv);
                double mx = -1e300, s = 0;
                for (int j = 0; j <= i; j++) {
                    p[j] = -1e300;
                    if (seg && seg[b * T + j] != seg[b * T + i]) continue;
                    double d = 0;
                    for (int c = 0; c < K; c++)
                        d += (double)q[(((size_t)b * T + i) * Hq + h) * K + c] * k[(((size_t)b * T + j) * Hkv + kh) * K + c];
                    p[j] = d / sqrt((double)K);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = 0; j <= i; j++) s += p[j] > -1e299 ? exp(p[j] - mx) : 0;
                for (int c = 0; c < K; c++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++)
                        if (p[j] > -1e299) o += exp(p[j] - mx) / s * v[(((size_t)b * T + j) * Hkv + kh) * K + c];
                    out[(((size_t)b * T + i) * Hq + h) * K + c] = (float)o;
                }
            }
    free(p);
}

typedef struct { k_attn_shape s; float *q, *k, *v, *out, *lse, *dy; int32_t *seg; } attn_ctx;
static double attn_loss(void *p)
{
    attn_ctx *c = p;
    be->op->attn_fwd(be, c->out, c->lse, c->q, c->k, c->v, NULL, c->seg, &c->s);
    return dot(c->out, c->dy, (size_t)c->s.B * c->s.Tq * c->s.Hq * c->s.K);
}

static void attn_case(int B, int T, int Hq, int Hkv, int K, int use_seg)
{
    attn_ctx c = {.s = {.B = B, .Tq = T, .Tk = T, .Hq = Hq, .Hkv = Hkv, .K = K, .scale = 1.0f / sqrtf((float)K)}};
    size_t nq = (size_t)B * T * Hq * K, nk = (size_t)B * T * Hkv * K;
    c.q = randv(nq, 1); c.k = randv(nk, 1); c.v = randv(nk, 1); c.dy = randv(nq, 1);
    c.out = xmalloc(nq * 4); c.lse = xmalloc((size_t)B * Hq * T * 4);
    if (use_seg) { /* documents of varying length, restarting */
        c.seg = xmalloc((size_t)B * T * 4);
        for (int b = 0; b < B; b++)
            for (int t = 0, sgi = 0; t < T; t++) {
                if (t > 0 && hx_rng_below(&rng, 23) == 0) sgi++;
                c.seg[b * T + t] = sgi;
            }
    }
    attn_loss(&c);
    float *ref = xmalloc(nq * 4);
    attn_naive(ref, c.q, c.k, c.v, c.seg, B, T, Hq, Hkv, K);
    for (size_t i = 0; i < nq; i++)
        if (fabsf(ref[i] - c.out[i]) > 2e-5f) fail_msg("attention tiled != naive at %zu: %g vs %g", i, c.out[i], ref[i]);
    float *dq = xcalloc(nq, 4), *dk = xcalloc(nk, 4), *dv = xcalloc(nk, 4);
    be->op->attn_bwd(be, dq, dk, dv, c.dy, c.q, c.k, c.v, c.out, c.lse, c.seg, &c.s);
    fd_check("attention dq", attn_loss, &c, c.q, dq, nq, 1e-2f, 2e-2);
    fd_check("attention dk", attn_loss, &c, c.k, dk, nk, 1e-2f, 2e-2);
    fd_check("attention dv", attn_loss, &c, c.v, dv, nk, 1e-2f, 2e-2);
    /* decode: query row i alone against a cache of capacity Tk > i, via q_start, equals row i of the prefill */
    if (!use_seg) {
        attn_loss(&c); /* out of the unperturbed inputs again */
        k_attn_shape s1 = c.s;
        s1.Tq = 1;
        int i = T - 3;
        int32_t qs[8];
        float *q1 = xmalloc((size_t)B * Hq * K * 4), *o1 = xmalloc((size_t)B * Hq * K * 4);
        for (int b = 0; b < B; b++) {
            qs[b] = i;
            memcpy(q1 + (size_t)b * Hq * K, c.q + (((size_t)b * T + i) * Hq) * K, (size_t)Hq * K * 4);
        }
        be->op->attn_fwd(be, o1, NULL, q1, c.k, c.v, qs, NULL, &s1);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < Hq * K; j++)
                assert_float_equal(o1[(size_t)b * Hq * K + j], c.out[(((size_t)b * T + i) * Hq) * K + j], 1e-6);
        free(q1); free(o1);
    }
    free(c.q); free(c.k); free(c.v); free(c.dy); free(c.out); free(c.lse); free(c.seg); free(ref);
    free(dq); free(dk); free(dv);
}

static void test_attention(void **state)
{
    (void)state;
    attn_case(2, 150, 4, 2, 16, 0); /* GQA, T not a multiple of the 64-key tile */
    attn_case(1, 70, 2, 2, 8, 1);   /* MHA with packed documents */
    attn_case(2, 33, 3, 1, 6, 0);   /* MQA, odd head count, small head dim */
}

/* ---- SwiGLU ---- */
typedef struct { size_t n; float *g, *u, *out, *dy; } swi_ctx;
static double swi_loss(void *p)
{
    swi_ctx *c = p;
    be->op->swiglu_fwd(be, c->out, c->g, c->u, c->n);
    return dot(c->out, c->dy, c->n);
}
static void test_swiglu(void **state)
{
    (void)state;
    swi_ctx c = {.n = 333};
    c.g = randv(c.n, 2); c.u = randv(c.n, 1); c.dy = randv(c.n, 1); c.out = xmalloc(c.n * 4);
    swi_loss(&c);
    for (size_t i = 0; i < c.n; i++) assert_float_equal(c.out[i], c.g[i] / (1 + exp(-c.g[i])) * c.u[i], 1e-5);
    float *dg = xcalloc(c.n, 4), *du = xcalloc(c.n, 4);
    be->op->swiglu_bwd(be, dg, du, c.dy, c.g, c.u, c.n);
    fd_check("swiglu dgate", swi_loss, &c, c.g, dg, c.n, 1e-2f, 2e-2);
    fd_check("swiglu dup", swi_loss, &c, c.u, du, c.n, 1e-2f, 2e-2);
    free(c.g); free(c.u); free(c.dy); free(c.out); free(dg); free(du);
}

/* ---- losses ---- */
typedef struct { int N, V; float *z, *zt, *loss; int32_t *tg; k_kl_mode mode; float temp; int kl; } loss_ctx;
static double loss_sum(void *p)
{
    loss_ctx *c = p;
    if (c->kl) be->op->kl_fwd_bwd(be, c->loss, NULL, c->z, c->zt, NULL, c->N, c->V, c->mode, c->temp, 1);
    else be->op->xent_fwd_bwd(be, c->loss, NULL, c->z, c->tg, c->N, c->V, -100, 1);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->loss[i];
    return s;
}
static void test_losses(void **state)
{
    (void)state;
    loss_ctx c = {.N = 6, .V = 50};
    size_t n = (size_t)c.N * c.V;
    c.z = randv(n, 2); c.zt = randv(n, 2); c.loss = xmalloc(c.N * 4);
    int32_t tg[6] = {3, -100, 49, 0, 17, 17};
    c.tg = tg;
    float *dz = xmalloc(n * 4);
    be->op->xent_fwd_bwd(be, c.loss, dz, c.z, c.tg, c.N, c.V, -100, 1);
    assert_float_equal(c.loss[1], 0, 0);
    for (int i = 0; i < c.V; i++) assert_float_equal(dz[c.V + i], 0, 0);
    double mx = -1e30, s = 0;
    for (int i = 0; i < c.V; i++) mx = c.z[i] > mx ? c.z[i] : mx;
    for (int i = 0; i < c.V; i++) s += exp(c.z[i] - mx);
    assert_float_equal(c.loss[0], mx + log(s) - c.z[3], 1e-5);
    fd_check("xent dlogits", loss_sum, &c, c.z, dz, n, 1e-2f, 2e-2);
    /* in place: dlogits may alias logits */
    float *zz = xmalloc(n * 4);
    memcpy(zz, c.z, n * 4);
    be->op->xent_fwd_bwd(be, c.loss, zz, zz, c.tg, c.N, c.V, -100, 1);
    for (size_t i = 0; i < n; i++) assert_float_equal(zz[i], dz[i], 1e-7);
    c.kl = 1;
    for (int mode = 0; mode < 2; mode++)
        for (int ti = 0; ti < 2; ti++) {
            c.mode = (k_kl_mode)mode;
            c.temp = ti ? 2.0f : 1.0f;
            be->op->kl_fwd_bwd(be, c.loss, dz, c.z, c.zt, NULL, c.N, c.V, c.mode, c.temp, 1);
            for (int r = 0; r < c.N; r++) assert_true(c.loss[r] >= -1e-6);
            fd_check(mode ? "reverse KL" : "forward KL", loss_sum, &c, c.z, dz, n, 1e-2f, 2e-2);
        }
    /* KL of a distribution with itself is 0, gradient 0; masked rows are 0 */
    int32_t mask[6] = {1, 0, 1, 1, 1, 1};
    be->op->kl_fwd_bwd(be, c.loss, dz, c.z, c.z, mask, c.N, c.V, K_KL_FORWARD, 1, 1);
    for (int r = 0; r < c.N; r++) assert_float_equal(c.loss[r], 0, 1e-6);
    for (size_t i = 0; i < n; i++) assert_float_equal(dz[i], 0, 1e-6);
    /* MSE */
    float *y = randv(n, 1), *dx = xmalloc(n * 4);
    be->op->mse_fwd_bwd(be, c.loss, dx, c.z, y, c.N, c.V, 1);
    double ms = 0;
    for (int i = 0; i < c.V; i++) ms += (double)(c.z[i] - y[i]) * (c.z[i] - y[i]);
    assert_float_equal(c.loss[0], ms / c.V, 1e-4);
    assert_float_equal(dx[5], 2 * (c.z[5] - y[5]) / c.V, 1e-6);
    free(c.z); free(c.zt); free(c.loss); free(dz); free(zz); free(y); free(dx);
}

/* ---- embedding ---- */
static void test_embedding(void **state)
{
    (void)state;
    int N = 10, d = 20, V = 7;
    int32_t ids[10] = {0, 3, 3, 6, 1, 3, 0, 2, 5, 3};
    float *tab = randv((size_t)V * d, 1), *out = xmalloc((size_t)N * d * 4), *dy = randv((size_t)N * d, 1);
    float *dt = xcalloc((size_t)V * d, 4);
    be->op->embedding_fwd(be, out, ids, tab, N, d, V);
    for (int n = 0; n < N; n++) assert_memory_equal(out + n * d, tab + ids[n] * d, (size_t)d * 4);
    be->op->embedding_bwd(be, dt, ids, dy, N, d, V);
    for (int v = 0; v < V; v++)
        for (int c = 0; c < d; c++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += ids[n] == v ? dy[n * d + c] : 0;
            assert_float_equal(dt[v * d + c], s, 1e-5);
        }
    free(tab); free(out); free(dy); free(dt);
}

/* ---- AdamW (torch.optim.AdamW) and grad-norm ---- */
static void test_adamw(void **state)
{
    (void)state;
    size_t n = 10;
    float *p = randv(n, 1), *g = randv(n, 1), *m = xcalloc(n, 4), *v = xcalloc(n, 4), *p0 = xmalloc(n * 4);
    memcpy(p0, p, n * 4);
    size_t seg_end[2] = {4, 10};
    unsigned char decay[2] = {1, 0};
    k_adamw_hp hp = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .step = 1};
    be->op->adamw(be, p, g, m, v, n, 2, seg_end, decay, &hp);
    for (size_t i = 0; i < n; i++) {
        /* step 1: mhat = g, vhat = g^2: update = lr * g / (|g| + eps) = lr * sign(g) */
        double pe = p0[i] * (i < 4 ? 1 - 0.1 * 0.1 : 1) - 0.1 * g[i] / (fabs(g[i]) + 1e-8);
        assert_float_equal(p[i], pe, 1e-5);
    }
    hp.step = 2;
    float p1 = p[7], m1 = m[7], v1 = v[7];
    be->op->adamw(be, p, g, m, v, n, 2, seg_end, decay, &hp);
    double mm = 0.9 * m1 + 0.1 * g[7], vv = 0.95 * v1 + 0.05 * g[7] * g[7];
    double upd = 0.1 / (1 - 0.81) * mm / (sqrt(vv) / sqrt(1 - 0.9025) + 1e-8);
    assert_float_equal(p[7], p1 - upd, 1e-5);
    double ss;
    be->op->sumsq(be, &ss, g, n);
    assert_float_equal(ss, dot(g, g, n), 1e-6);
    free(p); free(g); free(m); free(v); free(p0);
}

/* Large reductions give the same bits on every run (fixed order). */
static void test_determinism(void **state)
{
    (void)state;
    size_t n = 100000;
    float *x = randv(n, 1);
    double a, b;
    be->op->sumsq(be, &a, x, n);
    be->op->sumsq(be, &b, x, n);
    assert_memory_equal(&a, &b, sizeof a);
    int N = 300, d = 64;
    int32_t *ids = xmalloc((size_t)N * 4);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)hx_rng_below(&rng, 5);
    float *t1 = xcalloc(5 * (size_t)d, 4), *t2 = xcalloc(5 * (size_t)d, 4);
    be->op->embedding_bwd(be, t1, ids, x, N, d, 5);
    be->op->embedding_bwd(be, t2, ids, x, N, d, 5);
    assert_memory_equal(t1, t2, 5 * (size_t)d * 4);
    free(x); free(ids); free(t1); free(t2);
}

int main(void)
{
    be = k_cpu_new(2);
    hx_rng_seed(&rng, 1234);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),    cmocka_unit_test(test_rmsnorm), cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention), cmocka_unit_test(test_swiglu),  cmocka_unit_test(test_losses),
        cmocka_unit_test(test_embedding), cmocka_unit_test(test_adamw),   cmocka_unit_test(test_determinism),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    k_backend_free(be);
    return r;
}
