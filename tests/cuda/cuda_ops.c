/* cuda_ops.c - op-test harness (ggml test-backend-ops style): every CUDA op against its CPU twin, forward and every gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"

/*
 * Table-driven: each case names an op, a shape, a seed and a tolerance with its reason. For every case the
 * inputs are drawn at random (never zeros), copied to both backends, the op runs on each, and every output
 * and gradient is compared by the normalised error ||gpu - cpu|| / ||cpu|| (and checked finite). Gradient
 * buffers start random, not zero, so the += contract is tested too. Every device output sits between guard
 * zones filled with a NaN pattern; a guard that changed is an out-of-bounds write.
 *
 * Tolerances (fp32 unit roundoff 6e-8, bf16 4e-3):
 *  TOL_EXACT 0       copies and gathers: bit-identical.
 *  TOL_F32   2e-5    fp32 arithmetic in another order or with the GPU's expf/rsqrtf (a few ulp per value,
 *                    relative errors of a sum of d terms grow like sqrt(d) ulp).
 *  TOL_RED   1e-4    long fp32 reductions in a different order (attention over T keys, KDA chunk algebra with
 *                    64-term sums and triangular solves, column sums over thousands of rows).
 *  TOL_TF32  2e-3    the chunk-parallel KDA (kda_chunk.cu, K, V in {32, 64, 128}): its chunk products run on the tensor cores
 *                    with TF32 operands (relative rounding 2^-11 each, fp32 accumulate), and the errors go through
 *                    the triangular solve and the state recurrence: measured 2-4e-4 on these cases; a layout or
 *                    masking mistake gives errors near 1.
 *  TOL_BF16  1e-2    matmul, and attention at head dims 64/128 (flash.cu's bf16 tensor-core products): both operands rounded to bf16 (relative error 2^-9 each), fp32 accumulate: the
 *                    normalised error of a random product is about sqrt(2) 2^-9 = 3e-3; 1e-2 leaves margin
 *                    and still catches any layout or transpose mistake (those give errors near 1).
 */
#define TOL_EXACT 0.0
#define TOL_F32 2e-5
#define TOL_RED 1e-4
#define TOL_TF32 2e-3
#define TOL_BF16 1e-2

#define GUARD 64 /* floats of guard on each side */
static const uint32_t GUARD_BITS = 0x7fc0dead;

static k_backend *cpu, *gpu;
static hx_rng rng;
static int n_fail, n_check;
static const char *cur_case;

typedef struct tbuf {
    size_t n;
    float *h;      /* host values (the CPU backend works on these) */
    float *dbase;  /* device allocation with guards */
    float *d;      /* device values */
} tbuf;

static tbuf tb_new(size_t n)
{
    tbuf t;
    t.n = n;
    t.h = xcalloc(n ? n : 1, sizeof(float));
    t.dbase = gpu->op->alloc(gpu, (n + 2 * GUARD) * sizeof(float));
    t.d = t.dbase + GUARD;
    return t;
}

/* upload host values and write the guard pattern */
static void tb_sync_up(tbuf *t)
{
    float *tmp = xmalloc((t->n + 2 * GUARD) * sizeof(float));
    for (int i = 0; i < GUARD; i++) {
        memcpy(&tmp[i], &GUARD_BITS, 4);
        memcpy(&tmp[GUARD + t->n + i], &GUARD_BITS, 4);
    }
    memcpy(tmp + GUARD, t->h, t->n * sizeof(float));
    gpu->op->upload(gpu, t->dbase, tmp, (t->n + 2 * GUARD) * sizeof(float));
    free(tmp);
}

static tbuf tb_randn(size_t n, float scale)
{
    tbuf t = tb_new(n);
    for (size_t i = 0; i < n; i++) t.h[i] = hx_rng_normal(&rng) * scale;
    tb_sync_up(&t);
    return t;
}

static tbuf tb_uniform(size_t n, float lo, float hi)
{
    tbuf t = tb_new(n);
    for (size_t i = 0; i < n; i++) t.h[i] = lo + (hi - lo) * (float)hx_rng_uniform(&rng);
    tb_sync_up(&t);
    return t;
}

static void tb_free(tbuf *t)
{
    free(t->h);
    gpu->op->free(gpu, t->dbase);
}

/* int32 device arrays (ids, positions, segments) */
typedef struct ibuf { size_t n; int32_t *h, *d; } ibuf;
static ibuf ib_new(size_t n)
{
    ibuf t = {n, xcalloc(n ? n : 1, sizeof(int32_t)), NULL};
    t.d = gpu->op->alloc(gpu, (n ? n : 1) * sizeof(int32_t));
    return t;
}
static void ib_up(ibuf *t) { gpu->op->upload(gpu, t->d, t->h, t->n * sizeof(int32_t)); }
static void ib_free(ibuf *t) { free(t->h); gpu->op->free(gpu, t->d); }

/* Downloads the device copy, checks guards, finiteness and the error against the host (CPU) values over the
 * first n values (the device may keep more after them: KDA's s_chunks). */
static void tb_check_n(const tbuf *t, size_t n, const char *what, double tol)
{
    n_check++;
    float *all = xmalloc((t->n + 2 * GUARD) * sizeof(float));
    gpu->op->download(gpu, all, t->dbase, (t->n + 2 * GUARD) * sizeof(float));
    const float *g = all + GUARD;
    int guard_ok = 1;
    for (int i = 0; i < GUARD; i++) {
        if (memcmp(&all[i], &GUARD_BITS, 4) || memcmp(&all[GUARD + t->n + i], &GUARD_BITS, 4)) guard_ok = 0;
    }
    double num = 0, den = 0, maxd = 0, maxr = 0;
    size_t nonfinite = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g[i]) && isfinite(t->h[i])) nonfinite++;
        double d = (double)g[i] - t->h[i];
        num += d * d;
        den += (double)t->h[i] * t->h[i];
        if (fabs(d) > maxd) { maxd = fabs(d); worst = i; }
        if (fabs(t->h[i]) > maxr) maxr = fabs(t->h[i]);
    }
    double nerr = den > 0 ? sqrt(num / den) : sqrt(num);
    int ok = guard_ok && !nonfinite && (nerr <= tol || (tol == 0 && maxd == 0));
    if (!ok) n_fail++;
    printf("%-5s %-34s %-10s n=%-9zu nerr=%.2e maxabs=%.2e (|ref|max %.2e) tol=%.0e%s%s\n", ok ? "ok" : "FAIL",
           cur_case, what, n, nerr, maxd, maxr, tol, guard_ok ? "" : "  GUARD OVERWRITTEN",
           nonfinite ? "  NON-FINITE" : "");
    if (!ok && n) printf("      worst at %zu: gpu %.8g cpu %.8g\n", worst, g[worst], t->h[worst]);
    free(all);
}
static void tb_check(const tbuf *t, const char *what, double tol) { tb_check_n(t, t->n, what, tol); }

