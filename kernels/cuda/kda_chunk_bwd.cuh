// kda_chunk_bwd.cuh - kernels 4-5 of the chunk-parallel KDA backward (kda_chunk.cu): the reverse state pass
// (kcp_state_bwd) and the per-chunk gradients (kcp_bvn, kcp_bgrad, kcp_bdl, kcp_bqk).
#pragma once
#include "kernels/cuda/kda_chunk_tile.cuh"

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
    typedef kcp_tc<K, VT, KCP_STATE_WM(K)> P2;
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
    static constexpr int VW = V < 64 ? V : 64, Z = V / VW; /* value columns per block, blocks per chunk */
    static constexpr int LW = K + 4, LS = VW + 8; /* W k-contiguous, S0 columns n-contiguous (see kcp_tc) */
    static constexpr size_t bytes = sizeof(float) * (size_t)(64 * LW + K * LS);
};

/* 5a: Vn = U - W S0, value columns [VW z, +VW) of chunk blockIdx.x of (b, h) = blockIdx.y (VW = 64, or V < 64) */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT, 3) kcp_bvn(float *Vn, const float *U, const float *W, const float *sch)
{
    typedef kcp_bvn_l<K, V> L;
    typedef kcp_tc<64, L::VW, 2> P;
    const int e0 = L::VW * blockIdx.z;
    const size_t bhn = (size_t)blockIdx.y * gridDim.x + blockIdx.x;
    float *Ws = kcp_smem, *Ss = Ws + 64 * L::LW;
    kcp_cp_block(Ws, L::LW, W + bhn * 64 * K, 64, K);
    kcp_cp_tile(Ss, L::LS, sch + bhn * K * V + e0, V, K, L::VW);
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

/* three slots of [64 x (V+4)] (or [64 x 72] for Ai and dW at V < 68) and beta */
template <int K, int V> struct kcp_bgrad_l {
    static constexpr int KW = K / 2, VW = V / 2; /* the key and value columns of one block */
    static constexpr int LV = V + 4, LH = 64 + 8; /* LH: Ai and dW as m- and n-contiguous operands */
    static constexpr int SL = 64 * (LV > LH ? LV : LH);
    static constexpr int A = 0, B = A + SL, C = B + SL, beta = C + SL;
    static constexpr size_t bytes = sizeof(float) * (size_t)(beta + 64);
};

/* 5b: key columns [KW z, +KW) and value columns [VW z, +VW) (the halves) of chunk blockIdx.x of
 * (b, h) = blockIdx.y; see above */
template <int K, int V>
__global__ void __launch_bounds__(KCP_NT, 2) kcp_bgrad(float *dQG, float *dKD, float *dRW, float *dAqkT, float *del,
    float *dRU, float *dv, const float *Vn, const float *dVn, const float *Ainv, const float *sch, const float *dSc,
    const float *dout, const float *beta, int T, int H)
{
    typedef kcp_bgrad_l<K, V> L;
    /* [64 x KW] and [64 x VW] products; halves of 16 columns take warp tiles of 16 rows (8 columns per warp) */
    typedef kcp_tc<64, L::KW, L::KW >= 32 ? 2 : 4> P;
    typedef kcp_tc<64, L::VW, L::VW >= 32 ? 2 : 4> PV;
    constexpr int LV = L::LV, LH = L::LH, KW = L::KW;
    const int n = blockIdx.x, NC = gridDim.x, bh = blockIdx.y, b = bh / H, h = bh % H, t0 = n * KCP_CH;
    const int c = T - t0 < KCP_CH ? T - t0 : KCP_CH, tid = threadIdx.x, z = blockIdx.z, i0 = KW * z;
    const int j0 = L::VW * z;
    const size_t bhn = (size_t)bh * NC + n, rowv = ((size_t)b * T + t0) * H * V + (size_t)h * V, sv = (size_t)H * V;
    float *As = kcp_smem + L::A, *Bs = kcp_smem + L::B, *Cs = kcp_smem + L::C, *bs = kcp_smem + L::beta;
    kcp_cp_tile(As, LV, sch + bhn * K * V + (size_t)i0 * V, V, KW, V); /* S0 rows i0.. */
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
    kcp_cp_tile(Bs, LV, dSc + bhn * K * V + (size_t)i0 * V, V, KW, V); /* dS1 rows i0.. */
    kcp_commit();
    kcp_wait<0>();
    __syncthreads();
    if (4 * KW >= KCP_NT || tid < 4 * KW) { /* del_i = S0_i . dS1_i, four threads per row (whole warps) */
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
    float o[PV::NACC]; /* dv as it came, read while Ai loads: its latency hides behind that wait (-5% here) */
#pragma unroll
    for (int x = 0; x < PV::NACC; x += 2) {
        int r = PV::row(x);
        float2 y = r < c ? *(const float2 *)(dv + rowv + (size_t)r * sv + j0 + PV::col(x)) : make_float2(0.0f, 0.0f);
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
    { /* dRU = Ai^T dVn, value columns [VW z, +VW); dv += diag(beta) dRU */
        float acc[PV::NACC];
        PV::zero(acc);
        PV::mm(acc, As, 1, LH, Cs + j0, LV, 1, 64);
        PV::store(dRU + bhn * 64 * V + j0, V, acc);
#pragma unroll
        for (int x = 0; x < PV::NACC; x += 2) {
            int r = PV::row(x);
            if (r < c)
                *(float2 *)(dv + rowv + (size_t)r * sv + j0 + PV::col(x)) =
                    make_float2(o[x] + bs[r] * acc[x], o[x + 1] + bs[r] * acc[x + 1]);
        }
    }
}

template <int K, int V> struct kcp_bdl_l { /* three [64 x LV] slots: K or V columns, or [64 x 64] at LA */
    static constexpr int KV = K > V ? K : V, LV = (KV > 64 ? KV : 64) + 4, LA = 64 + 4;
    static constexpr int A = 0, B = A + 64 * LV, C = B + 64 * LV, beta = C + 64 * LV, red = beta + 64;
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
