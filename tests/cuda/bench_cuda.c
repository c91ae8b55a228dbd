/* bench_cuda.c - times CUDA ops at the paper's shapes (KDA chunked fwd/bwd, attention, matmul, losses, AdamW). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"

/*
 * Prints one "RESULT <name> <ms>" line per measurement (the median of reps, after one warm-up run; the
 * device is synchronised before each host clock read) and a readable line with the derived rate.
 * scripts/bench_cuda.sh joins these with tests/reference/bench_torch.py's lines into the ratio tables.
 * Usage: bench_cuda [kda|kda_dims|attn|dense|all|hbm]   (hbm: the copy bandwidth, for the generation table only)
 * kda_dims: the KDA core at the `small` scale's shape (B=16, T=256, H=6) for each head dim K = V in {32, 64, 128};
 * with HX_CUDA_KDA_SEQ=1 (the sequential kernels) the names end in _seq (scripts/bench_cuda.sh runs both).
 */

static k_backend *gpu;

static float *rand_dev(size_t n, float lo, float hi, uint64_t seed)
{
    hx_rng r;
    hx_rng_seed(&r, seed);
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * (float)hx_rng_uniform(&r);
    float *d = gpu->op->alloc(gpu, n * sizeof(float));
    gpu->op->upload(gpu, d, h, n * sizeof(float));
    free(h);
    return d;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*bench_fn)(void *ctx);
static double time_ms(bench_fn fn, void *ctx, int reps)
{
    double t[64];
    if (reps > 64) reps = 64;
    fn(ctx);
    gpu->op->sync(gpu);
    for (int i = 0; i < reps; i++) {
        double t0 = hx_now();
        fn(ctx);
        gpu->op->sync(gpu);
        t[i] = (hx_now() - t0) * 1e3;
    }
    qsort(t, reps, sizeof(double), cmpd);
    return t[reps / 2];
}

static void report(const char *name, const char *shape, double ms, double flop, double bytes)
{
    printf("RESULT %s %.4f\n", name, ms);
    printf("  %-22s %-34s %10.3f ms", name, shape, ms);
    if (flop > 0) printf("  %8.1f TFLOP/s", flop / (ms * 1e-3) / 1e12);
    if (bytes > 0) printf("  %8.1f GB/s", bytes / (ms * 1e-3) / 1e9);
    printf("\n");
    fflush(stdout);
}

/* ---- KDA ---- */
typedef struct kda_ctx {
    int B, T, H, K, V, bwd;
    float *q, *k, *v, *g, *beta, *o, *sch, *dq, *dk, *dv, *dg, *db, *dout;
} kda_ctx;

static void kda_run(void *p)
{
    kda_ctx *c = p;
    gpu->op->kda_fwd(gpu, c->o, NULL, c->sch, c->q, c->k, c->v, c->g, c->beta, NULL, c->B, c->T, c->H, c->K, c->V);
    if (c->bwd)
        gpu->op->kda_bwd(gpu, c->dq, c->dk, c->dv, c->dg, c->db, NULL, c->dout, NULL, c->q, c->k, c->v, c->g,
                         c->beta, c->sch, c->B, c->T, c->H, c->K, c->V);
}

