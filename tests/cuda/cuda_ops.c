/* cuda_ops.c - the CUDA op tests (ggml test-backend-ops style): every CUDA op against its CPU twin, forward and every
 * gradient, from one table of cases (the harness: op_harness.h; the KDA cases: ops_kda.h). */
#include "tests/cuda/op_harness.h"
#include "tests/cuda/ops_kda.h"

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