/* ------------------------------------------------------------------ cases */

typedef struct tcase {
    const char *op;
    int a, b, c, d, e, f; /* op-specific shape */
    void (*fn)(const struct tcase *);
} tcase;

static void t_matmul(const tcase *tc)
{
    int ta = tc->a, tb = tc->b, M = tc->c, N = tc->d, K = tc->e, pad = tc->f;
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    tbuf A = tb_randn((size_t)(ta ? K : M) * lda, 1), B = tb_randn((size_t)(tb ? N : K) * ldb, 1);
    tbuf C = tb_randn((size_t)M * ldc, 1);
    cpu->op->matmul(cpu, ta, tb, M, N, K, 0.5f, A.h, lda, B.h, ldb, 1.0f, C.h, ldc);
    gpu->op->matmul(gpu, ta, tb, M, N, K, 0.5f, A.d, lda, B.d, ldb, 1.0f, C.d, ldc);
    tb_check(&C, "C", TOL_BF16);
    /* beta = 0 must ignore NaN garbage in C? (BLAS semantics: C not read) -- use finite values only */
    cpu->op->matmul(cpu, ta, tb, M, N, K, 1.0f, A.h, lda, B.h, ldb, 0.0f, C.h, ldc);
    gpu->op->matmul(gpu, ta, tb, M, N, K, 1.0f, A.d, lda, B.d, ldb, 0.0f, C.d, ldc);
    tb_check(&C, "C(beta0)", TOL_BF16);
    tb_free(&A); tb_free(&B); tb_free(&C);
}

/* bf16 rounding (round to nearest even) of host values in place: operands exactly representable in bf16 make the
 * GPU's products exact, so it differs from the CPU's fp32 matmul only in summation order */
static void round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&x[i], &u, 4);
    }
}

/*
 * A linear layer against frozen weights (weights_freeze: the bf16 copy, issue 15): M <= 16 rows go through gemv.cu,
 * more rows (or K % 8 != 0, or x beyond shared memory) through cuBLASLt reading the frozen copy. M, N, K, pad (of
 * lda and ldc), f: 1 also with beta = 1, 2 the operand is rows 1..N-1 of the frozen tensor (a view K floats in:
 * not 256-byte aligned, converted for cuBLASLt, read in place by the GEMV). bf16-exact operands: the CPU's fp32
 * matmul is the reference to summation order (TOL_RED).
 */
static void t_frozen_mm(const tcase *tc)
{
    int M = tc->a, N = tc->b, K = tc->c, pad = tc->d, f = tc->e;
    int lda = K + pad, ldc = N + pad, n = f == 2 ? N - 1 : N;
    tbuf W = tb_randn((size_t)N * K, 1), A = tb_randn((size_t)M * lda, 1), C = tb_randn((size_t)M * ldc, 1);
    round_bf16(W.h, W.n);
    round_bf16(A.h, A.n);
    tb_sync_up(&W);
    tb_sync_up(&A);
    gpu->op->weights_freeze(gpu, W.d, W.n);
    size_t wo = f == 2 ? (size_t)K : 0;
    cpu->op->matmul(cpu, 0, 1, M, n, K, 1.0f, A.h, lda, W.h + wo, K, 0.0f, C.h, ldc);
    gpu->op->matmul(gpu, 0, 1, M, n, K, 1.0f, A.d, lda, W.d + wo, K, 0.0f, C.d, ldc);
    tb_check(&C, "C", TOL_RED);
    if (f == 1) {
        cpu->op->matmul(cpu, 0, 1, M, n, K, 0.5f, A.h, lda, W.h + wo, K, 1.0f, C.h, ldc);
        gpu->op->matmul(gpu, 0, 1, M, n, K, 0.5f, A.d, lda, W.d + wo, K, 1.0f, C.d, ldc);
        tb_check(&C, "C(beta1)", TOL_RED);
    }
    gpu->op->weights_thaw(gpu, W.d);
    tb_free(&W); tb_free(&A); tb_free(&C);
}

static void t_elementwise(const tcase *tc)
{
    size_t n = (size_t)tc->a;
    tbuf x = tb_randn(n, 2), y = tb_randn(n, 2), o = tb_randn(n, 1);
    cpu->op->add(cpu, o.h, x.h, y.h, n);
    gpu->op->add(gpu, o.d, x.d, y.d, n);
    tb_check(&o, "add", TOL_EXACT);
    cpu->op->scale(cpu, x.h, 0.37f, n);
    gpu->op->scale(gpu, x.d, 0.37f, n);
    tb_check(&x, "scale", TOL_EXACT);
    double sc = 0, sg = 0;
    cpu->op->sumsq(cpu, &sc, y.h, n);
    gpu->op->sumsq(gpu, &sg, y.d, n);
    n_check++;
    double rel = fabs(sc - sg) / (sc > 0 ? sc : 1);
    int ok = rel < 1e-12;
    if (!ok) n_fail++;
    printf("%-5s %-34s %-10s n=%-9zu cpu=%.15g gpu=%.15g rel=%.1e tol=1e-12 (double sums)\n", ok ? "ok" : "FAIL",
           cur_case, "sumsq", n, sc, sg, rel);
    /* swiglu fwd/bwd, sigmoid fwd/bwd */
    tbuf dy = tb_randn(n, 1), dg = tb_randn(n, 1), du = tb_randn(n, 1);
    cpu->op->swiglu_fwd(cpu, o.h, x.h, y.h, n);
    gpu->op->swiglu_fwd(gpu, o.d, x.d, y.d, n);
    tb_check(&o, "swiglu", TOL_F32);
    cpu->op->swiglu_bwd(cpu, dg.h, du.h, dy.h, x.h, y.h, n);
    gpu->op->swiglu_bwd(gpu, dg.d, du.d, dy.d, x.d, y.d, n);
    tb_check(&dg, "dgate", TOL_F32);
    tb_check(&du, "dup", TOL_F32);
    cpu->op->sigmoid_fwd(cpu, o.h, x.h, n);
    gpu->op->sigmoid_fwd(gpu, o.d, x.d, n);
    tb_check(&o, "sigmoid", TOL_F32);
    cpu->op->sigmoid_bwd(cpu, dg.h, dy.h, o.h, n);
    gpu->op->sigmoid_bwd(gpu, dg.d, dy.d, o.d, n);
    tb_check(&dg, "dsigmoid", TOL_F32);
    tb_free(&x); tb_free(&y); tb_free(&o); tb_free(&dy); tb_free(&dg); tb_free(&du);
}

