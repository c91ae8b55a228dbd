// kda_chunk_fwd.cuh - kernels 2-3 of the chunk-parallel KDA forward (kda_chunk.cu): the state pass over chunks
// (kcp_state) and the output (kcp_out).
#pragma once
#include "kernels/cuda/kda_chunk_tile.cuh"

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
    typedef kcp_tc<K, VT, KCP_STATE_WM(K)> P2;
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
