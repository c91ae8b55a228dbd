// flash.cu - tensor-core causal GQA attention (FlashAttention-2 style): bf16 mma.sync, fp32 online softmax.
#include <math.h>

#include "kernels/cuda/cuda.cuh"

/*
 * For head dims 64 and 128 (attention.cu's fp32 SIMT kernels serve the rest). q, k, v, out stay fp32 in global
 * memory (the op table's layout [B,T,H,D]); tiles are converted to bf16 as they are staged in shared memory,
 * every product runs on mma.sync.m16n8k16 (bf16 in, fp32 accumulate), and the softmax statistics, lse, D and the
 * accumulators are fp32 -- the numerics of PyTorch's bf16 flash SDPA, with fp32 inputs.
 *   forward: K and V converted to bf16 once, tiles double-buffered with cp.async; one block (8 warps x 16 query rows) per (128-query tile, head,
 *            batch), key tiles of 64 in order, online softmax in registers, P re-used from the S accumulators as
 *            the A operand of P V; B operands stored k-major are read with ldmatrix.trans (no transposed copies).
 *   backward: D = rowsum(dO o O) (attention.cu), then dq (one block per query tile: S, P, dP = dO V^T,
 *            dS = P (dP - D), dq += dS K) and dk/dv (one block per 64-key tile of a kv head: walks the group's
 *            query heads and the query tiles at or after it; S^T, P^T, dV += P^T dO, dP^T = V dO^T, dK += dS^T Q):
 *            two kernels, one writer per output element, no atomics: deterministic.
 * Masks: key j is visible to query i iff j <= q_start[b] + i, j < Tk, and seg[b,j] == seg[b,i] when seg is given.
 */

#define BM 64
#define BN 64
#define NT 128 /* threads per block */

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ void mma16816(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

__device__ __forceinline__ uint32_t ld32(const bf16 *p) { return *(const uint32_t *)p; }

/* A fragment (16x16, row-major in smem with row stride ld) at rows r0.., cols c0.. */
__device__ __forceinline__ void frag_a(uint32_t *a, const bf16 *s, int ld, int r0, int c0, int g, int t)
{
    a[0] = ld32(s + (r0 + g) * ld + c0 + 2 * t);
    a[1] = ld32(s + (r0 + g + 8) * ld + c0 + 2 * t);
    a[2] = ld32(s + (r0 + g) * ld + c0 + 2 * t + 8);
    a[3] = ld32(s + (r0 + g + 8) * ld + c0 + 2 * t + 8);
}

/* B fragment (16 x 8, k x n) from smem holding n-major rows (row n has the k values contiguous) */
__device__ __forceinline__ void frag_b(uint32_t &b0, uint32_t &b1, const bf16 *s, int ld, int n0, int k0, int g, int t)
{
    b0 = ld32(s + (n0 + g) * ld + k0 + 2 * t);
    b1 = ld32(s + (n0 + g) * ld + k0 + 2 * t + 8);
}

/* B fragment (16 x 8, k x n) from smem holding k-major rows (row k has the n values contiguous): ldmatrix.trans,
 * lanes 0..15 address rows k0..k0+15 at column n0 (16-byte aligned rows). */
__device__ __forceinline__ void frag_bt(uint32_t &b0, uint32_t &b1, const bf16 *s, int ld, int k0, int n0, int lane)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(s + (k0 + (lane & 15)) * ld + n0);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(addr));
}

/* Two adjacent B fragments (n tiles n0 and n0 + 8) in one ldmatrix.x4: from n-major rows (b[0..1] tile n0,
 * b[2..3] tile n0 + 8), and from k-major rows with .trans. */
__device__ __forceinline__ void frag_b2(uint32_t *b, const bf16 *s, int ld, int n0, int k0, int lane)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(s + (n0 + (lane & 7) + ((lane >> 4) << 3)) * ld + k0 +
                                                       (((lane >> 3) & 1) << 3));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(addr));
}

__device__ __forceinline__ void frag_bt2(uint32_t *b, const bf16 *s, int ld, int k0, int n0, int lane)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(s + (k0 + (lane & 15)) * ld + n0 + ((lane >> 4) << 3));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(addr));
}

