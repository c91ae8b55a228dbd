// flash_sm90.cu - Hopper causal GQA attention forward (FlashAttention-3 style): TMA, mbarriers, wgmma, head dim 128.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cudaTypedefs.h>

#ifndef FA3_STANDALONE
#include "kernels/cuda/cuda.cuh"
#endif

/*
 * The forward of flash.cu for head dim 128 on sm_90 (this file is built for sm_90a only: wgmma, setmaxnreg).
 * Same contract and numerics: q, k, v, out fp32 [B,T,H,128] in memory, bf16 operands with fp32 accumulation,
 * fp32 online softmax, lse [B,Hq,Tq] = m + log(l) of the scaled scores (what flash.cu's backward expects).
 *
 * Per call: q (times scale), k and v are converted once to bf16 scratch in the same [B,T,H,128] layout; three
 * TMA tensor maps (4-D: d, head, time, batch; boxes of 64 d x 128 rows with the 128-byte swizzle) read them.
 * One block of 3 warpgroups per (128-query tile, q head, batch), heaviest (last) tiles first:
 *   warpgroup 0 (producer, 24 registers): one thread issues the TMA loads of the Q tile and of the K and V
 *     tiles (128 keys) into 2-stage rings; full/empty mbarriers per stage, K and V separately.
 *   warpgroups 1, 2 (consumers, 240 registers): 64 query rows each. S = Q K^T by wgmma m64n128k16 with both
 *     operands from shared memory (K-major descriptors), fp32 online softmax on the accumulators (base 2,
 *     the scale folded into Q), P converted to bf16 in registers and used as the register A operand of
 *     O += P V (V stored key-major, so its descriptor is MN-major: the transpose bit).
 *     Key tiles are walked from the diagonal down, so only the first one or two need a mask. FA3's
 *     intra-warpgroup overlap: tile n's S = Q K^T is issued together with tile n+1's P V, and tile n's softmax
 *     runs while that P V is on the tensor cores (measured on an H200: 636 TFLOP/s at T = 128K against 581
 *     without the overlap; FA3's pingpong between the two consumer warpgroups on top of it measured 628).
 * Visibility: key j is visible to query i iff j <= q_start[b] + i and j < Tk (no packed segments: flash.cu).
 *
 * Shared memory, 1024-byte aligned (the 128-byte swizzle repeats every 8 rows of 128 bytes):
 *   Q [2 halves of d][128 rows][64] bf16 (32 KB), K[2 stages] and V[2 stages] likewise, then the mbarriers.
 * wgmma descriptors (PTX ISA, matrix descriptor): start >> 4 (bits 0-13), leading byte offset >> 4 (16-29),
 * stride byte offset >> 4 (32-45), swizzle mode (62-63, 1 = 128 B). K-major Q, K: stride 1024 (8 rows of
 * 128 B), each k16 step +32 B within the 128-byte row, the second half of d +16 KB. MN-major V: leading
 * offset 16 KB (the next 64 columns of d), stride 1024 (the next 8 keys), each k16 step +2 KB (16 keys).
 */

typedef __nv_bfloat16 bf16;

#define F3_BM 128 /* query rows per block (2 consumer warpgroups x 64) */
#define F3_BN 128 /* keys per tile */
#define F3_D 128
#define F3_NST 2               /* pipeline stages of K and V */
#define F3_TILE (128 * 128 * 2) /* bytes of one 128 x 128 bf16 tile */
#define F3_HALF (128 * 64 * 2)  /* one 64-column half of it */
#define F3_SMEM (F3_TILE * (1 + 2 * F3_NST) + 1024 + 256)

/* ------------------------------------------------------------------ PTX wrappers */

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint32_t bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    } while (!done);
}

/* TMA: a box of the 4-D tensor map at coordinates (c0 innermost) into shared memory, completing on bar */
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap *map, int c0, int c1, int c2, int c3,
                                         uint32_t bar)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
                 "%4, %5}], [%6];\n" ::"r"(dst), "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
                 : "memory");
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Registers an in-flight wgmma reads or writes must not be touched (or reused) before its wait: this empty asm
 * "redefines" them after the wait, so the compiler keeps them live until then and orders later uses after it. */