static void t_embedding(const tcase *tc)
{
    int N = tc->a, d = tc->b, V = tc->c;
    tbuf table = tb_randn((size_t)V * d, 1), out = tb_randn((size_t)N * d, 1), dout = tb_randn((size_t)N * d, 1);
    tbuf dtable = tb_randn((size_t)V * d, 1);
    ibuf ids = ib_new(N);
    for (int i = 0; i < N; i++) ids.h[i] = (int32_t)hx_rng_below(&rng, i % 3 ? V : 4); /* repeats */
    ib_up(&ids);
    cpu->op->embedding_fwd(cpu, out.h, ids.h, table.h, N, d, V);
    gpu->op->embedding_fwd(gpu, out.d, ids.d, table.d, N, d, V);
    tb_check(&out, "out", TOL_EXACT);
    cpu->op->embedding_bwd(cpu, dtable.h, ids.h, dout.h, N, d, V);
    gpu->op->embedding_bwd(gpu, dtable.d, ids.d, dout.d, N, d, V);
    tb_check(&dtable, "dtable", TOL_F32); /* same row order: in fact exact */
    tb_free(&table); tb_free(&out); tb_free(&dout); tb_free(&dtable); ib_free(&ids);
}

static void t_rmsnorm(const tcase *tc)
{
    int N = tc->a, d = tc->b;
    tbuf x = tb_randn((size_t)N * d, 1.5f), w = tb_uniform(d, 0.5f, 1.5f), out = tb_randn((size_t)N * d, 1);
    tbuf rstd = tb_randn(N, 1), dout = tb_randn((size_t)N * d, 1), dx = tb_randn((size_t)N * d, 1);
    tbuf dw = tb_randn(d, 1);
    cpu->op->rmsnorm_fwd(cpu, out.h, rstd.h, x.h, w.h, N, d, 1e-6f);
    gpu->op->rmsnorm_fwd(gpu, out.d, rstd.d, x.d, w.d, N, d, 1e-6f);
    tb_check(&out, "out", TOL_F32);
    tb_check(&rstd, "rstd", TOL_F32);
    cpu->op->rmsnorm_bwd(cpu, dx.h, dw.h, dout.h, x.h, w.h, rstd.h, N, d);
    gpu->op->rmsnorm_bwd(gpu, dx.d, dw.d, dout.d, x.d, w.d, rstd.d, N, d);
    tb_check(&dx, "dx", TOL_F32);
    tb_check(&dw, "dw", TOL_RED);
    tb_free(&x); tb_free(&w); tb_free(&out); tb_free(&rstd); tb_free(&dout); tb_free(&dx); tb_free(&dw);
}

static void t_rope(const tcase *tc)
{
    int N = tc->a, H = tc->b, K = tc->c, maxpos = tc->d;
    tbuf x = tb_randn((size_t)N * H * K, 1), inv = tb_new(K / 2);
    for (int i = 0; i < K / 2; i++) inv.h[i] = 1.0f / powf(1e6f, (float)(2 * i) / (float)K);
    tb_sync_up(&inv);
    ibuf pos = ib_new(N);
    for (int i = 0; i < N; i++) pos.h[i] = (int32_t)hx_rng_below(&rng, maxpos);
    ib_up(&pos);
    cpu->op->rope_fwd(cpu, x.h, pos.h, inv.h, N, H, K);
    gpu->op->rope_fwd(gpu, x.d, pos.d, inv.d, N, H, K);
    /* same float angle on both sides; cos/sin in double: a few ulp */
    tb_check(&x, "fwd", TOL_F32);
    cpu->op->rope_bwd(cpu, x.h, pos.h, inv.h, N, H, K);
    gpu->op->rope_bwd(gpu, x.d, pos.d, inv.d, N, H, K);
    tb_check(&x, "bwd", TOL_F32);
    tb_free(&x); tb_free(&inv); ib_free(&pos);
}

/* a = B, b = T, c = Hq, d = Hkv, e = K, f: 0 plain, 1 packed segments, 2 decode with q_start (Tq < Tk),
 * 3 chunked prefill: Tq = T/3 + 5 queries at random q_start against Tk = T (forward only, like 2). On an H100/H200,
 * K = 128 without segments takes flash_sm90.cu's forward; HX_CUDA_FLASH2=1 tests flash.cu's instead. */
/* argmax_rows: greedy tokens on the device == the CPU's scan, exactly. N rows of V: random rows, then row 1 with
 * its maximum repeated (the first wins), row 2 with NaNs before and after its maximum (skipped), row 3 starting
 * with NaN (0, as the host scan), row 4 all -inf (0). */
static void t_argmax(const tcase *tc)
{
    int N = tc->a, V = tc->b;
    tbuf x = tb_randn((size_t)N * V, 1);
    if (N >= 5) {
        float *r1 = x.h + V, *r2 = x.h + 2 * (size_t)V, *r3 = x.h + 3 * (size_t)V, *r4 = x.h + 4 * (size_t)V;
        r1[V / 3] = r1[V / 2] = r1[V - 1] = 100.0f;
        r2[0] = 5.0f;
        r2[1] = r2[V - 2] = NAN;
        r2[V / 2] = 50.0f;
        r3[0] = NAN;
        r3[7] = 60.0f;
        for (int i = 0; i < V; i++) r4[i] = -INFINITY;
        tb_sync_up(&x);
    }
    ibuf o = ib_new(N);
    int32_t *want = xmalloc((size_t)N * sizeof(int32_t));
    cpu->op->argmax_rows(cpu, want, x.h, N, V);
    gpu->op->argmax_rows(gpu, o.d, x.d, N, V);
    gpu->op->download(gpu, o.h, o.d, (size_t)N * sizeof(int32_t));
    int bad = 0;
    for (int n = 0; n < N; n++) bad += o.h[n] != want[n];
    if (N >= 5 && (want[1] != V / 3 || want[2] != V / 2 || want[3] != 0 || want[4] != 0)) bad++;
    n_check++;
    if (bad) n_fail++;
    printf("%-5s %-34s %-10s n=%-9d rows differing or wrong: %d\n", bad ? "FAIL" : "ok", cur_case, "tokens", N, bad);
    free(want);
    tb_free(&x);
    ib_free(&o);
}

/* add_rmsnorm_fwd: sum = x + y and its norm == the CPU twin (add, rmsnorm_fwd); then with sum aliasing x, as the
 * model's residual stream may. N, d. */
