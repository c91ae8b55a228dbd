/* kda.c - CPU fp32 reference of the KDA core (chunked forward/backward, recurrent reference, decode step). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "base/base.h"
#include "kernels/cpu/kda.h"

#define CH K_KDA_CHUNK

/*
 * One (b, h) sequence as strided views: row t of q/k/g at t*sk, of v/o at t*sv, beta at t*sb.
 * Chunk algebra (docs/models.md section 2, "Computing it"), for a chunk of c <= 64 rows starting with state S0:
 *   G_r      = sum_{j<=r} g_j                                   (in-chunk cumulative log decay, <= 0)
 *   A[r,j]   = sum_i k_ri k_ji exp(G_ri - G_ji), j < r;  L = diag(beta) A (strictly lower)
 *   Aqk[r,j] = sum_i q_ri k_ji exp(G_ri - G_ji), j <= r
 *   W = (I+L)^-1 diag(beta) (K * exp(G)),  U = (I+L)^-1 diag(beta) V      (forward substitution)
 *   Vn = U - W S0;  O = (Q * exp(G)) S0 + Aqk Vn;  S1 = diag(exp(G_last)) S0 + (K * exp(G_last - G))^T Vn
 * Each pairwise weight is computed as exp(G_r - G_j) with j <= r, never as exp(G_r) * exp(-G_j): no exponent
 * is positive, so strong decay underflows to zero instead of overflowing.
 */
typedef struct kda_seq {
    const float *q, *k, *v, *g, *beta;
    int sk, sv, sb; /* row strides */
    int T, K, V;
} kda_seq;

typedef struct kda_work {
    float *G, *A, *Aqk, *W, *U, *Vn, *QG, *KG, *KD, *el;
    /* backward only */
    float *dVn, *dS0, *dS, *dAqk, *dQG, *dKD, *dW, *dRU, *dRW, *dL, *dKG, *dG, *del;
} kda_work;

static size_t kda_work_floats(int K, int V, int bwd)
{
    size_t f = (size_t)CH * K * 5 + (size_t)CH * CH * 2 + (size_t)CH * V * 2 + K;
    if (bwd) f += (size_t)CH * V * 2 + (size_t)K * V * 2 + (size_t)CH * CH * 2 + (size_t)CH * K * 6 + K;
    return f;
}

static void kda_work_bind(kda_work *w, float *p, int K, int V, int bwd)
{
    memset(w, 0, sizeof *w);
#define TAKE(field, n) (w->field = p, p += (n))
    TAKE(G, CH * K); TAKE(A, CH * CH); TAKE(Aqk, CH * CH); TAKE(W, CH * K); TAKE(U, CH * V);
    TAKE(Vn, CH * V); TAKE(QG, CH * K); TAKE(KG, CH * K); TAKE(KD, CH * K); TAKE(el, K);
    if (bwd) {
        TAKE(dVn, CH * V); TAKE(dS0, K * V); TAKE(dS, K * V); TAKE(dAqk, CH * CH); TAKE(dQG, CH * K);
        TAKE(dKD, CH * K); TAKE(dW, CH * K); TAKE(dRU, CH * V); TAKE(dRW, CH * K); TAKE(dL, CH * CH);
        TAKE(dKG, CH * K); TAKE(dG, CH * K); TAKE(del, K);
    }
#undef TAKE
}