/* 16-byte asynchronous copy global -> shared; bytes 0 fills zeros (rows past the end). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes)
{
    uint32_t d = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }

/* Two 16x8 fp32 accumulator tiles (cols 16j..16j+15) as one bf16 A fragment (FA2's register re-use). */
__device__ __forceinline__ void acc_to_a(uint32_t *a, const float *c0, const float *c1)
{
    a[0] = pack_bf16(c0[0], c0[1]);
    a[1] = pack_bf16(c0[2], c0[3]);
    a[2] = pack_bf16(c1[0], c1[1]);
    a[3] = pack_bf16(c1[2], c1[3]);
}

/* Stage rows [r0, r0 + R) of a [*, H, D] fp32 tensor (head hh, rows < rmax) as bf16, times mul, into s
 * (row-major, stride ld). Rows past rmax are zeros. */
template <int D, int NTH>
__device__ __forceinline__ void stage(bf16 *s, int ld, const float *x, size_t base, int H, int hh, int r0, int R,
                                      int rmax, float mul)
{
    for (int e = threadIdx.x; e < R * D / 4; e += NTH) {
        int r = e / (D / 4), c = (e % (D / 4)) * 4;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r0 + r < rmax) v = *(const float4 *)(x + ((base + r0 + r) * H + hh) * D + c);
        uint2 w = make_uint2(pack_bf16(v.x * mul, v.y * mul), pack_bf16(v.z * mul, v.w * mul));
        *(uint2 *)(s + r * ld + c) = w;
    }
}

/* Asynchronous staging of rows [r0, r0 + R) of a bf16 [*, H, D] tensor (zeros past rmax) into s (stride ld). */
template <int D, int NTH>
__device__ __forceinline__ void stage_async(bf16 *s, int ld, const bf16 *x, size_t base, int H, int hh, int r0, int R,
                                            int rmax)
{
    for (int e = threadIdx.x; e < R * D / 8; e += NTH) {
        int r = e / (D / 8), c = (e % (D / 8)) * 8;
        bool in = r0 + r < rmax;
        cp_async16(s + r * ld + c, x + ((base + (in ? r0 + r : 0)) * H + hh) * D + c, in ? 16 : 0);
    }
}

/* fp32 -> bf16 copy of n values (n a multiple of 4) */
__global__ void to_bf16_kernel(bf16 *y, const float *x, size_t n4)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = ((const float4 *)x)[i];
        ((uint2 *)y)[i] = make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
}

/* ------------------------------------------------------------------ forward */

#define BMF 128 /* forward: query rows per block (8 warps) */
#define NTF 256

