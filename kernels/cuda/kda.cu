// kda.cu - CUDA KDA core: sequential chunked forward/backward (chunk 64; K, V in {32, 64, 128} go to kda_chunk.cu) and the decode step.
// The chunk algebra is kernels/cpu/kda.c's, restated line for line; see the comments there and
// docs/models.md section 2.
#include <math.h>

#include "kernels/cuda/cuda.cuh"

#define ST KCUDA_STREAM(b)
#define CH K_KDA_CHUNK  /* kernels/kernels.h */
#define KDA_THREADS 256

/* kda_chunk.cu: the chunk-parallel kernels, taken when kcuda_kda_cp_ok says the shape is theirs */
int kcuda_kda_cp_ok(k_backend *b, int K, int V);
int kcuda_kda_cp_save(k_backend *b, int K, int V);
void kcuda_kda_cp_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                      const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H,
                      int K, int V);
void kcuda_kda_cp_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                      const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                      const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V);

/*
 * One block per (b, h) sequence walks its chunks in order (forward) or reverse order (backward), holding
 * the state in a work area of global memory (L2-resident). Inside a chunk every step is spread over the
 * block's threads; the triangular solves (I+L)X = R and (I+L)^T dR = dX are independent per column of
 * [W|U], so each thread owns columns and needs no barrier inside the solve.
 * Shapes: q, k, g [B,T,H,K]; v, o [B,T,H,V]; beta [B,T,H]; states [B,H,K,V]; s_chunks [B,H,NC,K,V].
 */
struct kda_seq {
    const float *q, *k, *v, *g, *beta;
    int sk, sv, sb;
    int T, K, V;
};

struct kda_work {
    float *G, *A, *Aqk, *W, *U, *Vn, *QG, *KG, *KD, *el, *S;
    float *dVn, *dS0, *dS, *dAqk, *dQG, *dKD, *dW, *dRU, *dRW, *dL, *dlr, *dKG, *dG, *del;
};

static size_t kda_work_floats(int K, int V)
{
    return (size_t)CH * K * 10 + (size_t)CH * CH * 5 + (size_t)CH * V * 5 + (size_t)K * V * 3 + 2 * K + 64;
}

__device__ void kda_work_bind(kda_work *w, float *p, int K, int V)
{
#define TAKE(f, n) (w->f = p, p += (n))
    TAKE(G, CH * K); TAKE(A, CH * CH); TAKE(Aqk, CH * CH); TAKE(W, CH * K); TAKE(U, CH * V);
    TAKE(Vn, CH * V); TAKE(QG, CH * K); TAKE(KG, CH * K); TAKE(KD, CH * K); TAKE(el, K); TAKE(S, K * V);
    TAKE(dVn, CH * V); TAKE(dS0, K * V); TAKE(dS, K * V); TAKE(dAqk, CH * CH); TAKE(dQG, CH * K);
    TAKE(dKD, CH * K); TAKE(dW, CH * K); TAKE(dRU, CH * V); TAKE(dRW, CH * K); TAKE(dL, CH * CH);
    TAKE(dlr, CH * CH); TAKE(dKG, CH * K); TAKE(dG, CH * K); TAKE(del, K);
#undef TAKE
}

#define FOR_T(i, n) for (int i = threadIdx.x; i < (n); i += blockDim.x)