/* Everything of one chunk [t0, t0+c) that depends on the inputs and S0: G, A, Aqk, QG, KG, KD, el, W, U, Vn. */
static void kda_chunk_prepare(const kda_seq *s, kda_work *w, int t0, int c, const float *S0)
{
    const int K = s->K, V = s->V;
    for (int r = 0; r < c; r++) {
        const float *gr = s->g + (size_t)(t0 + r) * s->sk;
        for (int i = 0; i < K; i++) w->G[r * K + i] = (r ? w->G[(r - 1) * K + i] : 0.0f) + gr[i];
    }
    const float *Gl = w->G + (c - 1) * K;
    for (int i = 0; i < K; i++) w->el[i] = expf(Gl[i]);
    for (int r = 0; r < c; r++) {
        const float *qr = s->q + (size_t)(t0 + r) * s->sk, *kr = s->k + (size_t)(t0 + r) * s->sk;
        const float *Gr = w->G + r * K;
        for (int i = 0; i < K; i++) {
            float e = expf(Gr[i]);
            w->QG[r * K + i] = qr[i] * e;
            w->KG[r * K + i] = kr[i] * e;
            w->KD[r * K + i] = kr[i] * expf(Gl[i] - Gr[i]);
        }
        for (int j = 0; j <= r; j++) {
            const float *kj = s->k + (size_t)(t0 + j) * s->sk, *Gj = w->G + j * K;
            float aqk = 0, akk = 0;
            for (int i = 0; i < K; i++) {
                float e = expf(Gr[i] - Gj[i]) * kj[i];
                aqk += qr[i] * e;
                akk += kr[i] * e;
            }
            w->Aqk[r * CH + j] = aqk;
            w->A[r * CH + j] = j < r ? akk : 0.0f;
        }
        for (int j = r + 1; j < c; j++) w->Aqk[r * CH + j] = w->A[r * CH + j] = 0.0f; /* the matmuls read it */
    }
    /* (I + L) X = diag(beta) [K*exp(G) | V], L[r,j] = beta_r A[r,j] */
    for (int r = 0; r < c; r++) {
        float br = s->beta[(size_t)(t0 + r) * s->sb];
        const float *vr = s->v + (size_t)(t0 + r) * s->sv;
        float *Wr = w->W + r * K, *Ur = w->U + r * V;
        for (int i = 0; i < K; i++) Wr[i] = br * w->KG[r * K + i];
        for (int e = 0; e < V; e++) Ur[e] = br * vr[e];
        for (int j = 0; j < r; j++) {
            float l = br * w->A[r * CH + j];
            const float *Wj = w->W + j * K, *Uj = w->U + j * V;
            for (int i = 0; i < K; i++) Wr[i] -= l * Wj[i];
            for (int e = 0; e < V; e++) Ur[e] -= l * Uj[e];
        }
    }
    /* Vn = U - W S0 */
    memcpy(w->Vn, w->U, sizeof(float) * c * V);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, V, K, -1.0f, w->W, K, S0, V, 1.0f, w->Vn, V);
}

/* Forward over one sequence; S [K,V] is the initial state on entry, the final state on return. */
static void kda_fwd_seq(const kda_seq *s, kda_work *w, float *o, int so, float *S, float *s_chunks)
{
    const int K = s->K, V = s->V;
    for (int t0 = 0, n = 0; t0 < s->T; t0 += CH, n++) {
        int c = s->T - t0 < CH ? s->T - t0 : CH;
        if (s_chunks) memcpy(s_chunks + (size_t)n * K * V, S, sizeof(float) * K * V);
        kda_chunk_prepare(s, w, t0, c, S);
        float *oc = o + (size_t)t0 * so;
        /* O = (Q*exp(G)) S0 + Aqk Vn */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, V, K, 1.0f, w->QG, K, S, V, 0.0f, oc, so);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, V, c, 1.0f, w->Aqk, CH, w->Vn, V, 1.0f, oc, so);
        /* S = diag(exp(G_last)) S + (K*exp(G_last-G))^T Vn */
        for (int i = 0; i < K; i++)
            for (int e = 0; e < V; e++) S[i * V + e] *= w->el[i];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, V, c, 1.0f, w->KD, K, w->Vn, V, 1.0f, S, V);
    }
}

/*
 * Backward over one sequence, chunks in reverse. dS [K,V] holds dL/dS_final on entry and dL/dS_0 on return.
 * Per chunk, restating the forward lines:
 *   Vn = U - W S0                 -> dU = dVn, dW = -dVn S0^T, dS0 -= W^T dVn
 *   O = QG S0 + Aqk Vn            -> dQG = dO S0^T, dS0 += QG^T dO, dAqk = dO Vn^T, dVn += Aqk^T dO
 *   S1 = diag(el) S0 + KD^T Vn    -> dS0 += el * dS1, del = rowsum(S0 * dS1), dKD = Vn dS1^T, dVn += KD dS1
 *   (I+L) [W|U] = diag(beta) [KG|V] -> dR = (I+L)^-T d[W|U] (back substitution), dL = -dR [W|U]^T (j < r)
 * then the elementwise and pairwise exp(G) factors give dq, dk and dG, and dg = reverse cumsum of dG.
 */
