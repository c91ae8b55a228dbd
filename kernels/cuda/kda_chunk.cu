// kda_chunk.cu - chunk-parallel KDA forward/backward (fla's chunk_kda structure), fp32-accurate, for K = V = 128.
// Same algebra as kernels/cpu/kda.c (chunk 64, every exponent <= 0); kda.cu keeps the sequential kernels
// for the other shapes and dispatches here.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/cuda.cuh"

/*
 * The sequential kernel walks one (b, h) sequence chunk by chunk. Here only the state recurrence is
 * sequential, and it is independent per value column, so the work splits into five kernels:
 *
 *  forward
 *   1. kcp_intra   (chunk, b*h)     G = cumsum(g), Aqk, A (L = diag(beta) A), Ai = (I+L)^-1 (blocked, as fla's
 *                                   solve_tril), W = Ai diag(beta) K e^G, U = Ai diag(beta) V, QG = Q e^G,
 *                                   KD = K e^(G_last - G), el = e^G_last
 *   2. kcp_state   (V/VT, b*h)      per chunk, in order: save S0; Vn = U - W S0 (written over U);
 *                                   VT = 32, or 16 when that gives too few blocks (kcp_narrow);
 *                                   S1 = diag(el) S0 + KD^T Vn. State tile [K x VT] in shared memory.
 *   3. kcp_out     (chunk, b*h)     O = QG S0 + Aqk Vn
 *  backward (kcp_intra again, with A and Ai kept)
 *   4. kcp_state_bwd (V/VT, b*h)    per chunk, in reverse: save dS1; dVn = Aqk^T dO + KD dS1;
 *                                   dS0 = diag(el) dS1 + QG^T dO - W^T dVn
 *   5. four kernels per chunk (5a-5d below, through the scratch the passes before are done with):
 *                                   Vn = U - W S0; dQG, dW, dAqk, dKD, del; dR = Ai^T [dW | dVn]; dv, dl, dA,
 *                                   dbeta; elementwise and pairwise exp factors -> dq, dk, dG; dg = reverse
 *                                   cumsum of dG.
 *
 * Pairwise weights exp(G_r - G_j), j <= r, are factored around the reference row r0 = 16a of row block a:
 *   exp(G_r - G_j) = exp(G_r - G_r0) * exp(G_r0 - G_j),
 * so A and Aqk become tensor-core products of factored rows. Off the diagonal blocks (r >= r0 > j) both factors
 * are <= 1 (strong decay underflows to 0, never overflows). Inside a diagonal 16x16 block the column factor is
 * >= 1, bounded by the block's decay span; a chunk whose span exceeds KCP_SPAN computes its diagonal blocks per
 * element instead (kcp_intra_tc gives it up to kcp_intra_simt). The backward's diagonal blocks (kcp_bqk) are
 * per element.
 * The triangular solves are products with the inverse: only the four diagonal 16x16 blocks of (I+L) are
 * inverted by substitution (16 steps), the rest of Ai by 16x16 products, and [W | U], [dRW | dRU] are
 * tensor-core products with it (k = 64) instead of a 64-step substitution per column.
 *
 * Memory, the state and every elementwise step are fp32; the matrix products run on the tensor cores with TF32
 * operands and fp32 accumulation (kcp_tc below; the numerics of issue 5 ask bf16 into matmuls, fla uses bf16):
 * 2-5e-4 against the fp32 CPU in the op tests (TOL_TF32). -DKCP_SPLIT=1 builds them as 3xTF32, ~1e-6, at
 * 1.3x the time. The exps, cumsums and the 16x16 inverses are fp32 SIMT. Scratch buffers are
 * chunk-major: chunk n of (b, h) is the 64-row block at ((b*H + h)*NC + n)*64*width. Blocks of 256 threads;
 * global reads go through cp.async batches into shared memory, read-modify-writes of the gradients load a
 * whole batch before storing (one memory latency per batch, not per element).
 */

#define KCP_CH K_KDA_CHUNK /* kernels/kernels.h; the tiles below are written for 64 rows */
static_assert(KCP_CH == 64, "kda_chunk.cu tiles chunks of 64 rows");
#define KCP_NT 256
#define KCP_VT 32

extern __shared__ float kcp_smem[];

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

/* shared memory of kcp_intra (112 KB: two blocks per SM): region R, G, q, k of one half of the key columns
 * (64 x LH each), after the two halves KG of the second half and V (64 x LW each); region f, the factor rows
 * (80 x LH), later (I+L)^-1 and its level temporaries; KG of the first half; L (64 x 65); beta.
 * LH = KH + 4: conflict-free fragment loads (see kcp_tc) and 16-byte copies. */
template <int K> struct kcp_intra_l {
    static constexpr int KH = K / 2, LH = KH + 4, LW = KH + 8, LI = 64 + 4;
    static constexpr int R = 3 * 64 * LH > 3 * 64 * LW ? 3 * 64 * LH : 3 * 64 * LW;
    static constexpr int G = 0, q = G + 64 * LH, k = q + 64 * LH, f = R, KG0 = f + 80 * LH, L = KG0 + 64 * LW;
    static constexpr int beta = L + 64 * 65;
    static constexpr size_t bytes = sizeof(float) * (size_t)(beta + 64);
    static_assert(64 * LI + 3 * 256 <= 80 * LH && KG0 % 4 == 0 && R % 4 == 0 && LW % 4 == 0 && LH % 4 == 0,
                  "kcp_intra: layout");
};
template <int K> static size_t kcp_intra_smem() { return kcp_intra_l<K>::bytes; }

/*
 * The factored products of kcp_intra take the whole row block a of A and Aqk, diagonal block included, with the
 * reference row r0 = 16a. Inside the diagonal block the column factor exp(G_r0 - G_j) is >= 1, at most
 * exp(span), span = G_r0 - G_(r0+15) (the decay over the block in one key column), and the row factor
 * exp(G_r - G_r0) >= exp(-span): with span <= KCP_SPAN neither overflows nor leaves the normal range, so every
 * term keeps its relative precision. A chunk with a wider span anywhere (decays of tens of nats per token) takes
 * the per-element diagonal blocks (kcp_intra_simt), which are exact for any decay: kcp_intra_tc checks the spans
 * of each half once its G is in shared memory and gives the chunk up to kcp_intra_simt before storing A.
 */
#define KCP_SPAN 64.0f

/* one m16n8 tile: d += A B, A(m, k) = A[m*lda + k], B(k, n) = Bn[n*ldb + k], k < kn (a multiple of 8) */
__device__ __forceinline__ void kcp_mma_tile(float (&d)[4], const float *A, int lda, const float *Bn, int ldb, int kn)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const float *a = A + g * lda + t, *b = Bn + g * ldb + t;
#pragma unroll 4
    for (int k0 = 0; k0 < kn; k0 += 8) {
        uint32_t ah[4], al[4], bh[2], bl[2];
        kcp_split(a[k0], ah[0], al[0]);
        kcp_split(a[k0 + 8 * lda], ah[1], al[1]);
        kcp_split(a[k0 + 4], ah[2], al[2]);
        kcp_split(a[k0 + 8 * lda + 4], ah[3], al[3]);
        kcp_split(b[k0], bh[0], bl[0]);
        kcp_split(b[k0 + 4], bh[1], bl[1]);
        if (KCP_SPLIT) {
            kcp_mma(d, al, bh);
            kcp_mma(d, ah, bl);
        }
        kcp_mma(d, ah, bh);
    }
}

/* one half of the key columns [i0, i0 + K/2) into shared memory: G (the chunk cumsum of g), q, k; then the
 * elementwise outputs QG, KD, el of the half and its K e^G (kg, W's right side; into KG0 too for the first half) */
template <int K>
__device__ __forceinline__ void kcp_intra_half(float (&kg)[64 * (K / 2) / KCP_NT], float *QG_o, float *KD_o,
    float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk, size_t bhn, int i0, int c)
{
    typedef kcp_intra_l<K> L;
    constexpr int KH = L::KH, LH = L::LH, LW = L::LW, NKG = 64 * KH / KCP_NT;
    const int tid = threadIdx.x;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *KG0 = kcp_smem + L::KG0;
    kcp_cp_rows(Gs, LH, g + rowk + i0, sk, KH, c);
    kcp_cp_rows(qs, LH, q + rowk + i0, sk, KH, c);
    kcp_cp_rows(ks, LH, k + rowk + i0, sk, KH, c);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    kcp_cumsum<KH>(Gs, LH); /* rows >= c add 0: G there is G_last */
    __syncthreads();
    const float *Gl = Gs + 63 * LH;
    for (int idx = tid; idx < 64 * KH; idx += KCP_NT) {
        int r = idx / KH, i = idx % KH;
        float Gr = Gs[r * LH + i];
        QG_o[bhn * 64 * K + r * K + i0 + i] = qs[r * LH + i] * kcp_exp(Gr);
        KD_o[bhn * 64 * K + r * K + i0 + i] = ks[r * LH + i] * kcp_exp(Gl[i] - Gr);
    }
    for (int i = tid; i < KH; i += KCP_NT) el_o[bhn * K + i0 + i] = kcp_exp(Gl[i]);
#pragma unroll
    for (int m = 0; m < NKG; m++) {
        int idx = m * KCP_NT + tid, r = idx / KH, i = idx % KH;
        kg[m] = ks[r * LH + i] * kcp_exp(Gs[r * LH + i]);
        if (!i0) KG0[r * LW + i] = kg[m];
    }
}