static void t_add_rmsnorm(const tcase *tc)
{
    int N = tc->a, d = tc->b;
    tbuf x = tb_randn((size_t)N * d, 1), y = tb_randn((size_t)N * d, 1), w = tb_randn(d, 1);
    tbuf s = tb_randn((size_t)N * d, 1), o = tb_randn((size_t)N * d, 1), r = tb_randn(N, 1);
    cpu->op->add_rmsnorm_fwd(cpu, s.h, o.h, r.h, x.h, y.h, w.h, N, d, 1e-6f);
    gpu->op->add_rmsnorm_fwd(gpu, s.d, o.d, r.d, x.d, y.d, w.d, N, d, 1e-6f);
    tb_check(&s, "sum", TOL_EXACT);
    tb_check(&o, "out", TOL_F32);
    tb_check(&r, "rstd", TOL_F32);
    cpu->op->add_rmsnorm_fwd(cpu, x.h, o.h, NULL, x.h, y.h, w.h, N, d, 1e-6f);
    gpu->op->add_rmsnorm_fwd(gpu, x.d, o.d, NULL, x.d, y.d, w.d, N, d, 1e-6f);
    tb_check(&x, "sum(alias)", TOL_EXACT);
    tb_check(&o, "out(alias)", TOL_F32);
    tb_free(&x); tb_free(&y); tb_free(&w); tb_free(&s); tb_free(&o); tb_free(&r);
}

/* rope_cache_fwd: q, k rotated in place and k, v appended to the cache at each sequence's own q_start (caches start
 * random: rows outside the append must keep their values) == the CPU twin (rope_fwd twice and the copies). B, T,
 * Hq, Hkv, K, Tmax. */
static void t_rope_cache(const tcase *tc)
{
    int B = tc->a, T = tc->b, Hq = tc->c, Hkv = tc->d, K = tc->e, Tmax = tc->f, N = B * T;
    size_t KD = (size_t)Hkv * K;
    tbuf q = tb_randn((size_t)N * Hq * K, 1), k = tb_randn(N * KD, 1), v = tb_randn(N * KD, 1);
    tbuf ck = tb_randn((size_t)B * Tmax * KD, 1), cv = tb_randn((size_t)B * Tmax * KD, 1), inv = tb_new(K / 2);
    for (int i = 0; i < K / 2; i++) inv.h[i] = 1.0f / powf(1e6f, (float)(2 * i) / (float)K);
    tb_sync_up(&inv);
    ibuf pos = ib_new(N), qs = ib_new(B);
    for (int s = 0; s < B; s++) {
        qs.h[s] = (int32_t)hx_rng_below(&rng, (uint64_t)(Tmax - T + 1));
        for (int t = 0; t < T; t++) pos.h[s * T + t] = qs.h[s] + t;
    }
    ib_up(&pos);
    ib_up(&qs);
    cpu->op->rope_cache_fwd(cpu, q.h, k.h, v.h, ck.h, cv.h, pos.h, qs.h, inv.h, B, T, Hq, Hkv, K, Tmax);
    gpu->op->rope_cache_fwd(gpu, q.d, k.d, v.d, ck.d, cv.d, pos.d, qs.d, inv.d, B, T, Hq, Hkv, K, Tmax);
    tb_check(&q, "q", TOL_F32);
    tb_check(&k, "k", TOL_F32);
    tb_check(&ck, "cache_k", TOL_F32);
    tb_check(&cv, "cache_v", TOL_EXACT);
    tb_check(&v, "v", TOL_EXACT);
    tb_free(&q); tb_free(&k); tb_free(&v); tb_free(&ck); tb_free(&cv); tb_free(&inv);
    ib_free(&pos); ib_free(&qs);
}

static void t_attn(const tcase *tc)
{
    int B = tc->a, T = tc->b, Hq = tc->c, Hkv = tc->d, K = tc->e, mode = tc->f;
    int Tq = mode == 2 ? 3 : mode == 3 ? T / 3 + 5 : T, Tk = T;
    k_attn_shape s = {B, Tq, Tk, Hq, Hkv, K, 1.0f / sqrtf((float)K)};
    tbuf q = tb_randn((size_t)B * Tq * Hq * K, 1), k = tb_randn((size_t)B * Tk * Hkv * K, 1);
    tbuf v = tb_randn((size_t)B * Tk * Hkv * K, 1), out = tb_randn((size_t)B * Tq * Hq * K, 1);
    tbuf lse = tb_randn((size_t)B * Hq * Tq, 1);
    ibuf qs = ib_new(B), seg = ib_new((size_t)B * T);
    for (int b = 0; b < B; b++) qs.h[b] = (int32_t)hx_rng_below(&rng, Tk - Tq + 1);
    for (int b = 0; b < B; b++) {
        int sg = 0;
        for (int t = 0; t < T; t++) {
            if (t > 0 && hx_rng_below(&rng, 9) == 0) sg++;
            seg.h[(size_t)b * T + t] = sg;
        }
    }
    ib_up(&qs); ib_up(&seg);
    const int32_t *qsh = mode >= 2 ? qs.h : NULL, *qsd = mode >= 2 ? qs.d : NULL;
    const int32_t *sgh = mode == 1 ? seg.h : NULL, *sgd = mode == 1 ? seg.d : NULL;
    /* head dims 64 and 128 take flash.cu's tensor-core path (bf16 products): bf16 tolerance */
    const double tol = (K == 64 || K == 128) && !getenv("HX_CUDA_SIMT_ATTN") ? TOL_BF16 : TOL_RED;
    cpu->op->attn_fwd(cpu, out.h, lse.h, q.h, k.h, v.h, qsh, sgh, &s);
    gpu->op->attn_fwd(gpu, out.d, lse.d, q.d, k.d, v.d, qsd, sgd, &s);
    tb_check(&out, "out", tol);
    tb_check(&lse, "lse", tol == TOL_RED ? TOL_F32 : tol);
    if (mode < 2) {
        tbuf dout = tb_randn(q.n, 1), dq = tb_randn(q.n, 1), dk = tb_randn(k.n, 1), dv = tb_randn(v.n, 1);
        /* the backward of both runs from the CPU's forward values, so only the backward is compared */
        gpu->op->upload(gpu, out.d, out.h, out.n * sizeof(float));
        gpu->op->upload(gpu, lse.d, lse.h, lse.n * sizeof(float));
        cpu->op->attn_bwd(cpu, dq.h, dk.h, dv.h, dout.h, q.h, k.h, v.h, out.h, lse.h, sgh, &s);
        gpu->op->attn_bwd(gpu, dq.d, dk.d, dv.d, dout.d, q.d, k.d, v.d, out.d, lse.d, sgd, &s);
        tb_check(&dq, "dq", tol);
        tb_check(&dk, "dk", tol);
        tb_check(&dv, "dv", tol);
        tb_free(&dout); tb_free(&dq); tb_free(&dk); tb_free(&dv);
    }
    tb_free(&q); tb_free(&k); tb_free(&v); tb_free(&out); tb_free(&lse); ib_free(&qs); ib_free(&seg);
}