/* G, el, QG, KG, KD, A, Aqk, W, U, Vn of chunk [t0, t0+c) from state S0 */
__device__ void kda_chunk_prepare(const kda_seq *s, kda_work *w, int t0, int c, const float *S0)
{
    const int K = s->K, V = s->V;
    FOR_T(i, K)
    {
        float a = 0;
        for (int r = 0; r < c; r++) {
            a += s->g[(size_t)(t0 + r) * s->sk + i];
            w->G[r * K + i] = a;
        }
        w->el[i] = expf(a);
    }
    __syncthreads();
    const float *Gl = w->G + (c - 1) * K;
    FOR_T(idx, c * K)
    {
        int r = idx / K, i = idx % K;
        float Gr = w->G[idx], e = expf(Gr);
        w->QG[idx] = s->q[(size_t)(t0 + r) * s->sk + i] * e;
        float kr = s->k[(size_t)(t0 + r) * s->sk + i];
        w->KG[idx] = kr * e;
        w->KD[idx] = kr * expf(Gl[i] - Gr);
    }
    FOR_T(idx, CH * CH)
    {
        int r = idx / CH, j = idx % CH;
        float aqk = 0, akk = 0;
        if (r < c && j <= r) {
            const float *qr = s->q + (size_t)(t0 + r) * s->sk, *kr = s->k + (size_t)(t0 + r) * s->sk;
            const float *kj = s->k + (size_t)(t0 + j) * s->sk, *Gr = w->G + r * K, *Gj = w->G + j * K;
            for (int i = 0; i < K; i++) {
                float e = expf(Gr[i] - Gj[i]) * kj[i];
                aqk += qr[i] * e;
                akk += kr[i] * e;
            }
        }
        w->Aqk[idx] = aqk;
        w->A[idx] = j < r ? akk : 0.0f;
    }
    __syncthreads();
    /* (I + L) [W | U] = diag(beta) [KG | V], forward substitution per column */
    FOR_T(col, K + V)
    {
        for (int r = 0; r < c; r++) {
            float br = s->beta[(size_t)(t0 + r) * s->sb];
            float x = col < K ? br * w->KG[r * K + col] : br * s->v[(size_t)(t0 + r) * s->sv + (col - K)];
            for (int j = 0; j < r; j++) {
                float l = br * w->A[r * CH + j];
                x -= l * (col < K ? w->W[j * K + col] : w->U[j * V + col - K]);
            }
            if (col < K) w->W[r * K + col] = x;
            else w->U[r * V + col - K] = x;
        }
    }
    __syncthreads();
    /* Vn = U - W S0 */
    FOR_T(idx, c * V)
    {
        int r = idx / V, e = idx % V;
        float a = w->U[idx];
        for (int i = 0; i < K; i++) a -= w->W[r * K + i] * S0[i * V + e];
        w->Vn[idx] = a;
    }
    __syncthreads();
}

__device__ void kda_seq_init(kda_seq *s, const float *q, const float *k, const float *v, const float *g,
                             const float *beta, int b, int h, int T, int H, int K, int V)
{
    size_t bk = ((size_t)b * T * H + h) * K, bv = ((size_t)b * T * H + h) * V;
    s->q = q + bk; s->k = k + bk; s->g = g + bk; s->v = v + bv;
    s->beta = beta + (size_t)b * T * H + h;
    s->sk = H * K; s->sv = H * V; s->sb = H;
    s->T = T; s->K = K; s->V = V;
}

__global__ void __launch_bounds__(KDA_THREADS) kda_fwd_kernel(float *o, float *sT, float *s_chunks, const float *q,
    const float *k, const float *v, const float *g, const float *beta, const float *s0, float *work, size_t wfl,
    int B, int T, int H, int K, int V)
{
    int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;
    kda_seq s;
    kda_seq_init(&s, q, k, v, g, beta, b, h, T, H, K, V);
    kda_work w;
    kda_work_bind(&w, work + (size_t)bh * wfl, K, V);
    float *S = w.S;
    FOR_T(i, K * V) S[i] = s0 ? s0[(size_t)bh * K * V + i] : 0.0f;
    __syncthreads();
    float *ob = o + ((size_t)b * T * H + h) * V;
    const int so = H * V;
    for (int t0 = 0, n = 0; t0 < T; t0 += CH, n++) {
        int c = T - t0 < CH ? T - t0 : CH;
        if (s_chunks) FOR_T(i, K * V) s_chunks[((size_t)bh * nc + n) * K * V + i] = S[i];
        kda_chunk_prepare(&s, &w, t0, c, S);
        /* O = QG S0 + Aqk Vn */
        FOR_T(idx, c * V)
        {
            int r = idx / V, e = idx % V;
            float a = 0;
            for (int i = 0; i < K; i++) a += w.QG[r * K + i] * S[i * V + e];
            for (int j = 0; j <= r; j++) a += w.Aqk[r * CH + j] * w.Vn[j * V + e];
            ob[(size_t)(t0 + r) * so + e] = a;
        }
        __syncthreads();
        /* S = diag(el) S + KD^T Vn */
        FOR_T(idx, K * V)
        {
            int i = idx / V, e = idx % V;
            float a = w.el[i] * S[idx];
            for (int r = 0; r < c; r++) a += w.KD[r * K + i] * w.Vn[r * V + e];
            S[idx] = a;
        }
        __syncthreads();
    }
    if (sT) FOR_T(i, K * V) sT[(size_t)bh * K * V + i] = S[i];
}

