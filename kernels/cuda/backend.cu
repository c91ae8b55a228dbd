// backend.cu - the CUDA backend: device selection, memory ops, scratch, cuBLASLt bf16 matmul, and its op table.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda.cuh"

/* ---- memory ---- */

static void *cu_alloc(k_backend *b, size_t bytes)
{
    void *p = NULL;
    size_t n = (bytes + 255) & ~(size_t)255;
    cudaError_t e = cudaMalloc(&p, n ? n : 256);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        hx_oom("%s: out of GPU memory allocating %zu bytes (%zu of %zu MiB free): %s; use a smaller "
            "batch or sequence, or --device cpu", b->name, bytes, fr >> 20, tot >> 20, cudaGetErrorString(e));
    }
    CK(cudaMemsetAsync(p, 0, n ? n : 256, KCUDA_STREAM(b)));
    kcuda_ctx *c = KCUDA_CTX(b);
    if (c->n_blocks == c->cap_blocks) {
        c->cap_blocks = c->cap_blocks ? 2 * c->cap_blocks : 64;
        c->blocks = (struct kcuda_block *)xrealloc(c->blocks, (size_t)c->cap_blocks * sizeof *c->blocks);
    }
    c->blocks[c->n_blocks].p = p;
    c->blocks[c->n_blocks++].n = n ? n : 256;
    k_mem_add(b, n ? n : 256);
    return p;
}

static void cu_free(k_backend *b, void *p)
{
    if (!p) return;
    CK(cudaStreamSynchronize(KCUDA_STREAM(b)));
    CK(cudaFree(p));
    kcuda_ctx *c = KCUDA_CTX(b);
    for (int i = c->n_blocks - 1; i >= 0; i--)
        if (c->blocks[i].p == p) {
            k_mem_sub(b, c->blocks[i].n);
            c->blocks[i] = c->blocks[--c->n_blocks];
            break;
        }
}

static void cu_upload(k_backend *b, void *dst, const void *src, size_t n)
{
    if (!n) return;
    CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, KCUDA_STREAM(b)));
    CK(cudaStreamSynchronize(KCUDA_STREAM(b))); /* the host buffer may be reused as soon as we return */
}

static void cu_download(k_backend *b, void *dst, const void *src, size_t n)
{
    if (!n) return;
    CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, KCUDA_STREAM(b)));
    CK(cudaStreamSynchronize(KCUDA_STREAM(b)));
}

static void cu_copy(k_backend *b, void *dst, const void *src, size_t n)
{
    if (n) CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, KCUDA_STREAM(b)));
}

static void cu_zero(k_backend *b, void *p, size_t n)
{
    if (n) CK(cudaMemsetAsync(p, 0, n, KCUDA_STREAM(b)));
}

static void cu_sync(k_backend *b) { CK(cudaStreamSynchronize(KCUDA_STREAM(b))); }

void *kcuda_scratch(k_backend *b, size_t bytes)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    if (bytes <= c->scratch_bytes) return c->scratch;
    size_t n = bytes + bytes / 4; /* grow with headroom: a few reallocations during the first step at most */
    n = (n + 4095) & ~(size_t)4095;
    if (c->scratch) {
        CK(cudaStreamSynchronize(c->stream));
        CK(cudaFree(c->scratch));
        k_mem_sub(b, c->scratch_bytes);
        c->scratch = NULL;
        c->scratch_bytes = 0;
    }
    cudaError_t e = cudaMalloc(&c->scratch, n);
    if (e != cudaSuccess)
        hx_oom("%s: out of GPU memory for %zu bytes of op scratch: %s", b->name, n,
            cudaGetErrorString(e));
    c->scratch_bytes = n;
    k_mem_add(b, n);
    return c->scratch;
}

/* ---- deterministic column sums of partials ---- */

__global__ void colsum_final_kernel(float *out, const float *part, int P, int ncols, int acc)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= ncols) return;
    float s = 0;
    for (int p = 0; p < P; p++) s += part[(size_t)p * ncols + c];
    out[c] = acc ? out[c] + s : s;
}