/* a = N, b = V, c: 0 all targets, 1 some ignored; xent and both KL modes, in place and separate */
static void t_losses(const tcase *tc)
{
    int N = tc->a, V = tc->b, ign = tc->c;
    tbuf z = tb_randn((size_t)N * V, 3), zt = tb_randn((size_t)N * V, 3), loss = tb_randn(N, 1);
    tbuf dz = tb_randn((size_t)N * V, 1);
    ibuf tgt = ib_new(N), mask = ib_new(N);
    for (int i = 0; i < N; i++) {
        tgt.h[i] = ign && i % 4 == 1 ? -100 : (int32_t)hx_rng_below(&rng, V);
        mask.h[i] = ign ? i % 3 != 0 : 1;
    }
    ib_up(&tgt); ib_up(&mask);
    cpu->op->xent_fwd_bwd(cpu, loss.h, dz.h, z.h, tgt.h, N, V, -100, 0.5f);
    gpu->op->xent_fwd_bwd(gpu, loss.d, dz.d, z.d, tgt.d, N, V, -100, 0.5f);
    tb_check(&loss, "xent", TOL_F32);
    tb_check(&dz, "xent.dz", TOL_F32);
    for (int mode = 0; mode < 2; mode++) {
        cpu->op->kl_fwd_bwd(cpu, loss.h, dz.h, z.h, zt.h, ign ? mask.h : NULL, N, V, (k_kl_mode)mode, 2.0f, 0.25f);
        gpu->op->kl_fwd_bwd(gpu, loss.d, dz.d, z.d, zt.d, ign ? mask.d : NULL, N, V, (k_kl_mode)mode, 2.0f, 0.25f);
        tb_check(&loss, mode ? "rkl" : "kl", TOL_RED);
        tb_check(&dz, mode ? "rkl.dz" : "kl.dz", TOL_RED);
    }
    /* in place: dlogits aliases logits */
    cpu->op->xent_fwd_bwd(cpu, loss.h, z.h, z.h, tgt.h, N, V, -100, 1.0f);
    gpu->op->xent_fwd_bwd(gpu, loss.d, z.d, z.d, tgt.d, N, V, -100, 1.0f);
    tb_check(&loss, "xent.inpl", TOL_F32);
    tb_check(&z, "xent.inpl.dz", TOL_F32);
    int d = V;
    tbuf y = tb_randn((size_t)N * d, 1);
    cpu->op->mse_fwd_bwd(cpu, loss.h, dz.h, zt.h, y.h, N, d, 0.5f);
    gpu->op->mse_fwd_bwd(gpu, loss.d, dz.d, zt.d, y.d, N, d, 0.5f);
    tb_check(&loss, "mse", TOL_F32);
    tb_check(&dz, "mse.dx", TOL_F32);
    tb_free(&z); tb_free(&zt); tb_free(&loss); tb_free(&dz); tb_free(&y); ib_free(&tgt); ib_free(&mask);
}

static void t_adamw(const tcase *tc)
{
    size_t n = (size_t)tc->a;
    int nseg = tc->b;
    tbuf p = tb_randn(n, 1), g = tb_randn(n, 0.1f), m = tb_randn(n, 0.01f), v = tb_uniform(n, 0, 0.01f);
    size_t *end = xmalloc(nseg * sizeof(size_t));
    unsigned char *dec = xmalloc(nseg);
    for (int i = 0; i < nseg; i++) {
        end[i] = n * (size_t)(i + 1) / nseg;
        dec[i] = i % 2;
    }
    for (int step = 1; step <= 3; step++) {
        k_adamw_hp hp = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step};
        cpu->op->adamw(cpu, p.h, g.h, m.h, v.h, n, nseg, end, dec, &hp);
        gpu->op->adamw(gpu, p.d, g.d, m.d, v.d, n, nseg, end, dec, &hp);
    }
    tb_check(&p, "p", TOL_F32);
    tb_check(&m, "m", TOL_F32);
    tb_check(&v, "v", TOL_F32);
    free(end); free(dec);
    tb_free(&p); tb_free(&g); tb_free(&m); tb_free(&v);
}

/* KDA inputs as the layer makes them: q, k L2-normalised (q scaled), g <= 0, beta in (0, 1); strong: decays of
 * 20 nats on every third value, so that 16 tokens decay by more than kda_chunk.cu's factored products take: in
 * every key column over the first third of each sequence, in the second half of the key columns over the second
 * third (kda_chunk.cu finds it only at its second half of the columns), nowhere in the last third */
typedef struct kda_in { tbuf q, k, v, g, beta; } kda_in;
static kda_in kda_inputs(int B, int T, int H, int K, int V, int strong)
{
    kda_in in;
    size_t nk = (size_t)B * T * H * K, nv = (size_t)B * T * H * V;
    in.q = tb_randn(nk, 1); in.k = tb_randn(nk, 1);
    cpu->op->l2norm_fwd(cpu, in.q.h, in.q.h, (size_t)B * T * H, K, 1.0f / sqrtf((float)K), 1e-6f);
    cpu->op->l2norm_fwd(cpu, in.k.h, in.k.h, (size_t)B * T * H, K, 1.0f, 1e-6f);
    tb_sync_up(&in.q); tb_sync_up(&in.k);
    in.v = tb_randn(nv, 1);
    in.g = tb_uniform(nk, -0.3f, -0.001f);
    for (size_t i = 0; i < nk; i += 7) in.g.h[i] = -4.0f; /* some strong decay */
    if (strong)
        for (size_t i = 1; i < nk; i += 3) {
            size_t t = i / ((size_t)H * K) % T, col = i % K;
            if (3 * t < (size_t)T || (3 * t < 2 * (size_t)T && 2 * col >= (size_t)K)) in.g.h[i] = -20.0f;
        }
    tb_sync_up(&in.g);
    in.beta = tb_uniform((size_t)B * T * H, 0.05f, 0.95f);
    return in;
}
static void kda_free(kda_in *in) { tb_free(&in->q); tb_free(&in->k); tb_free(&in->v); tb_free(&in->g); tb_free(&in->beta); }

/* the head dims kda_chunk.cu is instantiated for (the others take kda.cu's sequential fp32 kernels) */
static int kda_chunk_dim(int d) { return d == 32 || d == 64 || d == 128; }