/*
 * A and Aqk on the tensor cores (chunks whose spans are within KCP_SPAN). Row block a against columns
 * j < 16(a+1),
 * reference row r0 = 16a: A[r][j] = sum_i FK[r][i] CF_a[j][i], Aqk likewise with FQ, where
 *   FQ[r] = q_r e^(G_r - G_r0), FK[r] = k_r e^(G_r - G_r0), CF_a[j] = k_j e^(G_r0 - G_j).
 * Per half: FQ over q in place; then for a = 0..3, CF_a (rows 0..16a+15 of region f) and FK of block a (rows
 * 64..79) and the m16n8 tiles of the round: 2(a+1) column tiles each of Aqk and A, 40 tiles in all, five per
 * warp (tile t = 8s + warp, kept in acc[s] across the halves). Stores Aqk, A (masked j <= r and j < r) and
 * L = diag(beta) A (into shared memory). Returns 1, having stored nothing but QG, KD, el, when a span exceeds
 * KCP_SPAN (see above).
 */
template <int K>
__device__ __forceinline__ int kcp_intra_tc(float (&kg)[64 * (K / 2) / KCP_NT], float *Aqk_o, float *A_o,
    float *QG_o, float *KD_o, float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk,
    size_t bhn, int c)
{
    typedef kcp_intra_l<K> L;
    constexpr int KH = L::KH, LH = L::LH;
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *f = kcp_smem + L::f;
    float *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    float acc[5][4];
#pragma unroll
    for (int s = 0; s < 5; s++) acc[s][0] = acc[s][1] = acc[s][2] = acc[s][3] = 0.0f;
    for (int kh = 0; kh < 2; kh++) {
        if (kh) __syncthreads(); /* the first half's G, q, k and factor rows are read */
        kcp_intra_half<K>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
        int wide = 0;
        for (int idx = tid; idx < 4 * KH; idx += KCP_NT) {
            int a = idx / KH, i = idx % KH;
            wide |= Gs[16 * a * LH + i] - Gs[(16 * a + 15) * LH + i] > KCP_SPAN;
        }
        if (__syncthreads_or(wide)) return 1; /* (also: q is read by QG) */
        for (int idx = tid; idx < 64 * KH; idx += KCP_NT) {
            int r = idx / KH, i = idx % KH;
            qs[r * LH + i] *= kcp_exp(Gs[r * LH + i] - Gs[(r & ~15) * LH + i]);
        }
#pragma unroll
        for (int a = 0; a < 4; a++) {
            const int r0 = 16 * a, nj = 16 * (a + 1), start = a == 0 ? 0 : a == 1 ? 4 : a == 2 ? 12 : 24;
            const float *G0 = Gs + r0 * LH;
            if (a) __syncthreads(); /* the previous round's tiles are done with region f */
            for (int idx = tid; idx < (nj + 16) * KH; idx += KCP_NT) {
                int j = idx / KH, i = idx % KH;
                if (j < nj) {
                    f[j * LH + i] = ks[j * LH + i] * kcp_exp(G0[i] - Gs[j * LH + i]);
                } else {
                    int r = r0 + j - nj;
                    f[(64 + j - nj) * LH + i] = ks[r * LH + i] * kcp_exp(Gs[r * LH + i] - G0[i]);
                }
            }
            __syncthreads();
#pragma unroll
            for (int s = 0; s < 5; s++) {
                const int t = 8 * s + w, u = t - start;
                if (u >= 0 && u < 4 * (a + 1)) {
                    const int type = u / (2 * (a + 1)), ct = u % (2 * (a + 1));
                    const float *Ar = type ? f + 64 * LH : qs + r0 * LH;
                    kcp_mma_tile(acc[s], Ar, LH, f + 8 * ct * LH, LH, KH);
                }
            }
        }
    }
    for (int idx = tid; idx < 4096; idx += KCP_NT) { /* the blocks above the diagonal blocks */
        int r = idx / 64, j = idx % 64;
        if ((j >> 4) > (r >> 4)) {
            Aqk_o[bhn * 4096 + idx] = 0.0f;
            if (A_o) A_o[bhn * 4096 + idx] = 0.0f;
            Ls[r * 65 + j] = 0.0f;
        }
    }
#pragma unroll
    for (int s = 0; s < 5; s++) {
        const int t = 8 * s + w, a = t < 4 ? 0 : t < 12 ? 1 : t < 24 ? 2 : 3;
        const int u = t - (a == 0 ? 0 : a == 1 ? 4 : a == 2 ? 12 : 24);
        const int type = u / (2 * (a + 1)), ct = u % (2 * (a + 1));
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int r = 16 * a + (lane >> 2) + (e & 2 ? 8 : 0), j = 8 * ct + 2 * (lane & 3) + (e & 1);
            if (!type) {
                Aqk_o[bhn * 4096 + r * 64 + j] = j <= r ? acc[s][e] : 0.0f;
            } else {
                float x = j < r ? acc[s][e] : 0.0f;
                if (A_o) A_o[bhn * 4096 + r * 64 + j] = x;
                Ls[r * 65 + j] = bs[r] * x;
            }
        }
    }
    return 0;
}

/*
 * A and Aqk per element (chunks with a wider span): thread (ty, tx) owns entry (16a + ty, 16b + tx) of
 * every 16x16 block (a, b). Diagonal blocks with exp(G_r - G_j) per element; row block a > column block b with
 * the factors around r0 = 16a, exp(G_r - G_r0) exp(G_r0 - G_j), both <= 1, in region f.
 */
template <int K>
__device__ __forceinline__ void kcp_intra_simt(float (&kg)[64 * (K / 2) / KCP_NT], float *Aqk_o, float *A_o,
    float *QG_o, float *KD_o, float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk,
    size_t bhn, int c)
{
    typedef kcp_intra_l<K> L;
    constexpr int KH = L::KH, LH = L::LH;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *fq = kcp_smem + L::f;
    float *fk = fq + 16 * LH, *cf = fk + 16 * LH, *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    float aq[4][4], ak[4][4];
    kcp_zero(aq);
    kcp_zero(ak);
    for (int kh = 0; kh < 2; kh++) {
        if (kh) __syncthreads(); /* the first half's G, q, k and factor rows are read */
        kcp_intra_half<K>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
        if (tx <= ty)
#pragma unroll
            for (int a = 0; a < 4; a++) {
                const float *qr = qs + (16 * a + ty) * LH, *kr = ks + (16 * a + ty) * LH, *kj = ks + (16 * a + tx) * LH;
                const float *Gr = Gs + (16 * a + ty) * LH, *Gj = Gs + (16 * a + tx) * LH;
                float sq = 0.0f, sk2 = 0.0f;
                for (int i = 0; i < KH; i++) {
                    float e = kcp_exp(Gr[i] - Gj[i]) * kj[i];
                    sq += qr[i] * e;
                    sk2 += kr[i] * e;
                }
                aq[a][a] += sq;
                if (tx < ty) ak[a][a] += sk2;
            }
#pragma unroll
        for (int a = 1; a < 4; a++) {
            __syncthreads();
            const float *G0 = Gs + 16 * a * LH;
            for (int idx = tid; idx < 16 * KH; idx += KCP_NT) {
                int r = idx / KH, i = idx % KH;
                float f = kcp_exp(Gs[(16 * a + r) * LH + i] - G0[i]);
                fq[r * LH + i] = qs[(16 * a + r) * LH + i] * f;
                fk[r * LH + i] = ks[(16 * a + r) * LH + i] * f;
            }
            for (int idx = tid; idx < 16 * a * KH; idx += KCP_NT) {
                int j = idx / KH, i = idx % KH;
                cf[j * LH + i] = ks[j * LH + i] * kcp_exp(G0[i] - Gs[j * LH + i]);
            }
            __syncthreads();
#pragma unroll
            for (int bb = 0; bb < a; bb++) {
                const float *rq = fq + ty * LH, *rk = fk + ty * LH, *cj = cf + (16 * bb + tx) * LH;
                float sq = 0.0f, sk2 = 0.0f;
                for (int i = 0; i < KH; i++) {
                    sq += rq[i] * cj[i];
                    sk2 += rk[i] * cj[i];
                }
                aq[a][bb] += sq;
                ak[a][bb] += sk2;
            }
        }
    }
#pragma unroll
    for (int a = 0; a < 4; a++)
#pragma unroll
        for (int bb = 0; bb < 4; bb++) {
            int r = 16 * a + ty, j = 16 * bb + tx;
            Aqk_o[bhn * 4096 + r * 64 + j] = aq[a][bb];
            if (A_o) A_o[bhn * 4096 + r * 64 + j] = ak[a][bb];
            Ls[r * 65 + j] = bs[r] * ak[a][bb];
        }
}

/*
 * 1. intra-chunk: Aqk, A and (I+L)^-1 (both optional), W, U, QG, KD, el of chunk blockIdx.x of (b, h) = blockIdx.y.
 * The key columns go in two halves of K/2 (A and Aqk sum over them), so that G, q, k of one half and the factor
 * rows fit beside the rest in 112 KB: two blocks per SM. SAVED (the backward after a forward that kept Aqk, A
 * and (I+L)^-1): Ai_in is read, and only W, U, QG, KD, el are made.
 */