void kcuda_colsum_final(k_backend *b, float *out, const float *part, int P, int ncols, int accumulate)
{
    if (ncols <= 0) return;
    colsum_final_kernel<<<kc_blocks(ncols, 256), 256, 0, KCUDA_STREAM(b)>>>(out, part, P, ncols, accumulate);
    KLAUNCH_CHECK();
}

/* ---- matmul: fp32 in the op table, bf16 operands into cuBLASLt, fp32 accumulate and output ----
 * Operands are converted to bf16 on the fly into scratch rather than cached per weight pointer (a cache keyed by
 * pointer needs a version counter bumped by every writer of the weights: AdamW, loads, uploads); converting costs
 * one read of each operand, small next to the GEMM for training shapes (N = B*T >= 4096), and cannot go stale.
 * Inference weights are the exception (issue 15 item 1): weights_freeze declares a range that does not change
 * (nn_model_freeze: the eval stage's model, a teacher), converted once; an operand inside it is read from that
 * bf16 copy, which at decode (M = B <= 64) saves the conversion's read of every weight, the lm_head's included;
 * at M <= 16 a linear layer against frozen weights is gemv.cu's single pass over them instead of cuBLASLt.
 * Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T. */

__global__ void to_bf16_2d(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld)
{
    size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        dst[i] = __float2bfloat16(src[r * ld + c]);
    }
}

__global__ void to_bf16_vec4(__nv_bfloat162 *dst, const float4 *src, size_t n4)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = src[i];
        dst[2 * i] = __floats2bfloat162_rn(v.x, v.y);
        dst[2 * i + 1] = __floats2bfloat162_rn(v.z, v.w);
    }
}

static void convert_bf16(k_backend *b, __nv_bfloat16 *dst, const float *src, int rows, int cols, int ld)
{
    size_t n = (size_t)rows * cols;
    unsigned grid = kc_blocks(n, 256);
    if (grid > 8u * (unsigned)KCUDA_CTX(b)->n_sm * 8u) grid = 8u * KCUDA_CTX(b)->n_sm * 8u;
    if (ld == cols && n % 4 == 0 && ((uintptr_t)src & 15) == 0)
        to_bf16_vec4<<<grid, 256, 0, KCUDA_STREAM(b)>>>((__nv_bfloat162 *)dst, (const float4 *)src, n / 4);
    else
        to_bf16_2d<<<grid, 256, 0, KCUDA_STREAM(b)>>>(dst, src, rows, cols, ld);
    KLAUNCH_CHECK();
}

typedef struct kcuda_mm_entry {
    int ta, tb, m, n, k, lda, ldb, ldc, align_c, align_ab;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    cublasLtMatmulHeuristicResult_t cand[8]; /* the heuristic's candidates, best first */
    int n_cand;
} kcuda_mm_entry;

/* The heuristic assumes 256-byte aligned pointers unless told otherwise, and an algorithm it picks for those
 * answers CUBLAS_STATUS_NOT_SUPPORTED on a C that is less aligned (an output view at an odd float offset): the
 * plan is made for, and keyed by, C's alignment (A and B are always 256-byte aligned: scratch copies, or a frozen
 * tensor's own bf16 copy; kcuda_matmul checks it). */