/* a = B, b = T, c = H, d = K, e = V, f = 1 with initial state | 2 strong decays */
static void t_kda(const tcase *tc)
{
    int B = tc->a, T = tc->b, H = tc->c, K = tc->d, V = tc->e, init = tc->f & 1;
    int nc = (T + 63) / 64;
    double tol = kda_chunk_dim(K) && kda_chunk_dim(V) ? TOL_TF32 : TOL_RED; /* kda_chunk.cu's shapes */
    kda_in in = kda_inputs(B, T, H, K, V, tc->f & 2);
    size_t ns = (size_t)B * H * K * V;
    tbuf o = tb_randn((size_t)B * T * H * V, 1), sT = tb_randn(ns, 1), s0 = tb_randn(ns, 0.5f);
    const int save = gpu->op->kda_save ? gpu->op->kda_save(gpu, K, V) : 0; /* the GPU keeps more after the states */
    tbuf sch = tb_randn(ns * nc + (size_t)B * H * nc * save, 1);
    const float *s0h = init ? s0.h : NULL, *s0d = init ? s0.d : NULL;
    cpu->op->kda_fwd(cpu, o.h, sT.h, sch.h, in.q.h, in.k.h, in.v.h, in.g.h, in.beta.h, s0h, B, T, H, K, V);
    gpu->op->kda_fwd(gpu, o.d, sT.d, sch.d, in.q.d, in.k.d, in.v.d, in.g.d, in.beta.d, s0d, B, T, H, K, V);
    tb_check(&o, "o", tol);
    tb_check(&sT, "sT", tol);
    tb_check_n(&sch, ns * nc, "s_chunks", tol);
    /* backward from the CPU's saved states (and what the GPU kept after them) */
    gpu->op->upload(gpu, sch.d, sch.h, ns * nc * sizeof(float));
    tbuf dout = tb_randn(o.n, 1), dsT = tb_randn(ns, 1);
    tbuf dq = tb_randn(in.q.n, 1), dk = tb_randn(in.k.n, 1), dv = tb_randn(in.v.n, 1), dg = tb_randn(in.g.n, 1);
    tbuf db = tb_randn(in.beta.n, 1), ds0 = tb_randn(ns, 1);
    cpu->op->kda_bwd(cpu, dq.h, dk.h, dv.h, dg.h, db.h, init ? ds0.h : NULL, dout.h, init ? dsT.h : NULL, in.q.h,
                     in.k.h, in.v.h, in.g.h, in.beta.h, sch.h, B, T, H, K, V);
    gpu->op->kda_bwd(gpu, dq.d, dk.d, dv.d, dg.d, db.d, init ? ds0.d : NULL, dout.d, init ? dsT.d : NULL, in.q.d,
                     in.k.d, in.v.d, in.g.d, in.beta.d, sch.d, B, T, H, K, V);
    tb_check(&dq, "dq", tol);
    tb_check(&dk, "dk", tol);
    tb_check(&dv, "dv", tol);
    tb_check(&dg, "dg", tol);
    tb_check(&db, "dbeta", tol);
    tb_check(&ds0, "ds0", tol);
    /* decode steps: state carried over 3 tokens, on the first 3 rows of each sequence */
    tbuf st = tb_randn(ns, 0.3f), os = tb_randn((size_t)B * H * V, 1);
    for (int t = 0; t < 3 && t < T; t++) {
        /* row t of [B,T,H,*] for every b: gather into [B,H,*] */
        tbuf q1 = tb_new((size_t)B * H * K), k1 = tb_new((size_t)B * H * K), g1 = tb_new((size_t)B * H * K);
        tbuf v1 = tb_new((size_t)B * H * V), b1 = tb_new((size_t)B * H);
        for (int b = 0; b < B; b++) {
            size_t rk = ((size_t)b * T + t) * H * K, rv = ((size_t)b * T + t) * H * V;
            memcpy(q1.h + (size_t)b * H * K, in.q.h + rk, H * K * sizeof(float));
            memcpy(k1.h + (size_t)b * H * K, in.k.h + rk, H * K * sizeof(float));
            memcpy(g1.h + (size_t)b * H * K, in.g.h + rk, H * K * sizeof(float));
            memcpy(v1.h + (size_t)b * H * V, in.v.h + rv, H * V * sizeof(float));
            memcpy(b1.h + (size_t)b * H, in.beta.h + ((size_t)b * T + t) * H, H * sizeof(float));
        }
        tb_sync_up(&q1); tb_sync_up(&k1); tb_sync_up(&g1); tb_sync_up(&v1); tb_sync_up(&b1);
        cpu->op->kda_step(cpu, os.h, st.h, q1.h, k1.h, v1.h, g1.h, b1.h, B, H, K, V);
        gpu->op->kda_step(gpu, os.d, st.d, q1.d, k1.d, v1.d, g1.d, b1.d, B, H, K, V);
        tb_free(&q1); tb_free(&k1); tb_free(&g1); tb_free(&v1); tb_free(&b1);
    }
    tb_check(&os, "step.o", TOL_F32 * 5);
    tb_check(&st, "step.state", TOL_F32 * 5);
    kda_free(&in);
    tb_free(&o); tb_free(&sT); tb_free(&s0); tb_free(&sch); tb_free(&dout); tb_free(&dsT);
    tb_free(&dq); tb_free(&dk); tb_free(&dv); tb_free(&dg); tb_free(&db); tb_free(&ds0); tb_free(&st); tb_free(&os);
}

/* a = B, b = T, c = C, d = W, e = act, f = with cache */
static void t_conv(const tcase *tc)
{
    int B = tc->a, T = tc->b, C = tc->c, W = tc->d, act = tc->e, wc = tc->f;
    size_t n = (size_t)B * T * C, nc = (size_t)B * (W - 1) * C;
    tbuf x = tb_randn(n, 1), w = tb_randn((size_t)C * W, 0.5f), y = tb_randn(n, 1), cache = tb_randn(nc, 1);
    tbuf cout = tb_randn(nc, 1), dy = tb_randn(n, 1), dx = tb_randn(n, 1), dw = tb_randn((size_t)C * W, 1);
    const float *ch = wc ? cache.h : NULL, *cd = wc ? cache.d : NULL;
    cpu->op->conv_fwd(cpu, y.h, cout.h, x.h, w.h, ch, B, T, C, W, act);
    gpu->op->conv_fwd(gpu, y.d, cout.d, x.d, w.d, cd, B, T, C, W, act);
    tb_check(&y, "y", TOL_F32);
    tb_check(&cout, "cache_out", TOL_EXACT);
    cpu->op->conv_bwd(cpu, dx.h, dw.h, dy.h, x.h, w.h, ch, B, T, C, W, act);
    gpu->op->conv_bwd(gpu, dx.d, dw.d, dy.d, x.d, w.d, cd, B, T, C, W, act);
    tb_check(&dx, "dx", TOL_F32);
    tb_check(&dw, "dw", TOL_RED);
    /* cache_out == cache (decode in place) */
    if (wc) {
        cpu->op->conv_fwd(cpu, y.h, cache.h, x.h, w.h, cache.h, B, T, C, W, act);
        gpu->op->conv_fwd(gpu, y.d, cache.d, x.d, w.d, cache.d, B, T, C, W, act);
        tb_check(&y, "y.inpl", TOL_F32);
        tb_check(&cache, "cache.inpl", TOL_EXACT);
    }
    tb_free(&x); tb_free(&w); tb_free(&y); tb_free(&cache); tb_free(&cout); tb_free(&dy); tb_free(&dx); tb_free(&dw);
}