template <int K, int V, bool SAVED>
__global__ void __launch_bounds__(KCP_NT, 2) kcp_intra(float *Aqk_o, float *A_o, float *Ai_o, float *W_o, float *U_o,
    float *QG_o, float *KD_o, float *el_o, const float *q, const float *k, const float *v, const float *g,
    const float *beta, const float *Ai_in, int T, int H)
{
    typedef kcp_intra_l<K> L;
    static_assert(K == V, "kcp_intra: W and U share one product shape");
    constexpr int KH = L::KH, LW = L::LW, LI = L::LI, NKG = 64 * KH / KCP_NT;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const size_t bhn = (size_t)bh * NC + n, rowk = ((size_t)b * T + t0) * H * K + (size_t)h * K, sk = (size_t)H * K;
    float *KG0 = kcp_smem + L::KG0, *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    if (tid < KCP_CH) bs[tid] = tid < c ? beta[((size_t)b * T + t0 + tid) * H + h] : 0.0f;
    float kg[NKG]; /* K e^G of the second half (W's right side) */
    if (SAVED) {
        for (int kh = 0; kh < 2; kh++) {
            if (kh) __syncthreads(); /* the first half's G, q, k are read */
            kcp_intra_half<K>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
        }
    } else if (kcp_intra_tc<K>(kg, Aqk_o, A_o, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, c)) {
        kcp_intra_simt<K>(kg, Aqk_o, A_o, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, c);
    }
    /*
     * [W | U] = (I + L)^-1 diag(beta) [K e^G | V], the inverse blocked as fla's solve_tril: the four diagonal
     * 16x16 blocks of the unit lower triangular (I + L) by forward substitution (one column per thread), then
     * the off-diagonal blocks of the inverse level by level (distance d = a - b):
     *   Ai[a][b] = -Ai[a][a] sum_{b <= c < a} L[a][c] Ai[c][b].
     * The right-hand sides are then tensor-core products with Ai diag(beta) (k = 64), which replace the
     * 64-step substitution per column. V loads (into region R, free now) while the inverse is computed.
     */
    float *Ai = kcp_smem + L::f, *Xt = Ai + 64 * LI, *KG1 = kcp_smem, *V0 = KG1 + 64 * LW, *V1 = V0 + 64 * LW;
    __syncthreads(); /* G, q, k and the factor rows are read */
    {
        const float *vr = v + ((size_t)b * T + t0) * H * V + (size_t)h * V;
        kcp_cp_rows(V0, LW, vr, (size_t)H * V, KH, c);
        kcp_cp_rows(V1, LW, vr + KH, (size_t)H * V, KH, c);
        kcp_commit();
    }
    if (!SAVED)
        for (int idx = tid; idx < 64 * LI; idx += KCP_NT) Ai[idx] = 0.0f;
#pragma unroll
    for (int m = 0; m < NKG; m++) {
        int idx = m * KCP_NT + tid;
        KG1[(idx / KH) * LW + idx % KH] = kg[m];
    }
    __syncthreads();
    if (!SAVED && tid < 64) { /* column j of diagonal block a */
        const int a = tid / 16, j = tid % 16, r0 = 16 * a;
        float x[16];
#pragma unroll
        for (int r = 0; r < 16; r++) {
            float s = r == j ? 1.0f : 0.0f;
#pragma unroll
            for (int m = 0; m < r; m++) s -= Ls[(r0 + r) * 65 + r0 + m] * x[m];
            x[r] = s;
        }
#pragma unroll
        for (int r = 0; r < 16; r++) Ai[(r0 + r) * LI + r0 + j] = x[r];
    }
    __syncthreads();
#pragma unroll
    for (int d = 1; d < 4 && !SAVED; d++) {
        for (int a = d; a < 4; a++) { /* Xt = sum_c L[a][c] Ai[c][a - d] */
            const int bb = a - d;
            const float *lr = Ls + (16 * a + ty) * 65;
            float s = 0.0f;
            for (int m = 16 * bb; m < 16 * a; m++) s += lr[m] * Ai[m * LI + 16 * bb + tx];
            Xt[(a - d) * 256 + ty * 16 + tx] = s;
        }
        __syncthreads();
        for (int a = d; a < 4; a++) {
            const float *ar = Ai + (16 * a + ty) * LI + 16 * a, *xt = Xt + (a - d) * 256 + tx;
            float s = 0.0f;
#pragma unroll
            for (int m = 0; m < 16; m++) s += ar[m] * xt[m * 16];
            Ai[(16 * a + ty) * LI + 16 * (a - d) + tx] = -s;
        }
        __syncthreads();
    }
    for (int idx = tid; idx < 4096; idx += KCP_NT) { /* keep Ai for the backward; scale its columns by beta */
        int r = idx / 64, j = idx % 64;
        float x = SAVED ? Ai_in[bhn * 4096 + idx] : Ai[r * LI + j];
        if (!SAVED && Ai_o) Ai_o[bhn * 4096 + idx] = x;
        Ai[r * LI + j] = x * bs[j];
    }
    kcp_wait<0>();
    __syncthreads();
    {
        typedef kcp_tc<64, KH, 2> P;
        const float *rhs[4] = {KG0, KG1, V0, V1};
        float acc[P::NACC];
#pragma unroll
        for (int part = 0; part < 4; part++) {
            float *out = (part < 2 ? W_o : U_o) + bhn * 64 * K + (part & 1) * KH;
            P::zero(acc);
            P::mm(acc, Ai, LI, 1, rhs[part], LW, 1, 64);
            P::store(out, K, acc);
        }
    }
}

/* shared memory of the state passes, padded for conflict-free fragment loads (see kcp_tc) */
template <int K, int VT> struct kcp_state_l {
    static constexpr int LS = VT + 8, LW = K + 4, LD = K + 8;
    static constexpr int S = 0, Vn = S + K * LS, W = Vn + 64 * LS, U = W + 64 * LW, KD = U + 64 * VT, el = KD + 64 * LD;
    static constexpr size_t bytes = sizeof(float) * (size_t)(el + K);
};

/*
 * 2. forward state pass over the chunks of (b, h) = blockIdx.y, value columns [VT*blockIdx.x, +VT).
 * Two cp.async groups per chunk so that loads overlap the products with one buffer each: W and U (read by
 * Vn = U - W S0) load while the previous chunk's KD^T Vn runs, and KD, el while this chunk's W S0 runs.
 */
template <int K, int V, int VT>
__global__ void __launch_bounds__(KCP_NT) kcp_state(float *UVn, float *sch, float *sT, const float *W, const float *KD,
                                                    const float *el, const float *s0, int NC)
{
    typedef kcp_state_l<K, VT> L;
    typedef kcp_tc<64, VT, 4> P1;
    typedef kcp_tc<K, VT, 4> P2;
    const int bh = blockIdx.y, v0 = blockIdx.x * VT, tid = threadIdx.x;
    float *S = kcp_smem + L::S, *Vns = kcp_smem + L::Vn, *Ws = kcp_smem + L::W, *Us = kcp_smem + L::U;
    float *KDs = kcp_smem + L::KD, *els = kcp_smem + L::el;
    for (int idx = tid; idx < K * VT; idx += KCP_NT)
        S[(idx / VT) * L::LS + idx % VT] = s0 ? s0[(size_t)bh * K * V + (idx / VT) * V + v0 + idx % VT] : 0.0f;
    size_t bhn = (size_t)bh * NC;
    kcp_cp_block(Ws, L::LW, W + bhn * 64 * K, 64, K);
    kcp_cp_rows(Us, VT, UVn + bhn * 64 * V + v0, V, VT, 64);
    kcp_commit();
    for (int n = 0; n < NC; n++, bhn++) {
        kcp_cp_block(KDs, L::LD, KD + bhn * 64 * K, 64, K);
        kcp_cp_block(els, K, el + bhn * K, 1, K);
        kcp_commit();
        kcp_wait<1>(); /* W, U of chunk n */
        __syncthreads();
        for (int idx = tid; idx < K * VT; idx += KCP_NT)
            sch[bhn * K * V + (idx / VT) * V + v0 + idx % VT] = S[(idx / VT) * L::LS + idx % VT];
        { /* Vn = U - W S0 */
            float acc[P1::NACC];
            P1::zero(acc);
            P1::mm(acc, Ws, L::LW, 1, S, L::LS, 1, K);
#pragma unroll
            for (int x = 0; x < P1::NACC; x += 2) {
                int r = P1::row(x), e = P1::col(x);
                float y0 = Us[r * VT + e] - acc[x], y1 = Us[r * VT + e + 1] - acc[x + 1];
                *(float2 *)(UVn + bhn * 64 * V + r * V + v0 + e) = make_float2(y0, y1);
                Vns[r * L::LS + e] = y0;
                Vns[r * L::LS + e + 1] = y1;
            }
        }
        kcp_wait<0>(); /* KD, el of chunk n */
        __syncthreads();
        if (n + 1 < NC) {
            kcp_cp_block(Ws, L::LW, W + (bhn + 1) * 64 * K, 64, K);
            kcp_cp_rows(Us, VT, UVn + (bhn + 1) * 64 * V + v0, V, VT, 64);
        }
        kcp_commit();
        { /* S = diag(el) S + KD^T Vn */
            float acc[P2::NACC];
            P2::zero(acc);
            P2::mm(acc, KDs, 1, L::LD, Vns, L::LS, 1, 64);
#pragma unroll
            for (int x = 0; x < P2::NACC; x++) {
                int r = P2::row(x), e = P2::col(x);
                S[r * L::LS + e] = els[r] * S[r * L::LS + e] + acc[x];
            }
        }
        __syncthreads();
    }
    kcp_wait<0>();
    if (sT)
        for (int idx = tid; idx < K * VT; idx += KCP_NT)
            sT[(size_t)bh * K * V + (idx / VT) * V + v0 + idx % VT] = S[(idx / VT) * L::LS + idx % VT];
}