static kcuda_mm_entry *mm_plan(k_backend *b, int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc,
                               int align_c, int align_ab)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    for (int i = 0; i < c->mm_n; i++) {
        kcuda_mm_entry *e = &c->mm_cache[i];
        if (e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k && e->lda == lda && e->ldb == ldb &&
            e->ldc == ldc && e->align_c == align_c && e->align_ab == align_ab)
            return e;
    }
    if (c->mm_n == c->mm_cap) {
        c->mm_cap = c->mm_cap ? 2 * c->mm_cap : 64;
        c->mm_cache = (kcuda_mm_entry *)xrealloc(c->mm_cache, sizeof(kcuda_mm_entry) * c->mm_cap);
    }
    kcuda_mm_entry *e = &c->mm_cache[c->mm_n];
    memset(e, 0, sizeof *e);
    e->ta = ta; e->tb = tb; e->m = m; e->n = n; e->k = k; e->lda = lda; e->ldb = ldb; e->ldc = ldc;
    e->align_c = align_c;
    e->align_ab = align_ab;
    CKLT(cublasLtMatmulDescCreate(&e->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CKLT(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CKLT(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    /* column-major layouts: A is (ta ? k x m : m x k), B is (tb ? n x k : k x n), C is m x n */
    CKLT(cublasLtMatrixLayoutCreate(&e->la, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda));
    CKLT(cublasLtMatrixLayoutCreate(&e->lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb));
    CKLT(cublasLtMatrixLayoutCreate(&e->lc, CUDA_R_32F, m, n, ldc));
    cublasLtMatmulPreference_t pref;
    CKLT(cublasLtMatmulPreferenceCreate(&pref));
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &c->lt_ws_bytes,
                                              sizeof c->lt_ws_bytes));
    uint32_t al = (uint32_t)align_c;
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
    uint32_t alab = (uint32_t)align_ab;
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alab, sizeof alab));
    CKLT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alab, sizeof alab));
    int got = 0;
    CKLT(cublasLtMatmulAlgoGetHeuristic(c->lt, e->op, e->la, e->lb, e->lc, e->lc, pref, 8, e->cand, &got));
    cublasLtMatmulPreferenceDestroy(pref);
    if (got < 1) BUG("cuBLASLt: no bf16 algorithm for m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc);
    e->n_cand = got;
    e->algo = e->cand[0].algo;
    c->mm_n++;
    return e;
}

__global__ void scale_2d(float *C, int rows, int cols, int ldc, float beta)
{
    size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, cc = i % cols;
        float *p = C + r * ldc + cc;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

/* The bf16 copy of operand x (rows x cols row-major, leading dimension ld) when x lies inside frozen weights and
 * is compact (ld == cols, as every weight is); NULL otherwise. */
static const __nv_bfloat16 *frozen_bf16(k_backend *b, const float *x, int rows, int cols, int ld)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    int lo = 0, hi = c->n_frozen - 1, at = -1;
    while (lo <= hi) { /* the last range starting at or below x */
        int mid = (lo + hi) / 2;
        if (c->frozen[mid].p <= x) at = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    if (at < 0) return NULL;
    const struct kcuda_frozen *f = &c->frozen[at];
    size_t o = (size_t)(x - f->p);
    if (o >= f->n || ld != cols || o + (size_t)rows * cols > f->n) return NULL;
    return f->bf + o;
}

/* One tensor (nn_model_freeze freezes each): its bf16 copy gets its own allocation, so a whole tensor is handed to
 * cuBLASLt 256-byte aligned, as the scratch copies of converted operands are. (A single copy of the model's buffer
 * put tensors at 32-byte offsets, with which cuda_stream's frozen case stopped with "misaligned address".) */
static void cu_weights_freeze(k_backend *b, const float *p, size_t n)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    if (n == 0) return;
    int at = c->n_frozen;
    while (at > 0 && c->frozen[at - 1].p > p) at--;
    if ((at > 0 && c->frozen[at - 1].p + c->frozen[at - 1].n > p) || (at < c->n_frozen && p + n > c->frozen[at].p))
        BUG("%s: weights %p frozen twice (overlapping ranges)", b->name, (const void *)p);
    __nv_bfloat16 *bf = (__nv_bfloat16 *)cu_alloc(b, n * sizeof(__nv_bfloat16));
    for (size_t o = 0; o < n; o += (size_t)1 << 30) { /* convert_bf16 counts in int */
        int len = (int)(n - o < ((size_t)1 << 30) ? n - o : ((size_t)1 << 30));
        convert_bf16(b, bf + o, p + o, 1, len, len);
    }
    if (c->n_frozen == c->cap_frozen) {
        c->cap_frozen = c->cap_frozen ? 2 * c->cap_frozen : 64;
        c->frozen = (struct kcuda_frozen *)xrealloc(c->frozen, (size_t)c->cap_frozen * sizeof *c->frozen);
    }
    memmove(&c->frozen[at + 1], &c->frozen[at], (size_t)(c->n_frozen - at) * sizeof *c->frozen);
    c->frozen[at].p = p;
    c->frozen[at].n = n;
    c->frozen[at].bf = bf;
    c->n_frozen++;
}