/* l2norm, gate (per channel and per head), gated rmsnorm, head repeat: a = N, b = H, c = K */
static void t_kda_small(const tcase *tc)
{
    int N = tc->a, H = tc->b, K = tc->c, Hkv = H / 2 > 0 ? H / 2 : 1;
    size_t n = (size_t)N * H * K;
    tbuf x = tb_randn(n, 1), y = tb_randn(n, 1), dy = tb_randn(n, 1), dx = tb_randn(n, 1);
    cpu->op->l2norm_fwd(cpu, y.h, x.h, (size_t)N * H, K, 0.125f, 1e-6f);
    gpu->op->l2norm_fwd(gpu, y.d, x.d, (size_t)N * H, K, 0.125f, 1e-6f);
    tb_check(&y, "l2norm", TOL_F32);
    cpu->op->l2norm_bwd(cpu, dx.h, dy.h, x.h, (size_t)N * H, K, 0.125f, 1e-6f);
    gpu->op->l2norm_bwd(gpu, dx.d, dy.d, x.d, (size_t)N * H, K, 0.125f, 1e-6f);
    tb_check(&dx, "l2norm.dx", TOL_F32);
    for (int ph = 0; ph < 2; ph++) {
        int Kf = ph ? 1 : K;
        tbuf f = tb_randn((size_t)N * H * Kf, 2), A = tb_uniform(H, -1, 1), dtb = tb_randn((size_t)H * Kf, 1);
        tbuf df = tb_randn(f.n, 1), dA = tb_randn(H, 1), ddt = tb_randn(dtb.n, 1);
        f.h[0] = 25.0f; /* softplus threshold branch */
        tb_sync_up(&f);
        cpu->op->kda_gate_fwd(cpu, y.h, f.h, A.h, dtb.h, N, H, K, ph);
        gpu->op->kda_gate_fwd(gpu, y.d, f.d, A.d, dtb.d, N, H, K, ph);
        tb_check(&y, ph ? "gate.head" : "gate", TOL_F32);
        cpu->op->kda_gate_bwd(cpu, df.h, dA.h, ddt.h, dy.h, f.h, A.h, dtb.h, N, H, K, ph);
        gpu->op->kda_gate_bwd(gpu, df.d, dA.d, ddt.d, dy.d, f.d, A.d, dtb.d, N, H, K, ph);
        tb_check(&df, "gate.df", TOL_F32);
        tb_check(&dA, "gate.dA", TOL_RED);
        tb_check(&ddt, "gate.ddt", TOL_RED);
        tb_free(&f); tb_free(&A); tb_free(&dtb); tb_free(&df); tb_free(&dA); tb_free(&ddt);
    }
    tbuf z = tb_randn(n, 1), w = tb_uniform(K, 0.5f, 1.5f), dz = tb_randn(n, 1), dw = tb_randn(K, 1);
    cpu->op->gated_rmsnorm_fwd(cpu, y.h, x.h, z.h, w.h, N, H, K, 1e-6f);
    gpu->op->gated_rmsnorm_fwd(gpu, y.d, x.d, z.d, w.d, N, H, K, 1e-6f);
    tb_check(&y, "gnorm", TOL_F32);
    cpu->op->gated_rmsnorm_bwd(cpu, dx.h, dz.h, dw.h, dy.h, x.h, z.h, w.h, N, H, K, 1e-6f);
    gpu->op->gated_rmsnorm_bwd(gpu, dx.d, dz.d, dw.d, dy.d, x.d, z.d, w.d, N, H, K, 1e-6f);
    tb_check(&dx, "gnorm.dx", TOL_F32);
    tb_check(&dz, "gnorm.dz", TOL_F32);
    tb_check(&dw, "gnorm.dw", TOL_RED);
    tbuf hin = tb_randn((size_t)N * Hkv * K, 1), dhin = tb_randn(hin.n, 1);
    cpu->op->head_repeat_fwd(cpu, y.h, hin.h, N, H, Hkv, K);
    gpu->op->head_repeat_fwd(gpu, y.d, hin.d, N, H, Hkv, K);
    tb_check(&y, "hrep", TOL_EXACT);
    cpu->op->head_repeat_bwd(cpu, dhin.h, dy.h, N, H, Hkv, K);
    gpu->op->head_repeat_bwd(gpu, dhin.d, dy.d, N, H, Hkv, K);
    tb_check(&dhin, "hrep.din", TOL_F32);
    tb_free(&x); tb_free(&y); tb_free(&dy); tb_free(&dx); tb_free(&z); tb_free(&w); tb_free(&dz); tb_free(&dw);
    tb_free(&hin); tb_free(&dhin);
}