template <int N> __device__ __forceinline__ void reg_fence(float (&r)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N> __device__ __forceinline__ void reg_fence(uint32_t (&r)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+r"(r[i])::"memory");
}

__device__ __forceinline__ uint64_t gdesc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) |
           (1ull << 62);
}

#define F3_ACC8(d, i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
                      "+f"(d[i + 6]), "+f"(d[i + 7])
#define F3_ACC64(d) F3_ACC8(d, 0), F3_ACC8(d, 8), F3_ACC8(d, 16), F3_ACC8(d, 24), F3_ACC8(d, 32), F3_ACC8(d, 40), \
                    F3_ACC8(d, 48), F3_ACC8(d, 56)
#define F3_REGS64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
                  "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, "   \
                  "%40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, "   \
                  "%59, %60, %61, %62, %63}"

/* d[64x128] (+)= A[64x16] B[16x128], A and B (K-major) from shared memory; acc 0 overwrites d */
__device__ __forceinline__ void wgmma_ss(float (&d)[64], uint64_t da, uint64_t db, int acc)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " F3_REGS64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : F3_ACC64(d)
                 : "l"(da), "l"(db), "r"(acc)
                 : "memory");
}

/* d[64x128] += A[64x16] B[16x128], A from registers (the accumulator layout of a k16 slice, as bf16 pairs),
 * B MN-major (transposed) from shared memory */
__device__ __forceinline__ void wgmma_rs(float (&d)[64], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " F3_REGS64
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : F3_ACC64(d)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1)
                 : "memory");
}

__device__ __forceinline__ float ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

/* ------------------------------------------------------------------ the kernel */

struct f3_bars { /* shared-memory addresses of the mbarriers */
    uint32_t q, kfull, vfull, kempty, vempty; /* + 8 * stage */
};

/* S = Q K^T for this warpgroup's 64 rows: 8 k16 steps over d (two 64-column halves of 4 steps each) */
__device__ __forceinline__ void gemm_qk(float (&s)[64], uint32_t qa, uint32_t ka)
{
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        uint32_t off = (kk >> 2) * F3_HALF + (kk & 3) * 32;
        wgmma_ss(s, gdesc(qa + off, 16, 1024), gdesc(ka + off, 16, 1024), kk);
    }
}

/* O += P V: 8 k16 steps over the tile's keys, P from registers */
__device__ __forceinline__ void gemm_pv(float (&o)[64], const uint32_t (&p)[32], uint32_t va)
{
#pragma unroll
    for (int kk = 0; kk < 8; kk++)
        wgmma_rs(o, p[4 * kk], p[4 * kk + 1], p[4 * kk + 2], p[4 * kk + 3], gdesc(va + kk * 2048, F3_HALF, 1024));
}

#define F3_L2E 1.4426950408889634f

/* Online softmax over one tile of S (this thread: rows ra, rb = ra + 8; accumulator element s[4n + e] is
 * column 8n + 2t + (e & 1), row e < 2 ? ra : rb). Masks when asked, updates the running max m (natural units)
 * and partial row sums l, replaces s by exp(s - m) and returns the factors (ca, cb) the old O must be scaled by. */