static void kda_bwd_seq(const kda_seq *s, kda_work *w, const float *dout, int so, float *dS, const float *s_chunks,
                        float *dq, float *dk, float *dv, float *dg, float *dbeta)
{
    const int K = s->K, V = s->V;
    const int nc = k_kda_nchunks(s->T);
    for (int n = nc - 1; n >= 0; n--) {
        int t0 = n * CH, c = s->T - t0 < CH ? s->T - t0 : CH;
        const float *S0 = s_chunks + (size_t)n * K * V;
        kda_chunk_prepare(s, w, t0, c, S0);
        const float *dO = dout + (size_t)t0 * so;

        /* dVn = Aqk^T dO + KD dS1 */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, V, c, 1.0f, w->Aqk, CH, dO, so, 0.0f, w->dVn, V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, V, K, 1.0f, w->KD, K, dS, V, 1.0f, w->dVn, V);
        /* dS0 = QG^T dO + el * dS1 - W^T dVn */
        for (int i = 0; i < K; i++)
            for (int e = 0; e < V; e++) w->dS0[i * V + e] = w->el[i] * dS[i * V + e];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, V, c, 1.0f, w->QG, K, dO, so, 1.0f, w->dS0, V);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, V, c, -1.0f, w->W, K, w->dVn, V, 1.0f, w->dS0, V);
        /* dAqk = dO Vn^T (lower incl. diagonal used), dQG = dO S0^T, dKD = Vn dS1^T, dW = -dVn S0^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, c, V, 1.0f, dO, so, w->Vn, V, 0.0f, w->dAqk, CH);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, K, V, 1.0f, dO, so, S0, V, 0.0f, w->dQG, K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, K, V, 1.0f, w->Vn, V, dS, V, 0.0f, w->dKD, K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, K, V, -1.0f, w->dVn, V, S0, V, 0.0f, w->dW, K);
        for (int i = 0; i < K; i++) {
            float a = 0;
            for (int e = 0; e < V; e++) a += S0[i * V + e] * dS[i * V + e];
            w->del[i] = a;
        }
        /* (I+L)^T dR = [dW | dU]: back substitution, dR_r = dX_r - sum_{j>r} L[j,r] dR_j */
        for (int r = c - 1; r >= 0; r--) {
            float *dRW = w->dRW + r * K, *dRU = w->dRU + r * V;
            memcpy(dRW, w->dW + r * K, sizeof(float) * K);
            memcpy(dRU, w->dVn + r * V, sizeof(float) * V);
            for (int j = r + 1; j < c; j++) {
                float l = s->beta[(size_t)(t0 + j) * s->sb] * w->A[j * CH + r];
                for (int i = 0; i < K; i++) dRW[i] -= l * w->dRW[j * K + i];
                for (int e = 0; e < V; e++) dRU[e] -= l * w->dRU[j * V + e];
            }
        }
        /* R = diag(beta) [KG | V], L = diag(beta) A: dv, dbeta, dKG, and dA = beta_r dL */
        for (int r = 0; r < c; r++) {
            float br = s->beta[(size_t)(t0 + r) * s->sb];
            const float *vr = s->v + (size_t)(t0 + r) * s->sv;
            float *dvr = dv + (size_t)(t0 + r) * s->sv;
            float db = 0;
            for (int e = 0; e < V; e++) {
                dvr[e] += br * w->dRU[r * V + e];
                db += w->dRU[r * V + e] * vr[e];
            }
            for (int i = 0; i < K; i++) {
                w->dKG[r * K + i] = br * w->dRW[r * K + i];
                db += w->dRW[r * K + i] * w->KG[r * K + i];
            }
            for (int j = 0; j < r; j++) {
                float dl = 0;
                for (int e = 0; e < V; e++) dl -= w->dRU[r * V + e] * w->U[j * V + e];
                for (int i = 0; i < K; i++) dl -= w->dRW[r * K + i] * w->W[j * K + i];
                db += dl * w->A[r * CH + j];
                w->dL[r * CH + j] = br * dl; /* now dA */
            }
            dbeta[(size_t)(t0 + r) * s->sb] += db;
        }
        /* elementwise factors: QG = q e^G, KG = k e^G, KD = k e^(G_last - G), el = e^G_last */
        const float *Gl = w->G + (c - 1) * K;
        memset(w->dG, 0, sizeof(float) * c * K);
        for (int r = 0; r < c; r++) {
            const float *Gr = w->G + r * K;
            float *dqr = dq + (size_t)(t0 + r) * s->sk, *dkr = dk + (size_t)(t0 + r) * s->sk;
            for (int i = 0; i < K; i++) {
                float e = expf(Gr[i]), ed = expf(Gl[i] - Gr[i]);
                dqr[i] += w->dQG[r * K + i] * e;
                dkr[i] += w->dKG[r * K + i] * e + w->dKD[r * K + i] * ed;
                float t = w->dKD[r * K + i] * w->KD[r * K + i];
                w->dG[r * K + i] += w->dQG[r * K + i] * w->QG[r * K + i] + w->dKG[r * K + i] * w->KG[r * K + i] - t;
                w->dG[(c - 1) * K + i] += t;
            }
        }
        for (int i = 0; i < K; i++) w->dG[(c - 1) * K + i] += w->del[i] * w->el[i];
        /* pairwise: Aqk[r,j] = sum_i q_ri k_ji E, A[r,j] = sum_i k_ri k_ji E, E = exp(G_ri - G_ji) */
        for (int r = 0; r < c; r++) {
            const float *qr = s->q + (size_t)(t0 + r) * s->sk, *kr = s->k + (size_t)(t0 + r) * s->sk;
            float *dqr = dq + (size_t)(t0 + r) * s->sk, *dkr = dk + (size_t)(t0 + r) * s->sk;
            const float *Gr = w->G + r * K;
            float *dGr = w->dG + r * K;
            for (int j = 0; j <= r; j++) {
                float a = w->dAqk[r * CH + j], b = j < r ? w->dL[r * CH + j] : 0.0f;
                const float *kj = s->k + (size_t)(t0 + j) * s->sk, *Gj = w->G + j * K;
                float *dkj = dk + (size_t)(t0 + j) * s->sk, *dGj = w->dG + j * K;
                for (int i = 0; i < K; i++) {
                    float E = expf(Gr[i] - Gj[i]);
                    float m = a * qr[i] + b * kr[i];
                    dqr[i] += a * kj[i] * E;
                    dkr[i] += b * kj[i] * E;
                    dkj[i] += m * E;
                    float t = m * kj[i] * E;
                    dGr[i] += t;
                    dGj[i] -= t;
                }
            }
        }
        /* G = cumsum(g) inside the chunk: dg_r = sum_{r' >= r} dG_r' */
        for (int r = c - 1; r >= 0; r--) {
            float *dgr = dg + (size_t)(t0 + r) * s->sk;
            if (r < c - 1)
                for (int i = 0; i < K; i++) w->dG[r * K + i] += w->dG[(r + 1) * K + i];
            for (int i = 0; i < K; i++) dgr[i] += w->dG[r * K + i];
        }
        memcpy(dS, w->dS0, sizeof(float) * K * V);
    }
}