template <int K, int V> struct kcp_out_l {
    static constexpr int LA = K + 4, LQ = 64 + 4, LB = V + 8;
    static constexpr size_t bytes = sizeof(float) * (size_t)(64 * (LA > LQ ? LA : LQ) + (K > 64 ? K : 64) * LB);
};

/* 3. outputs of chunk blockIdx.x of (b, h) = blockIdx.y: O = QG S0 + Aqk Vn */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT) kcp_out(float *o, const float *QG, const float *sch, const float *Aqk,
                                                  const float *Vn, int T, int H)
{
    typedef kcp_out_l<K, V> L;
    typedef kcp_tc<64, V, 2> P;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH;
    const size_t bhn = (size_t)bh * NC + n;
    float *As = kcp_smem, *Bs = As + 64 * (L::LA > L::LQ ? L::LA : L::LQ);
    float acc[P::NACC];
    P::zero(acc);
    kcp_cp_block(As, L::LA, QG + bhn * 64 * K, 64, K);
    kcp_cp_block(Bs, L::LB, sch + bhn * K * V, K, V);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    P::mm(acc, As, L::LA, 1, Bs, L::LB, 1, K);
    __syncthreads();
    kcp_cp_block(As, L::LQ, Aqk + bhn * 4096, 64, 64);
    kcp_cp_block(Bs, L::LB, Vn + bhn * 64 * V, 64, V);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    P::mm(acc, As, L::LQ, 1, Bs, L::LB, 1, 64);
    float *ob = o + ((size_t)b * T + t0) * H * V + (size_t)h * V;
#pragma unroll
    for (int x = 0; x < P::NACC; x += 2) {
        int r = P::row(x);
        if (r < c) *(float2 *)(ob + (size_t)r * H * V + P::col(x)) = make_float2(acc[x], acc[x + 1]);
    }
}

template <int K, int VT> struct kcp_state_bwd_l {
    static constexpr int LS = VT + 8, LQ = 64 + 8, LD = K + 4, LW = K + 8;
    static constexpr int dS = 0, Aqk = dS + K * LS, KD = Aqk + 64 * LQ, QG = KD + 64 * LD, W = QG + 64 * LW;
    static constexpr int dO = W + 64 * LW, dVn = dO + 2 * 64 * LS, el = dVn + 64 * LS;
    static constexpr size_t bytes = sizeof(float) * (size_t)(el + K);
};

/*
 * 4. reverse state pass: dS per chunk end into dSc, dVn into dVn_o. Loads overlap products as in kcp_state:
 * Aqk, KD, dO of chunk n-1 load during this chunk's dS update, QG, W, el of chunk n during its dVn (dO is
 * read by both products, so it has two buffers).
 */
template <int K, int V, int VT>
__global__ void __launch_bounds__(KCP_NT) kcp_state_bwd(float *dVn_o, float *dSc, float *ds0, const float *Aqk,
    const float *KD, const float *QG, const float *W, const float *el, const float *dout, const float *dsT, int T,
    int H, int NC)
{
    typedef kcp_state_bwd_l<K, VT> L;
    typedef kcp_tc<64, VT, 4> P1;
    typedef kcp_tc<K, VT, 4> P2;
    const int bh = blockIdx.y, b = bh / H, h = bh % H, v0 = blockIdx.x * VT, tid = threadIdx.x;
    float *dS = kcp_smem + L::dS, *Aqks = kcp_smem + L::Aqk, *KDs = kcp_smem + L::KD, *QGs = kcp_smem + L::QG;
    float *Ws = kcp_smem + L::W, *dVns = kcp_smem + L::dVn, *els = kcp_smem + L::el;
    for (int idx = tid; idx < K * VT; idx += KCP_NT)
        dS[(idx / VT) * L::LS + idx % VT] = dsT ? dsT[(size_t)bh * K * V + (idx / VT) * V + v0 + idx % VT] : 0.0f;
    const size_t bh0 = (size_t)bh * NC;
    auto fetch1 = [&](int n) { /* Aqk, KD, dO of chunk n */
        const size_t bhn = bh0 + n;
        const int t0 = n * KCP_CH, c = T - t0 < KCP_CH ? T - t0 : KCP_CH;
        kcp_cp_block(Aqks, L::LQ, Aqk + bhn * 4096, 64, 64);
        kcp_cp_block(KDs, L::LD, KD + bhn * 64 * K, 64, K);
        kcp_cp_rows(kcp_smem + L::dO + (n & 1) * 64 * L::LS, L::LS,
                    dout + ((size_t)b * T + t0) * H * V + (size_t)h * V + v0, (size_t)H * V, VT, c);
    };
    fetch1(NC - 1);
    kcp_commit();
    for (int n = NC - 1; n >= 0; n--) {
        const size_t bhn = bh0 + n;
        const float *dOs = kcp_smem + L::dO + (n & 1) * 64 * L::LS;
        kcp_cp_block(QGs, L::LW, QG + bhn * 64 * K, 64, K);
        kcp_cp_block(Ws, L::LW, W + bhn * 64 * K, 64, K);
        kcp_cp_block(els, K, el + bhn * K, 1, K);
        kcp_commit();
        kcp_wait<1>(); /* Aqk, KD, dO of chunk n */
        __syncthreads();
        for (int idx = tid; idx < K * VT; idx += KCP_NT)
            dSc[bhn * K * V + (idx / VT) * V + v0 + idx % VT] = dS[(idx / VT) * L::LS + idx % VT];
        { /* dVn = Aqk^T dO + KD dS1 */
            float acc[P1::NACC];
            P1::zero(acc);
            P1::mm(acc, Aqks, 1, L::LQ, dOs, L::LS, 1, 64);
            P1::mm(acc, KDs, L::LD, 1, dS, L::LS, 1, K);
#pragma unroll
            for (int x = 0; x < P1::NACC; x += 2) {
                int r = P1::row(x), e = P1::col(x);
                dVns[r * L::LS + e] = acc[x];
                dVns[r * L::LS + e + 1] = acc[x + 1];
                *(float2 *)(dVn_o + bhn * 64 * V + r * V + v0 + e) = make_float2(acc[x], acc[x + 1]);
            }
        }
        kcp_wait<0>(); /* QG, W, el of chunk n */
        __syncthreads();
        if (n > 0) fetch1(n - 1);
        kcp_commit();
        { /* dS0 = diag(el) dS1 + QG^T dO - W^T dVn */
            float ap[P2::NACC], am[P2::NACC];
            P2::zero(ap);
            P2::zero(am);
            P2::mm(ap, QGs, 1, L::LW, dOs, L::LS, 1, 64);
            P2::mm(am, Ws, 1, L::LW, dVns, L::LS, 1, 64);
#pragma unroll
            for (int x = 0; x < P2::NACC; x++) {
                int r = P2::row(x), e = P2::col(x);
                dS[r * L::LS + e] = els[r] * dS[r * L::LS + e] + ap[x] - am[x];
            }
        }
        __syncthreads();
    }
    kcp_wait<0>();
    if (ds0)
        for (int idx = tid; idx < K * VT; idx += KCP_NT)
            ds0[(size_t)bh * K * V + (idx / VT) * V + v0 + idx % VT] += dS[(idx / VT) * L::LS + idx % VT];
}

/*
 * 5. backward inside the chunks, given S0 (sch), dS1 (dSc) and dVn: four kernels that pass their results through
 * the scratch buffers the forward-only ones are done with, each small enough for two or more blocks per SM
 * (one 208 KB block of 8 warps per SM, 212 registers, left the SMs latency-bound):
 *  5a kcp_bvn   (chunk, b*h, 2)  Vn = U - W S0, one half of the value columns per block      -> QG buffer
 *  5b kcp_bgrad (chunk, b*h, 2)  half z of the key columns: dQG = dO S0^T, dKD = Vn dS1^T, del = rowsum(S0 dS1),
 *                                dRW = Ai^T dW with dW = -dVn S0^T; rows [32z, +32) of dAqk = dO Vn^T (kept
 *                                transposed, over Aqk); value columns [64z, +64) of dRU = Ai^T dVn (over KD),
 *                                dv += diag(beta) dRU
 *  5c kcp_bdl   (chunk, b*h)     dl = -(dRW W^T + dRU U^T) (j < r), dA = diag(beta) dl (transposed, over Ai),
 *                                dbeta += dRU.v + dl.A + dRW.KG
 *  5d kcp_bqk   (chunk, b*h, 4)  a quarter of the key columns: every term of dq, dk, dG, then dg = reverse cumsum
 * Every output element still has one writer; the read-modify-writes of dq, dk, dv, dg, dbeta load a whole batch
 * before storing.
 */

/* a [rows x width] tile at src + r*stride into dst[r*ld + x] (width, ld, stride multiples of 4) */
__device__ __forceinline__ void kcp_cp_tile(float *dst, int ld, const float *src, size_t stride, int rows, int width)
{
    const int w4 = width / 4;
    for (int idx = threadIdx.x; idx < rows * w4; idx += KCP_NT) {
        int r = idx / w4, x = 4 * (idx % w4);
        kcp_cp16(dst + r * ld + x, src + (size_t)r * stride + x);
    }
}

template <int K, int V> struct kcp_bvn_l {
    static constexpr int LW = K + 4, LS = 64 + 8; /* W k-contiguous, S0 half n-contiguous (see kcp_tc) */
    static constexpr size_t bytes = sizeof(float) * (size_t)(64 * LW + K * LS);
};