template <int D>
__global__ void __launch_bounds__(NTF) fa_fwd_kernel(float *out, float *lse, const float *q, const bf16 *k,
                                                     const bf16 *v, const int32_t *q_start, const int32_t *seg,
                                                     int Tq, int Tk, int Hq, int Hkv, float scale)
{
    constexpr int P = D + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *Kb = Qs + BMF * P, *Vb = Kb + 2 * BN * P; /* K, V: two buffers each */
    int *segk = (int *)(Vb + 2 * BN * P);
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, bb = blockIdx.z, kh = h / (Hq / Hkv);
    const int i0 = qt * BMF, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int qs0 = q_start ? q_start[bb] : 0;
    int kend = qs0 + min(i0 + BMF, Tq); /* keys [0, kend) can be visible to this tile */
    if (kend > Tk) kend = Tk;
    const int ntile = (kend + BN - 1) / BN;
    const size_t kbase = (size_t)bb * Tk;
    if (ntile > 0) {
        stage_async<D, NTF>(Kb, P, k, kbase, Hkv, kh, 0, BN, Tk);
        stage_async<D, NTF>(Vb, P, v, kbase, Hkv, kh, 0, BN, Tk);
    }
    cp_async_commit();
    stage<D, NTF>(Qs, P, q, (size_t)bb * Tq, Hq, h, i0, BMF, Tq, scale);
    __syncthreads();
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) frag_a(qf[kk], Qs, P, warp * 16, kk * 16, g, t);
    const int ia = i0 + warp * 16 + g, ib = ia + 8;
    const int lasta = qs0 + ia, lastb = qs0 + ib;
    const int sga = seg && ia < Tq ? seg[(size_t)bb * Tq + ia] : 0, sgb = seg && ib < Tq ? seg[(size_t)bb * Tq + ib] : 0;
    const int wlast = qs0 + min(i0 + warp * 16 + 15, Tq - 1); /* the last key this warp's rows can see */
    float o[D / 8][4], ma = -INFINITY, mb = -INFINITY, la = 0, lb = 0;
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0;
    for (int it = 0; it < ntile; it++) {
        const int j0 = it * BN;
        const bf16 *Ks = Kb + (it & 1) * BN * P, *Vs = Vb + (it & 1) * BN * P;
        if (it + 1 < ntile) { /* prefetch the next tile into the other buffers (freed by the last barrier) */
            stage_async<D, NTF>(Kb + ((it + 1) & 1) * BN * P, P, k, kbase, Hkv, kh, j0 + BN, BN, Tk);
            stage_async<D, NTF>(Vb + ((it + 1) & 1) * BN * P, P, v, kbase, Hkv, kh, j0 + BN, BN, Tk);
        }
        cp_async_commit();
        if (seg)
            for (int r = threadIdx.x; r < BN; r += NTF) segk[r] = j0 + r < Tk ? seg[(size_t)bb * Tk + j0 + r] : -1;
        cp_async_wait1(); /* this tile's group is complete */
        __syncthreads();
        if (j0 <= wlast) { /* else every key of the tile is in the future of this warp's rows */
            float s[BN / 8][4];
#pragma unroll
            for (int n = 0; n < BN / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
#pragma unroll
                for (int n = 0; n < BN / 8; n += 2) {
                    uint32_t bq[4];
                    frag_b2(bq, Ks, P, n * 8, kk * 16, lane);
                    mma16816(s[n], qf[kk], bq[0], bq[1]);
                    mma16816(s[n + 1], qf[kk], bq[2], bq[3]);
                }
            /* mask (only where the tile reaches the diagonal, the end of the keys, or with segments), row max */
            const bool need_mask = seg || j0 + BN - 1 > qs0 + i0 + warp * 16 || j0 + BN > Tk;
            float mxa = -INFINITY, mxb = -INFINITY;
#pragma unroll
            for (int n = 0; n < BN / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    if (need_mask) {
                        int j = j0 + n * 8 + 2 * t + (e & 1);
                        bool okr = e < 2 ? (j <= lasta && (!seg || segk[j - j0] == sga))
                                         : (j <= lastb && (!seg || segk[j - j0] == sgb));
                        if (!okr || j >= Tk) s[n][e] = -INFINITY;
                    }
                    if (e < 2) mxa = fmaxf(mxa, s[n][e]);
                    else mxb = fmaxf(mxb, s[n][e]);
                }
            mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 1));
            mxa = fmaxf(mxa, __shfl_xor_sync(0xffffffffu, mxa, 2));
            mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 1));
            mxb = fmaxf(mxb, __shfl_xor_sync(0xffffffffu, mxb, 2));
            float mna = fmaxf(ma, mxa), mnb = fmaxf(mb, mxb);
            float basea = mna == -INFINITY ? 0.f : mna, baseb = mnb == -INFINITY ? 0.f : mnb;
            float ca = __expf(ma - basea), cb = __expf(mb - baseb);
            ma = mna, mb = mnb;
            la *= ca, lb *= cb;
#pragma unroll
            for (int n = 0; n < BN / 8; n++) {
                s[n][0] = __expf(s[n][0] - basea), s[n][1] = __expf(s[n][1] - basea);
                s[n][2] = __expf(s[n][2] - baseb), s[n][3] = __expf(s[n][3] - baseb);
                la += s[n][0] + s[n][1], lb += s[n][2] + s[n][3];
            }