static void kda_seq_init(kda_seq *s, const float *q, const float *k, const float *v, const float *g,
                         const float *beta, int b, int h, int T, int H, int K, int V)
{
    size_t bk = ((size_t)b * T * H + h) * K, bv = ((size_t)b * T * H + h) * V;
    s->q = q + bk; s->k = k + bk; s->g = g + bk; s->v = v + bv;
    s->beta = beta + (size_t)b * T * H + h;
    s->sk = H * K; s->sv = H * V; s->sb = H;
    s->T = T; s->K = K; s->V = V;
}

void kcpu_kda_fwd(float *o, float *sT, float *s_chunks, const float *q, const float *k, const float *v,
                  const float *g, const float *beta, const float *s0, int B, int T, int H, int K, int V)
{
    const int nc = k_kda_nchunks(T);
#pragma omp parallel
    {
        float *buf = xmalloc(sizeof(float) * (kda_work_floats(K, V, 0) + (size_t)K * V));
        kda_work w;
        kda_work_bind(&w, buf, K, V, 0);
        float *S = buf + kda_work_floats(K, V, 0);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            kda_seq s;
            kda_seq_init(&s, q, k, v, g, beta, b, h, T, H, K, V);
            if (s0) memcpy(S, s0 + (size_t)bh * K * V, sizeof(float) * K * V);
            else memset(S, 0, sizeof(float) * K * V);
            kda_fwd_seq(&s, &w, o + ((size_t)b * T * H + h) * V, H * V, S,
                        s_chunks ? s_chunks + (size_t)bh * nc * K * V : NULL);
            if (sT) memcpy(sT + (size_t)bh * K * V, S, sizeof(float) * K * V);
        }
        free(buf);
    }
}