/* 5a: Vn = U - W S0, value columns [64z, +64) of chunk blockIdx.x of (b, h) = blockIdx.y */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT, 3) kcp_bvn(float *Vn, const float *U, const float *W, const float *sch)
{
    typedef kcp_bvn_l<K, V> L;
    typedef kcp_tc<64, 64, 2> P;
    static_assert(V == 128, "kcp_bvn: two halves of 64 value columns");
    const int e0 = 64 * blockIdx.z;
    const size_t bhn = (size_t)blockIdx.y * gridDim.x + blockIdx.x;
    float *Ws = kcp_smem, *Ss = Ws + 64 * L::LW;
    kcp_cp_block(Ws, L::LW, W + bhn * 64 * K, 64, K);
    kcp_cp_tile(Ss, L::LS, sch + bhn * K * V + e0, V, K, 64);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    float acc[P::NACC], u[P::NACC];
    P::zero(acc);
    P::mm(acc, Ws, L::LW, 1, Ss, L::LS, 1, K);
    const float *Uc = U + bhn * 64 * V + e0;
    float *Vc = Vn + bhn * 64 * V + e0;
#pragma unroll
    for (int x = 0; x < P::NACC; x += 2) {
        float2 y = *(const float2 *)(Uc + P::row(x) * V + P::col(x));
        u[x] = y.x - acc[x];
        u[x + 1] = y.y - acc[x + 1];
    }
    P::store(Vc, V, u);
}

/* three [64 x (V+4)] slots and beta */
template <int K, int V> struct kcp_bgrad_l {
    static constexpr int LV = V + 4, LH = 64 + 8; /* LH: Ai and dW as m- and n-contiguous operands */
    static constexpr int A = 0, B = A + 64 * LV, C = B + 64 * LV, beta = C + 64 * LV;
    static_assert(K == V && 64 * LH <= 64 * LV, "kcp_bgrad: layout");
    static constexpr size_t bytes = sizeof(float) * (size_t)(beta + 64);
};

/* 5b: key (and value) columns [64z, +64) of chunk blockIdx.x of (b, h) = blockIdx.y; see above */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT, 2) kcp_bgrad(float *dQG, float *dKD, float *dRW, float *dAqkT, float *del,
    float *dRU, float *dv, const float *Vn, const float *dVn, const float *Ainv, const float *sch, const float *dSc,
    const float *dout, const float *beta, int T, int H)
{
    typedef kcp_bgrad_l<K, V> L;
    typedef kcp_tc<64, 64, 2> P;
    static_assert(K == 128 && V == 128, "kcp_bgrad: two halves of 64 columns");
    constexpr int LV = L::LV, LH = L::LH;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x, z = blockIdx.z, i0 = 64 * z;
    const size_t bhn = (size_t)bh * NC + n, rowv = ((size_t)b * T + t0) * H * V + (size_t)h * V, sv = (size_t)H * V;
    float *As = kcp_smem + L::A, *Bs = kcp_smem + L::B, *Cs = kcp_smem + L::C, *bs = kcp_smem + L::beta;
    kcp_cp_tile(As, LV, sch + bhn * K * V + (size_t)i0 * V, V, 64, V); /* S0 rows i0.. */
    kcp_cp_rows(Bs, LV, dout + rowv, sv, V, c);
    kcp_cp_block(Cs, LV, Vn + bhn * 64 * V, 64, V);
    kcp_commit();
    if (tid < 64) bs[tid] = tid < c ? beta[((size_t)b * T + t0 + tid) * H + h] : 0.0f;
    kcp_wait<0>();
    __syncthreads();
    { /* dQG = dO S0^T */
        float acc[P::NACC];
        P::zero(acc);
        P::mm(acc, Bs, LV, 1, As, 1, LV, V);
        P::store(dQG + bhn * 64 * K + i0, K, acc);
    }
    { /* rows [32z, +32) of dAqk = dO Vn^T (j <= r), stored transposed for kcp_bqk */
        typedef kcp_tc<32, 64, 2> P2;
        float acc[P2::NACC];
        P2::zero(acc);
        P2::mm(acc, Bs + 32 * z * LV, LV, 1, Cs, 1, LV, V);
#pragma unroll
        for (int x = 0; x < P2::NACC; x++) {
            int r = 32 * z + P2::row(x), j = P2::col(x);
            dAqkT[bhn * 4096 + j * 64 + r] = j <= r ? acc[x] : 0.0f;
        }
    }
    __syncthreads();
    kcp_cp_tile(Bs, LV, dSc + bhn * K * V + (size_t)i0 * V, V, 64, V); /* dS1 rows i0.. */
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    { /* del_i = S0_i . dS1_i, four threads per row */
        int i = tid >> 2, part = tid & 3;
        float s = 0.0f;
#pragma unroll 8
        for (int e = part; e < V; e += 4) s += As[i * LV + e] * Bs[i * LV + e];
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        if (!part) del[bhn * K + i0 + i] = s;
    }
    { /* dKD = Vn dS1^T */
        float acc[P::NACC];
        P::zero(acc);
        P::mm(acc, Cs, LV, 1, Bs, 1, LV, V);
        P::store(dKD + bhn * 64 * K + i0, K, acc);
    }
    __syncthreads();
    kcp_cp_block(Cs, LV, dVn + bhn * 64 * V, 64, V);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    float dw[P::NACC]; /* dW = -dVn S0^T */
    P::zero(dw);
    P::mm(dw, Cs, LV, 1, As, 1, LV, V);
    __syncthreads(); /* S0 and dS1 are read */
    kcp_cp_block(As, LH, Ainv + bhn * 4096, 64, 64);
    kcp_commit();
    float o[P::NACC]; /* dv as it came, read while Ai loads: its latency hides behind that wait (-5% here) */
#pragma unroll
    for (int x = 0; x < P::NACC; x += 2) {
        int r = P::row(x);
        float2 y = r < c ? *(const float2 *)(dv + rowv + (size_t)r * sv + i0 + P::col(x)) : make_float2(0.0f, 0.0f);
        o[x] = y.x;
        o[x + 1] = y.y;
    }
#pragma unroll
    for (int x = 0; x < P::NACC; x++) Bs[P::row(x) * LH + P::col(x)] = -dw[x];
    kcp_wait<0>();
    __syncthreads();
    { /* dRW = Ai^T dW */
        float acc[P::NACC];
        P::zero(acc);
        P::mm(acc, As, 1, LH, Bs, LH, 1, 64);
        P::store(dRW + bhn * 64 * K + i0, K, acc);
    }
    { /* dRU = Ai^T dVn, value columns [64z, +64); dv += diag(beta) dRU */
        float acc[P::NACC];
        P::zero(acc);
        P::mm(acc, As, 1, LH, Cs + i0, LV, 1, 64);
        P::store(dRU + bhn * 64 * V + i0, V, acc);
#pragma unroll
        for (int x = 0; x < P::NACC; x += 2) {
            int r = P::row(x);
            if (r < c)
                *(float2 *)(dv + rowv + (size_t)r * sv + i0 + P::col(x)) =
                    make_float2(o[x] + bs[r] * acc[x], o[x + 1] + bs[r] * acc[x + 1]);
        }
    }
}

template <int K, int V> struct kcp_bdl_l {
    static constexpr int LV = K + 4, LA = 64 + 4;
    static constexpr int A = 0, B = A + 64 * LV, C = B + 64 * LV, beta = C + 64 * LV, red = beta + 64;
    static_assert(K == V && 64 * LA <= 64 * LV, "kcp_bdl: layout");
    static constexpr size_t bytes = sizeof(float) * (size_t)(red + KCP_NT);
};

/* 5c: chunk blockIdx.x of (b, h) = blockIdx.y; see above */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT, 2) kcp_bdl(float *dAT, float *dbeta, const float *dRW, const float *dRU,
    const float *W, const float *U, const float *A, const float *k, const float *v, const float *g,
    const float *beta, int T, int H)
{
    typedef kcp_bdl_l<K, V> L;
    typedef kcp_tc<64, 64, 2> P;
    constexpr int LV = L::LV, LA = L::LA;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x;
    const size_t bhn = (size_t)bh * NC + n, rowk = ((size_t)b * T + t0) * H * K + (size_t)h * K;
    const size_t rowv = ((size_t)b * T + t0) * H * V + (size_t)h * V;
    float *As = kcp_smem + L::A, *Bs = kcp_smem + L::B, *Cs = kcp_smem + L::C, *bs = kcp_smem + L::beta;
    float *red = kcp_smem + L::red;
    kcp_cp_block(As, LV, dRW + bhn * 64 * K, 64, K);
    kcp_cp_block(Bs, LV, W + bhn * 64 * K, 64, K);
    kcp_commit();
    if (tid < 64) bs[tid] = tid < c ? beta[((size_t)b * T + t0 + tid) * H + h] : 0.0f;
    kcp_wait<0>();
    __syncthreads();
    float acc[P::NACC];
    P::zero(acc);
    P::mm(acc, As, LV, 1, Bs, 1, LV, K);
    __syncthreads();
    kcp_cp_rows(Bs, LV, g + rowk, (size_t)H * K, K, c);
    kcp_cp_rows(Cs, LV, k + rowk, (size_t)H * K, K, c);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    kcp_cumsum_par<K>(Bs, LV, red);
    __syncthreads();
    float skg = 0.0f; /* dRW_r . KG_r, four threads per row */
    {
        int r = tid >> 2, part = tid & 3;
#pragma unroll 8
        for (int i = part; i < K; i += 4) skg += As[r * LV + i] * Cs[r * LV + i] * kcp_exp(Bs[r * LV + i]);
    }
    __syncthreads();
    kcp_cp_block(As, LV, dRU + bhn * 64 * V, 64, V);
    kcp_cp_block(Bs, LV, U + bhn * 64 * V, 64, V);
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    P::mm(acc, As, LV, 1, Bs, 1, LV, V);
    {
        float a[P::NACC];
        const float *Ac = A + bhn * 4096;
#pragma unroll
        for (int x = 0; x < P::NACC; x++) a[x] = Ac[P::row(x) * 64 + P::col(x)];
#pragma unroll
        for (int x = 0; x < P::NACC; x++) {
            int r = P::row(x), j = P::col(x);
            float dl = j < r ? -acc[x] : 0.0f;
            dAT[bhn * 4096 + j * 64 + r] = bs[r] * dl;
            Cs[r * LA + j] = dl * a[x];
        }
    }
    __syncthreads();
    { /* four threads per row */
        int r = tid >> 2, part = tid & 3;
        float s = skg;
        if (r < c) {
            const float *vr = v + rowv + (size_t)r * H * V;
#pragma unroll 8
            for (int e = part; e < V; e += 4) s += As[r * LV + e] * vr[e];
        }
#pragma unroll
        for (int j = part; j < 64; j += 4) s += Cs[r * LA + j];
        red[tid] = s;
    }
    __syncthreads();
    if (tid < c) dbeta[((size_t)b * T + t0 + tid) * H + h] += red[4 * tid] + red[4 * tid + 1] + red[4 * tid + 2] + red[4 * tid + 3];
}

