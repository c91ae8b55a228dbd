/* kda_backend.c - the CPU backend's KDA rows of the op table: thin wrappers over kernels/cpu/kda.h. */
#include "kernels/kernels.h"
#include "kernels/cpu/kda.h"

void kcpu_op_kda_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                     const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H, int K,
                     int V)
{
    (void)b;
    kcpu_kda_fwd(o, sT, s_chunks, q, k, v, g, beta, s0, B, T, H, K, V);
}

void kcpu_op_kda_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                     const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                     const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V)
{
    (void)b;
    kcpu_kda_bwd(dq, dk, dv, dg, dbeta, ds0, dout, dsT, q, k, v, g, beta, s_chunks, B, T, H, K, V);
}

void kcpu_op_kda_step(k_backend *b, float *o, float *state, const float *q, const float *k, const float *v,
                      const float *g, const float *beta, int B, int H, int K, int V)
{
    (void)b;
    kcpu_kda_step(o, state, q, k, v, g, beta, B, H, K, V);
}

void kcpu_op_conv_fwd(k_backend *b, float *y, float *cache_out, const float *x, const float *w, const float *cache,
                      int B, int T, int C, int W, int act)
{
    (void)b;
    kcpu_conv_fwd(y, cache_out, x, w, cache, B, T, C, W, act);
}

void kcpu_op_conv_bwd(k_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *cache, int B, int T, int C, int W, int act)
{
    (void)b;
    kcpu_conv_bwd(dx, dw, dy, x, w, cache, B, T, C, W, act);
}

void kcpu_op_l2norm_fwd(k_backend *b, float *y, const float *x, size_t n, int K, float scale, float eps)
{
    (void)b;
    kcpu_l2norm_fwd(y, x, n, K, scale, eps);
}

void kcpu_op_l2norm_bwd(k_backend *b, float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                        float eps)
{
    (void)b;
    kcpu_l2norm_bwd(dx, dy, x, n, K, scale, eps);
}

void kcpu_op_kda_gate_fwd(k_backend *b, float *g, const float *f, const float *A_log, const float *dt_bias,
                          size_t N, int H, int K, int per_head)
{
    (void)b;
    kcpu_gate_fwd(g, f, A_log, dt_bias, N, H, K, per_head);
}

void kcpu_op_kda_gate_bwd(k_backend *b, float *df, float *dA_log, float *ddt_bias, const float *dg,
                          const float *f, const float *A_log, const float *dt_bias, size_t N, int H, int K,
                          int per_head)
{
    (void)b;
    kcpu_gate_bwd(df, dA_log, ddt_bias, dg, f, A_log, dt_bias, N, H, K, per_head);
}

void kcpu_op_gated_rmsnorm_fwd(k_backend *b, float *y, const float *x, const float *z, const float *w, size_t N,
                               int H, int V, float eps)
{
    (void)b;
    kcpu_gated_rmsnorm_fwd(y, x, z, w, N, H, V, eps);
}

void kcpu_op_gated_rmsnorm_bwd(k_backend *b, float *dx, float *dz, float *dw, const float *dy, const float *x,
                               const float *z, const float *w, size_t N, int H, int V, float eps)
{
    (void)b;
    kcpu_gated_rmsnorm_bwd(dx, dz, dw, dy, x, z, w, N, H, V, eps);
}

void kcpu_op_sigmoid_fwd(k_backend *b, float *y, const float *x, size_t n)
{
    (void)b;
    kcpu_sigmoid_fwd(y, x, n);
}

void kcpu_op_sigmoid_bwd(k_backend *b, float *dx, const float *dy, const float *y, size_t n)
{
    (void)b;
    kcpu_sigmoid_bwd(dx, dy, y, n);
}

void kcpu_op_head_repeat_fwd(k_backend *b, float *out, const float *in, size_t N, int Hq, int Hkv, int K)
{
    (void)b;
    kcpu_head_repeat_fwd(out, in, N, Hq, Hkv, K);
}

void kcpu_op_head_repeat_bwd(k_backend *b, float *din, const float *dout, size_t N, int Hq, int Hkv, int K)
{
    (void)b;
    kcpu_head_repeat_bwd(din, dout, N, Hq, Hkv, K);
}
