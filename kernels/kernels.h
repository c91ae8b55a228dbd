/* kernels.h - the op table: the only seam between the CPU (fp32 reference) and CUDA backends (ggml_backend_i style). */
#ifndef HX_KERNELS_H
#define HX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Conventions for every op:
 *  - Pointers are device pointers (host memory on the CPU backend). float32, row-major, contiguous unless a
 *    stride is given. Token ids, targets, positions and segment ids are int32 device arrays.
 *  - Shape vocabulary: B batch, T time, N = B*T rows, d hidden, V vocab, Hq query heads, Hkv key/value heads,
 *    K head dim, F MLP width. Heads are laid out [B,T,H,K] (row n = b*T + t holds H*K values).
 *  - Backward ops ACCUMULATE (+=) into every gradient they produce (llm.c), so gradients of shared inputs
 *    (tied embeddings, the residual stream) add up; the caller zeroes gradient buffers. A gradient pointer that
 *    may be NULL says so (frozen parameters).
 *  - Deterministic for a given backend and thread count: reductions across rows use a fixed order.
 *  - A backend leaves an op NULL when it does not support it (k_supports()).
 */

typedef struct k_backend k_backend;

/* KDA's chunk length: the chunked core (kda_fwd/kda_bwd) of every backend cuts T into chunks of this many
 * tokens, and s_chunks holds one state per chunk (the CUDA chunk kernels are written for 64-row tiles). */
#define K_KDA_CHUNK 64
/* Number of chunks of K_KDA_CHUNK tokens covering T. */
static inline int k_kda_nchunks(int T) { return (T + K_KDA_CHUNK - 1) / K_KDA_CHUNK; }

/* Causal GQA attention geometry. Query head h reads kv head h / (Hq / Hkv). Key j is visible to query i of
 * sequence b iff j <= q_start[b] + i (causal by index; q_start NULL means 0) and, when seg is given,
 * seg[b,j] == seg[b,i] (packed documents never attend across a boundary; requires Tq == Tk, q_start NULL). */
typedef struct k_attn_shape {
    int B, Tq, Tk;      /* Tk: time extent of the k/v buffers (a KV cache's capacity); batch stride Tk*Hkv*K */
    int Hq, Hkv, K;
    float scale;        /* usually 1/sqrt(K) */
} k_attn_shape;

/* AdamW hyper-parameters of one step (PyTorch's AdamW: decoupled decay p -= lr*wd*p, bias correction). */
typedef struct k_adamw_hp {
    float lr, beta1, beta2, eps, weight_decay;
    int step;           /* 1-based step number, for bias correction */
} k_adamw_hp;

/* KL direction for distillation; s = student, t = teacher, p = softmax(logits / temp). */
typedef enum {
    K_KL_FORWARD = 0,   /* sum_v p_t (log p_t - log p_s)  : d/dz_s = (p_s - p_t) / temp */
    K_KL_REVERSE = 1,   /* sum_v p_s (log p_s - log p_t)  : d/dz_s = p_s (log p_s - log p_t - KL) / temp */
} k_kl_mode;