#define KCP_KQ 32 /* key columns per kcp_bqk block */
template <int K> struct kcp_bqk_l {
    static constexpr int G = 0, q = G + 64 * KCP_KQ, k = q + 64 * KCP_KQ, dAqkT = k + 64 * KCP_KQ;
    static constexpr int dAT = dAqkT + 4096, beta = dAT + 4096, bsum = beta + 64, colt = bsum + KCP_NT;
    static constexpr int del = colt + KCP_NT;
    static constexpr size_t bytes = sizeof(float) * (size_t)(del + KCP_KQ);
};

/*
 * 5d: key columns [32z, +32) of chunk blockIdx.x of (b, h) = blockIdx.y. Thread (a, i) = (tid / 32, tid % 32)
 * owns rows 8a..8a+7 of column i and every term of dq, dk, dG there, so each element has one writer:
 *  elementwise  QG = q e^G, KG = k e^G (W's right side), KD = k e^(G_last - G);
 *  diagonal block  per element, exp(G_r - G_j) for j <= r inside the 8x8 block;
 *  row side (j < 8a)  dq_r += e^(G_r - G0) sum_j dAqk[r][j] k_j e^(G0 - G_j), dk_r likewise with dA, G0 = G_8a;
 *  column side (row blocks a' > a)  dk_j += e^(G0' - G_j) sum_r' (dAqk[r'][j] q_r' + dA[r'][j] k_r') e^(G_r' - G0').
 * Both sides read the transposed dAqk, dA as float4 (a warp shares a, so every such read is a broadcast).
 * dg = reverse cumsum of dG: the block sums of the 8-row blocks meet in shared memory.
 */
template <int K>
__global__ void __launch_bounds__(KCP_NT, 2) kcp_bqk(float *dq, float *dk, float *dg, const float *dQG,
    const float *dKD, const float *dRW, const float *dAqkT, const float *dAT, const float *del, const float *q,
    const float *k, const float *g, const float *beta, int T, int H)
{
    typedef kcp_bqk_l<K> L;
    constexpr int KQ = KCP_KQ, RB = 8;
    static_assert(KCP_NT == 64 / RB * KQ, "kcp_bqk: one task per thread");
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x, i0 = KQ * blockIdx.z;
    const size_t bhn = (size_t)bh * NC + n, sk = (size_t)H * K;
    const size_t rowk = ((size_t)b * T + t0) * H * K + (size_t)h * K + i0;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *dAqs = kcp_smem + L::dAqkT;
    float *dAs = kcp_smem + L::dAT, *bs = kcp_smem + L::beta, *bsum = kcp_smem + L::bsum, *colt = kcp_smem + L::colt;
    float *dls = kcp_smem + L::del;
    kcp_cp_rows(Gs, KQ, g + rowk, sk, KQ, c);
    kcp_cp_rows(qs, KQ, q + rowk, sk, KQ, c);
    kcp_cp_rows(ks, KQ, k + rowk, sk, KQ, c);
    kcp_cp_block(dAqs, 64, dAqkT + bhn * 4096, 64, 64);
    kcp_cp_block(dAs, 64, dAT + bhn * 4096, 64, 64);
    kcp_commit();
    if (tid < 64) bs[tid] = tid < c ? beta[((size_t)b * T + t0 + tid) * H + h] : 0.0f;
    if (tid < KQ) dls[tid] = del[bhn * K + i0 + tid];
    kcp_wait<0>();
    __syncthreads();
    kcp_cumsum_par<KQ>(Gs, KQ, bsum); /* rows >= c add 0: G there is G_last; bsum is free until the end */
    __syncthreads();
    const int a = tid / KQ, i = tid % KQ, r0 = RB * a;
    const float Gl = Gs[63 * KQ + i];
    const float *x1 = dQG + bhn * 64 * K + i0 + i, *x2 = dKD + bhn * 64 * K + i0 + i, *x3 = dRW + bhn * 64 * K + i0 + i;
    float qv[RB], kv[RB], Gv[RB], dqa[RB], dka[RB], dGa[RB], tkd = 0.0f;
    {
        float gq[RB], gd[RB], gw[RB];
#pragma unroll
        for (int rr = 0; rr < RB; rr++) {
            gq[rr] = x1[(r0 + rr) * K];
            gd[rr] = x2[(r0 + rr) * K];
            gw[rr] = x3[(r0 + rr) * K];
        }
#pragma unroll
        for (int rr = 0; rr < RB; rr++) {
            const int r = r0 + rr;
            qv[rr] = qs[r * KQ + i];
            kv[rr] = ks[r * KQ + i];
            Gv[rr] = Gs[r * KQ + i];
            float e = kcp_exp(Gv[rr]), ed = kcp_exp(Gl - Gv[rr]);
            float dKG = bs[r] * gw[rr], kd = gd[rr] * kv[rr] * ed;
            dqa[rr] = gq[rr] * e;
            dka[rr] = dKG * e + gd[rr] * ed;
            dGa[rr] = gq[rr] * qv[rr] * e + dKG * kv[rr] * e - kd;
            tkd += kd;
        }
    }
    { /* diagonal block */
        float rq[RB], rk[RB], cc[RB];
#pragma unroll
        for (int rr = 0; rr < RB; rr++) rq[rr] = rk[rr] = cc[rr] = 0.0f;
#pragma unroll
        for (int rr = 0; rr < RB; rr++)
#pragma unroll
            for (int jj = 0; jj <= rr; jj++) {
                float E = kcp_exp(Gv[rr] - Gv[jj]);
                float x = dAqs[(r0 + jj) * 64 + r0 + rr], y = dAs[(r0 + jj) * 64 + r0 + rr];
                rq[rr] += x * kv[jj] * E;
                rk[rr] += y * kv[jj] * E;
                cc[jj] += (x * qv[rr] + y * kv[rr]) * E;
            }
#pragma unroll
        for (int rr = 0; rr < RB; rr++) {
            dqa[rr] += rq[rr];
            dka[rr] += rk[rr] + cc[rr];
            dGa[rr] += qv[rr] * rq[rr] + kv[rr] * (rk[rr] - cc[rr]);
        }
    }
    if (a > 0) { /* row side */
        float sq[RB], sk2[RB];
#pragma unroll
        for (int rr = 0; rr < RB; rr++) sq[rr] = sk2[rr] = 0.0f;
        const float G0 = Gv[0];
        for (int j = 0; j < r0; j++) {
            float kf = ks[j * KQ + i] * kcp_exp(G0 - Gs[j * KQ + i]);
            const float4 *pq = (const float4 *)(dAqs + j * 64 + r0), *pk = (const float4 *)(dAs + j * 64 + r0);
#pragma unroll
            for (int m = 0; m < RB / 4; m++) {
                float4 x = pq[m], y = pk[m];
                sq[4 * m] += x.x * kf, sq[4 * m + 1] += x.y * kf, sq[4 * m + 2] += x.z * kf, sq[4 * m + 3] += x.w * kf;
                sk2[4 * m] += y.x * kf, sk2[4 * m + 1] += y.y * kf, sk2[4 * m + 2] += y.z * kf, sk2[4 * m + 3] += y.w * kf;
            }
        }
#pragma unroll
        for (int rr = 0; rr < RB; rr++) {
            float f = kcp_exp(Gv[rr] - G0), x = sq[rr] * f, y = sk2[rr] * f;
            dqa[rr] += x;
            dka[rr] += y;
            dGa[rr] += qv[rr] * x + kv[rr] * y;
        }
    }
    for (int a2 = a + 1; a2 < 64 / RB; a2++) { /* column side against row block a2 */
        const int r2 = RB * a2;
        const float G0 = Gs[r2 * KQ + i];
        float qf[RB], kf[RB], y[RB];
#pragma unroll
        for (int m = 0; m < RB; m++) {
            float f = kcp_exp(Gs[(r2 + m) * KQ + i] - G0);
            qf[m] = qs[(r2 + m) * KQ + i] * f;
            kf[m] = ks[(r2 + m) * KQ + i] * f;
        }
#pragma unroll
        for (int jj = 0; jj < RB; jj++) {
            const float4 *pq = (const float4 *)(dAqs + (r0 + jj) * 64 + r2), *pk = (const float4 *)(dAs + (r0 + jj) * 64 + r2);
            float s = 0.0f;
#pragma unroll
            for (int m = 0; m < RB / 4; m++) {
                float4 x = pq[m], w = pk[m];
                s += x.x * qf[4 * m] + w.x * kf[4 * m] + x.y * qf[4 * m + 1] + w.y * kf[4 * m + 1];
                s += x.z * qf[4 * m + 2] + w.z * kf[4 * m + 2] + x.w * qf[4 * m + 3] + w.w * kf[4 * m + 3];
            }
            y[jj] = s;
        }
#pragma unroll
        for (int jj = 0; jj < RB; jj++) {
            float x = y[jj] * kcp_exp(G0 - Gv[jj]);
            dka[jj] += x;
            dGa[jj] -= kv[jj] * x;
        }
    }
    float bsm = 0.0f;
#pragma unroll
    for (int rr = 0; rr < RB; rr++) bsm += dGa[rr];
    bsum[tid] = bsm;
    colt[tid] = tkd;
    __syncthreads();
    /* G_last = G_(c-1) also carries sum_r dKD k e^(G_last - G) and del e^G_last: t below, added to every row < c */
    float t = dls[i] * kcp_exp(Gl), s = 0.0f;
#pragma unroll
    for (int a2 = 0; a2 < 64 / RB; a2++) {
        t += colt[a2 * KQ + i];
        if (a2 > a) s += bsum[a2 * KQ + i];
    }
    float oq[RB], ok[RB], og[RB]; /* all loads first: the stores could alias them as far as the compiler knows */
    const size_t base = rowk + (size_t)r0 * sk + i;
#pragma unroll
    for (int rr = 0; rr < RB; rr++) {
        const bool in = r0 + rr < c;
        oq[rr] = in ? dq[base + rr * sk] : 0.0f;
        ok[rr] = in ? dk[base + rr * sk] : 0.0f;
        og[rr] = in ? dg[base + rr * sk] : 0.0f;
    }
#pragma unroll
    for (int rr = RB - 1; rr >= 0; rr--) {
        s += dGa[rr];
        if (r0 + rr < c) {
            dq[base + rr * sk] = oq[rr] + dqa[rr];
            dk[base + rr * sk] = ok[rr] + dka[rr];
            dg[base + rr * sk] = og[rr] + s + t;
        }
    }
}