__global__ void __launch_bounds__(KDA_THREADS) kda_bwd_kernel(float *dq, float *dk, float *dv, float *dg,
    float *dbeta, float *ds0, const float *dout, const float *dsT, const float *q, const float *k, const float *v,
    const float *g, const float *beta, const float *s_chunks, float *work, size_t wfl, int B, int T, int H, int K,
    int V)
{
    int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;
    kda_seq s;
    kda_seq_init(&s, q, k, v, g, beta, b, h, T, H, K, V);
    kda_work w;
    kda_work_bind(&w, work + (size_t)bh * wfl, K, V);
    size_t bk = ((size_t)b * T * H + h) * K, bv = ((size_t)b * T * H + h) * V;
    const float *dob = dout + bv;
    float *dqb = dq + bk, *dkb = dk + bk, *dgb = dg + bk, *dvb = dv + bv, *dbb = dbeta + (size_t)b * T * H + h;
    const int sk = H * K, sv = H * V;
    FOR_T(i, K * V) w.dS[i] = dsT ? dsT[(size_t)bh * K * V + i] : 0.0f;
    __syncthreads();
    for (int n = nc - 1; n >= 0; n--) {
        int t0 = n * CH, c = T - t0 < CH ? T - t0 : CH;
        const float *S0 = s_chunks + ((size_t)bh * nc + n) * K * V;
        kda_chunk_prepare(&s, &w, t0, c, S0);
        const float *dO = dob + (size_t)t0 * sv;
        /* dVn = Aqk^T dO + KD dS1 */
        FOR_T(idx, c * V)
        {
            int r = idx / V, e = idx % V;
            float a = 0;
            for (int j = r; j < c; j++) a += w.Aqk[j * CH + r] * dO[(size_t)j * sv + e];
            for (int i = 0; i < K; i++) a += w.KD[r * K + i] * w.dS[i * V + e];
            w.dVn[idx] = a;
        }
        __syncthreads();
        /* dS0 = el dS1 + QG^T dO - W^T dVn; dAqk = dO Vn^T; dQG = dO S0^T; dKD = Vn dS1^T; dW = -dVn S0^T;
         * del = rowsum(S0 * dS1) */
        FOR_T(idx, K * V)
        {
            int i = idx / V, e = idx % V;
            float a = w.el[i] * w.dS[idx];
            for (int r = 0; r < c; r++) a += w.QG[r * K + i] * dO[(size_t)r * sv + e] - w.W[r * K + i] * w.dVn[r * V + e];
            w.dS0[idx] = a;
        }
        FOR_T(idx, CH * CH)
        {
            int r = idx / CH, j = idx % CH;
            float a = 0;
            if (r < c && j <= r)
                for (int e = 0; e < V; e++) a += dO[(size_t)r * sv + e] * w.Vn[j * V + e];
            w.dAqk[idx] = a;
        }
        FOR_T(idx, c * K)
        {
            int r = idx / K, i = idx % K;
            float a = 0, bq = 0, cw = 0;
            for (int e = 0; e < V; e++) {
                float s0 = S0[i * V + e];
                a += dO[(size_t)r * sv + e] * s0;
                bq += w.Vn[r * V + e] * w.dS[i * V + e];
                cw -= w.dVn[r * V + e] * s0;
            }
            w.dQG[idx] = a;
            w.dKD[idx] = bq;
            w.dW[idx] = cw;
        }
        FOR_T(i, K)
        {
            float a = 0;
            for (int e = 0; e < V; e++) a += S0[i * V + e] * w.dS[i * V + e];
            w.del[i] = a;
        }
        __syncthreads();
        /* (I+L)^T dR = [dW | dVn], back substitution per column */
        FOR_T(col, K + V)
        {
            for (int r = c - 1; r >= 0; r--) {
                float x = col < K ? w.dW[r * K + col] : w.dVn[r * V + col - K];
                for (int j = r + 1; j < c; j++) {
                    float l = s.beta[(size_t)(t0 + j) * s.sb] * w.A[j * CH + r];
                    x -= l * (col < K ? w.dRW[j * K + col] : w.dRU[j * V + col - K]);
                }
                if (col < K) w.dRW[r * K + col] = x;
                else w.dRU[r * V + col - K] = x;
            }
        }
        __syncthreads();
        /* R = diag(beta) [KG | V], L = diag(beta) A: dv, dKG, dl (raw), dA = beta_r dl */
        FOR_T(idx, c * V)
        {
            int r = idx / V, e = idx % V;
            dvb[(size_t)(t0 + r) * sv + e] += s.beta[(size_t)(t0 + r) * s.sb] * w.dRU[idx];
        }
        FOR_T(idx, c * K)
        {
            int r = idx / K;
            w.dKG[idx] = s.beta[(size_t)(t0 + r) * s.sb] * w.dRW[idx];
        }
        FOR_T(idx, CH * CH)
        {
            int r = idx / CH, j = idx % CH;
            float dl = 0;
            if (r < c && j < r) {
                for (int e = 0; e < V; e++) dl -= w.dRU[r * V + e] * w.U[j * V + e];
                for (int i = 0; i < K; i++) dl -= w.dRW[r * K + i] * w.W[j * K + i];
            }
            w.dlr[idx] = dl;
            w.dL[idx] = r < c ? s.beta[(size_t)(t0 + r) * s.sb] * dl : 0.0f;
        }
        __syncthreads();
        /* dbeta_r = dRU_r . v_r + dRW_r . KG_r + sum_{j<r} dl_rj A_rj: one warp per row */
        for (int r = threadIdx.x >> 5; r < c; r += blockDim.x >> 5) {
            int lane = threadIdx.x & 31;
            const float *vr = s.v + (size_t)(t0 + r) * s.sv;
            float db = 0;
            for (int e = lane; e < V; e += 32) db += w.dRU[r * V + e] * vr[e];
            for (int i = lane; i < K; i += 32) db += w.dRW[r * K + i] * w.KG[r * K + i];
            for (int j = lane; j < r; j += 32) db += w.dlr[r * CH + j] * w.A[r * CH + j];
            db = kc_warp_sum(db);
            if (lane == 0) dbb[(size_t)(t0 + r) * s.sb] += db;
        }
        /* elementwise factors: QG = q e^G, KG = k e^G, KD = k e^(G_last - G) */
        const float *Gl = w.G + (c - 1) * K;
        FOR_T(idx, c * K)
        {
            int r = idx / K, i = idx % K;
            float Gr = w.G[idx], e = expf(Gr), ed = expf(Gl[i] - Gr);
            dqb[(size_t)(t0 + r) * sk + i] += w.dQG[idx] * e;
            dkb[(size_t)(t0 + r) * sk + i] += w.dKG[idx] * e + w.dKD[idx] * ed;
            w.dG[idx] = w.dQG[idx] * w.QG[idx] + w.dKG[idx] * w.KG[idx] - w.dKD[idx] * w.KD[idx];
        }
        __syncthreads();
        FOR_T(i, K)
        {
            float a = w.del[i] * w.el[i];
            for (int r = 0; r < c; r++) a += w.dKD[r * K + i] * w.KD[r * K + i];
            w.dG[(c - 1) * K + i] += a;
        }
        __syncthreads();
        /* pairwise, row side: Aqk[r,j] = sum_i q_ri k_ji E, A[r,j] = sum_i k_ri k_ji E, E = exp(G_ri - G_ji) */
        FOR_T(idx, c * K)
        {
            int r = idx / K, i = idx % K;
            float qr = s.q[(size_t)(t0 + r) * sk + i], kr = s.k[(size_t)(t0 + r) * sk + i], Gr = w.G[idx];
            float aq = 0, ak = 0, ag = 0;
            for (int j = 0; j <= r; j++) {
                float a = w.dAqk[r * CH + j], bb = j < r ? w.dL[r * CH + j] : 0.0f;
                float kjE = s.k[(size_t)(t0 + j) * sk + i] * expf(Gr - w.G[j * K + i]);
                aq += a * kjE;
                ak += bb * kjE;
                ag += (a * qr + bb * kr) * kjE;
            }
            dqb[(size_t)(t0 + r) * sk + i] += aq;
            dkb[(size_t)(t0 + r) * sk + i] += ak;
            w.dG[idx] += ag;
        }
        __syncthreads();
        /* pairwise, column side */
        FOR_T(idx, c * K)
        {
            int j = idx / K, i = idx % K;
            float kj = s.k[(size_t)(t0 + j) * sk + i], Gj = w.G[idx];
            float ak = 0, ag = 0;
            for (int r = j; r < c; r++) {
                float a = w.dAqk[r * CH + j], bb = j < r ? w.dL[r * CH + j] : 0.0f;
                float m = a * s.q[(size_t)(t0 + r) * sk + i] + bb * s.k[(size_t)(t0 + r) * sk + i];
                float E = expf(w.G[r * K + i] - Gj);
                ak += m * E;
                ag += m * kj * E;
            }
            dkb[(size_t)(t0 + j) * sk + i] += ak;
            w.dG[idx] -= ag;
        }
        __syncthreads();
        /* G = cumsum(g): dg_r = sum_{r' >= r} dG_r' */
        FOR_T(i, K)
        {
            float a = 0;
            for (int r = c - 1; r >= 0; r--) {
                a += w.dG[r * K + i];
                dgb[(size_t)(t0 + r) * sk + i] += a;
            }
        }
        FOR_T(i, K * V) w.dS[i] = w.dS0[i];
        __syncthreads();
    }
    if (ds0) FOR_T(i, K * V) ds0[(size_t)bh * K * V + i] += w.dS[i];
}