typedef struct k_ops {
    /* ---- memory ---- */
    void *(*alloc)(k_backend *b, size_t bytes);                 /* zero-filled; hx_oom() on out-of-memory */
    void (*free)(k_backend *b, void *p);
    void (*upload)(k_backend *b, void *dst, const void *host_src, size_t bytes);
    void (*download)(k_backend *b, void *host_dst, const void *src, size_t bytes);
    void (*copy)(k_backend *b, void *dst, const void *src, size_t bytes);  /* device to device */
    void (*zero)(k_backend *b, void *p, size_t bytes);
    void (*sync)(k_backend *b);                                 /* wait until queued work is done */

    /* ---- dense ----
     * C[M,N] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T (cblas_sgemm, row-major, leading dims).
     * A linear layer y[N,out] = x[N,in] W^T is matmul(0, 1, N, out, in, 1, x, in, W, in, 0, y, out). */
    void (*matmul)(k_backend *b, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* y[i] = a[i] + b[i] (y may alias a or b) */
    void (*add)(k_backend *b, float *y, const float *a, const float *c, size_t n);
    /* x[i] *= s */
    void (*scale)(k_backend *b, float *x, float s, size_t n);
    /* sum of squares in double, deterministic (grad norm); *out is a host double */
    void (*sumsq)(k_backend *b, double *out, const float *x, size_t n);

    /* ---- embedding ----  out[N,d] = table[ids[n], :];  bwd: dtable[ids[n], :] += dout[n, :] (fixed order) */
    void (*embedding_fwd)(k_backend *b, float *out, const int32_t *ids, const float *table, int N, int d, int V);
    void (*embedding_bwd)(k_backend *b, float *dtable, const int32_t *ids, const float *dout, int N, int d, int V);

    /* ---- RMSNorm over rows of size d (per-head q/k norm: N = B*T*H rows of d = K) ----
     * out = x / sqrt(mean(x^2) + eps) * w;  rstd[N] saved for the backward (may be NULL at inference).
     * bwd: dx += ..., dw += ... (dw may be NULL). out may alias x. */
    void (*rmsnorm_fwd)(k_backend *b, float *out, float *rstd, const float *x, const float *w, int N, int d,
                        float eps);
    void (*rmsnorm_bwd)(k_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int d);
    /* Greedy decoding on the device (optional: NULL means downloading the rows): out[n] = the index of row n's
     * largest value of x [N,V], the first one on ties, NaN values never chosen, 0 when x[n,0] is NaN (exactly the
     * host scan best = 0; for i: if x[i] > x[best] best = i). out is a device int32 [N]. */
    void (*argmax_rows)(k_backend *b, int32_t *out, const float *x, int N, int V);
    /* The residual add and the norm after it, fused (optional: NULL means add then rmsnorm_fwd): sum = x + y (sum
     * may alias x or y), out = rmsnorm_fwd(sum, w) with rstd as there; the same values as the two ops. */
    void (*add_rmsnorm_fwd)(k_backend *b, float *sum, float *out, float *rstd, const float *x, const float *y,
                            const float *w, int N, int d, float eps);

    /* ---- RoPE, rotate-half (HF Qwen3): x [N,H,K], pairs (i, i+K/2), angle = (float)pos[n] * inv_freq[i] ----
     * inv_freq [K/2] (device) is computed by the model (nn: HF's float32 1/theta^(2i/K), rounded to bf16 when
     * the checkpoint is bf16, as transformers' buffer is). In place: fwd rotates by +angle; bwd rotates the
     * gradient by -angle (dx = R^T dx). */
    void (*rope_fwd)(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K);
    void (*rope_bwd)(k_backend *b, float *dx, const int32_t *pos, const float *inv_freq, int N, int H, int K);
    /* Attention with a KV cache, fused (optional: NULL means rope_fwd twice and a copy per sequence): q [B,T,Hq,K]
     * and k [B,T,Hkv,K] rotated in place as rope_fwd does, then the rows of sequence b of k and v [B,T,Hkv,K] copied
     * to cache positions q_start[b] .. q_start[b] + T - 1 of ck, cv [B,Tmax,Hkv,K] (q_start[b] + T <= Tmax; the
     * caller checks). One launch instead of 2 + 2B at a decode step. */
    void (*rope_cache_fwd)(k_backend *b, float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                           const int32_t *q_start, const float *inv_freq, int B, int T, int Hq, int Hkv, int K,
                           int Tmax);

    /* ---- causal GQA attention, tiled with online softmax (no Tq x Tk buffer) ----
     * q [B,Tq,Hq,K], k/v [B,Tk,Hkv,K], out [B,Tq,Hq,K], lse [B,Hq,Tq] (log-sum-exp of the scaled scores,
     * saved for the backward; may be NULL). q_start [B] or NULL; seg [B,T] or NULL (k_attn_shape).
     * bwd (training: Tq == Tk, q_start NULL): dq, dk, dv += from dout, recomputing probabilities from lse. */
    void (*attn_fwd)(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                     const int32_t *q_start, const int32_t *seg, const k_attn_shape *s);
    void (*attn_bwd)(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse, const int32_t *seg,
                     const k_attn_shape *s);

    /* ---- SwiGLU: out = silu(gate) * up, all [n];  bwd: dgate += ..., dup += ... ---- */
    void (*swiglu_fwd)(k_backend *b, float *out, const float *gate, const float *up, size_t n);
    void (*swiglu_bwd)(k_backend *b, float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, size_t n);

    /* ---- losses (one pass: loss and gradient) ----
     * Softmax cross-entropy: loss[n] = logsumexp(logits[n]) - logits[n, target[n]], 0 where target[n] ==
     * ignore_index (or outside [0,V)); dlogits (may be NULL, may alias logits: each row is read before it is
     * written) = dscale * (softmax(logits[n]) - onehot(target[n])), zero rows where ignored (overwritten,
     * not accumulated: it is the start of the backward). */
    void (*xent_fwd_bwd)(k_backend *b, float *loss, float *dlogits, const float *logits, const int32_t *target,
                         int N, int V, int ignore_index, float dscale);
    /* KL between student and teacher logit sets [N,V] per row (mode, temperature); mask [N] (NULL: all rows)
     * zero rows give loss 0 and zero gradient. dlogits_s (may be NULL) = dscale * d loss[n] / d logits_s
     * (overwritten). The teacher gets no gradient. */
    void (*kl_fwd_bwd)(k_backend *b, float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                       const int32_t *mask, int N, int V, k_kl_mode mode, float temp, float dscale);
    /* Mean-squared error per row: loss[n] = mean_i (x - y)^2 over d; dx (may be NULL) = dscale * 2 (x - y) / d
     * (overwritten). For hidden-state alignment. */
    void (*mse_fwd_bwd)(k_backend *b, float *loss, float *dx, const float *x, const float *y, int N, int d,
                        float dscale);

    /* ---- optimizer ----
     * AdamW over a flat buffer of n values cut into nseg tensors: tensor i is [seg_end[i-1], seg_end[i]) and
     * gets weight decay iff decay[i] (host arrays). m, v are the moments (same layout as p). */
    void (*adamw)(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, int nseg,
                  const size_t *seg_end, const unsigned char *decay, const k_adamw_hp *hp);

    /* ---- KDA ops (owned by the KDA engineer: kernels/cpu/kda*.c, kernels/cuda/kda*.cu) ----
     * Add the Kimi Delta Attention ops here: chunked core fwd/bwd, recurrent step, short conv, l2norm,
     * gates, gated RMSNorm (see kernels/cpu/kda.h for the shapes). */
    /* core: q, k, g [B,T,H,K] (q, k L2-normalised, q scaled), v, o [B,T,H,V], beta [B,T,H], states [B,H,K,V]
     * (s0, sT, ds0, dsT may be NULL). s_chunks (NULL: inference) is what the fwd keeps for the bwd: the
     * chunk-start states [B,H,k_kda_nchunks(T),K,V], then kda_save(K, V) more floats per (b, h, chunk) of the
     * backend's own (kda_save NULL or 0: nothing more). The bwd takes s_chunks as the fwd on the same inputs
     * left it (its states may be replaced by equal values). */
    int (*kda_save)(k_backend *b, int K, int V);
    void (*kda_fwd)(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                    const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H, int K,
                    int V);
    void (*kda_bwd)(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                    const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V);
    /* one decode token: q, k, g [B,H,K], v, o [B,H,V], beta [B,H]; state [B,H,K,V] in place */
    void (*kda_step)(k_backend *b, float *o, float *state, const float *q, const float *k, const float *v,
                     const float *g, const float *beta, int B, int H, int K, int V);
    /* depthwise causal conv, x, y [B,T,C], w [C,W], act 0 identity / 1 silu, cache [B,W-1,C] or NULL; dw may be NULL */
    void (*conv_fwd)(k_backend *b, float *y, float *cache_out, const float *x, const float *w, const float *cache,
                     int B, int T, int C, int W, int act);
    void (*conv_bwd)(k_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                     const float *cache, int B, int T, int C, int W, int act);
    /* y = scale * x / sqrt(sum x^2 + eps) over n rows of K */
    void (*l2norm_fwd)(k_backend *b, float *y, const float *x, size_t n, int K, float scale, float eps);
    void (*l2norm_bwd)(k_backend *b, float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                       float eps);
    /* g [N,H,K] = -exp(A_log[h]) softplus(f + dt_bias), f [N,H*K] (per channel) or [N,H] (per_head) */
    void (*kda_gate_fwd)(k_backend *b, float *g, const float *f, const float *A_log, const float *dt_bias, size_t N,
                         int H, int K, int per_head);
    void (*kda_gate_bwd)(k_backend *b, float *df, float *dA_log, float *ddt_bias, const float *dg, const float *f,
                         const float *A_log, const float *dt_bias, size_t N, int H, int K, int per_head);
    /* y [N,H,V] = rmsnorm(x) * w[V] * sigmoid(z) */
    void (*gated_rmsnorm_fwd)(k_backend *b, float *y, const float *x, const float *z, const float *w, size_t N,
                              int H, int V, float eps);
    void (*gated_rmsnorm_bwd)(k_backend *b, float *dx, float *dz, float *dw, const float *dy, const float *x,
                              const float *z, const float *w, size_t N, int H, int V, float eps);
    /* y = sigmoid(x); bwd dx += dy y (1 - y) */
    void (*sigmoid_fwd)(k_backend *b, float *y, const float *x, size_t n);
    void (*sigmoid_bwd)(k_backend *b, float *dx, const float *dy, const float *y, size_t n);
    /* GQA head repeat out [N,Hq,K] <- in [N,Hkv,K]; bwd din += sum over the repeats */
    void (*head_repeat_fwd)(k_backend *b, float *out, const float *in, size_t N, int Hq, int Hkv, int K);
    void (*head_repeat_bwd)(k_backend *b, float *din, const float *dout, size_t N, int Hq, int Hkv, int K);

    /* ---- inference weights (optional: NULL does nothing) ----
     * freeze: the n floats at p (one tensor of a model: nn_model_freeze freezes each) do not change until
     * thaw(p), e.g. a model used only for inference; ranges never overlap. The backend may keep them once in its matmul operand format (CUDA: bf16) and read matmul
     * operands that lie inside the range from that copy instead of converting them on every matmul. Writing the
     * range while it is frozen is a bug (the copy would be stale; the guard backend checks it on every matmul). */
    void (*weights_freeze)(k_backend *b, const float *p, size_t n);
    void (*weights_thaw)(k_backend *b, const float *p);
    /* ---- end of KDA ops ---- */
} k_ops;

struct k_backend {
    const k_ops *op;
    const char *name;   /* "cpu", "cuda:0" */
    int threads;        /* OpenMP threads on the CPU */
    int device;         /* CUDA device index, -1 on the CPU */
    void *impl;         /* the backend's private state (cuBLAS handle, stream, workspace) */
    size_t mem_in_use;  /* bytes the backend holds: allocations, op scratch, workspaces */
    size_t mem_peak;    /* the most mem_in_use since creation or the last k_mem_reset_peak */
};

/* Creates a backend (kernels/backend.c): "cpu" or "cuda" / "cuda:N" (an error when hx was built without CUDA or
 * no GPU is present), "auto" (cuda:0 if available, else cpu). threads <= 0: all cores (CPU). NULL + error(). */
k_backend *k_backend_new(const char *device, int threads);
void k_backend_free(k_backend *b);

/* The CPU backend (kernels/cpu/). */
k_backend *k_cpu_new(int threads);
/* The CPU ops behind page protection (kernels/cpu/guard.c, device "guard"): host code that touches device
 * memory outside an op faults with a backtrace. For finding host dereferences of device pointers without a GPU. */
k_backend *k_guard_new(int threads, int bf16); /* "guard:bf16": matmul operands rounded to bf16 like the GPU's */
/* Matmul operands the guard backend has read from frozen weights (weights_freeze) since it was created. */
size_t k_guard_frozen_reads(void);
/* Ranges frozen on the guard backend now (nn_model_freeze freezes one per tensor). */
int k_guard_frozen_ranges(void);
#ifdef HX_CUDA
k_backend *k_cuda_new(int device); /* kernels/cuda/: NULL + error() when there is no such GPU */
void k_cuda_free(k_backend *b);
int k_cuda_device_count(void);   /* GPUs the CUDA runtime sees (0 without a driver); makes no context */
/* Make GPU DEVICE's context now (hx run starts it in a thread of its own while it checks the store and runs CPU
 * stages): the k_cuda_new of the first GPU stage then finds it made. Errors are left to k_cuda_new. */
void k_cuda_warm(int device);
#endif

#define k_supports(b, opname) ((b)->op->opname != NULL)

/* Memory accounting, kept by every backend's alloc/free/scratch (not thread-safe: one backend, one thread). */
static inline void k_mem_add(k_backend *b, size_t n)
{
    b->mem_in_use += n;
    if (b->mem_in_use > b->mem_peak) b->mem_peak = b->mem_in_use;
}
static inline void k_mem_sub(k_backend *b, size_t n) { b->mem_in_use -= n < b->mem_in_use ? n : b->mem_in_use; }
static inline void k_mem_reset_peak(k_backend *b) { b->mem_peak = b->mem_in_use; }

/* Conveniences over the table. */
static inline void *k_alloc_f32(k_backend *b, size_t n) { return b->op->alloc(b, n * sizeof(float)); }

/* y[N,out] (=, or += when acc) x[N,in] W^T, W [out,in]. */
static inline void k_linear_fwd(k_backend *b, float *y, const float *x, const float *W, int N, int in, int out,
                                int acc)
{
    b->op->matmul(b, 0, 1, N, out, in, 1.0f, x, in, W, in, acc ? 1.0f : 0.0f, y, out);
}

/* Backward of y = x W^T: dx[N,in] += dy W ; dW[out,in] += dy^T x (either may be NULL). */
static inline void k_linear_bwd(k_backend *b, float *dx, float *dW, const float *dy, const float *x,
                                const float *W, int N, int in, int out)
{
    if (dx) b->op->matmul(b, 0, 0, N, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
    if (dW) b->op->matmul(b, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
}

#endif
