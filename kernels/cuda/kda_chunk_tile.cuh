// kda_chunk_tile.cuh - device building blocks of the chunk-parallel KDA (kda_chunk.cu): tile sizes, TF32 tensor-core
// products, cp.async copies, the fast exp and cumulative sums. Included by kda_chunk_{intra,fwd,bwd}.cuh.
#pragma once
#include <math.h>

#include "kernels/cuda/cuda.cuh"

#define KCP_CH K_KDA_CHUNK /* kernels/kernels.h; the tiles below are written for 64 rows */
static_assert(KCP_CH == 64, "the chunk-parallel KDA kernels tile chunks of 64 rows");
#define KCP_NT 256
#define KCP_VT 32

extern __shared__ float kcp_smem[];

/* Head dims: K, V in {32, 64, 128} (the chunk kernels are instantiated for those, kda_chunk.cu). The state passes
 * tile [K x VT] with warp tiles of K/4 rows, or K/2 rows at K = 32 (16 rows at least, see kcp_tc), which leaves
 * 8 columns per warp only at VT = 32: K = 32 takes no half-width value tiles. */
#define KCP_STATE_WM(K) ((K) >= 64 ? 4 : 2)
#define KCP_NARROW_OK(K) ((K) >= 64)

template <int TM, int TN> __device__ __forceinline__ void kcp_zero(float (&acc)[TM][TN])
{
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
}

/*
 * Tensor-core products: mma.sync m16n8k8 TF32 with fp32 accumulation, operands rounded to nearest TF32
 * (2^-11 relative). KCP_SPLIT=1 runs them as 3xTF32: each operand x = hi + lo with hi = tf32(x),
 * lo = tf32(x - hi), and acc += lo*hi' + hi*lo' + hi*hi' (lo*lo' ~ 2^-22 relative is dropped), fp32-level
 * accuracy (~1e-6 in the op tests) at a third of the TF32 rate.
 * kcp_tc<M, N, WM>: the block's 8 warps tile the [M x N] output as WM x (8/WM) warp tiles; each warp holds
 * MT x NT m16n8 accumulator tiles, flattened to acc[x] with x = (mt*NT + nt)*4 + e, element e of the
 * m16n8 C fragment: row g (+8 for e >= 2), column 2t + (e & 1), g = lane/4, t = lane%4.
 * Operands in shared memory with any strides: A(m, k) = A[m*sam + k*sak], B(k, n) = B[k*sbk + n*sbn].
 * Fragments are loaded with scalar shared loads (any layout, no ldmatrix); a warp's load touches g*s1 + t*s2,
 * bank-conflict-free when the leading dimension is 4 (mod 32) for k-contiguous operands and 8 (mod 32) for
 * m- or n-contiguous ones (the paddings below).
 */
#ifndef KCP_SPLIT
#define KCP_SPLIT 0
#endif
/* x rounded to TF32 (10 mantissa bits), nearest with ties away from zero: half an ulp of TF32 added to the bit
 * pattern, the low 13 bits cleared. One add and one and, where cvt.rna.tf32.f32 is a longer sequence on sm_90
 * (it also keeps Inf and NaN, which never reach these products). The plain products skip the and: the tensor
 * cores read only the top 19 bits of a .tf32 operand. */
__device__ __forceinline__ uint32_t kcp_tf32(float x) { return (__float_as_uint(x) + 0x1000u) & 0xffffe000u; }
__device__ __forceinline__ void kcp_split(float x, uint32_t &hi, uint32_t &lo)
{
    if (KCP_SPLIT) {
        hi = kcp_tf32(x);
        lo = kcp_tf32(x - __uint_as_float(hi));
    } else {
        hi = __float_as_uint(x) + 0x1000u;
        lo = 0u;
    }
}
__device__ __forceinline__ void kcp_mma(float *d, const uint32_t *a, const uint32_t *b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <int M, int N, int WM> struct kcp_tc {
    static constexpr int WN = (KCP_NT / 32) / WM, TM = M / WM, TN = N / WN, MT = TM / 16, NT = TN / 8;
    static constexpr int NACC = MT * NT * 4;
    static_assert(MT * 16 * WM == M && NT * 8 * WN == N && MT > 0 && NT > 0, "kcp_tc: warp tiling");
    static __device__ __forceinline__ int row(int x)
    {
        const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
        return (w / WN) * TM + (x / (4 * NT)) * 16 + (lane >> 2) + ((x & 2) ? 8 : 0);
    }
    static __device__ __forceinline__ int col(int x)
    {
        const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
        return (w % WN) * TN + ((x >> 2) % NT) * 8 + 2 * (lane & 3) + (x & 1);
    }
    /* out[row*ld + col] = acc, two adjacent columns per 8-byte store (out and ld even) */
    static __device__ __forceinline__ void store(float *out, int ld, const float (&acc)[NACC])
    {
#pragma unroll
        for (int x = 0; x < NACC; x += 2)
            *(float2 *)(out + row(x) * ld + col(x)) = make_float2(acc[x], acc[x + 1]);
    }
    static __device__ __forceinline__ void zero(float (&acc)[NACC])
    {
#pragma unroll
        for (int x = 0; x < NACC; x++) acc[x] = 0.0f;
    }
    /* acc += A B over k < kn (kn a multiple of 8) */
    static __device__ __forceinline__ void mm(float (&acc)[NACC], const float *A, int sam, int sak, const float *B,
                                              int sbk, int sbn, int kn)
    {
        const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
        const float *Ab = A + ((w / WN) * TM + g) * sam + t * sak, *Bb = B + t * sbk + ((w % WN) * TN + g) * sbn;
#pragma unroll 2
        for (int k0 = 0; k0 < kn; k0 += 8) {
            uint32_t ah[MT][4], al[MT][4], bh[NT][2], bl[NT][2];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                const float *a = Ab + mt * 16 * sam + k0 * sak;
                kcp_split(a[0], ah[mt][0], al[mt][0]);
                kcp_split(a[8 * sam], ah[mt][1], al[mt][1]);
                kcp_split(a[4 * sak], ah[mt][2], al[mt][2]);
                kcp_split(a[8 * sam + 4 * sak], ah[mt][3], al[mt][3]);
            }
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                const float *bp = Bb + k0 * sbk + nt * 8 * sbn;
                kcp_split(bp[0], bh[nt][0], bl[nt][0]);
                kcp_split(bp[4 * sbk], bh[nt][1], bl[nt][1]);
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    float *d = acc + (mt * NT + nt) * 4;
                    if (KCP_SPLIT) {
                        kcp_mma(d, al[mt], bh[nt]);
                        kcp_mma(d, ah[mt], bl[nt]);
                    }
                    kcp_mma(d, ah[mt], bh[nt]);
                }
        }
    }
};

