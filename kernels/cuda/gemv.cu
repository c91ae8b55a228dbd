// gemv.cu - the decode matmul: y[M,N] = x[M,K] W^T for M <= 16 rows against frozen bf16 weights, one pass over W.
#include "kernels/cuda/cuda.cuh"

/*
 * At decode M = B is small and a linear layer is a read of its weights: cuBLASLt's tiles for M = 1..16 leave most
 * of the bandwidth unused. Here x (rounded to bf16, as the GEMM path converts it) sits in shared memory, each warp
 * streams KG_ROWS weight rows 16 bytes per lane at a time and multiplies them with all MT rows of x, accumulating in
 * fp32; a warp sum in a fixed order ends each output. The products are the GEMM path's (bf16 x bf16, exact in
 * fp32); only the summation order differs (fp32 rounding). Needs K % 8 == 0 and W 16-byte aligned (every row
 * starts 16-byte aligned) and MT * K * 2 bytes of shared memory.
 */
#define KG_ROWS 4    /* weight rows per warp at a time: each x chunk read from shared memory serves four rows */
#define KG_WARPS 4   /* warps per block */

__device__ __forceinline__ void kg_unpack(uint4 u, float f[8])
{
    const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float2 t = __bfloat1622float2(h[j]);
        f[2 * j] = t.x;
        f[2 * j + 1] = t.y;
    }
}

template <int MT>
__global__ void __launch_bounds__(KG_WARPS * 32)
gemv_bf16_kernel(float *C, int ldc, const float *A, int lda, const __nv_bfloat16 *__restrict__ W, int M, int N,
                 int K, float alpha, float beta)
{
    extern __shared__ uint4 kg_smem[];
    __nv_bfloat16 *xs = (__nv_bfloat16 *)kg_smem; /* [MT, K]; rows M..MT-1 zero */
    for (int i = threadIdx.x; i < MT * K; i += blockDim.x) {
        int m = i / K, k = i - m * K;
        xs[i] = __float2bfloat16(m < M ? A[(size_t)m * lda + k] : 0.0f);
    }
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int tiles = (N + KG_ROWS - 1) / KG_ROWS;
    for (int t = blockIdx.x * KG_WARPS + warp; t < tiles; t += gridDim.x * KG_WARPS) {
        int n0 = t * KG_ROWS;
        float acc[KG_ROWS][MT];
#pragma unroll
        for (int r = 0; r < KG_ROWS; r++)
#pragma unroll
            for (int m = 0; m < MT; m++) acc[r][m] = 0.0f;
        /* small MT: four chunks' loads in flight per lane (a 1024-wide row in one go); large MT: registers */
#pragma unroll(MT <= 4 ? 4 : 1)
        for (int k = lane * 8; k < K; k += 256) {
            float w[KG_ROWS][8];
#pragma unroll
            for (int r = 0; r < KG_ROWS; r++) {
                uint4 u = make_uint4(0, 0, 0, 0);
                if (n0 + r < N) u = __ldcs((const uint4 *)(W + (size_t)(n0 + r) * K + k)); /* read once: stream */
                kg_unpack(u, w[r]);
            }
#pragma unroll
            for (int m = 0; m < MT; m++) {
                float x[8];
                kg_unpack(*(const uint4 *)(xs + (size_t)m * K + k), x);
#pragma unroll
                for (int r = 0; r < KG_ROWS; r++)
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[r][m] = fmaf(x[j], w[r][j], acc[r][m]);
            }
        }
#pragma unroll
        for (int r = 0; r < KG_ROWS; r++)
#pragma unroll
            for (int m = 0; m < MT; m++) {
                float s = kc_warp_sum(acc[r][m]);
                int n = n0 + r;
                if (lane == ((r * MT + m) & 31) && n < N && m < M) {
                    float *c = C + (size_t)m * ldc + n;
                    *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
                }
            }
    }
}

template <int MT>
static void gemv_launch(k_backend *b, int bit, float *C, int ldc, const float *A, int lda, const __nv_bfloat16 *W,
                        int M, int N, int K, float alpha, float beta)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    size_t smem = (size_t)MT * K * sizeof(__nv_bfloat16);
    if (!(c->gemv_attr & (1u << bit))) { /* once per instantiation: allow up to the opt-in shared memory */
        CK(cudaFuncSetAttribute(gemv_bf16_kernel<MT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)c->smem_optin));
        c->gemv_attr |= 1u << bit;
    }
    /* resident blocks: as many as the shared memory allows (at most 4 per SM); each block loads x once and then
     * walks its share of the row tiles */
    size_t per_sm = (c->smem_optin + 1024) / (smem + 1024);
    if (per_sm < 1) per_sm = 1;
    if (per_sm > 4) per_sm = 4;
    size_t tiles = ((size_t)N + KG_ROWS - 1) / KG_ROWS, need = (tiles + KG_WARPS - 1) / KG_WARPS;
    size_t grid = (size_t)c->n_sm * per_sm;
    if (grid > need) grid = need;
    gemv_bf16_kernel<MT><<<(unsigned)grid, KG_WARPS * 32, smem, c->stream>>>(C, ldc, A, lda, W, M, N, K, alpha, beta);
    KLAUNCH_CHECK();
}

int kcuda_gemv_bf16(k_backend *b, int M, int N, int K, float alpha, const float *A, int lda,
                    const __nv_bfloat16 *W, float beta, float *C, int ldc)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    if (M < 1 || M > KCUDA_GEMV_MAX_M || N < 1 || K < 8 || K % 8 || ((uintptr_t)W & 15)) return 0;
    int mt = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : M <= 8 ? 8 : 16;
    if ((size_t)mt * K * sizeof(__nv_bfloat16) > c->smem_optin) return 0;
    switch (mt) {
    case 1: gemv_launch<1>(b, 0, C, ldc, A, lda, W, M, N, K, alpha, beta); break;
    case 2: gemv_launch<2>(b, 1, C, ldc, A, lda, W, M, N, K, alpha, beta); break;
    case 4: gemv_launch<4>(b, 2, C, ldc, A, lda, W, M, N, K, alpha, beta); break;
    case 8: gemv_launch<8>(b, 3, C, ldc, A, lda, W, M, N, K, alpha, beta); break;
    default: gemv_launch<16>(b, 4, C, ldc, A, lda, W, M, N, K, alpha, beta); break;
    }
    return 1;
}
