// attention.cu - CUDA causal GQA attention, forward and backward: online softmax, no Tq x Tk buffer.
#include <math.h>
#include <stdlib.h>

#include "kernels/cuda/cuda.cuh"

#define ST KCUDA_STREAM(b)

/* flash.cu: the tensor-core path for head dims 64 and 128 */
int kcuda_flash_ok(k_backend *b, const k_attn_shape *s, const void *p0, const void *p1, const void *p2, const void *p3);
void kcuda_flash_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                     const int32_t *q_start, const int32_t *seg, const k_attn_shape *s);
void kcuda_flash_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                     const float *v, const float *lse, const float *Dv, const int32_t *seg, const k_attn_shape *s);
#define AW 4            /* warps per block: 4 query rows (fwd, dq) or 4 key rows (dk/dv) */
#define KMAX_LANE 8     /* head dim up to 32 * 8 = 256 */

/*
 * One warp per query row; lane l holds dims l, l+32, ... of q and of the output accumulator, so a score is a
 * warp reduction and the value update is per lane. Keys are read straight from global memory (each key row is
 * shared by the Hq/Hkv query heads of its group and by neighbouring rows, so it is served from L2).
 * q [B,Tq,Hq,K], k/v [B,Tk,Hkv,K], out [B,Tq,Hq,K], lse [B,Hq,Tq].
 */
/* Query row `row` of B*Hq*Tq (i fastest): its sequence bb, position i, kv head kh, the last key it sees, and its
 * q (times scale) in lane registers (dims lane, lane+32, ...), the accumulator zeroed. */
struct att_row { int bb, i, h, kh, last; };

__device__ __forceinline__ att_row att_row_load(float (&qr)[KMAX_LANE], float (&acc)[KMAX_LANE], const float *q,
                                                const int32_t *q_start, size_t row, int Tq, int Tk, int Hq, int Hkv,
                                                int K, float scale)
{
    att_row r;
    r.i = row % Tq, r.h = (row / Tq) % Hq, r.bb = row / ((size_t)Tq * Hq);
    r.kh = r.h / (Hq / Hkv), r.last = (q_start ? q_start[r.bb] : 0) + r.i;
    if (r.last > Tk - 1) r.last = Tk - 1;
    const float *qi = q + (((size_t)r.bb * Tq + r.i) * Hq + r.h) * K;
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        qr[u] = c < K ? qi[c] * scale : 0.0f;
        acc[u] = 0;
    }
    return r;
}

__global__ void attn_fwd_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
                                const int32_t *q_start, const int32_t *seg, int B, int Tq, int Tk, int Hq, int Hkv,
                                int K, float scale)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * AW + (threadIdx.x >> 5); /* over B*Hq*Tq, i fastest */
    if (row >= (size_t)B * Hq * Tq) return;
    float qr[KMAX_LANE], acc[KMAX_LANE];
    att_row r = att_row_load(qr, acc, q, q_start, row, Tq, Tk, Hq, Hkv, K, scale);
    int i = r.i, h = r.h, bb = r.bb, kh = r.kh, last = r.last;
    int si = seg ? seg[(size_t)bb * Tq + i] : 0;
    float m = -INFINITY, l = 0;
    for (int j = 0; j <= last; j++) {
        if (seg && seg[(size_t)bb * Tk + j] != si) continue;
        const float *kj = k + (((size_t)bb * Tk + j) * Hkv + kh) * K;
        float s = 0;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) {
            int c = lane + 32 * u;
            if (c < K) s += qr[u] * kj[c];
        }
        s = kc_warp_sum(s);
        float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
        l = l * corr + p;
        const float *vj = v + (((size_t)bb * Tk + j) * Hkv + kh) * K;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) {
            int c = lane + 32 * u;
            if (c < K) acc[u] = acc[u] * corr + p * vj[c];
        }
        m = mn;
    }
    float inv = l > 0 ? 1.0f / l : 0.0f;
    float *oi = out + (((size_t)bb * Tq + i) * Hq + h) * K;
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        if (c < K) oi[c] = acc[u] * inv;
    }
    if (lse && lane == 0) lse[((size_t)bb * Hq + h) * Tq + i] = l > 0 ? m + logf(l) : -INFINITY;
}

