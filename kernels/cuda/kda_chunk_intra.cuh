// kda_chunk_intra.cuh - kernel 1 of the chunk-parallel KDA (kda_chunk.cu), fla's intra-chunk part: per chunk G, Aqk,
// A, (I+L)^-1, W, U, QG, KD, el. The forward runs it, and the backward again (with A and (I+L)^-1 kept).
#pragma once
#include "kernels/cuda/kda_chunk_tile.cuh"

/* shared memory of kcp_intra (112 KB at K = V = 128: two blocks per SM): region R, G, q, k of one half of the key
 * columns (64 x LH each), after the two halves KG of the second half (64 x LW) and V (64 x LWV each); region f,
 * the factor rows (80 x LH), later (I+L)^-1 and its level temporaries (64 x LI + 3 x 256, the larger at K < 128);
 * KG of the first half; L (64 x 65); beta. LH = KH + 4: conflict-free fragment loads (see kcp_tc) and 16-byte
 * copies at K = 128. */
template <int K, int V> struct kcp_intra_l {
    static constexpr int KH = K / 2, VH = V / 2, LH = KH + 4, LW = KH + 8, LWV = VH + 8, LI = 64 + 4;
    static constexpr int R = 3 * 64 * LH > 64 * LW + 2 * 64 * LWV ? 3 * 64 * LH : 64 * LW + 2 * 64 * LWV;
    static constexpr int F = 80 * LH > 64 * LI + 3 * 256 ? 80 * LH : 64 * LI + 3 * 256;
    static constexpr int G = 0, q = G + 64 * LH, k = q + 64 * LH, f = R, KG0 = f + F, L = KG0 + 64 * LW;
    static constexpr int beta = L + 64 * 65;
    static constexpr size_t bytes = sizeof(float) * (size_t)(beta + 64);
    static_assert(KH % 8 == 0 && VH % 8 == 0 && KG0 % 4 == 0 && R % 4 == 0 && LW % 4 == 0 && LWV % 4 == 0 &&
                      LH % 4 == 0,
                  "kcp_intra: layout");
};
template <int K, int V> static size_t kcp_intra_smem() { return kcp_intra_l<K, V>::bytes; }

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
template <int K, int V>
__device__ __forceinline__ void kcp_intra_half(float (&kg)[64 * (K / 2) / KCP_NT], float *QG_o, float *KD_o,
    float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk, size_t bhn, int i0, int c)
{
    typedef kcp_intra_l<K, V> L;
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
template <int K, int V>
__device__ __forceinline__ int kcp_intra_tc(float (&kg)[64 * (K / 2) / KCP_NT], float *Aqk_o, float *A_o,
    float *QG_o, float *KD_o, float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk,
    size_t bhn, int c)
{
    typedef kcp_intra_l<K, V> L;
    constexpr int KH = L::KH, LH = L::LH;
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *f = kcp_smem + L::f;
    float *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    float acc[5][4];
#pragma unroll
    for (int s = 0; s < 5; s++) acc[s][0] = acc[s][1] = acc[s][2] = acc[s][3] = 0.0f;
    for (int kh = 0; kh < 2; kh++) {
        if (kh) __syncthreads(); /* the first half's G, q, k and factor rows are read */
        kcp_intra_half<K, V>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
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
template <int K, int V>
__device__ __forceinline__ void kcp_intra_simt(float (&kg)[64 * (K / 2) / KCP_NT], float *Aqk_o, float *A_o,
    float *QG_o, float *KD_o, float *el_o, const float *q, const float *k, const float *g, size_t rowk, size_t sk,
    size_t bhn, int c)
{
    typedef kcp_intra_l<K, V> L;
    constexpr int KH = L::KH, LH = L::LH;
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    float *Gs = kcp_smem + L::G, *qs = kcp_smem + L::q, *ks = kcp_smem + L::k, *fq = kcp_smem + L::f;
    float *fk = fq + 16 * LH, *cf = fk + 16 * LH, *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    float aq[4][4], ak[4][4];
    kcp_zero(aq);
    kcp_zero(ak);
    for (int kh = 0; kh < 2; kh++) {
        if (kh) __syncthreads(); /* the first half's G, q, k and factor rows are read */
        kcp_intra_half<K, V>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
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
    typedef kcp_intra_l<K, V> L;
    constexpr int KH = L::KH, VH = L::VH, LW = L::LW, LWV = L::LWV, LI = L::LI, NKG = 64 * KH / KCP_NT;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const size_t bhn = (size_t)bh * NC + n, rowk = ((size_t)b * T + t0) * H * K + (size_t)h * K, sk = (size_t)H * K;
    float *KG0 = kcp_smem + L::KG0, *Ls = kcp_smem + L::L, *bs = kcp_smem + L::beta;
    if (tid < KCP_CH) bs[tid] = tid < c ? beta[((size_t)b * T + t0 + tid) * H + h] : 0.0f;
    float kg[NKG]; /* K e^G of the second half (W's right side) */
    if (SAVED) {
        for (int kh = 0; kh < 2; kh++) {
            if (kh) __syncthreads(); /* the first half's G, q, k are read */
            kcp_intra_half<K, V>(kg, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, kh * KH, c);
        }
    } else if (kcp_intra_tc<K, V>(kg, Aqk_o, A_o, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, c)) {
        kcp_intra_simt<K, V>(kg, Aqk_o, A_o, QG_o, KD_o, el_o, q, k, g, rowk, sk, bhn, c);
    }
    /*
     * [W | U] = (I + L)^-1 diag(beta) [K e^G | V], the inverse blocked as fla's solve_tril: the four diagonal
     * 16x16 blocks of the unit lower triangular (I + L) by forward substitution (one column per thread), then
     * the off-diagonal blocks of the inverse level by level (distance d = a - b):
     *   Ai[a][b] = -Ai[a][a] sum_{b <= c < a} L[a][c] Ai[c][b].
     * The right-hand sides are then tensor-core products with Ai diag(beta) (k = 64), which replace the
     * 64-step substitution per column. V loads (into region R, free now) while the inverse is computed.
     */
    float *Ai = kcp_smem + L::f, *Xt = Ai + 64 * LI, *KG1 = kcp_smem, *V0 = KG1 + 64 * LW, *V1 = V0 + 64 * LWV;
    __syncthreads(); /* G, q, k and the factor rows are read */
    {
        const float *vr = v + ((size_t)b * T + t0) * H * V + (size_t)h * V;
        kcp_cp_rows(V0, LWV, vr, (size_t)H * V, VH, c);
        kcp_cp_rows(V1, LWV, vr + VH, (size_t)H * V, VH, c);
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
    { /* halves of 16 columns take warp tiles of 16 rows (kcp_tc needs 8 columns per warp) */
        typedef kcp_tc<64, KH, KH >= 32 ? 2 : 4> PW;
        typedef kcp_tc<64, VH, VH >= 32 ? 2 : 4> PU;
        if constexpr (K == V) { /* one product shape: one loop over the four parts */
            const float *rhs[4] = {KG0, KG1, V0, V1};
            float acc[PW::NACC];
#pragma unroll
            for (int part = 0; part < 4; part++) {
                float *out = (part < 2 ? W_o : U_o) + bhn * 64 * K + (part & 1) * KH;
                PW::zero(acc);
                PW::mm(acc, Ai, LI, 1, rhs[part], LW, 1, 64);
                PW::store(out, K, acc);
            }
        } else {
            const float *rw[2] = {KG0, KG1}, *ru[2] = {V0, V1};
#pragma unroll
            for (int part = 0; part < 2; part++) {
                float acc[PW::NACC];
                PW::zero(acc);
                PW::mm(acc, Ai, LI, 1, rw[part], LW, 1, 64);
                PW::store(W_o + bhn * 64 * K + part * KH, K, acc);
            }
#pragma unroll
            for (int part = 0; part < 2; part++) {
                float acc[PU::NACC];
                PU::zero(acc);
                PU::mm(acc, Ai, LI, 1, ru[part], LWV, 1, 64);
                PU::store(U_o + bhn * 64 * V + part * VH, V, acc);
            }
        }
    }
}
