/* kda.h - CPU fp32 reference ops of Kimi Delta Attention: chunked core fwd/bwd, recurrent step, and the small ops. */
#ifndef KCPU_KDA_H
#define KCPU_KDA_H

#include <stddef.h>

#include "kernels/kernels.h"

/*
 * Shapes (docs/models.md section 2): B batch, T time, H heads carrying the state, K key dim, V value dim,
 * C channels, W conv width, N = B*T rows.
 *   q, k, g  [B,T,H,K]   (q and k already L2-normalised, q already scaled by K^-0.5; g <= 0 is the log decay)
 *   v, o     [B,T,H,V]
 *   beta     [B,T,H]
 *   state    [B,H,K,V]   (row = key channel)
 * Recurrence per (b, h) (Kimi Linear / fla `naive_recurrent_kda`):
 *   S' = diag(exp(g_t)) S;  S = S' + k_t (beta_t (v_t - S'^T k_t))^T;  o_t = S^T q_t.
 */
/*
 * Chunked forward (chunks of K_KDA_CHUNK, kernels/kernels.h). s0 [B,H,K,V] or NULL (zero initial state); sT [B,H,K,V] or NULL (final state
 * wanted?); s_chunks [B,H,NC,K,V] or NULL: the state at the start of every chunk, saved for the backward.
 * Within a chunk every exp() has a non-positive argument (pairwise G_r - G_j with j <= r, G_last - G_j, G_r),
 * so strong decay underflows to 0 instead of overflowing. o is overwritten.
 */
void kcpu_kda_fwd(float *o, float *sT, float *s_chunks, const float *q, const float *k, const float *v,
                  const float *g, const float *beta, const float *s0, int B, int T, int H, int K, int V);

/*
 * Backward of kcpu_kda_fwd for the loss sum(o*do) + sum(sT*dsT): recomputes the chunk quantities from the
 * inputs and s_chunks (from the forward), runs the state gradient backwards over chunks, and finishes dg with
 * a reverse cumulative sum inside each chunk. Gradients are accumulated (+=). dsT, ds0 may be NULL.
 */
void kcpu_kda_bwd(float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0, const float *dout,
                  const float *dsT, const float *q, const float *k, const float *v, const float *g,
                  const float *beta, const float *s_chunks, int B, int T, int H, int K, int V);

/*
 * Plain token-by-token recurrence (the reference the chunked code is tested against). state [B,H,K,V] is the
 * initial state on entry (zero it for none) and the final state on return. o is overwritten.
 */
void kcpu_kda_recurrent(float *o, float *state, const float *q, const float *k, const float *v, const float *g,
                        const float *beta, int B, int T, int H, int K, int V);

/* One decode step: q, k, g [B,H,K], v [B,H,V], beta [B,H], o [B,H,V]; state [B,H,K,V] updated in place. */
void kcpu_kda_step(float *o, float *state, const float *q, const float *k, const float *v, const float *g,
                   const float *beta, int B, int H, int K, int V);

/*
 * Depthwise causal short convolution with activation act (0 identity, 1 silu), x, y [B,T,C] (row stride C),
 * w [C,W]: y_t[c] = act(sum_j w[c,j] x_{t-W+1+j}[c]), where times before 0 read cache [B,W-1,C] (the W-1
 * inputs before this call, oldest first) or zeros if cache is NULL. cache_out [B,W-1,C] (may be NULL, may equal
 * cache) receives the last W-1 inputs for decoding on.
 */
void kcpu_conv_fwd(float *y, float *cache_out, const float *x, const float *w, const float *cache, int B, int T,
                   int C, int W, int act);
/* Backward: dx += ..., dw += ... (dw may be NULL; recomputes the pre-activation for silu). The cache is constant. */
void kcpu_conv_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *cache,
                   int B, int T, int C, int W, int act);

/* L2 norm of n vectors of size K: y = scale * x / sqrt(sum x^2 + eps). y may equal x. */
void kcpu_l2norm_fwd(float *y, const float *x, size_t n, int K, float scale, float eps);
/* dx += scale/r * (dy - xh (xh . dy)), r = sqrt(sum x^2 + eps), xh = x / r. */
void kcpu_l2norm_bwd(float *dx, const float *dy, const float *x, size_t n, int K, float scale, float eps);

/*
 * Decay gate in log space: g[n,h,c] = -exp(A_log[h]) * softplus(f[n,h,cf] + dt_bias[h*Kf+cf]) with
 * Kf = K (per channel, KDA) or Kf = 1 (per head, GDN; the scalar is broadcast over the K channels of g).
 * f [N,H*Kf], dt_bias [H*Kf], A_log [H], g [N,H,K]. softplus has PyTorch's threshold (x > 20: x).
 */
void kcpu_gate_fwd(float *g, const float *f, const float *A_log, const float *dt_bias, size_t N, int H, int K,
                   int per_head);