__device__ __forceinline__ void softmax_tile(float (&s)[64], float &ma, float &mb, float &la, float &lb, float &ca,
                                             float &cb, bool mask, int j0, int lasta, int lastb, int Tk, int t)
{
    if (mask) {
#pragma unroll
        for (int n = 0; n < 16; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int j = j0 + 8 * n + 2 * t + (e & 1);
                if (j > (e < 2 ? lasta : lastb) || j >= Tk) s[4 * n + e] = -INFINITY;
            }
    }
    float xa = ma, xb = mb;
#pragma unroll
    for (int n = 0; n < 16; n++) {
        xa = fmaxf(xa, fmaxf(s[4 * n], s[4 * n + 1]));
        xb = fmaxf(xb, fmaxf(s[4 * n + 2], s[4 * n + 3]));
    }
    xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 1));
    xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 2));
    xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 1));
    xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 2));
    /* a row with nothing visible yet keeps max -inf: use base 0 so exp gives 0, never NaN */
    const float ba = xa == -INFINITY ? 0.f : xa * F3_L2E, bb = xb == -INFINITY ? 0.f : xb * F3_L2E;
    ca = ex2(ma * F3_L2E - ba);
    cb = ex2(mb * F3_L2E - bb);
    ma = xa, mb = xb;
    float sa = 0.f, sb = 0.f;
#pragma unroll
    for (int n = 0; n < 16; n++) {
        s[4 * n] = ex2(fmaf(s[4 * n], F3_L2E, -ba));
        s[4 * n + 1] = ex2(fmaf(s[4 * n + 1], F3_L2E, -ba));
        s[4 * n + 2] = ex2(fmaf(s[4 * n + 2], F3_L2E, -bb));
        s[4 * n + 3] = ex2(fmaf(s[4 * n + 3], F3_L2E, -bb));
        sa += s[4 * n] + s[4 * n + 1];
        sb += s[4 * n + 2] + s[4 * n + 3];
    }
    la = la * ca + sa;
    lb = lb * cb + sb;
}

/* P (bf16 A fragments, k16 slice kk = accumulator columns 16kk..16kk+15) from the exp'd scores */
__device__ __forceinline__ void to_p(uint32_t (&p)[32], const float (&s)[64])
{
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
        p[4 * kk] = pack_bf16x2(s[8 * kk], s[8 * kk + 1]);
        p[4 * kk + 1] = pack_bf16x2(s[8 * kk + 2], s[8 * kk + 3]);
        p[4 * kk + 2] = pack_bf16x2(s[8 * kk + 4], s[8 * kk + 5]);
        p[4 * kk + 3] = pack_bf16x2(s[8 * kk + 6], s[8 * kk + 7]);
    }
}

__device__ __forceinline__ void scale_o(float (&o)[64], float ca, float cb)
{
#pragma unroll
    for (int n = 0; n < 16; n++) o[4 * n] *= ca, o[4 * n + 1] *= ca, o[4 * n + 2] *= cb, o[4 * n + 3] *= cb;
}

/* one arrive per warp on an empty barrier (count 8: the consumer warps), after the warp's wgmma wait */
__device__ __forceinline__ void release(uint32_t bar)
{
    __syncwarp();
    if ((threadIdx.x & 31) == 0) mbar_arrive(bar);
}