/* ---- host side ---- */

/* HX_KDA_PROF=1: cudaEvent time of every kernel launch, summed per kernel and printed to stderr at exit.
 * Each call then waits for the device, so it is for finding where the time goes, not for end-to-end numbers. */
enum { KP_INTRA_F, KP_STATE, KP_OUT, KP_INTRA_B, KP_STATE_B, KP_BVN, KP_BGRAD, KP_BDL, KP_BQK, KP_N };
static const char *kp_name[KP_N] = {"kcp_intra(fwd)", "kcp_state", "kcp_out", "kcp_intra(bwd)", "kcp_state_bwd",
                                    "kcp_bvn", "kcp_bgrad", "kcp_bdl", "kcp_bqk"};
static int kp_on = -1, kp_calls[KP_N], kp_B, kp_T;
static double kp_ms[KP_N];
static cudaEvent_t kp_ev[KP_N + 1];
static void kp_report(void)
{
    for (int i = 0; i < KP_N; i++) {
        if (kp_calls[i])
            fprintf(stderr, "kda prof B*H=%d T=%d %-16s %4d calls %9.4f ms/call\n", kp_B, kp_T, kp_name[i], kp_calls[i],
                    kp_ms[i] / kp_calls[i]);
        kp_calls[i] = 0;
        kp_ms[i] = 0.0;
    }
}
static int kp_enabled(void)
{
    if (kp_on < 0) {
        const char *e = getenv("HX_KDA_PROF");
        kp_on = e && *e && *e != '0';
        if (kp_on) {
            for (int i = 0; i <= KP_N; i++) CK(cudaEventCreate(&kp_ev[i]));
            atexit(kp_report);
        }
    }
    return kp_on;
}
/* event slot i (0 before the first kernel of a call) */
static void kp_mark(k_backend *b, int i)
{
    if (kp_enabled()) CK(cudaEventRecord(kp_ev[i], KCUDA_STREAM(b)));
}
/* kernels first..first+n-1 ran between slots 0..n; the sums are per shape */
static void kp_done(int first, int n, int BH, int T)
{
    if (!kp_enabled()) return;
    if (BH != kp_B || T != kp_T) {
        kp_report();
        kp_B = BH;
        kp_T = T;
    }
    CK(cudaEventSynchronize(kp_ev[n]));
    for (int i = 0; i < n; i++) {
        float ms;
        CK(cudaEventElapsedTime(&ms, kp_ev[i], kp_ev[i + 1]));
        kp_ms[first + i] += ms;
        kp_calls[first + i]++;
    }
}

/* What the forward keeps in s_chunks after the chunk-start states [B,H,NC,K,V] for the backward: Aqk, A and
 * (I+L)^-1 of every chunk, [3][B*H*NC][64][64], so that the backward's kcp_intra only makes W, U, QG, KD, el. */
#define KCP_SAVE (3 * 64 * 64)
/* HX_KDA_SAVE=0: keep only the states (the backward recomputes Aqk, A and (I+L)^-1: 75% less kept per chunk,
 * about 1 ms more per B=8 T=4096 H=16 backward) */
static int kcp_save_on(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("HX_KDA_SAVE");
        on = !(e && *e == '0');
    }
    return on;
}
struct kcp_saved {
    float *Aqk, *A, *Ai;
};
static kcp_saved kcp_saved_in(float *x, size_t nbh) { return kcp_saved{x, x + nbh * 4096, x + 2 * nbh * 4096}; }
static kcp_saved kcp_saved_at(const float *s_chunks, size_t nbh, int K, int V)
{
    return kcp_saved_in((float *)s_chunks + nbh * K * V, nbh);
}

/* the scratch of one call: chunk-major work buffers (floats). The backward's Aqk and Ai take dAqk^T and dA^T
 * (the forward's Aqk, A, Ai are in s_chunks after the states: kcp_saved) */
struct kcp_bufs {
    float *Aqk, *Ai, *W, *U, *QG, *KD, *el, *sch, *dVn, *dSc, *X1, *X2, *X3;
};

static void kcp_carve(kcp_bufs *s, float *p, size_t nbh, int K, int V, int bwd, int own_sch)
{
    size_t rows = nbh * 64;
    s->Aqk = p; p += rows * 64;
    s->W = p; p += rows * K;
    s->U = p; p += rows * V;
    s->QG = p; p += rows * K;
    s->KD = p; p += rows * K;
    s->el = p; p += nbh * K;
    s->sch = own_sch ? p : NULL; p += own_sch ? nbh * K * V : 0;
    s->Ai = s->dVn = s->dSc = s->X1 = s->X2 = s->X3 = NULL;
    if (bwd) {
        s->Ai = p; p += rows * 64;
        s->dVn = p; p += rows * V;
        s->dSc = p; p += nbh * K * V;
        s->X1 = p; p += rows * K;
        s->X2 = p; p += rows * K;
        s->X3 = p; p += rows * K;
    }
}

/* bwd = 2: also room for Aqk, A, (I+L)^-1 (the backward without kcp_saved, after the scratch above) */
static size_t kcp_floats(size_t nbh, int K, int V, int bwd, int own_sch)
{
    size_t rows = nbh * 64, f = rows * (64 + 3 * (size_t)K + V) + nbh * K + (own_sch ? nbh * K * V : 0);
    if (bwd) f += rows * (64 + (size_t)V + 3 * (size_t)K) + nbh * K * V;
    if (bwd == 2) f += rows * KCP_SAVE / 64;
    return f;
}


/* 16-float alignment of every buffer: widths are multiples of 16 when K, V are */
template <int K, int V> static size_t kcp_smem_max()
{
    size_t m = kcp_intra_smem<K>();
    if (kcp_state_l<K, KCP_VT>::bytes > m) m = kcp_state_l<K, KCP_VT>::bytes;
    if (kcp_out_l<K, V>::bytes > m) m = kcp_out_l<K, V>::bytes;
    if (kcp_state_bwd_l<K, KCP_VT>::bytes > m) m = kcp_state_bwd_l<K, KCP_VT>::bytes;
    if (kcp_bvn_l<K, V>::bytes > m) m = kcp_bvn_l<K, V>::bytes;
    if (kcp_bgrad_l<K, V>::bytes > m) m = kcp_bgrad_l<K, V>::bytes;
    if (kcp_bdl_l<K, V>::bytes > m) m = kcp_bdl_l<K, V>::bytes;
    if (kcp_bqk_l<K>::bytes > m) m = kcp_bqk_l<K>::bytes;
    return m;
}

