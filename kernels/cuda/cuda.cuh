// cuda.cuh - shared pieces of the CUDA backend: private state, error checks, scratch memory, launch helpers.
#ifndef KCUDA_CUDA_CUH
#define KCUDA_CUDA_CUH

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublasLt.h>
#include <stdint.h>
#include <stddef.h>

extern "C" {
#include "base/base.h"
#include "kernels/kernels.h"
}

/*
 * Private state of one CUDA backend (k_backend.impl). Everything runs on one stream, so the op table's
 * stream order is the program order; only download/sumsq/sync wait for the device.
 * Scratch: one grow-only device buffer for temporaries of a single op (partial sums, bf16 copies of matmul
 * operands, KDA chunk work areas). It grows while the first step runs and is then reused: no cudaMalloc in
 * a steady training loop.
 */
struct kcuda_block { void *p; size_t n; };
/* frozen weights (weights_freeze): the fp32 range and its bf16 copy, which matmul reads instead of converting;
 * one per tensor (nn_model_freeze), each copy its own allocation (256-byte aligned) */
struct kcuda_frozen { const float *p; size_t n; __nv_bfloat16 *bf; };

typedef struct kcuda_ctx {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws;               /* cuBLASLt workspace */
    size_t lt_ws_bytes;
    void *scratch;             /* grow-only op temporaries */
    size_t scratch_bytes;
    double *sumsq_part;        /* per-block partial sums of sumsq, then the result */
    double *host_dbl;          /* pinned host double for sumsq */
    int n_sm;
    size_t smem_optin;         /* per-block shared memory limit after opt-in */
    /* AdamW segment table on the device, re-uploaded only when it changes */
    size_t *seg_end_d;
    unsigned char *decay_d;
    size_t *seg_end_h;
    unsigned char *decay_h;
    int nseg_cap, nseg_last;
    /* matmul algorithm cache */
    struct kcuda_mm_entry *mm_cache;
    int mm_n, mm_cap;
    /* live allocations of cu_alloc (pointer, bytes): cu_free's size for the memory accounting */
    struct kcuda_block *blocks;
    int n_blocks, cap_blocks;
    struct kcuda_frozen *frozen; /* sorted by p (disjoint ranges): a binary search per matmul operand */
    int n_frozen, cap_frozen;
    unsigned gemv_attr;        /* gemv.cu: the kernels whose shared-memory limit is raised (bit per instantiation) */
} kcuda_ctx;

#define KCUDA_CTX(b) ((kcuda_ctx *)(b)->impl)
#define KCUDA_STREAM(b) (KCUDA_CTX(b)->stream)

/* A failing CUDA call inside an op is a broken invariant of the run (device lost, bad pointer): BUG with
 * where it happened. Ops have no error return in the op table (as on the CPU). */
#define CK(call)                                                                                           \
    do {                                                                                                   \
        cudaError_t e_ = (call);                                                                           \
        if (e_ != cudaSuccess) hx_bug(__FILE__, __LINE__, "CUDA: %s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)
#define CKLT(call)                                                                                       \
    do {                                                                                                 \
        cublasStatus_t s_ = (call);                                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS) hx_bug(__FILE__, __LINE__, "cuBLASLt: %s: status %d", #call, (int)s_); \
    } while (0)
/* After every launch: catches bad grid arithmetic and missing kernels at the op that caused them. */
#define KLAUNCH_CHECK() CK(cudaGetLastError())

/* Scratch of at least `bytes` (256-byte aligned); valid until the next kcuda_scratch call of another op. */
void *kcuda_scratch(k_backend *b, size_t bytes);

static inline unsigned kc_blocks(size_t n, unsigned threads)
{
    size_t g = (n + threads - 1) / threads;
    if (g > 0x7fffffffu) g = 0x7fffffff;
    return g ? (unsigned)g : 1u;
}

/* Block-wide sum of one float per thread (blockDim.x a multiple of 32, <= 1024); every thread gets it. */
__device__ __forceinline__ float kc_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double kc_warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float kc_block_sum(float v, float *sh /* >= 33 floats */)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = kc_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    float t = 0;
    for (int i = 0; i < nw; i++) t += sh[i]; /* fixed order: deterministic */
    return t;
}
__device__ __forceinline__ double kc_block_sum_d(double v, double *sh /* >= 32 doubles */)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = kc_warp_sum_d(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += sh[i];
    return t;
}
__device__ __forceinline__ float kc_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Deterministic column sums: out[c] (+)= sum_p part[p, c] over P partial rows, in p order. */
void kcuda_colsum_final(k_backend *b, float *out, const float *part, int P, int ncols, int accumulate);

/* ---- the op functions (referenced by the op table in backend.cu) ---- */
void kcuda_matmul(k_backend *b, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
/* gemv.cu: C[M,N] = alpha A[M,K] W^T + beta C for M <= KCUDA_GEMV_MAX_M, W [N,K] compact bf16 (frozen weights);
 * 0 (nothing done) when the shape does not fit it (K % 8, W not 16-byte aligned, x beyond shared memory). */
#define KCUDA_GEMV_MAX_M 16
int kcuda_gemv_bf16(k_backend *b, int M, int N, int K, float alpha, const float *A, int lda,
                    const __nv_bfloat16 *W, float beta, float *C, int ldc);
void kcuda_add(k_backend *b, float *y, const float *a, const float *c, size_t n);
void kcuda_scale(k_backend *b, float *x, float s, size_t n);
void kcuda_sumsq(k_backend *b, double *out, const float *x, size_t n);
void kcuda_embedding_fwd(k_backend *b, float *out, const int32_t *ids, const float *table, int N, int d, int V);
void kcuda_embedding_bwd(k_backend *b, float *dtable, const int32_t *ids, const float *dout, int N, int d, int V);
void kcuda_rmsnorm_fwd(k_backend *b, float *out, float *rstd, const float *x, const float *w, int N, int d,
                       float eps);
void kcuda_rmsnorm_bwd(k_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int N, int d);
void kcuda_argmax_rows(k_backend *b, int32_t *out, const float *x, int N, int V);
void kcuda_add_rmsnorm_fwd(k_backend *b, float *sum, float *out, float *rstd, const float *x, const float *y,
                           const float *w, int N, int d, float eps);
void kcuda_rope_fwd(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K);
void kcuda_rope_bwd(k_backend *b, float *dx, const int32_t *pos, const float *inv_freq, int N, int H, int K);
void kcuda_rope_cache_fwd(k_backend *b, float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                          const int32_t *q_start, const float *inv_freq, int B, int T, int Hq, int Hkv, int K, int Tmax);
void kcuda_attn_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                    const int32_t *q_start, const int32_t *seg, const k_attn_shape *s);
void kcuda_attn_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse, const int32_t *seg,
                    const k_attn_shape *s);