static const tcase cases[] = {
    /* matmul: trans flags, odd sizes, padded leading dims, a model-sized linear layer */
    {"matmul", 0, 1, 37, 53, 71, 0, t_matmul},
    {"matmul", 0, 0, 64, 96, 128, 3, t_matmul},
    {"matmul", 1, 0, 128, 64, 200, 0, t_matmul},
    {"matmul", 1, 1, 33, 17, 9, 5, t_matmul},
    {"matmul", 0, 1, 2048, 1024, 1024, 0, t_matmul},
    /* frozen weights: GEMV (M <= 16: tile tails, padded strides, the grid's row loop at N = 20000, 96 KB of x in
     * shared memory at M = 16, K = 3072), cuBLASLt on the frozen copy (M = 33, K % 8 != 0, x beyond shared
     * memory at K = 8192), views not 256-byte aligned */
    {"frozen_mm", 1, 1000, 1024, 0, 0, 0, t_frozen_mm},
    {"frozen_mm", 3, 37, 72, 5, 1, 0, t_frozen_mm},
    {"frozen_mm", 5, 20000, 512, 0, 1, 0, t_frozen_mm},
    {"frozen_mm", 8, 2048, 1024, 0, 0, 0, t_frozen_mm},
    {"frozen_mm", 16, 3001, 3072, 3, 1, 0, t_frozen_mm},
    {"frozen_mm", 16, 64, 12, 0, 1, 0, t_frozen_mm},
    {"frozen_mm", 16, 256, 8192, 0, 0, 0, t_frozen_mm},
    {"frozen_mm", 33, 520, 256, 0, 1, 0, t_frozen_mm},
    {"frozen_mm", 2, 40, 72, 0, 2, 0, t_frozen_mm},
    {"frozen_mm", 40, 40, 72, 0, 2, 0, t_frozen_mm},
    {"elementwise", 1, 0, 0, 0, 0, 0, t_elementwise},
    {"elementwise", 1001, 0, 0, 0, 0, 0, t_elementwise},
    {"elementwise", 3000017, 0, 0, 0, 0, 0, t_elementwise},
    {"embedding", 37, 64, 100, 0, 0, 0, t_embedding},
    {"embedding", 4096, 1024, 1000, 0, 0, 0, t_embedding},
    {"rmsnorm", 7, 64, 0, 0, 0, 0, t_rmsnorm},
    {"rmsnorm", 333, 1024, 0, 0, 0, 0, t_rmsnorm},
    {"rmsnorm", 4096, 128, 0, 0, 0, 0, t_rmsnorm},
    {"rope", 17, 4, 32, 512, 0, 0, t_rope},
    {"rope", 64, 8, 128, 131072, 0, 0, t_rope},
    /* decode (T = 1) of 64 sequences, a ragged prefill of 3, head dim 64 */
    {"argmax", 64, 151936, 0, 0, 0, 0, t_argmax},
    {"argmax", 7, 1000, 0, 0, 0, 0, t_argmax},
    {"argmax", 1, 5, 0, 0, 0, 0, t_argmax},
    {"add_rmsnorm", 1, 1024, 0, 0, 0, 0, t_add_rmsnorm},
    {"add_rmsnorm", 333, 100, 0, 0, 0, 0, t_add_rmsnorm},
    {"rope_cache", 64, 1, 16, 8, 128, 300, t_rope_cache},
    {"rope_cache", 3, 37, 4, 2, 64, 100, t_rope_cache},
    {"attn", 2, 37, 4, 2, 32, 0, t_attn},
    {"attn", 1, 130, 8, 2, 128, 0, t_attn},
    {"attn", 2, 100, 4, 4, 16, 1, t_attn},
    {"attn", 2, 40, 4, 2, 64, 2, t_attn},
    {"attn", 2, 300, 8, 2, 64, 0, t_attn},
    {"attn", 2, 200, 16, 8, 128, 1, t_attn},
    {"attn", 3, 257, 4, 1, 128, 2, t_attn},
    {"attn", 1, 1024, 16, 8, 128, 0, t_attn},
    {"attn", 2, 1024, 16, 8, 128, 0, t_attn},
    {"attn", 2, 333, 16, 8, 128, 0, t_attn},
    {"attn", 2, 700, 16, 8, 128, 3, t_attn},
    {"attn", 1, 77, 4, 4, 128, 0, t_attn},
    /* long caches, few rows: attention.cu's split-K decode (DEC_KEYS per block, then the combine) */
    {"attn", 2, 3000, 16, 8, 128, 2, t_attn},
    {"attn", 3, 1500, 4, 1, 64, 2, t_attn},
    {"attn", 1, 2100, 4, 2, 32, 2, t_attn},
    {"attn", 1, 600, 2, 1, 16, 0, t_attn},
    {"losses", 5, 384, 0, 0, 0, 0, t_losses},
    {"losses", 9, 151936, 1, 0, 0, 0, t_losses},
    {"adamw", 1000, 3, 0, 0, 0, 0, t_adamw},
    {"adamw", 2000003, 17, 0, 0, 0, 0, t_adamw},
    {"kda", 1, 64, 1, 16, 16, 0, t_kda},
    {"kda", 2, 100, 2, 16, 32, 1, t_kda},
    {"kda", 1, 130, 2, 128, 128, 1, t_kda},
    {"kda", 2, 192, 2, 128, 128, 2, t_kda},
    /* kda_chunk.cu at every (K, V) in {32, 64, 128}^2: T = 1, T < 64, T not a multiple of 64, several chunks,
     * B and H > 1, with and without the initial state, strong decays (the per-element diagonal blocks) */
    {"kda", 1, 1, 1, 32, 32, 1, t_kda},
    {"kda", 2, 130, 3, 32, 32, 0, t_kda},
    {"kda", 1, 192, 2, 32, 32, 3, t_kda},
    {"kda", 2, 37, 3, 32, 64, 1, t_kda},
    {"kda", 1, 200, 2, 32, 128, 1, t_kda},
    {"kda", 2, 64, 2, 64, 32, 3, t_kda},
    {"kda", 2, 1, 2, 64, 64, 1, t_kda},
    {"kda", 4, 256, 6, 64, 64, 1, t_kda},
    {"kda", 1, 150, 2, 64, 64, 2, t_kda},
    {"kda", 3, 100, 2, 64, 128, 0, t_kda},
    {"kda", 1, 130, 2, 64, 128, 3, t_kda},
    {"kda", 2, 129, 2, 128, 32, 1, t_kda},
    {"kda", 1, 50, 4, 128, 64, 3, t_kda},
    {"kda", 2, 190, 2, 128, 64, 1, t_kda},
    {"conv", 2, 9, 12, 4, 0, 0, t_conv},
    {"conv", 2, 33, 70, 4, 1, 1, t_conv},
    {"conv", 1, 2, 8, 4, 1, 1, t_conv},
    {"kda_small", 5, 4, 16, 0, 0, 0, t_kda_small},
    {"kda_small", 300, 16, 128, 0, 0, 0, t_kda_small},
};

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    cpu = k_cpu_new(2);
    gpu = k_backend_new("cuda", 0);
    if (!gpu) {
        fprintf(stderr, "cuda_ops: %s\n(the CUDA op tests need a GPU: run make test-cuda on the GPU machine)\n",
                hx_last_error());
        return 1;
    }
    printf("cuda_ops: %s against cpu, %zu cases\n", gpu->name, sizeof cases / sizeof cases[0]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *tc = &cases[i];
        if (only && strcmp(only, tc->op)) continue;
        char name[96];
        snprintf(name, sizeof name, "%s[%d,%d,%d,%d,%d,%d]", tc->op, tc->a, tc->b, tc->c, tc->d, tc->e, tc->f);
        cur_case = name;
        hx_rng_seed(&rng, 1000 + i);
        tc->fn(tc);
    }
    printf("%d checks, %d failed\n", n_check, n_fail);
    k_backend_free(gpu);
    k_backend_free(cpu);
    return n_fail ? 1 : 0;
}