/* the chunk-parallel kernels keep Aqk, A and (I+L)^-1 of every chunk for the backward (kda_chunk.cu) */
int kcuda_kda_save(k_backend *b, int K, int V) { return kcuda_kda_cp_save(b, K, V); }

/* The chunk kernels read their operands 16 bytes at a time (cp.async): a misaligned one is a caller's bug, named
 * here instead of a "misaligned address" at the next synchronisation. */
static void kda_check_aligned(const char *what, const void *const *p, int n)
{
    for (int i = 0; i < n; i++)
        if ((uintptr_t)p[i] & 15) BUG("%s: operand %d at %p is not 16-byte aligned (the chunk kernels need it)", what, i, p[i]);
}

void kcuda_kda_fwd(k_backend *b, float *o, float *sT, float *s_chunks, const float *q, const float *k,
                   const float *v, const float *g, const float *beta, const float *s0, int B, int T, int H, int K,
                   int V)
{
    if (B * H <= 0 || T <= 0) return;
    if (kcuda_kda_cp_ok(b, K, V)) {
        const void *p[] = {o, sT, s_chunks, q, k, v, g, s0};
        kda_check_aligned("KDA forward", p, 8);
        kcuda_kda_cp_fwd(b, o, sT, s_chunks, q, k, v, g, beta, s0, B, T, H, K, V);
        return;
    }
    size_t wfl = kda_work_floats(K, V);
    float *work = (float *)kcuda_scratch(b, (size_t)B * H * wfl * sizeof(float));
    kda_fwd_kernel<<<B * H, KDA_THREADS, 0, ST>>>(o, sT, s_chunks, q, k, v, g, beta, s0, work, wfl, B, T, H, K, V);
    KLAUNCH_CHECK();
}