/*
 * Decode steps (fewer than 16 query rows per sequence, against a KV cache): attn_fwd_kernel's one warp per row
 * walks every cached key in turn, so at 128K keys 16 warps do all the work (measured 124 ms per layer on an
 * H200). Split-K instead ("flash-decoding"): block (split, row) takes DEC_KEYS keys of one row, its AW warps take
 * every AW-th of them with an online softmax each, merged in shared memory; a partial (m, l, acc[K]) per split
 * goes to scratch, and attn_dec_combine merges the splits of a row in order (deterministic). Memory-bound: K and V
 * are read once per query head.
 */
#define DEC_KEYS 256

__global__ void attn_dec_split(float *part, const float *q, const float *k, const float *v, const int32_t *q_start,
                               int B, int Tq, int Tk, int Hq, int Hkv, int K, float scale, int nsplit)
{
    __shared__ float sm[AW][2], sacc[AW][32 * KMAX_LANE];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, split = blockIdx.x;
    size_t row = blockIdx.y; /* over B*Hq*Tq, i fastest */
    float qr[KMAX_LANE], acc[KMAX_LANE];
    att_row r = att_row_load(qr, acc, q, q_start, row, Tq, Tk, Hq, Hkv, K, scale);
    int bb = r.bb, kh = r.kh, j0 = split * DEC_KEYS, j1 = min(j0 + DEC_KEYS, r.last + 1);
    float m = -INFINITY, l = 0;
    for (int j = j0 + w; j < j1; j += AW) {
        const float *kj = k + (((size_t)bb * Tk + j) * Hkv + kh) * K, *vj = v + (((size_t)bb * Tk + j) * Hkv + kh) * K;
        float kr[KMAX_LANE], vr[KMAX_LANE], sc = 0;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) { /* both rows' loads in flight before the reduction */
            int c = lane + 32 * u;
            kr[u] = c < K ? kj[c] : 0.0f;
            vr[u] = c < K ? vj[c] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) sc += qr[u] * kr[u];
        sc = kc_warp_sum(sc);
        float mn = fmaxf(m, sc), corr = expf(m - mn), p = expf(sc - mn);
        l = l * corr + p;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) acc[u] = acc[u] * corr + p * vr[u];
        m = mn;
    }
    if (lane == 0) { sm[w][0] = m; sm[w][1] = l; }
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) sacc[w][lane + 32 * u] = acc[u];
    __syncthreads();
    if (w) return;
    float M = -INFINITY;
    for (int x = 0; x < AW; x++) M = fmaxf(M, sm[x][0]);
    float L = 0, f[AW];
    for (int x = 0; x < AW; x++) {
        f[x] = sm[x][1] > 0 ? expf(sm[x][0] - M) : 0.0f;
        L += sm[x][1] * f[x];
    }
    float *pp = part + (row * nsplit + split) * (size_t)(K + 2);
    if (lane == 0) { pp[0] = M; pp[1] = L; }
    for (int c = lane; c < K; c += 32) {
        float a = 0;
        for (int x = 0; x < AW; x++) a += sacc[x][c] * f[x];
        pp[2 + c] = a;
    }
}

__global__ void attn_dec_combine(float *out, float *lse, const float *part, int rows, int Tq, int Hq, int K, int nsplit)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * AW + (threadIdx.x >> 5);
    if (row >= (size_t)rows) return;
    const float *pr = part + row * nsplit * (size_t)(K + 2);
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++)
        if (pr[s * (size_t)(K + 2) + 1] > 0) M = fmaxf(M, pr[s * (size_t)(K + 2)]);
    float L = 0;
    for (int s = 0; s < nsplit; s++) {
        float l = pr[s * (size_t)(K + 2) + 1];
        if (l > 0) L += l * expf(pr[s * (size_t)(K + 2)] - M);
    }
    float inv = L > 0 ? 1.0f / L : 0.0f;
    int i = row % Tq, h = (row / Tq) % Hq, bb = row / ((size_t)Tq * Hq);
    float *oi = out + (((size_t)bb * Tq + i) * Hq + h) * K;
    for (int c = lane; c < K; c += 32) {
        float a = 0;
        for (int s = 0; s < nsplit; s++) {
            const float *ps = pr + s * (size_t)(K + 2);
            if (ps[1] > 0) a += ps[2 + c] * expf(ps[0] - M);
        }
        oi[c] = a * inv;
    }
    if (lse && lane == 0) lse[((size_t)bb * Hq + h) * Tq + i] = L > 0 ? M + logf(L) : -INFINITY;
}