#pragma unroll
            for (int n = 0; n < D / 8; n++) o[n][0] *= ca, o[n][1] *= ca, o[n][2] *= cb, o[n][3] *= cb;
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[4];
                acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
                for (int n = 0; n < D / 8; n += 2) {
                    uint32_t bv[4];
                    frag_bt2(bv, Vs, P, kk * 16, n * 8, lane);
                    mma16816(o[n], a, bv[0], bv[1]);
                    mma16816(o[n + 1], a, bv[2], bv[3]);
                }
            }
        }
        __syncthreads(); /* all reads of this tile's buffers (and segk) are done */
    }
    la += __shfl_xor_sync(0xffffffffu, la, 1);
    la += __shfl_xor_sync(0xffffffffu, la, 2);
    lb += __shfl_xor_sync(0xffffffffu, lb, 1);
    lb += __shfl_xor_sync(0xffffffffu, lb, 2);
    float inva = la > 0 ? 1.f / la : 0.f, invb = lb > 0 ? 1.f / lb : 0.f;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        int c = n * 8 + 2 * t;
        if (ia < Tq) *(float2 *)(out + (((size_t)bb * Tq + ia) * Hq + h) * D + c) = make_float2(o[n][0] * inva, o[n][1] * inva);
        if (ib < Tq) *(float2 *)(out + (((size_t)bb * Tq + ib) * Hq + h) * D + c) = make_float2(o[n][2] * invb, o[n][3] * invb);
    }
    if (lse && t == 0) {
        if (ia < Tq) lse[((size_t)bb * Hq + h) * Tq + ia] = la > 0 ? ma + logf(la) : -INFINITY;
        if (ib < Tq) lse[((size_t)bb * Hq + h) * Tq + ib] = lb > 0 ? mb + logf(lb) : -INFINITY;
    }
}

/* ------------------------------------------------------------------ backward: dq */

template <int D>
__global__ void __launch_bounds__(NT) fa_bwd_dq_kernel(float *dq, const float *dout, const float *q, const float *k,
                                                       const float *v, const float *lse, const float *Dv,
                                                       const int32_t *seg, int T, int Hq, int Hkv, float scale)
{
    constexpr int P = D + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *dOs = Qs + BM * P, *Ks = dOs + BM * P, *Vs = Ks + BN * P;
    int *segk = (int *)(Vs + BN * P);
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, bb = blockIdx.z, kh = h / (Hq / Hkv);
    const int i0 = qt * BM, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    stage<D, NT>(Qs, P, q, (size_t)bb * T, Hq, h, i0, BM, T, scale);
    stage<D, NT>(dOs, P, dout, (size_t)bb * T, Hq, h, i0, BM, T, 1.0f);
    const int ia = i0 + warp * 16 + g, ib = ia + 8;
    const size_t ra = ((size_t)bb * Hq + h) * T + ia, rb = ra + 8;
    const float La = ia < T ? lse[ra] : 0.f, Lb = ib < T ? lse[rb] : 0.f;
    const float Da = ia < T ? Dv[ra] : 0.f, Db = ib < T ? Dv[rb] : 0.f;
    const int sga = seg && ia < T ? seg[(size_t)bb * T + ia] : 0, sgb = seg && ib < T ? seg[(size_t)bb * T + ib] : 0;
    const int kend = min(i0 + BM, T);
    float acc[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0;
    for (int j0 = 0; j0 < kend; j0 += BN) {
        __syncthreads();
        stage<D, NT>(Ks, P, k, (size_t)bb * T, Hkv, kh, j0, BN, T, 1.0f);
        stage<D, NT>(Vs, P, v, (size_t)bb * T, Hkv, kh, j0, BN, T, 1.0f);
        if (seg)
            for (int r = threadIdx.x; r < BN; r += NT) segk[r] = j0 + r < T ? seg[(size_t)bb * T + j0 + r] : -1;
        __syncthreads();
        float s[BN / 8][4], dp[BN / 8][4];
#pragma unroll
        for (int n = 0; n < BN / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            uint32_t a[4], ad[4];
            frag_a(a, Qs, P, warp * 16, kk * 16, g, t);
            frag_a(ad, dOs, P, warp * 16, kk * 16, g, t);
#pragma unroll
            for (int n = 0; n < BN / 8; n++) {
                uint32_t b0, b1;
                frag_b(b0, b1, Ks, P, n * 8, kk * 16, g, t);
                mma16816(s[n], a, b0, b1);
                frag_b(b0, b1, Vs, P, n * 8, kk * 16, g, t);
                mma16816(dp[n], ad, b0, b1);
            }
        }
#pragma unroll
        for (int n = 0; n < BN / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = j0 + n * 8 + 2 * t + (e & 1);
                bool up = e < 2;
                int i = up ? ia : ib;
                bool ok = j <= i && i < T && j < T && (!seg || segk[j - j0] == (up ? sga : sgb));
                float p = ok ? __expf(s[n][e] - (up ? La : Lb)) : 0.f;
                s[n][e] = p * (dp[n][e] - (up ? Da : Db)); /* dS (scale applied at the end) */
            }
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t a[4];
            acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                uint32_t b0, b1;
                frag_bt(b0, b1, Ks, P, kk * 16, n * 8, lane);
                mma16816(acc[n], a, b0, b1);
            }
        }
    }
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        int c = n * 8 + 2 * t;
        if (ia < T) {
            float2 *p = (float2 *)(dq + (((size_t)bb * T + ia) * Hq + h) * D + c);
            float2 x = *p;
            *p = make_float2(x.x + scale * acc[n][0], x.y + scale * acc[n][1]);
        }
        if (ib < T) {
            float2 *p = (float2 *)(dq + (((size_t)bb * T + ib) * Hq + h) * D + c);
            float2 x = *p;
            *p = make_float2(x.x + scale * acc[n][2], x.y + scale * acc[n][3]);
        }
    }
}