void kcuda_kda_bwd(k_backend *b, float *dq, float *dk, float *dv, float *dg, float *dbeta, float *ds0,
                   const float *dout, const float *dsT, const float *q, const float *k, const float *v,
                   const float *g, const float *beta, const float *s_chunks, int B, int T, int H, int K, int V)
{
    if (B * H <= 0 || T <= 0) return;
    if (kcuda_kda_cp_ok(b, K, V)) {
        const void *p[] = {dq, dk, dv, dg, ds0, dout, dsT, q, k, v, g, s_chunks};
        kda_check_aligned("KDA backward", p, 12);
        kcuda_kda_cp_bwd(b, dq, dk, dv, dg, dbeta, ds0, dout, dsT, q, k, v, g, beta, s_chunks, B, T, H, K, V);
        return;
    }
    size_t wfl = kda_work_floats(K, V);
    float *work = (float *)kcuda_scratch(b, (size_t)B * H * wfl * sizeof(float));
    kda_bwd_kernel<<<B * H, KDA_THREADS, 0, ST>>>(dq, dk, dv, dg, dbeta, ds0, dout, dsT, q, k, v, g, beta, s_chunks,
                                                   work, wfl, B, T, H, K, V);
    KLAUNCH_CHECK();
}

/*
 * Decode step: every value column e of the state is independent (S[:, e] decays, takes the rank-one delta
 * update along k, and is read out by q), so one thread owns column e of one (b, h):
 *   S'[:,e] = exp(g) * S[:,e];  u = beta (v_e - S'[:,e] . k);  S[:,e] = S'[:,e] + k u;  o_e = S[:,e] . q
 */