/* df += ..., dA_log += ..., ddt_bias += ... (any may be NULL except df). */
void kcpu_gate_bwd(float *df, float *dA_log, float *ddt_bias, const float *dg, const float *f, const float *A_log,
                   const float *dt_bias, size_t N, int H, int K, int per_head);

/*
 * Gated RMSNorm per head: y[n,h,:] = x[n,h,:] / sqrt(mean(x^2) + eps) * w * sigmoid(z[n,h,:]),
 * x, z, y [N,H,V], w [V] shared by the heads.
 */
void kcpu_gated_rmsnorm_fwd(float *y, const float *x, const float *z, const float *w, size_t N, int H, int V,
                            float eps);
/* dx += ..., dz += ..., dw += ... (dw may be NULL). */
void kcpu_gated_rmsnorm_bwd(float *dx, float *dz, float *dw, const float *dy, const float *x, const float *z,
                            const float *w, size_t N, int H, int V, float eps);

/* y = sigmoid(x) over n values; bwd: dx += dy * y * (1 - y). */
void kcpu_sigmoid_fwd(float *y, const float *x, size_t n);
void kcpu_sigmoid_bwd(float *dx, const float *dy, const float *y, size_t n);

/* GQA repeat of heads: out [N,Hq,K] with out[n,h] = in[n, h / (Hq/Hkv)], in [N,Hkv,K]; bwd: din += the sum. */
void kcpu_head_repeat_fwd(float *out, const float *in, size_t N, int Hq, int Hkv, int K);
void kcpu_head_repeat_bwd(float *din, const float *dout, size_t N, int Hq, int Hkv, int K);

#ifdef HX_KERNELS_H
/* The CPU backend's KDA rows of the op table (kernels/cpu/kda_backend.c): put KCPU_KDA_OPS inside the
 * designated initialiser of the CPU k_ops. */
void kcpu_op_kda_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                     const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H, int K,
                     int V);
void kcpu_op_kda_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                     const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                     const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V);
void kcpu_op_kda_step(k_backend *b, float *o, float *state, const float *q, const float *k, const float *v,
                      const float *g, const float *beta, int B, int H, int K, int V);
void kcpu_op_conv_fwd(k_backend *b, float *y, float *cache_out, const float *x, const float *w, const float *cache,
                      int B, int T, int C, int W, int act);
void kcpu_op_conv_bwd(k_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *cache, int B, int T, int C, int W, int act);
void kcpu_op_l2norm_fwd(k_backend *b, float *y, const float *x, size_t n, int K, float scale, float eps);
void kcpu_op_l2norm_bwd(k_backend *b, float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                        float eps);
void kcpu_op_kda_gate_fwd(k_backend *b, float *g, const float *f, const float *A_log, const float *dt_bias,
                          size_t N, int H, int K, int per_head);
void kcpu_op_kda_gate_bwd(k_backend *b, float *df, float *dA_log, float *ddt_bias, const float *dg,
                          const float *f, const float *A_log, const float *dt_bias, size_t N, int H, int K,
                          int per_head);
void kcpu_op_gated_rmsnorm_fwd(k_backend *b, float *y, const float *x, const float *z, const float *w, size_t N,
                               int H, int V, float eps);
void kcpu_op_gated_rmsnorm_bwd(k_backend *b, float *dx, float *dz, float *dw, const float *dy, const float *x,
                               const float *z, const float *w, size_t N, int H, int V, float eps);
void kcpu_op_sigmoid_fwd(k_backend *b, float *y, const float *x, size_t n);
void kcpu_op_sigmoid_bwd(k_backend *b, float *dx, const float *dy, const float *y, size_t n);
void kcpu_op_head_repeat_fwd(k_backend *b, float *out, const float *in, size_t N, int Hq, int Hkv, int K);
void kcpu_op_head_repeat_bwd(k_backend *b, float *din, const float *dout, size_t N, int Hq, int Hkv, int K);

#define KCPU_KDA_OPS \
    .kda_fwd = kcpu_op_kda_fwd, .kda_bwd = kcpu_op_kda_bwd, .kda_step = kcpu_op_kda_step, \
    .conv_fwd = kcpu_op_conv_fwd, .conv_bwd = kcpu_op_conv_bwd, .l2norm_fwd = kcpu_op_l2norm_fwd, \
    .l2norm_bwd = kcpu_op_l2norm_bwd, .kda_gate_fwd = kcpu_op_kda_gate_fwd, .kda_gate_bwd = kcpu_op_kda_gate_bwd, \
    .gated_rmsnorm_fwd = kcpu_op_gated_rmsnorm_fwd, .gated_rmsnorm_bwd = kcpu_op_gated_rmsnorm_bwd, \
    .sigmoid_fwd = kcpu_op_sigmoid_fwd, .sigmoid_bwd = kcpu_op_sigmoid_bwd, \
    .head_repeat_fwd = kcpu_op_head_repeat_fwd, .head_repeat_bwd = kcpu_op_head_repeat_bwd
#endif

#endif