/* One consumer warpgroup (cw 0 or 1: query rows i0 + 64 cw ..): S, softmax, O over the key tiles. */
__device__ __forceinline__ void f3_consume(const f3_bars &bar, uint32_t sQ, uint32_t sK, uint32_t sV, float *out,
                                           float *lse, int Tq, int Tk, int Hq, int h, int bb, int i0, int qs0,
                                           int ntile, int cw)
{
    const int w = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int r0 = i0 + 64 * cw;            /* this warpgroup's first query row */
    const int ra = r0 + 16 * w + g, rb = ra + 8; /* this thread's rows */
    const int lasta = qs0 + ra, lastb = qs0 + rb; /* the last key each row sees */
    const uint32_t qa = sQ + cw * (64 * 128); /* 64 rows of 128 bytes into each half */
    float o[64], s[64], ma = -INFINITY, mb = -INFINITY, la = 0.f, lb = 0.f, ca, cb;
    uint32_t p[32];
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = 0.f;
    mbar_wait(bar.q, 0);

    if (ntile > 0) { /* the first (diagonal) tile: S, softmax, P; O is still zero */
        const int j0 = (ntile - 1) * F3_BN;
        mbar_wait(bar.kfull, 0);
        wg_fence();
        gemm_qk(s, qa, sK);
        wg_commit();
        wg_wait<0>();
        reg_fence(s);
        release(bar.kempty);
        softmax_tile(s, ma, mb, la, lb, ca, cb, true, j0, lasta, lastb, Tk, t);
        to_p(p, s);
        for (int it = 1; it < ntile; it++) {
            const int st = it % F3_NST, pst = (it - 1) % F3_NST, n = ntile - 1 - it, j0 = n * F3_BN;
            const uint32_t par = (it / F3_NST) & 1, ppar = ((it - 1) / F3_NST) & 1;
            mbar_wait(bar.kfull + 8 * st, par);
            mbar_wait(bar.vfull + 8 * pst, ppar);
            wg_fence();
            gemm_qk(s, qa, sK + st * F3_TILE); /* S of this tile ... */
            wg_commit();
            gemm_pv(o, p, sV + pst * F3_TILE); /* ... while the last tile's P V runs */
            wg_commit();
            wg_wait<1>();
            reg_fence(s);
            release(bar.kempty + 8 * st);
            const bool mask = j0 + F3_BN - 1 > qs0 + r0 || j0 + F3_BN > Tk;
            softmax_tile(s, ma, mb, la, lb, ca, cb, mask, j0, lasta, lastb, Tk, t);
            wg_wait<0>();
            reg_fence(o);
            reg_fence(p);
            release(bar.vempty + 8 * pst);
            scale_o(o, ca, cb);
            to_p(p, s);
        }
        const int lst = (ntile - 1) % F3_NST;
        mbar_wait(bar.vfull + 8 * lst, ((ntile - 1) / F3_NST) & 1);
        wg_fence();
        gemm_pv(o, p, sV + lst * F3_TILE);
        wg_commit();
        wg_wait<0>();
        reg_fence(o);
        reg_fence(p);
        release(bar.vempty + 8 * lst);
    }

    la += __shfl_xor_sync(0xffffffffu, la, 1);
    la += __shfl_xor_sync(0xffffffffu, la, 2);
    lb += __shfl_xor_sync(0xffffffffu, lb, 1);
    lb += __shfl_xor_sync(0xffffffffu, lb, 2);
    const float inva = la > 0 ? 1.f / la : 0.f, invb = lb > 0 ? 1.f / lb : 0.f;
    float *oa = out + (((size_t)bb * Tq + ra) * Hq + h) * F3_D, *ob = oa + (size_t)8 * Hq * F3_D;
#pragma unroll
    for (int n = 0; n < 16; n++) {
        const int c = 8 * n + 2 * t;
        if (ra < Tq) *(float2 *)(oa + c) = make_float2(o[4 * n] * inva, o[4 * n + 1] * inva);
        if (rb < Tq) *(float2 *)(ob + c) = make_float2(o[4 * n + 2] * invb, o[4 * n + 3] * invb);
    }
    if (lse && t == 0) {
        if (ra < Tq) lse[((size_t)bb * Hq + h) * Tq + ra] = la > 0 ? ma + logf(la) : -INFINITY;
        if (rb < Tq) lse[((size_t)bb * Hq + h) * Tq + rb] = lb > 0 ? mb + logf(lb) : -INFINITY;
    }
}

