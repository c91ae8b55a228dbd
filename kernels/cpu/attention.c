/* attention.c - CPU causal GQA attention, forward and backward, tiled over keys with an online softmax. */
#include <math.h>
#include <string.h>

#include "base/base.h"
#include "kernels/cpu/ops.h"

#define TILE KCPU_ATTN_TILE

static inline float dotf(const float *a, const float *b, int K)
{
    float s = 0;
    for (int i = 0; i < K; i++) s += a[i] * b[i];
    return s;
}

/* Last key index query (b, i) may see, and whether key j is in its document. */
static inline int attn_last_key(const int32_t *q_start, int b, int i)
{
    return (q_start ? q_start[b] : 0) + i;
}

/*
 * Forward (FlashAttention-2 style, one query row at a time, keys in tiles of TILE):
 *   s_j = scale * q_i . k_j (visible j);  m = running max;  l = sum exp(s_j - m);  acc = sum exp(s_j - m) v_j
 *   out_i = acc / l;  lse_i = m + log l.  Memory: O(TILE + K) per thread, never Tq x Tk.
 * q [B,Tq,Hq,K], k/v [B,Tk,Hkv,K], out [B,Tq,Hq,K], lse [B,Hq,Tq].
 */
void kcpu_attn_fwd(k_backend *b, float *out, float *lse, const float *q, const float *k, const float *v,
                   const int32_t *q_start, const int32_t *seg, const k_attn_shape *s)
{
    const int B = s->B, Tq = s->Tq, Tk = s->Tk, Hq = s->Hq, Hkv = s->Hkv, K = s->K, grp = Hq / Hkv;
    const float scale = s->scale;
    if (K > 1024 || Hq % Hkv) BUG("attn_fwd: head dim %d > 1024 or Hq %d not a multiple of Hkv %d", K, Hq, Hkv);
#pragma omp parallel for collapse(3) num_threads(b->threads) schedule(static)
    for (int bb = 0; bb < B; bb++)
        for (int h = 0; h < Hq; h++)
            for (int i = 0; i < Tq; i++) {
                float sc[TILE], acc[1024];
                const float *qi = q + (((size_t)bb * Tq + i) * Hq + h) * K;
                const int kh = h / grp, last = attn_last_key(q_start, bb, i);
                const int si = seg ? seg[(size_t)bb * Tq + i] : 0;
                float m = -INFINITY, l = 0;
                memset(acc, 0, (size_t)K * sizeof(float));
                for (int j0 = 0; j0 <= last && j0 < Tk; j0 += TILE) {
                    int j1 = j0 + TILE - 1;
                    if (j1 > last) j1 = last;
                    if (j1 >= Tk) j1 = Tk - 1;
                    float tmax = -INFINITY;
                    for (int j = j0; j <= j1; j++) {
                        if (seg && seg[(size_t)bb * Tk + j] != si) {
                            sc[j - j0] = -INFINITY;
                            continue;
                        }
                        const float *kj = k + (((size_t)bb * Tk + j) * Hkv + kh) * K;
                        sc[j - j0] = scale * dotf(qi, kj, K);
                        if (sc[j - j0] > tmax) tmax = sc[j - j0];
                    }
                    if (tmax == -INFINITY) continue; /* whole tile in other documents */
                    float mnew = m > tmax ? m : tmax, corr = expf(m - mnew);
                    l *= corr;
                    for (int c = 0; c < K; c++) acc[c] *= corr;
                    for (int j = j0; j <= j1; j++) {
                        if (sc[j - j0] == -INFINITY) continue;
                        float p = expf(sc[j - j0] - mnew);
                        l += p;
                        const float *vj = v + (((size_t)bb * Tk + j) * Hkv + kh) * K;
                        for (int c = 0; c < K; c++) acc[c] += p * vj[c];
                    }
                    m = mnew;
                }
                float *oi = out + (((size_t)bb * Tq + i) * Hq + h) * K;
                float inv = l > 0 ? 1.0f / l : 0;
                for (int c = 0; c < K; c++) oi[c] = acc[c] * inv;
                if (lse) lse[((size_t)bb * Hq + h) * Tq + i] = l > 0 ? m + logf(l) : -INFINITY;
            }
}

/*
 * Backward (Tq == Tk == T). With p_ij = exp(s_ij - lse_i) and D_i = dout_i . out_i:
 *   dv_j += p_ij dout_i;  dp_ij = dout_i . v_j;  ds_ij = p_ij (dp_ij - D_i);
 *   dq_i += scale ds_ij k_j;  dk_j += scale ds_ij q_i.
 * One task per (b, kv head) owns dk/dv of that head and dq of its query heads, and walks (h, i, j) in a fixed
 * order: deterministic, no atomics, no T x T buffer.
 */
void kcpu_attn_bwd(k_backend *b, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                   const float *v, const float *out, const float *lse, const int32_t *seg, const k_attn_shape *s)
{
    const int B = s->B, T = s->Tq, Hq = s->Hq, Hkv = s->Hkv, K = s->K, grp = Hq / Hkv;
    const float scale = s->scale;
    if (K > 1024 || Hq % Hkv) BUG("attn_bwd: head dim %d > 1024 or Hq %d not a multiple of Hkv %d", K, Hq, Hkv);
    if (s->Tk != s->Tq) BUG("attn_bwd: Tq %d != Tk %d", s->Tq, s->Tk);
#pragma omp parallel for collapse(2) num_threads(b->threads) schedule(dynamic, 1)
    for (int bb = 0; bb < B; bb++)
        for (int kh = 0; kh < Hkv; kh++) {
            float dqi[1024];
            for (int h = kh * grp; h < (kh + 1) * grp; h++)
                for (int i = 0; i < T; i++) {
                    size_t qo = (((size_t)bb * T + i) * Hq + h) * K;
                    const float *qi = q + qo, *doi = dout + qo, *oi = out + qo;
                    float L = lse[((size_t)bb * Hq + h) * T + i], D = dotf(doi, oi, K);
                    int si = seg ? seg[(size_t)bb * T + i] : 0;
                    memset(dqi, 0, (size_t)K * sizeof(float));
                    for (int j = 0; j <= i; j++) {
                        if (seg && seg[(size_t)bb * T + j] != si) continue;
                        size_t ko = (((size_t)bb * T + j) * Hkv + kh) * K;
                        const float *kj = k + ko, *vj = v + ko;
                        float p = expf(scale * dotf(qi, kj, K) - L);
                        float ds = p * (dotf(doi, vj, K) - D) * scale;
                        float *dkj = dk + ko, *dvj = dv + ko;
                        for (int c = 0; c < K; c++) {
                            dvj[c] += p * doi[c];
                            dkj[c] += ds * qi[c];
                            dqi[c] += ds * kj[c];
                        }
                    }
                    float *dq_i = dq + qo;
                    for (int c = 0; c < K; c++) dq_i[c] += dqi[c];
                }
        }
}