__global__ void kda_step_kernel(float *o, float *state, const float *q, const float *k, const float *v,
                                const float *g, const float *beta, int BH, int K, int V)
{
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)BH * V) return;
    int bh = idx / V, e = idx % V;
    float *S = state + (size_t)bh * K * V + e;
    const float *qb = q + (size_t)bh * K, *kb = k + (size_t)bh * K, *gb = g + (size_t)bh * K;
    float u = 0;
    for (int i = 0; i < K; i++) {
        float sv = S[(size_t)i * V] * expf(gb[i]);
        S[(size_t)i * V] = sv;
        u += sv * kb[i];
    }
    u = beta[bh] * (v[(size_t)bh * V + e] - u);
    float oe = 0;
    for (int i = 0; i < K; i++) {
        float sv = S[(size_t)i * V] + kb[i] * u;
        S[(size_t)i * V] = sv;
        oe += sv * qb[i];
    }
    o[(size_t)bh * V + e] = oe;
}

void kcuda_kda_step(k_backend *b, float *o, float *state, const float *q, const float *k, const float *v,
                    const float *g, const float *beta, int B, int H, int K, int V)
{
    size_t n = (size_t)B * H * V;
    if (!n) return;
    kda_step_kernel<<<kc_blocks(n, 128), 128, 0, ST>>>(o, state, q, k, v, g, beta, B * H, K, V);
    KLAUNCH_CHECK();
}