static void attn_decode(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                        const int32_t *q_start, const k_attn_shape *s)
{
    int nsplit = (s->Tk + DEC_KEYS - 1) / DEC_KEYS;
    size_t rows = (size_t)s->B * s->Hq * s->Tq;
    float *part = (float *)kcuda_scratch(b, rows * nsplit * (size_t)(s->K + 2) * sizeof(float));
    attn_dec_split<<<dim3(nsplit, (unsigned)rows), 32 * AW, 0, ST>>>(part, q, k, v, q_start, s->B, s->Tq, s->Tk,
                                                                       s->Hq, s->Hkv, s->K, s->scale, nsplit);
    KLAUNCH_CHECK();
    attn_dec_combine<<<kc_blocks(rows, AW), 32 * AW, 0, ST>>>(out, lse, part, (int)rows, s->Tq, s->Hq, s->K, nsplit);
    KLAUNCH_CHECK();
}

void kcuda_attn_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                    const int32_t *q_start, const int32_t *seg, const k_attn_shape *s)
{
    if (s->K > 32 * KMAX_LANE || s->Hq % s->Hkv)
        BUG("attn_fwd: head dim %d > %d or Hq %d not a multiple of Hkv %d", s->K, 32 * KMAX_LANE, s->Hq, s->Hkv);
    size_t rows = (size_t)s->B * s->Hq * s->Tq;
    if (!rows) return;
    if (kcuda_flash_ok(b, s, q, k, v, out)) {
        kcuda_flash_fwd(b, out, lse, q, k, v, q_start, seg, s);
        return;
    }
    /* split-K when there are many keys per row to walk and few rows to spread them over */
    if (!seg && s->Tk > 2 * DEC_KEYS && rows < (size_t)16 * KCUDA_CTX(b)->n_sm && rows <= 65535 &&
        !getenv("HX_CUDA_ATTN_NOSPLIT")) {
        attn_decode(b, out, lse, q, k, v, q_start, s);
        return;
    }
    attn_fwd_kernel<<<kc_blocks(rows, AW), 32 * AW, 0, ST>>>(out, lse, q, k, v, q_start, seg, s->B, s->Tq, s->Tk,
                                                              s->Hq, s->Hkv, s->K, s->scale);
    KLAUNCH_CHECK();
}

/* D[b,h,i] = dout_i . out_i */
__global__ void attn_bwd_D_kernel(float *D, const float *dout, const float *out, int B, int T, int Hq, int K)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * AW + (threadIdx.x >> 5);
    if (row >= (size_t)B * Hq * T) return;
    int i = row % T, h = (row / T) % Hq, bb = row / ((size_t)T * Hq);
    size_t o = (((size_t)bb * T + i) * Hq + h) * K;
    float s = 0;
    for (int c = lane; c < K; c += 32) s += dout[o + c] * out[o + c];
    s = kc_warp_sum(s);
    if (lane == 0) D[row] = s;
}

/* dq_i += scale sum_j p_ij (dout_i . v_j - D_i) k_j, one warp per query row, j ascending */
__global__ void attn_bwd_dq_kernel(float *dq, const float *dout, const float *q, const float *k, const float *v,
                                   const float *lse, const float *D, const int32_t *seg, int B, int T, int Hq,
                                   int Hkv, int K, float scale)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * AW + (threadIdx.x >> 5);
    if (row >= (size_t)B * Hq * T) return;
    int i = row % T, h = (row / T) % Hq, bb = row / ((size_t)T * Hq);
    int kh = h / (Hq / Hkv), si = seg ? seg[(size_t)bb * T + i] : 0;
    size_t qo = (((size_t)bb * T + i) * Hq + h) * K;
    float qr[KMAX_LANE], dr[KMAX_LANE], acc[KMAX_LANE];
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        qr[u] = c < K ? q[qo + c] : 0.0f;
        dr[u] = c < K ? dout[qo + c] : 0.0f;
        acc[u] = 0;
    }
    float L = lse[row], Di = D[row];
    for (int j = 0; j <= i; j++) {
        if (seg && seg[(size_t)bb * T + j] != si) continue;
        size_t ko = (((size_t)bb * T + j) * Hkv + kh) * K;
        float s = 0, dp = 0;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) {
            int c = lane + 32 * u;
            if (c < K) {
                s += qr[u] * k[ko + c];
                dp += dr[u] * v[ko + c];
            }
        }
        s = kc_warp_sum(s);
        dp = kc_warp_sum(dp);
        float p = expf(scale * s - L), ds = p * (dp - Di) * scale;
