/* ops.h - the CPU backend's op functions (fp32 reference, OpenMP), as referenced by its op table in backend.c. */
#ifndef KCPU_OPS_H
#define KCPU_OPS_H

#include "kernels/kernels.h"

/* Tiles of the attention kernels (keys per online-softmax step). */
#define KCPU_ATTN_TILE 64

void kcpu_matmul(k_backend *b, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void kcpu_add(k_backend *b, float *y, const float *a, const float *c, size_t n);
void kcpu_argmax_rows(k_backend *b, int32_t *out, const float *x, int N, int V);
void kcpu_add_rmsnorm_fwd(k_backend *b, float *sum, float *out, float *rstd, const float *x, const float *y,
                          const float *w, int N, int d, float eps);
void kcpu_scale(k_backend *b, float *x, float s, size_t n);
void kcpu_sumsq(k_backend *b, double *out, const float *x, size_t n);
void kcpu_embedding_fwd(k_backend *b, float *out, const int32_t *ids, const float *table, int N, int d, int V);
void kcpu_embedding_bwd(k_backend *b, float *dtable, const int32_t *ids, const float *dout, int N, int d, int V);
void kcpu_rmsnorm_fwd(k_backend *b, float *out, float *rstd, const float *x, const float *w, int N, int d,
                      float eps);
void kcpu_rmsnorm_bwd(k_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int N, int d);
void kcpu_rope_fwd(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K);
void kcpu_rope_bwd(k_backend *b, float *dx, const int32_t *pos, const float *inv_freq, int N, int H, int K);
void kcpu_rope_cache_fwd(k_backend *b, float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                         const int32_t *q_start, const float *inv_freq, int B, int T, int Hq, int Hkv, int K, int Tmax);
void kcpu_attn_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *q_start, const int32_t *seg, const k_attn_shape *s);
void kcpu_attn_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q,
                   const float *k, const float *v, const float *out, const float *lse, const int32_t *seg,
                   const k_attn_shape *s);
void kcpu_swiglu_fwd(k_backend *b, float *out, const float *gate, const float *up, size_t n);
void kcpu_swiglu_bwd(k_backend *b, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                     size_t n);
void kcpu_xent_fwd_bwd(k_backend *b, float *loss, float *dlogits, const float *logits, const int32_t *target, int N,
                       int V, int ignore_index, float dscale);
void kcpu_kl_fwd_bwd(k_backend *b, float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                     const int32_t *mask, int N, int V, k_kl_mode mode, float temp, float dscale);
void kcpu_mse_fwd_bwd(k_backend *b, float *loss, float *dx, const float *x, const float *y, int N, int d,
                      float dscale);
void kcpu_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, int nseg,
                const size_t *seg_end, const unsigned char *decay, const k_adamw_hp *hp);


#endif