void kcpu_kda_bwd(float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0, const float *dout,
                  const float *dsT, const float *q, const float *k, const float *v, const float *g,
                  const float *beta, const float *s_chunks, int B, int T, int H, int K, int V)
{
    const int nc = k_kda_nchunks(T);
#pragma omp parallel
    {
        float *buf = xmalloc(sizeof(float) * kda_work_floats(K, V, 1));
        kda_work w;
        kda_work_bind(&w, buf, K, V, 1);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            kda_seq s;
            kda_seq_init(&s, q, k, v, g, beta, b, h, T, H, K, V);
            if (dsT) memcpy(w.dS, dsT + (size_t)bh * K * V, sizeof(float) * K * V);
            else memset(w.dS, 0, sizeof(float) * K * V);
            size_t bk = ((size_t)b * T * H + h) * K, bv = ((size_t)b * T * H + h) * V;
            kda_bwd_seq(&s, &w, dout + bv, H * V, w.dS, s_chunks + (size_t)bh * nc * K * V, dq + bk, dk + bk,
                        dv + bv, dg + bk, dbeta + (size_t)b * T * H + h);
            if (ds0)
                for (int i = 0; i < K * V; i++) ds0[(size_t)bh * K * V + i] += w.dS[i];
        }
        free(buf);
    }
}

/* One token of one head: S [K,V] in place, o [V]. */
static void kda_step1(float *o, float *S, const float *q, const float *k, const float *v, const float *g,
                      float beta, int K, int V, float *u)
{
    for (int i = 0; i < K; i++) {
        float a = expf(g[i]);
        for (int e = 0; e < V; e++) S[i * V + e] *= a;
    }
    for (int e = 0; e < V; e++) u[e] = 0;
    for (int i = 0; i < K; i++)
        for (int e = 0; e < V; e++) u[e] += S[i * V + e] * k[i];
    for (int e = 0; e < V; e++) u[e] = beta * (v[e] - u[e]);
    for (int i = 0; i < K; i++)
        for (int e = 0; e < V; e++) S[i * V + e] += k[i] * u[e];
    for (int e = 0; e < V; e++) o[e] = 0;
    for (int i = 0; i < K; i++)
        for (int e = 0; e < V; e++) o[e] += S[i * V + e] * q[i];
}

void kcpu_kda_recurrent(float *o, float *state, const float *q, const float *k, const float *v, const float *g,
                        const float *beta, int B, int T, int H, int K, int V)
{
#pragma omp parallel
    {
        float *u = xmalloc(sizeof(float) * V);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            for (int t = 0; t < T; t++) {
                size_t rk = (((size_t)b * T + t) * H + h) * K, rv = (((size_t)b * T + t) * H + h) * V;
                kda_step1(o + rv, state + (size_t)bh * K * V, q + rk, k + rk, v + rv, g + rk,
                          beta[((size_t)b * T + t) * H + h], K, V, u);
            }
        }
        free(u);
    }
}

void kcpu_kda_step(float *o, float *state, const float *q, const float *k, const float *v, const float *g,
                   const float *beta, int B, int H, int K, int V)
{
    kcpu_kda_recurrent(o, state, q, k, v, g, beta, B, 1, H, K, V);
}
