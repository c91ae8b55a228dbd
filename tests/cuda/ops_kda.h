/* ops_kda.h - the CUDA op tests' KDA cases (the chunked recurrence, short convolution, the small KDA ops) against their
 * CPU twins; included by cuda_ops.c after op_harness.h. */
#ifndef HX_TESTS_OPS_KDA_H
#define HX_TESTS_OPS_KDA_H
#include "tests/cuda/op_harness.h"

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

#endif