#pragma unroll
        for (int u = 0; u < KMAX_LANE; u++) {
            int c = lane + 32 * u;
            if (c < K) acc[u] += ds * k[ko + c];
        }
    }
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        if (c < K) dq[qo + c] += acc[u];
    }
}

/* dv_j += sum p_ij dout_i, dk_j += scale sum p_ij (dp_ij - D_i) q_i over the group's query heads and i >= j;
 * one warp per key row of one kv head: no atomics, fixed order. */
__global__ void attn_bwd_dkv_kernel(float *dk, float *dv, const float *dout, const float *q, const float *k,
                                    const float *v, const float *lse, const float *D, const int32_t *seg, int B,
                                    int T, int Hq, int Hkv, int K, float scale)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * AW + (threadIdx.x >> 5);
    if (row >= (size_t)B * Hkv * T) return;
    int j = row % T, kh = (row / T) % Hkv, bb = row / ((size_t)T * Hkv);
    int grp = Hq / Hkv, sj = seg ? seg[(size_t)bb * T + j] : 0;
    size_t ko = (((size_t)bb * T + j) * Hkv + kh) * K;
    float kr[KMAX_LANE], vr[KMAX_LANE], dka[KMAX_LANE], dva[KMAX_LANE];
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        kr[u] = c < K ? k[ko + c] : 0.0f;
        vr[u] = c < K ? v[ko + c] : 0.0f;
        dka[u] = dva[u] = 0;
    }
    for (int h = kh * grp; h < (kh + 1) * grp; h++)
        for (int i = j; i < T; i++) {
            if (seg && seg[(size_t)bb * T + i] != sj) continue;
            size_t qo = (((size_t)bb * T + i) * Hq + h) * K, r = ((size_t)bb * Hq + h) * T + i;
            float s = 0, dp = 0;
#pragma unroll
            for (int u = 0; u < KMAX_LANE; u++) {
                int c = lane + 32 * u;
                if (c < K) {
                    s += q[qo + c] * kr[u];
                    dp += dout[qo + c] * vr[u];
                }
            }
            s = kc_warp_sum(s);
            dp = kc_warp_sum(dp);
            float p = expf(scale * s - lse[r]), ds = p * (dp - D[r]) * scale;
#pragma unroll
            for (int u = 0; u < KMAX_LANE; u++) {
                int c = lane + 32 * u;
                if (c < K) {
                    dva[u] += p * dout[qo + c];
                    dka[u] += ds * q[qo + c];
                }
            }
        }
#pragma unroll
    for (int u = 0; u < KMAX_LANE; u++) {
        int c = lane + 32 * u;
        if (c < K) {
            dk[ko + c] += dka[u];
            dv[ko + c] += dva[u];
        }
    }
}

void kcuda_attn_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q,
                    const float *k, const float *v, const float *out, const float *lse, const int32_t *seg,
                    const k_attn_shape *s)
{
    const int B = s->B, T = s->Tq, Hq = s->Hq, Hkv = s->Hkv, K = s->K;
    if (K > 32 * KMAX_LANE || Hq % Hkv) BUG("attn_bwd: head dim %d or Hq %d / Hkv %d", K, Hq, Hkv);
    if (s->Tk != s->Tq) BUG("attn_bwd: Tq %d != Tk %d", s->Tq, s->Tk);
    size_t rows = (size_t)B * Hq * T;
    if (!rows) return;
    float *D = (float *)kcuda_scratch(b, rows * sizeof(float));
    attn_bwd_D_kernel<<<kc_blocks(rows, AW), 32 * AW, 0, ST>>>(D, dout, out, B, T, Hq, K);
    KLAUNCH_CHECK();
    if (kcuda_flash_ok(b, s, dq, dk, dv, dout) && kcuda_flash_ok(b, s, q, k, v, out)) {
        kcuda_flash_bwd(b, dq, dk, dv, dout, q, k, v, lse, D, seg, s);
        return;
    }
    attn_bwd_dq_kernel<<<kc_blocks(rows, AW), 32 * AW, 0, ST>>>(dq, dout, q, k, v, lse, D, seg, B, T, Hq, Hkv, K,
                                                                 s->scale);
    KLAUNCH_CHECK();
    size_t krows = (size_t)B * Hkv * T;
    attn_bwd_dkv_kernel<<<kc_blocks(krows, AW), 32 * AW, 0, ST>>>(dk, dv, dout, q, k, v, lse, D, seg, B, T, Hq, Hkv,
                                                                   K, s->scale);
    KLAUNCH_CHECK();
}