__global__ void __launch_bounds__(384, 1)
    fa3_fwd_kernel(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap tk,
                   const __grid_constant__ CUtensorMap tv, float *out, float *lse, const int32_t *q_start, int Tq,
                   int Tk, int Hq, int Hkv)
{
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023) & ~1023u;
    const uint32_t sQ = base, sK = base + F3_TILE, sV = sK + F3_NST * F3_TILE, sB = sV + F3_NST * F3_TILE;
    const f3_bars bar = {sB, sB + 8, sB + 8 + 8 * F3_NST, sB + 8 + 16 * F3_NST, sB + 8 + 24 * F3_NST};
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, bb = blockIdx.z, kh = h / (Hq / Hkv);
    const int i0 = qt * F3_BM, qs0 = q_start ? q_start[bb] : 0;
    const int kend = min(qs0 + min(i0 + F3_BM, Tq), Tk); /* keys [0, kend) can be visible to this tile */
    const int ntile = kend > 0 ? (kend + F3_BN - 1) / F3_BN : 0;
    const int wg = threadIdx.x >> 7;
    if (threadIdx.x == 0) {
        mbar_init(bar.q, 1);
        for (int s = 0; s < F3_NST; s++) {
            mbar_init(bar.kfull + 8 * s, 1);
            mbar_init(bar.vfull + 8 * s, 1);
            mbar_init(bar.kempty + 8 * s, 8);
            mbar_init(bar.vempty + 8 * s, 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (wg == 0) { /* producer */
        asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
        if (threadIdx.x == 0) {
            mbar_expect_tx(bar.q, F3_TILE);
            tma_load(sQ, &tq, 0, h, i0, bb, bar.q);
            tma_load(sQ + F3_HALF, &tq, 64, h, i0, bb, bar.q);
            for (int it = 0; it < ntile; it++) {
                const int st = it % F3_NST, n = ntile - 1 - it;
                const uint32_t par = ((it / F3_NST) & 1) ^ 1;
                if (it >= F3_NST) mbar_wait(bar.kempty + 8 * st, par);
                mbar_expect_tx(bar.kfull + 8 * st, F3_TILE);
                tma_load(sK + st * F3_TILE, &tk, 0, kh, n * F3_BN, bb, bar.kfull + 8 * st);
                tma_load(sK + st * F3_TILE + F3_HALF, &tk, 64, kh, n * F3_BN, bb, bar.kfull + 8 * st);
                if (it >= F3_NST) mbar_wait(bar.vempty + 8 * st, par);
                mbar_expect_tx(bar.vfull + 8 * st, F3_TILE);
                tma_load(sV + st * F3_TILE, &tv, 0, kh, n * F3_BN, bb, bar.vfull + 8 * st);
                tma_load(sV + st * F3_TILE + F3_HALF, &tv, 64, kh, n * F3_BN, bb, bar.vfull + 8 * st);
            }
        }
    } else { /* consumers */
        asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
        f3_consume(bar, sQ, sK, sV, out, lse, Tq, Tk, Hq, h, bb, i0, qs0, ntile, wg - 1);
    }
}
/* fp32 -> bf16 (times mul) of n4 groups of 4 values */
__global__ void f3_to_bf16(bf16 *y, const float *x, size_t n4, float mul)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = ((const float4 *)x)[i];
        ((uint2 *)y)[i] = make_uint2(pack_bf16x2(v.x * mul, v.y * mul), pack_bf16x2(v.z * mul, v.w * mul));
    }
}

/* ------------------------------------------------------------------ host */

static PFN_cuTensorMapEncodeTiled_v12000 f3_encode; /* the driver's cuTensorMapEncodeTiled, found at run time */

/* the driver entry point (no -lcuda): 0 when the driver lacks it */
static int f3_init(void)
{
    static int state; /* 0 unknown, 1 ok, -1 unavailable */
    if (!state) {
        cudaDriverEntryPointQueryResult q;
        void *fn = NULL;
        state = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) ==
                            cudaSuccess &&
                        q == cudaDriverEntryPointSuccess && fn
                    ? 1
                    : -1;
        f3_encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
        cudaGetLastError();
    }
    return state > 0;
}