/* ------------------------------------------------------------------ backward: dk, dv */

template <int D>
__global__ void __launch_bounds__(NT) fa_bwd_dkv_kernel(float *dk, float *dv, const float *dout, const float *q,
                                                        const float *k, const float *v, const float *lse,
                                                        const float *Dv, const int32_t *seg, int T, int Hq, int Hkv,
                                                        float scale)
{
    constexpr int P = D + 8;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Ks = (bf16 *)smem, *Vs = Ks + BN * P, *Qs = Vs + BN * P, *dOs = Qs + BM * P;
    float *Ls = (float *)(dOs + BM * P), *Ds = Ls + BM;
    int *segq = (int *)(Ds + BM);
    const int kt = gridDim.x - 1 - blockIdx.x, kh = blockIdx.y, bb = blockIdx.z, grp = Hq / Hkv;
    const int j0 = kt * BN, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    stage<D, NT>(Ks, P, k, (size_t)bb * T, Hkv, kh, j0, BN, T, 1.0f);
    stage<D, NT>(Vs, P, v, (size_t)bb * T, Hkv, kh, j0, BN, T, 1.0f);
    const int ja = j0 + warp * 16 + g, jb = ja + 8; /* this thread's key rows */
    const int sja = seg && ja < T ? seg[(size_t)bb * T + ja] : 0, sjb = seg && jb < T ? seg[(size_t)bb * T + jb] : 0;
    float ak[D / 8][4], av[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) ak[n][e] = av[n][e] = 0;
    for (int h = kh * grp; h < (kh + 1) * grp; h++)
        for (int i0 = j0; i0 < T; i0 += BM) {
            __syncthreads();
            stage<D, NT>(Qs, P, q, (size_t)bb * T, Hq, h, i0, BM, T, scale);
            stage<D, NT>(dOs, P, dout, (size_t)bb * T, Hq, h, i0, BM, T, 1.0f);
            for (int r = threadIdx.x; r < BM; r += NT) {
                int i = i0 + r;
                size_t row = ((size_t)bb * Hq + h) * T + i;
                Ls[r] = i < T ? lse[row] : 0.f;
                Ds[r] = i < T ? Dv[row] : 0.f;
                segq[r] = seg && i < T ? seg[(size_t)bb * T + i] : 0;
            }
            __syncthreads();
            float s[BM / 8][4], dp[BM / 8][4]; /* S^T, dP^T: rows = keys, cols = queries */
#pragma unroll
            for (int n = 0; n < BM / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t a[4], avf[4];
                frag_a(a, Ks, P, warp * 16, kk * 16, g, t);
                frag_a(avf, Vs, P, warp * 16, kk * 16, g, t);
#pragma unroll
                for (int n = 0; n < BM / 8; n++) {
                    uint32_t b0, b1;
                    frag_b(b0, b1, Qs, P, n * 8, kk * 16, g, t);
                    mma16816(s[n], a, b0, b1);
                    frag_b(b0, b1, dOs, P, n * 8, kk * 16, g, t);
                    mma16816(dp[n], avf, b0, b1);
                }
            }
#pragma unroll
            for (int n = 0; n < BM / 8; n++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int ci = n * 8 + 2 * t + (e & 1), i = i0 + ci;
                    bool up = e < 2;
                    int j = up ? ja : jb;
                    bool ok = j <= i && i < T && j < T && (!seg || segq[ci] == (up ? sja : sjb));
                    float p = ok ? __expf(s[n][e] - Ls[ci]) : 0.f;
                    s[n][e] = p;                         /* P^T */
                    dp[n][e] = p * (dp[n][e] - Ds[ci]);  /* dS^T */
                }
#pragma unroll
            for (int kk = 0; kk < BM / 16; kk++) {
                uint32_t ap[4], ad[4];
                acc_to_a(ap, s[2 * kk], s[2 * kk + 1]);
                acc_to_a(ad, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
                for (int n = 0; n < D / 8; n++) {
                    uint32_t b0, b1;
                    frag_bt(b0, b1, dOs, P, kk * 16, n * 8, lane);
                    mma16816(av[n], ap, b0, b1);
                    frag_bt(b0, b1, Qs, P, kk * 16, n * 8, lane);
                    mma16816(ak[n], ad, b0, b1);
                }
            }
        }
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        int c = n * 8 + 2 * t;
        /* Qs holds scale * q, so ak is already scale * dS^T q */
        if (ja < T) {
            size_t o = (((size_t)bb * T + ja) * Hkv + kh) * D + c;
            float2 x = *(float2 *)(dk + o), y = *(float2 *)(dv + o);
            *(float2 *)(dk + o) = make_float2(x.x + ak[n][0], x.y + ak[n][1]);
            *(float2 *)(dv + o) = make_float2(y.x + av[n][0], y.y + av[n][1]);
        }
        if (jb < T) {
            size_t o = (((size_t)bb * T + jb) * Hkv + kh) * D + c;
            float2 x = *(float2 *)(dk + o), y = *(float2 *)(dv + o);
            *(float2 *)(dk + o) = make_float2(x.x + ak[n][2], x.y + ak[n][3]);
            *(float2 *)(dv + o) = make_float2(y.x + av[n][2], y.y + av[n][3]);
        }
    }
}