/* cp.async: 16-byte copies global -> shared that run while the block computes (one commit group per batch) */
__device__ __forceinline__ void kcp_cp16(float *dst, const float *src, bool valid = true)
{
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void kcp_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void kcp_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }
/* a contiguous [rows x width] block into dst[r*ld + x] (width, ld multiples of 4, 16-byte aligned) */
__device__ __forceinline__ void kcp_cp_block(float *dst, int ld, const float *src, int rows, int width)
{
    const int w4 = width / 4;
    for (int idx = threadIdx.x; idx < rows * w4; idx += KCP_NT) {
        int r = idx / w4, x = 4 * (idx % w4);
        kcp_cp16(dst + r * ld + x, src + (size_t)r * width + x);
    }
}
/* rows [0, 64) of width `width` at src + r*stride into dst[r*ld + x]; rows >= c filled with zeros */
__device__ __forceinline__ void kcp_cp_rows(float *dst, int ld, const float *src, size_t stride, int width, int c)
{
    const int w4 = width / 4;
    for (int idx = threadIdx.x; idx < KCP_CH * w4; idx += KCP_NT) {
        int r = idx / w4, x = 4 * (idx % w4);
        kcp_cp16(dst + r * ld + x, src + (size_t)(r < c ? r : 0) * stride + x, r < c);
    }
}

/* exp of the decay factors. KCP_FASTEXP (default 1): ex2.approx.ftz(x log2 e), the ex2 unit (~2 ulp plus the
 * rounding of x log2 e, ~1e-6 relative at |x| ~ 20; results below 2^-126 flush to 0, below any term that
 * matters) instead of expf's range reduction and exp2f's denormal handling. */
#ifndef KCP_FASTEXP
#define KCP_FASTEXP 1
#endif
__device__ __forceinline__ float kcp_exp(float x)
{
    if (!KCP_FASTEXP) return expf(x);
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.4426950408889634f));
    return y;
}

/* G[r][i] = sum_{j<=r} g_j (in place over the loaded g), one thread per column */
template <int K> __device__ __forceinline__ void kcp_cumsum(float *G, int ld)
{
    for (int i = threadIdx.x; i < K; i += KCP_NT) {
        float a = 0.0f;
        for (int r = 0; r < KCP_CH; r++) {
            a += G[r * ld + i];
            G[r * ld + i] = a;
        }
    }
}
/* The same with every thread of the block (the backward kernels, where one thread walking 64 rows per column
 * showed in the profiles), over W columns: thread (segment, column) sums 64 W / KCP_NT consecutive rows of its
 * column, and the segment sums meet in part (KCP_NT floats of shared scratch). The caller syncs after it. */
template <int W> __device__ __forceinline__ void kcp_cumsum_par(float *G, int ld, float *part)
{
    constexpr int P = KCP_NT / W, RS = KCP_CH / P; /* P segments of RS rows per column */
    static_assert(P * W == KCP_NT && P * RS == KCP_CH, "kcp_cumsum: shape");
    const int col = threadIdx.x % W, seg = threadIdx.x / W;
    float *g = G + seg * RS * ld + col, a = 0.0f;
    for (int r = 0; r < RS; r++) a += g[r * ld];
    part[threadIdx.x] = a;
    __syncthreads();
    a = 0.0f;
    for (int s2 = 0; s2 < seg; s2++) a += part[s2 * W + col];
    for (int r = 0; r < RS; r++) g[r * ld] = a += g[r * ld];
}