/* tensor map of a bf16 [B, T, H, 128] tensor: boxes of 64 d x 1 head x 128 rows, 128-byte swizzle, zeros past T */
static int f3_map(CUtensorMap *m, const bf16 *x, int B, int T, int H)
{
    cuuint64_t dim[4] = {F3_D, (cuuint64_t)H, (cuuint64_t)T, (cuuint64_t)B};
    cuuint64_t stride[3] = {F3_D * 2, (cuuint64_t)H * F3_D * 2, (cuuint64_t)T * H * F3_D * 2};
    cuuint32_t box[4] = {64, 1, 128, 1}, estr[4] = {1, 1, 1, 1};
    return f3_encode(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, (void *)x, dim, stride, box, estr,
                     CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/* bytes of bf16 scratch fa3_forward needs */
static size_t fa3_scratch_bytes(int B, int Tq, int Tk, int Hq, int Hkv)
{
    return ((size_t)B * Tq * Hq + 2 * (size_t)B * Tk * Hkv) * F3_D * sizeof(bf16) + 1024;
}

/* The forward on stream st: bf16 conversion into scratch (fa3_scratch_bytes), tensor maps, the kernel. */
static cudaError_t fa3_forward(cudaStream_t st, float *out, float *lse, const float *q, const float *k, const float *v,
                               const int32_t *q_start, int B, int Tq, int Tk, int Hq, int Hkv, float scale,
                               void *scratch)
{
    size_t nq = (size_t)B * Tq * Hq * F3_D, nkv = (size_t)B * Tk * Hkv * F3_D;
    bf16 *qb = (bf16 *)(((uintptr_t)scratch + 255) & ~(uintptr_t)255), *kb = qb + nq, *vb = kb + nkv;
    unsigned gq = (unsigned)((nq / 4 + 255) / 256), gk = (unsigned)((nkv / 4 + 255) / 256);
    f3_to_bf16<<<gq < 8192 ? gq : 8192, 256, 0, st>>>(qb, q, nq / 4, scale);
    f3_to_bf16<<<gk < 8192 ? gk : 8192, 256, 0, st>>>(kb, k, nkv / 4, 1.0f);
    f3_to_bf16<<<gk < 8192 ? gk : 8192, 256, 0, st>>>(vb, v, nkv / 4, 1.0f);
    CUtensorMap mq, mk, mv;
    if (!f3_map(&mq, qb, B, Tq, Hq) || !f3_map(&mk, kb, B, Tk, Hkv) || !f3_map(&mv, vb, B, Tk, Hkv))
        return cudaErrorInvalidValue;
    cudaError_t e = cudaFuncSetAttribute(fa3_fwd_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, F3_SMEM);
    if (e != cudaSuccess) return e;
    dim3 grid((Tq + F3_BM - 1) / F3_BM, Hq, B);
    fa3_fwd_kernel<<<grid, 384, F3_SMEM, st>>>(mq, mk, mv, out, lse, q_start, Tq, Tk, Hq, Hkv);
    return cudaGetLastError();
}

#ifndef FA3_STANDALONE

/* Whether this path takes the shape: sm_90 (the sm_90a code runs there only), head dim 128, the driver's
 * tensor-map encoder found, enough shared memory; HX_CUDA_FLASH2=1 keeps flash.cu's kernel (comparisons). */
int kcuda_fa3_ok(k_backend *b, const k_attn_shape *s)
{
    static int cc = -1;
    if (getenv("HX_CUDA_FLASH2")) return 0;
    if (cc < 0) {
        int maj = 0, min = 0;
        CK(cudaDeviceGetAttribute(&maj, cudaDevAttrComputeCapabilityMajor, KCUDA_CTX(b)->device));
        CK(cudaDeviceGetAttribute(&min, cudaDevAttrComputeCapabilityMinor, KCUDA_CTX(b)->device));
        cc = maj * 10 + min;
    }
    return cc == 90 && s->K == F3_D && s->Hq % s->Hkv == 0 && KCUDA_CTX(b)->smem_optin >= (size_t)F3_SMEM &&
           f3_init();
}

void kcuda_fa3_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *q_start, const k_attn_shape *s)
{
    void *scratch = kcuda_scratch(b, fa3_scratch_bytes(s->B, s->Tq, s->Tk, s->Hq, s->Hkv));
    CK(fa3_forward(KCUDA_STREAM(b), out, lse, q, k, v, q_start, s->B, s->Tq, s->Tk, s->Hq, s->Hkv, s->scale,
                   scratch));
}
#endif