/* ------------------------------------------------------------------ host */

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <int D> static size_t fwd_smem() { return (size_t)(BMF + 4 * BN) * (D + 8) * 2 + BN * 4; }
template <int D> static size_t dq_smem() { return (size_t)(2 * BM + 2 * BN) * (D + 8) * 2 + BN * 4; }
template <int D> static size_t dkv_smem() { return (size_t)(2 * BN + 2 * BM) * (D + 8) * 2 + 3 * BM * 4; }

template <int D>
static void fwd_launch(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                       const int32_t *q_start, const int32_t *seg, const k_attn_shape *s)
{
    static bool init;
    size_t sm = fwd_smem<D>();
    if (!init) {
        CK(cudaFuncSetAttribute(fa_fwd_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        init = true;
    }
    /* K and V once to bf16 (every query tile reads them: half the traffic, no conversion in the loop) */
    size_t nkv = (size_t)s->B * s->Tk * s->Hkv * D;
    bf16 *kb = (bf16 *)kcuda_scratch(b, 2 * nkv * sizeof(bf16)), *vb = kb + nkv;
    to_bf16_kernel<<<kc_blocks(nkv / 4, 256) < 4096 ? kc_blocks(nkv / 4, 256) : 4096, 256, 0, KCUDA_STREAM(b)>>>(kb, k, nkv / 4);
    to_bf16_kernel<<<kc_blocks(nkv / 4, 256) < 4096 ? kc_blocks(nkv / 4, 256) : 4096, 256, 0, KCUDA_STREAM(b)>>>(vb, v, nkv / 4);
    KLAUNCH_CHECK();
    dim3 grid((s->Tq + BMF - 1) / BMF, s->Hq, s->B);
    fa_fwd_kernel<D><<<grid, NTF, sm, KCUDA_STREAM(b)>>>(out, lse, q, kb, vb, q_start, seg, s->Tq, s->Tk, s->Hq,
                                                          s->Hkv, s->scale);
    KLAUNCH_CHECK();
}

template <int D>
static void bwd_launch(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q,
                       const float *k, const float *v, const float *lse, const float *Dv, const int32_t *seg,
                       const k_attn_shape *s)
{
    static bool init;
    size_t s1 = dq_smem<D>(), s2 = dkv_smem<D>();
    if (!init) {
        CK(cudaFuncSetAttribute(fa_bwd_dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s1));
        CK(cudaFuncSetAttribute(fa_bwd_dkv_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s2));
        init = true;
    }
    int T = s->Tq;
    fa_bwd_dq_kernel<D><<<dim3((T + BM - 1) / BM, s->Hq, s->B), NT, s1, KCUDA_STREAM(b)>>>(
        dq, dout, q, k, v, lse, Dv, seg, T, s->Hq, s->Hkv, s->scale);
    KLAUNCH_CHECK();
    fa_bwd_dkv_kernel<D><<<dim3((T + BN - 1) / BN, s->Hkv, s->B), NT, s2, KCUDA_STREAM(b)>>>(
        dk, dv, dout, q, k, v, lse, Dv, seg, T, s->Hq, s->Hkv, s->scale);
    KLAUNCH_CHECK();
}

/* Whether the tensor-core path takes this shape: head dim 64 or 128, 16-byte aligned rows, smem available. */
int kcuda_flash_ok(k_backend *b, const k_attn_shape *s, const void *p0, const void *p1, const void *p2,
                   const void *p3)
{
    if (getenv("HX_CUDA_SIMT_ATTN")) return 0; /* the fp32 SIMT kernels, for comparisons */
    if ((s->K != 64 && s->K != 128) || s->Hq % s->Hkv) return 0;
    /* decode steps (a few queries against a whole KV cache): the SIMT kernel reads the cache once, where this
     * path would first convert all Tk cached keys to bf16 for every step */
    if (s->Tq < 16) return 0;
    if (!aligned16(p0) || !aligned16(p1) || !aligned16(p2) || !aligned16(p3)) return 0;
    size_t need = s->K == 64 ? dkv_smem<64>() : dkv_smem<128>();
    return KCUDA_CTX(b)->smem_optin >= need;
}

/* flash_sm90.cu: the Hopper (wgmma + TMA) forward for head dim 128 without segments */
int kcuda_fa3_ok(k_backend *b, const k_attn_shape *s);
void kcuda_fa3_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *q_start, const k_attn_shape *s);

void kcuda_flash_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                     const int32_t *q_start, const int32_t *seg, const k_attn_shape *s)
{
    if (!seg && kcuda_fa3_ok(b, s)) {
        kcuda_fa3_fwd(b, out, lse, q, k, v, q_start, s);
        return;
    }
    if (s->K == 64) fwd_launch<64>(b, out, lse, q, k, v, q_start, seg, s);
    else fwd_launch<128>(b, out, lse, q, k, v, q_start, seg, s);
}

void kcuda_flash_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                     const float *v, const float *lse, const float *Dv, const int32_t *seg, const k_attn_shape *s)
{
    if (s->K == 64) bwd_launch<64>(b, dq, dk, dv, dout, q, k, v, lse, Dv, seg, s);
    else bwd_launch<128>(b, dq, dk, dv, dout, q, k, v, lse, Dv, seg, s);
}
