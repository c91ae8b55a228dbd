/* op_harness.h - the CUDA op tests' harness (ggml test-backend-ops style): guarded device buffers, the comparison of a
 * device output against its CPU twin, and the case table's row type; included by cuda_ops.c. */
#ifndef HX_TESTS_OP_HARNESS_H
#define HX_TESTS_OP_HARNESS_H
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

/* one row of the case table: an op, its shape and the function that runs and checks it */
typedef struct tcase {
    const char *op;
    int a, b, c, d, e, f; /* op-specific shape */
    void (*fn)(const struct tcase *);
} tcase;

#endif