static void cu_weights_thaw(k_backend *b, const float *p)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    for (int i = 0; i < c->n_frozen; i++)
        if (c->frozen[i].p == p) {
            cu_free(b, c->frozen[i].bf);
            memmove(&c->frozen[i], &c->frozen[i + 1], (size_t)(c->n_frozen - i - 1) * sizeof *c->frozen);
            c->n_frozen--;
            return;
        }
}

void kcuda_matmul(k_backend *b, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_2d<<<kc_blocks((size_t)M * N, 256), 256, 0, KCUDA_STREAM(b)>>>(C, M, N, ldc, beta);
        KLAUNCH_CHECK();
        return;
    }
    /* compact bf16 copies: A is stored (transA ? K x M : M x K) row-major, B (transB ? N x K : K x N) */
    int ar = transA ? K : M, ac = transA ? M : K, br = transB ? N : K, bc = transB ? K : N;
    /* an operand inside frozen weights is read from their bf16 copy; the others are converted into scratch */
    const __nv_bfloat16 *fa = frozen_bf16(b, A, ar, ac, lda), *fb = frozen_bf16(b, B, br, bc, ldb);
    /* decode: a linear layer (x W^T) of at most 16 rows against frozen weights is one pass over W (gemv.cu) */
    if (!transA && transB && fb && M <= KCUDA_GEMV_MAX_M && kcuda_gemv_bf16(b, M, N, K, alpha, A, lda, fb, beta, C, ldc))
        return;
    /* cuBLASLt gets bf16 operands only as aligned as the scratch copies (256 bytes): a frozen view at another
     * offset (rows inside a tensor) is converted like any operand */
    if (((uintptr_t)fa & 255) != 0) fa = NULL;
    if (((uintptr_t)fb & 255) != 0) fb = NULL;
    size_t abytes = fa ? 0 : ((size_t)ar * ac * 2 + 255) & ~(size_t)255, bbytes = fb ? 0 : (size_t)br * bc * 2;
    char *s = (char *)kcuda_scratch(b, abytes + bbytes + 256);
    __nv_bfloat16 *A16 = (__nv_bfloat16 *)s, *B16 = (__nv_bfloat16 *)(s + abytes);
    if (fa) A16 = (__nv_bfloat16 *)fa;
    else convert_bf16(b, A16, A, ar, ac, lda);
    if (fb) B16 = (__nv_bfloat16 *)fb;
    else convert_bf16(b, B16, B, br, bc, ldb);
    /* every bf16 operand handed to cuBLASLt is 256-byte aligned (scratch, or a whole frozen tensor's own copy):
     * the alignment its plans are made for; anything else is a bug here, not a fault inside cuBLASLt */
    int align_ab = 256;
    if (((uintptr_t)A16 | (uintptr_t)B16) & 255)
        BUG("cuBLASLt: bf16 operands %p, %p not 256-byte aligned (m=%d n=%d k=%d)", (const void *)A16,
            (const void *)B16, N, M, K);
    /* column-major: C^T[N,M] = op(B)^T[N,K] op(A)^T[K,M]; the row-major buffer of B is B^T column-major */
    int align_c = 256;
    while (align_c > 4 && ((uintptr_t)C & (uintptr_t)(align_c - 1))) align_c >>= 1;
    kcuda_mm_entry *e = mm_plan(b, transB, transA, N, M, K, bc, ac, ldc, align_c, align_ab);
    kcuda_ctx *c = KCUDA_CTX(b);
    cublasStatus_t st = cublasLtMatmul(c->lt, e->op, &alpha, B16, e->la, A16, e->lb, &beta, C, e->lc, C, e->lc,
                                       &e->algo, c->lt_ws, c->lt_ws_bytes, c->stream);
    /* an algorithm that refuses these operands (the heuristic cannot see everything): the next candidate, kept */
    for (int i = 1; st == CUBLAS_STATUS_NOT_SUPPORTED && i < e->n_cand; i++) {
        st = cublasLtMatmul(c->lt, e->op, &alpha, B16, e->la, A16, e->lb, &beta, C, e->lc, C, e->lc, &e->cand[i].algo,
                            c->lt_ws, c->lt_ws_bytes, c->stream);
        if (st == CUBLAS_STATUS_SUCCESS) e->algo = e->cand[i].algo;
    }
    if (st != CUBLAS_STATUS_SUCCESS)
        BUG("cuBLASLt: matmul m=%d n=%d k=%d lda=%d ldb=%d ldc=%d (C aligned to %d bytes): status %d", N, M, K, bc,
            ac, ldc, align_c, (int)st);
}