template <int K, int V> static void kcp_setup()
{
    static int done;
    if (done) return;
    CK(cudaFuncSetAttribute(kcp_intra<K, V, false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_intra_smem<K>()));
    CK(cudaFuncSetAttribute(kcp_intra<K, V, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_intra_smem<K>()));
    CK(cudaFuncSetAttribute(kcp_state<K, V, KCP_VT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_state_l<K, KCP_VT>::bytes));
    CK(cudaFuncSetAttribute(kcp_state<K, V, KCP_VT / 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_state_l<K, KCP_VT / 2>::bytes));
    CK(cudaFuncSetAttribute(kcp_state_bwd<K, V, KCP_VT / 2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_state_bwd_l<K, KCP_VT / 2>::bytes));
    CK(cudaFuncSetAttribute(kcp_out<K, V>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kcp_out_l<K, V>::bytes));
    CK(cudaFuncSetAttribute(kcp_state_bwd<K, V, KCP_VT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_state_bwd_l<K, KCP_VT>::bytes));
    CK(cudaFuncSetAttribute(kcp_bvn<K, V>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kcp_bvn_l<K, V>::bytes));
    CK(cudaFuncSetAttribute(kcp_bgrad<K, V>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                            (int)kcp_bgrad_l<K, V>::bytes));
    CK(cudaFuncSetAttribute(kcp_bdl<K, V>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kcp_bdl_l<K, V>::bytes));
    CK(cudaFuncSetAttribute(kcp_bqk<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kcp_bqk_l<K>::bytes));
    /* the backward kernels run 2-3 blocks per SM: ask for the largest shared-memory carveout */
    CK(cudaFuncSetAttribute(kcp_bvn<K, V>, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    CK(cudaFuncSetAttribute(kcp_bgrad<K, V>, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    CK(cudaFuncSetAttribute(kcp_bdl<K, V>, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    CK(cudaFuncSetAttribute(kcp_bqk<K>, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    done = 1;
}

/* 1 when the chunk-parallel kernels take this shape (HX_CUDA_KDA_SEQ=1 keeps the sequential ones) */
int kcuda_kda_cp_ok(k_backend *b, int K, int V)
{
    static int seq = -1;
    if (seq < 0) {
        const char *e = getenv("HX_CUDA_KDA_SEQ");
        seq = e && *e && *e != '0';
    }
    if (seq || K != 128 || V != 128) return 0;
    return KCUDA_CTX(b)->smem_optin >= kcp_smem_max<128, 128>();
}

/* The state passes are sequential over chunks: with few (b, h) their grid of V/KCP_VT blocks per (b, h)
 * leaves SMs idle, so they split the state into half-width value tiles (twice the blocks, each re-reading
 * the chunk's W and KD) when fewer than two blocks per SM would run. HX_KDA_VT=16|32 forces one. */
static int kcp_narrow(k_backend *b, int BH, int V)
{
    static int force = -1;
    if (force < 0) {
        const char *e = getenv("HX_KDA_VT");
        force = e ? atoi(e) : 0;
    }
    if (force) return force == KCP_VT / 2;
    return (size_t)BH * (V / KCP_VT) < 2 * (size_t)KCUDA_CTX(b)->n_sm;
}

template <int K, int V>
static void kcp_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, const float *s0, int B, int T, int H)
{
    const int NC = (T + KCP_CH - 1) / KCP_CH;
    const size_t nbh = (size_t)B * H * NC;
    kcp_setup<K, V>();
    kcp_bufs s;
    kcp_carve(&s, (float *)kcuda_scratch(b, kcp_floats(nbh, K, V, 0, !s_chunks) * sizeof(float)), nbh, K, V, 0,
              !s_chunks);
    float *sch = s_chunks ? s_chunks : s.sch;
    kcp_saved sv = {s.Aqk, NULL, NULL}; /* inference (or HX_KDA_SAVE=0): Aqk in the scratch, nothing kept */
    if (s_chunks && kcp_save_on()) sv = kcp_saved_at(s_chunks, nbh, K, V);
    cudaStream_t st = KCUDA_STREAM(b);
    kp_mark(b, 0);
    kcp_intra<K, V, false><<<dim3(NC, B * H), KCP_NT, kcp_intra_smem<K>(), st>>>(
        sv.Aqk, sv.A, sv.Ai, s.W, s.U, s.QG, s.KD, s.el, q, k, v, g, beta, NULL, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 1);
    if (kcp_narrow(b, B * H, V))
        kcp_state<K, V, KCP_VT / 2><<<dim3(2 * V / KCP_VT, B * H), KCP_NT, kcp_state_l<K, KCP_VT / 2>::bytes, st>>>(
            s.U, sch, sT, s.W, s.KD, s.el, s0, NC);
    else
        kcp_state<K, V, KCP_VT><<<dim3(V / KCP_VT, B * H), KCP_NT, kcp_state_l<K, KCP_VT>::bytes, st>>>(
            s.U, sch, sT, s.W, s.KD, s.el, s0, NC);
    KLAUNCH_CHECK();
    kp_mark(b, 2);
    kcp_out<K, V><<<dim3(NC, B * H), KCP_NT, kcp_out_l<K, V>::bytes, st>>>(o, s.QG, sch, sv.Aqk, s.U, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 3);
    kp_done(KP_INTRA_F, 3, B * H, T);
}

template <int K, int V>
static void kcp_bwd_run(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                        const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                        const float *g, const float *beta, const float *s_chunks, int B, int T, int H)
{
    const int NC = (T + KCP_CH - 1) / KCP_CH;
    const size_t nbh = (size_t)B * H * NC;
    kcp_setup<K, V>();
    kcp_bufs s;
    const int saved = kcp_save_on();
    float *scr = (float *)kcuda_scratch(b, kcp_floats(nbh, K, V, saved ? 1 : 2, 0) * sizeof(float));
    kcp_carve(&s, scr, nbh, K, V, 1, 0);
    const kcp_saved sv =
        saved ? kcp_saved_at(s_chunks, nbh, K, V) : kcp_saved_in(scr + kcp_floats(nbh, K, V, 1, 0), nbh);
    cudaStream_t st = KCUDA_STREAM(b);
    kp_mark(b, 0);
    if (saved)
        kcp_intra<K, V, true><<<dim3(NC, B * H), KCP_NT, kcp_intra_smem<K>(), st>>>(
            NULL, NULL, NULL, s.W, s.U, s.QG, s.KD, s.el, q, k, v, g, beta, sv.Ai, T, H);
    else
        kcp_intra<K, V, false><<<dim3(NC, B * H), KCP_NT, kcp_intra_smem<K>(), st>>>(
            sv.Aqk, sv.A, sv.Ai, s.W, s.U, s.QG, s.KD, s.el, q, k, v, g, beta, NULL, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 1);
    if (kcp_narrow(b, B * H, V))
        kcp_state_bwd<K, V, KCP_VT / 2><<<dim3(2 * V / KCP_VT, B * H), KCP_NT, kcp_state_bwd_l<K, KCP_VT / 2>::bytes,
                                          st>>>(s.dVn, s.dSc, ds0, sv.Aqk, s.KD, s.QG, s.W, s.el, dout, dsT, T, H, NC);
    else
        kcp_state_bwd<K, V, KCP_VT><<<dim3(V / KCP_VT, B * H), KCP_NT, kcp_state_bwd_l<K, KCP_VT>::bytes, st>>>(
            s.dVn, s.dSc, ds0, sv.Aqk, s.KD, s.QG, s.W, s.el, dout, dsT, T, H, NC);
    KLAUNCH_CHECK();
    kp_mark(b, 2);
    /* kcp_state_bwd was the last reader of QG, KD and el: the passes below write Vn over QG, dRU over KD, del over
     * el; dAqk^T and dA^T go to the scratch's Aqk and Ai */
    float *Vn = s.QG, *dRU = s.KD, *del = s.el, *dAqkT = s.Aqk, *dAT = s.Ai;
    kcp_bvn<K, V><<<dim3(NC, B * H, 2), KCP_NT, kcp_bvn_l<K, V>::bytes, st>>>(Vn, s.U, s.W, s_chunks);
    KLAUNCH_CHECK();
    kp_mark(b, 3);
    kcp_bgrad<K, V><<<dim3(NC, B * H, 2), KCP_NT, kcp_bgrad_l<K, V>::bytes, st>>>(
        s.X1, s.X2, s.X3, dAqkT, del, dRU, dv, Vn, s.dVn, sv.Ai, s_chunks, s.dSc, dout, beta, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 4);
    kcp_bdl<K, V><<<dim3(NC, B * H), KCP_NT, kcp_bdl_l<K, V>::bytes, st>>>(dAT, dbeta, s.X3, dRU, s.W, s.U, sv.A, k, v,
                                                                           g, beta, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 5);
    kcp_bqk<K><<<dim3(NC, B * H, K / KCP_KQ), KCP_NT, kcp_bqk_l<K>::bytes, st>>>(
        dq, dk, dg, s.X1, s.X2, s.X3, dAqkT, dAT, del, q, k, g, beta, T, H);
    KLAUNCH_CHECK();
    kp_mark(b, 6);
    kp_done(KP_INTRA_B, 6, B * H, T);
}

/* floats the forward keeps per (b, h, chunk) in s_chunks after the states (k_ops.kda_save) */
int kcuda_kda_cp_save(k_backend *b, int K, int V) { return kcuda_kda_cp_ok(b, K, V) && kcp_save_on() ? KCP_SAVE : 0; }

void kcuda_kda_cp_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                      const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H)
{
    kcp_fwd<128, 128>(b, o, sT, s_chunks, q, k, v, g, beta, s0, B, T, H);
}

void kcuda_kda_cp_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                      const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                      const float *g, const float *beta, const float *s_chunks, int B, int T, int H)
{
    kcp_bwd_run<128, 128>(b, dq, dk, dv, dg, dbeta, ds0, dout, dsT, q, k, v, g, beta, s_chunks, B, T, H);
}