void kcuda_swiglu_fwd(k_backend *b, float *out, const float *gate, const float *up, size_t n);
void kcuda_swiglu_bwd(k_backend *b, float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, size_t n);
void kcuda_xent_fwd_bwd(k_backend *b, float *loss, float *dlogits, const float *logits, const int32_t *target,
                        int N, int V, int ignore_index, float dscale);
void kcuda_kl_fwd_bwd(k_backend *b, float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                      const int32_t *mask, int N, int V, k_kl_mode mode, float temp, float dscale);
void kcuda_mse_fwd_bwd(k_backend *b, float *loss, float *dx, const float *x, const float *y, int N, int d,
                       float dscale);
void kcuda_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, int nseg,
                 const size_t *seg_end, const unsigned char *decay, const k_adamw_hp *hp);

int kcuda_kda_save(k_backend *b, int K, int V);
void kcuda_kda_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                   const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H, int K,
                   int V);
void kcuda_kda_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                   const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                   const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V);
void kcuda_kda_step(k_backend *b, float *o, float *state, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, int B, int H, int K, int V);
void kcuda_conv_fwd(k_backend *b, float *y, float *cache_out, const float *x, const float *w, const float *cache,
                    int B, int T, int C, int W, int act);
void kcuda_conv_bwd(k_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                    const float *cache, int B, int T, int C, int W, int act);
void kcuda_l2norm_fwd(k_backend *b, float *y, const float *x, size_t n, int K, float scale, float eps);
void kcuda_l2norm_bwd(k_backend *b, float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                      float eps);
void kcuda_gate_fwd(k_backend *b, float *g, const float *f, const float *A_log, const float *dt_bias, size_t N,
                    int H, int K, int per_head);
void kcuda_gate_bwd(k_backend *b, float *df, float *dA_log, float *ddt_bias, const float *dg, const float *f,
                    const float *A_log, const float *dt_bias, size_t N, int H, int K, int per_head);
void kcuda_gated_rmsnorm_fwd(k_backend *b, float *y, const float *x, const float *z, const float *w, size_t N,
                             int H, int V, float eps);
void kcuda_gated_rmsnorm_bwd(k_backend *b, float *dx, float *dz, float *dw, const float *dy, const float *x,
                             const float *z, const float *w, size_t N, int H, int V, float eps);
void kcuda_sigmoid_fwd(k_backend *b, float *y, const float *x, size_t n);
void kcuda_sigmoid_bwd(k_backend *b, float *dx, const float *dy, const float *y, size_t n);
void kcuda_head_repeat_fwd(k_backend *b, float *out, const float *in, size_t N, int Hq, int Hkv, int K);
void kcuda_head_repeat_bwd(k_backend *b, float *din, const float *dout, size_t N, int Hq, int Hkv, int K);

#endif