/* ---- the op table ---- */

/* Filled by name (not position): fields added to kernels.h later stay NULL (unsupported) until written here. */
static k_ops cuda_ops;

static void cuda_ops_init(void)
{
    k_ops *o = &cuda_ops;
    o->alloc = cu_alloc; o->free = cu_free; o->upload = cu_upload; o->download = cu_download;
    o->copy = cu_copy; o->zero = cu_zero; o->sync = cu_sync;
    o->matmul = kcuda_matmul; o->add = kcuda_add; o->scale = kcuda_scale; o->sumsq = kcuda_sumsq;
    o->embedding_fwd = kcuda_embedding_fwd; o->embedding_bwd = kcuda_embedding_bwd;
    o->rmsnorm_fwd = kcuda_rmsnorm_fwd; o->rmsnorm_bwd = kcuda_rmsnorm_bwd;
    o->add_rmsnorm_fwd = kcuda_add_rmsnorm_fwd; o->argmax_rows = kcuda_argmax_rows;
    o->rope_fwd = kcuda_rope_fwd; o->rope_bwd = kcuda_rope_bwd; o->rope_cache_fwd = kcuda_rope_cache_fwd;
    o->attn_fwd = kcuda_attn_fwd; o->attn_bwd = kcuda_attn_bwd;
    o->swiglu_fwd = kcuda_swiglu_fwd; o->swiglu_bwd = kcuda_swiglu_bwd;
    o->xent_fwd_bwd = kcuda_xent_fwd_bwd; o->kl_fwd_bwd = kcuda_kl_fwd_bwd; o->mse_fwd_bwd = kcuda_mse_fwd_bwd;
    o->adamw = kcuda_adamw;
    o->kda_fwd = kcuda_kda_fwd; o->kda_bwd = kcuda_kda_bwd; o->kda_save = kcuda_kda_save; o->kda_step = kcuda_kda_step;
    o->conv_fwd = kcuda_conv_fwd; o->conv_bwd = kcuda_conv_bwd;
    o->l2norm_fwd = kcuda_l2norm_fwd; o->l2norm_bwd = kcuda_l2norm_bwd;
    o->kda_gate_fwd = kcuda_gate_fwd; o->kda_gate_bwd = kcuda_gate_bwd;
    o->gated_rmsnorm_fwd = kcuda_gated_rmsnorm_fwd; o->gated_rmsnorm_bwd = kcuda_gated_rmsnorm_bwd;
    o->sigmoid_fwd = kcuda_sigmoid_fwd; o->sigmoid_bwd = kcuda_sigmoid_bwd;
    o->head_repeat_fwd = kcuda_head_repeat_fwd; o->head_repeat_bwd = kcuda_head_repeat_bwd;
    o->weights_freeze = cu_weights_freeze; o->weights_thaw = cu_weights_thaw;
}