/* tag: appended to the names (the head dims of kda_dims, and _seq for the sequential kernels) */
static void bench_kda(int B, int T, int H, int K, int V, const char *tag)
{
    kda_ctx c;
    memset(&c, 0, sizeof c);
    c.B = B; c.T = T; c.H = H; c.K = K; c.V = V;
    size_t nk = (size_t)B * T * H * K, nv = (size_t)B * T * H * V, nc = (T + 63) / 64;
    float s = 1.0f / sqrtf((float)K);
    c.q = rand_dev(nk, -s, s, 1);
    c.k = rand_dev(nk, -s * sqrtf((float)K) / sqrtf(3.0f * K), s, 2);
    gpu->op->l2norm_fwd(gpu, c.q, c.q, (size_t)B * T * H, K, s, 1e-6f);
    gpu->op->l2norm_fwd(gpu, c.k, c.k, (size_t)B * T * H, K, 1.0f, 1e-6f);
    c.v = rand_dev(nv, -1, 1, 3);
    c.g = rand_dev(nk, -0.1f, -0.001f, 4);
    c.beta = rand_dev((size_t)B * T * H, 0.1f, 0.9f, 5);
    c.o = gpu->op->alloc(gpu, nv * 4);
    const int save = gpu->op->kda_save ? gpu->op->kda_save(gpu, K, V) : 0; /* kept after the states */
    c.sch = gpu->op->alloc(gpu, (size_t)B * H * nc * ((size_t)K * V + save) * 4);
    c.dout = rand_dev(nv, -1, 1, 6);
    c.dq = gpu->op->alloc(gpu, nk * 4);
    c.dk = gpu->op->alloc(gpu, nk * 4);
    c.dg = gpu->op->alloc(gpu, nk * 4);
    c.dv = gpu->op->alloc(gpu, nv * 4);
    c.db = gpu->op->alloc(gpu, (size_t)B * T * H * 4);
    char shape[96], name[64];
    snprintf(shape, sizeof shape, "B=%d T=%d H=%d K=%d V=%d", B, T, H, K, V);
    int reps = (size_t)B * T >= 32768 ? 3 : 5;
    snprintf(name, sizeof name, "kda_fwd_B%d_T%d%s", B, T, tag);
    report(name, shape, time_ms(kda_run, &c, reps), 0, 0);
    c.bwd = 1;
    snprintf(name, sizeof name, "kda_fwdbwd_B%d_T%d%s", B, T, tag);
    report(name, shape, time_ms(kda_run, &c, reps), 0, 0);
    float *bufs[] = {c.q, c.k, c.v, c.g, c.beta, c.o, c.sch, c.dout, c.dq, c.dk, c.dg, c.dv, c.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu->op->free(gpu, bufs[i]);
}

/* ---- attention (Qwen3-0.6B heads: Hq 16, Hkv 8, K 128) ---- */
typedef struct attn_ctx { k_attn_shape s; float *q, *k, *v, *o, *lse, *dq, *dk, *dv, *dout; int bwd; } attn_ctx;
static void attn_run(void *p)
{
    attn_ctx *c = p;
    if (!c->bwd) gpu->op->attn_fwd(gpu, c->o, c->lse, c->q, c->k, c->v, NULL, NULL, &c->s);
    else gpu->op->attn_bwd(gpu, c->dq, c->dk, c->dv, c->dout, c->q, c->k, c->v, c->o, c->lse, NULL, &c->s);
}

static void bench_attn(int B, int T, int bwd)
{
    attn_ctx c;
    memset(&c, 0, sizeof c);
    c.s = (k_attn_shape){B, T, T, 16, 8, 128, 1.0f / sqrtf(128.0f)};
    size_t nq = (size_t)B * T * 16 * 128, nk = (size_t)B * T * 8 * 128;
    c.q = rand_dev(nq, -1, 1, 7); c.k = rand_dev(nk, -1, 1, 8); c.v = rand_dev(nk, -1, 1, 9);
    c.o = gpu->op->alloc(gpu, nq * 4);
    c.lse = gpu->op->alloc(gpu, (size_t)B * 16 * T * 4);
    double flop = 4.0 * B * 16 * 128 * (double)T * T / 2; /* causal: QK^T and PV over half the square */
    char shape[96], name[64];
    snprintf(shape, sizeof shape, "B=%d T=%d Hq=16 Hkv=8 K=128", B, T);
    snprintf(name, sizeof name, "attn_fwd_T%d", T);
    report(name, shape, time_ms(attn_run, &c, 3), flop, 0);
    if (bwd) {
        c.dq = gpu->op->alloc(gpu, nq * 4); c.dk = gpu->op->alloc(gpu, nk * 4); c.dv = gpu->op->alloc(gpu, nk * 4);
        c.dout = rand_dev(nq, -1, 1, 10);
        attn_run(&c);
        c.bwd = 1;
        snprintf(name, sizeof name, "attn_bwd_T%d", T);
        report(name, shape, time_ms(attn_run, &c, 3), 2.5 * flop, 0);
        gpu->op->free(gpu, c.dq); gpu->op->free(gpu, c.dk); gpu->op->free(gpu, c.dv); gpu->op->free(gpu, c.dout);
    }
    gpu->op->free(gpu, c.q); gpu->op->free(gpu, c.k); gpu->op->free(gpu, c.v);
    gpu->op->free(gpu, c.o); gpu->op->free(gpu, c.lse);
}

/* ---- dense: a linear layer, the lm-head loss, AdamW over 0.6B parameters ---- */
typedef struct mm_ctx { int M, N, K; float *A, *B, *C; } mm_ctx;
static void mm_run(void *p)
{
    mm_ctx *c = p;
    k_linear_fwd(gpu, c->C, c->A, c->B, c->M, c->K, c->N, 0);
}
typedef struct xe_ctx { int N, V; float *z, *loss; int32_t *t; } xe_ctx;
static void xe_run(void *p)
{
    xe_ctx *c = p;
    gpu->op->xent_fwd_bwd(gpu, c->loss, c->z, c->z, c->t, c->N, c->V, -100, 1.0f / c->N);
}
typedef struct ad_ctx { size_t n; float *p, *g, *m, *v; size_t end; unsigned char dec; int step; } ad_ctx;
static void ad_run(void *p)
{
    ad_ctx *c = p;
    k_adamw_hp hp = {1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++c->step};
    gpu->op->adamw(gpu, c->p, c->g, c->m, c->v, c->n, 1, &c->end, &c->dec, &hp);
}

static void bench_dense(void)
{
    mm_ctx m = {16384, 3072, 1024, NULL, NULL, NULL};
    m.A = rand_dev((size_t)m.M * m.K, -1, 1, 11);
    m.B = rand_dev((size_t)m.N * m.K, -1, 1, 12);
    m.C = gpu->op->alloc(gpu, (size_t)m.M * m.N * 4);
    report("linear_16384x1024x3072", "x[16384,1024] W[3072,1024]^T", time_ms(mm_run, &m, 10),
           2.0 * m.M * m.N * m.K, 0);
    gpu->op->free(gpu, m.A); gpu->op->free(gpu, m.B); gpu->op->free(gpu, m.C);

    xe_ctx x = {4096, 151936, NULL, NULL, NULL};
    x.z = rand_dev((size_t)x.N * x.V, -3, 3, 13);
    x.loss = gpu->op->alloc(gpu, x.N * 4);
    x.t = gpu->op->alloc(gpu, x.N * 4);
    report("xent_4096x151936", "N=4096 V=151936 in place", time_ms(xe_run, &x, 5), 0, 2.0 * 4 * x.N * (double)x.V);
    gpu->op->free(gpu, x.z); gpu->op->free(gpu, x.loss); gpu->op->free(gpu, x.t);

    ad_ctx a = {596049920, NULL, NULL, NULL, NULL, 596049920, 1, 0};
    a.p = rand_dev(a.n, -1, 1, 14); a.g = rand_dev(a.n, -1e-3f, 1e-3f, 15);
    a.m = gpu->op->alloc(gpu, a.n * 4); a.v = gpu->op->alloc(gpu, a.n * 4);
    report("adamw_0.6B", "n=596M fp32 p,g,m,v", time_ms(ad_run, &a, 5), 0, 7.0 * 4 * a.n);
    gpu->op->free(gpu, a.p); gpu->op->free(gpu, a.g); gpu->op->free(gpu, a.m); gpu->op->free(gpu, a.v);
}

/* ---- HBM bandwidth: a device-to-device copy of 1 GiB (read + write = 2 GiB moved), the yardstick of the
 * generation table's weight-read limit (scripts/bench_cuda.sh gen) ---- */
typedef struct cp_ctx { size_t n; float *a, *b; } cp_ctx;
static void cp_run(void *p)
{
    cp_ctx *c = p;
    gpu->op->copy(gpu, c->b, c->a, c->n * sizeof(float));
}

static void bench_hbm(void)
{
    cp_ctx c = {(size_t)1 << 28, NULL, NULL};
    c.a = rand_dev(c.n, -1, 1, 16);
    c.b = gpu->op->alloc(gpu, c.n * sizeof(float));
    double ms = time_ms(cp_run, &c, 10);
    report("hbm_copy_1GiB", "device-to-device copy, 2 GiB moved", ms, 0, 2.0 * sizeof(float) * c.n);
    gpu->op->free(gpu, c.a);
    gpu->op->free(gpu, c.b);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    gpu = k_backend_new("cuda", 0);
    if (!gpu) {
        fprintf(stderr, "bench_cuda: %s\n", hx_last_error());
        return 1;
    }
    int all = !strcmp(what, "all");
    if (!strcmp(what, "hbm")) bench_hbm();
    if (all || !strcmp(what, "dense")) bench_dense();
    if (all || !strcmp(what, "kda")) {
        bench_kda(8, 4096, 16, 128, 128, "");
        bench_kda(1, 32768, 16, 128, 128, "");
    }
    if (!strcmp(what, "kda_dims")) {
        const char *e = getenv("HX_CUDA_KDA_SEQ");
        const int seq = e && *e && *e != '0';
        for (int d = 32; d <= 128; d *= 2) {
            char tag[32];
            snprintf(tag, sizeof tag, "_K%d%s", d, seq ? "_seq" : "");
            bench_kda(16, 256, 6, d, d, tag);
        }
    }
    if (all || !strcmp(what, "attn")) {
        bench_attn(1, 2048, 1);
        bench_attn(1, 4096, 0);
        bench_attn(1, 16384, 0);
        bench_attn(1, 32768, 0);
        bench_attn(1, 131072, 0);
    }
    k_backend_free(gpu);
    return 0;
}