/* No CUDA call happens before this is asked for: a binary built with CUDA runs on machines without a GPU. */
extern "C" int k_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" void k_cuda_warm(int device)
{
    double t0 = hx_now();
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(0) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    log_info("cuda:%d: context made in %.2fs (from start-up, beside the store checks and CPU stages)", device,
             hx_now() - t0);
}

static pthread_once_t cuda_ops_once = PTHREAD_ONCE_INIT; /* stages open backends from several threads (--gpu-share) */

extern "C" k_backend *k_cuda_new(int device)
{
    int n = 0;
    double t0 = hx_now();
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        error("cuda:%d: no usable GPU (%s); use --device cpu", device,
              e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device present");
        cudaGetLastError();
        return NULL;
    }
    if (device < 0 || device >= n) {
        error("cuda:%d: no such GPU (this machine has %d: cuda:0..cuda:%d)", device, n, n - 1);
        return NULL;
    }
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        error("cuda:%d: cannot open the GPU: %s", device, cudaGetErrorString(e));
        return NULL;
    }
    if (prop.major < 8) {
        error("cuda:%d: %s has compute capability %d.%d; hx's CUDA kernels need bf16 tensor cores (8.0 or newer)",
              device, prop.name, prop.major, prop.minor);
        return NULL;
    }
    /* the primary context is made here, on the first CUDA call that needs one (lazy module loading: CUDA 12.2+
     * loads a kernel at its first launch) */
    if ((e = cudaFree(0)) != cudaSuccess) {
        error("cuda:%d: cannot create a CUDA context: %s", device, cudaGetErrorString(e));
        return NULL;
    }
    double t_ctx = hx_now();
    pthread_once(&cuda_ops_once, cuda_ops_init);
    kcuda_ctx *c = (kcuda_ctx *)xcalloc(1, sizeof *c);
    c->device = device;
    c->n_sm = prop.multiProcessorCount;
    c->smem_optin = prop.sharedMemPerBlockOptin;
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        free(c);
        error("cuda:%d: cannot create a stream: %s", device, cudaGetErrorString(e));
        return NULL;
    }
    if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(c->stream);
        free(c);
        error("cuda:%d: cannot initialise cuBLASLt", device);
        return NULL;
    }
    c->lt_ws_bytes = 32u << 20;
    CK(cudaMalloc(&c->lt_ws, c->lt_ws_bytes));
    CK(cudaMalloc((void **)&c->sumsq_part, 1025 * sizeof(double)));
    CK(cudaMallocHost((void **)&c->host_dbl, sizeof(double)));
    k_backend *b = (k_backend *)xcalloc(1, sizeof *b);
    b->op = &cuda_ops;
    b->name = xstrfmt("cuda:%d", device);
    b->threads = 1;
    b->device = device;
    b->impl = c;
    k_mem_add(b, c->lt_ws_bytes + 1025 * sizeof(double));
    double t1 = hx_now();
    log_info("cuda:%d: opened in %.2fs (runtime and context %.2fs, stream, cuBLASLt and workspace %.2fs)", device,
             t1 - t0, t_ctx - t0, t1 - t_ctx);
    return b;
}

extern "C" void k_cuda_free(k_backend *b)
{
    if (!b) return;
    kcuda_ctx *c = KCUDA_CTX(b);
    cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->mm_n; i++) {
        kcuda_mm_entry *e = &c->mm_cache[i];
        cublasLtMatrixLayoutDestroy(e->la);
        cublasLtMatrixLayoutDestroy(e->lb);
        cublasLtMatrixLayoutDestroy(e->lc);
        cublasLtMatmulDescDestroy(e->op);
    }
    free(c->mm_cache);
    free(c->frozen);
    free(c->blocks);
    cudaFree(c->lt_ws);
    cudaFree(c->scratch);
    cudaFree(c->sumsq_part);
    cudaFreeHost(c->host_dbl);
    cudaFree(c->seg_end_d);
    cudaFree(c->decay_d);
    free(c->seg_end_h);
    free(c->decay_h);
    cublasLtDestroy(c->lt);
    cudaStreamDestroy(c->stream);
    free(c);
    free((char *)b->name);
    free(b);
}
