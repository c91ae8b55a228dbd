/* ops.c - CPU fp32 reference ops: matmul (OpenBLAS), embedding, RMSNorm, RoPE, SwiGLU, losses, AdamW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>

#include "base/base.h"
#include "kernels/cpu/ops.h"

#define NT (b->threads)

/* ---- dense ---- */

void kcpu_matmul(k_backend *b, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)b;
    if (M == 0 || N == 0) return;
    if (K == 0) { /* sgemm with K = 0 is allowed, but some BLAS builds complain about ld checks */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void kcpu_add(k_backend *b, float *y, const float *a, const float *c, size_t n)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + c[i];
}

void kcpu_scale(k_backend *b, float *x, float s, size_t n)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* Fixed chunks summed in chunk order: the same result for any thread count. */
void kcpu_sumsq(k_backend *b, double *out, const float *x, size_t n)
{
    enum { CHUNK = 1 << 14 };
    size_t nc = (n + CHUNK - 1) / CHUNK;
    double stackpart[64], *part = nc <= 64 ? stackpart : xmalloc(nc * sizeof(double));
#pragma omp parallel for num_threads(NT) schedule(static) if (nc > 1)
    for (size_t c = 0; c < nc; c++) {
        size_t e = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double s = 0;
        for (size_t i = c * CHUNK; i < e; i++) s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += part[c];
    if (part != stackpart) free(part);
    *out = s;
}

/* ---- embedding ---- */

void kcpu_embedding_fwd(k_backend *b, float *out, const int32_t *ids, const float *table, int N, int d, int V)
{
#pragma omp parallel for num_threads(NT) schedule(static)
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        if (id < 0 || id >= V) BUG("embedding: token id %d outside [0, %d)", id, V);
        memcpy(out + (size_t)n * d, table + (size_t)id * d, (size_t)d * sizeof(float));
    }
}

/* Parallel over column blocks, rows in order: deterministic whatever the thread count. */
void kcpu_embedding_bwd(k_backend *b, float *dtable, const int32_t *ids, const float *dout, int N, int d, int V)
{
    (void)V;
    enum { CB = 16 };
    int nb = (d + CB - 1) / CB;
#pragma omp parallel for num_threads(NT) schedule(static)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * CB, c1 = c0 + CB < d ? c0 + CB : d;
        for (int n = 0; n < N; n++) {
            float *dst = dtable + (size_t)ids[n] * d;
            const float *src = dout + (size_t)n * d;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

/* ---- RMSNorm (HF Qwen3RMSNorm in fp32): out = x * rsqrt(mean(x^2) + eps) * w ---- */

void kcpu_rmsnorm_fwd(k_backend *b, float *out, float *rstd, const float *x, const float *w, int N, int d,
                      float eps)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (N > 16)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * d;
        float *o = out + (size_t)n * d;
        float ss = 0;
        for (int i = 0; i < d; i++) ss += xr[i] * xr[i];
        float r = 1.0f / sqrtf(ss / d + eps);
        if (rstd) rstd[n] = r;
        for (int i = 0; i < d; i++) o[i] = xr[i] * r * w[i];
    }
}

/*
 * y = w * x * r, r = (mean(x^2) + eps)^-1/2:
 *   dx += r * (w*dy) - r^3 / d * x * sum_i(w_i dy_i x_i);   dw += sum_n dy * x * r
 */
void kcpu_rmsnorm_bwd(k_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                      const float *rstd, int N, int d)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (N > 16)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * d, *dy = dout + (size_t)n * d;
        float *dxr = dx + (size_t)n * d;
        float r = rstd[n], dot = 0;
        for (int i = 0; i < d; i++) dot += w[i] * dy[i] * xr[i];
        float c = r * r * r * dot / d;
        for (int i = 0; i < d; i++) dxr[i] += r * w[i] * dy[i] - c * xr[i];
    }
    if (!dw) return;
    enum { CB = 16 };
    int nb = (d + CB - 1) / CB;
#pragma omp parallel for num_threads(NT) schedule(static)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * CB, c1 = c0 + CB < d ? c0 + CB : d;
        float acc[CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * d, *dy = dout + (size_t)n * d;
            for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * xr[c] * rstd[n];
        }
        for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
    }
}

void kcpu_argmax_rows(k_backend *b, int32_t *out, const float *x, int N, int V)
{
    (void)b;
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (r[i] > r[best]) best = i;
        out[n] = best;
    }
}

/* The fused op's twin is the two ops it replaces: bit for bit. */
void kcpu_add_rmsnorm_fwd(k_backend *b, float *sum, float *out, float *rstd, const float *x, const float *y,
                          const float *w, int N, int d, float eps)
{
    kcpu_add(b, sum, x, y, (size_t)N * d);
    kcpu_rmsnorm_fwd(b, out, rstd, sum, w, N, d, eps);
}

/* ---- RoPE (HF rotate_half: out = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]) ---- */

static void rope_apply(k_backend *b, float *x, const int32_t *pos, const float *inv, int N, int H, int K, float sign)
{
    int h2 = K / 2;
    if (h2 > 512) BUG("rope: head dim %d too large", K);
#pragma omp parallel for num_threads(NT) schedule(static) if (N > 8)
    for (int n = 0; n < N; n++) {
        float cs[512], sn[512];
        for (int i = 0; i < h2; i++) {
            float ang = (float)pos[n] * inv[i];   /* float32 product, as HF's freqs */
            cs[i] = (float)cos((double)ang);
            sn[i] = sign * (float)sin((double)ang);
        }
        for (int h = 0; h < H; h++) {
            float *xr = x + ((size_t)n * H + h) * K;
            for (int i = 0; i < h2; i++) {
                float x1 = xr[i], x2 = xr[i + h2];
                xr[i] = x1 * cs[i] - x2 * sn[i];
                xr[i + h2] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

void kcpu_rope_fwd(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K)
{
    rope_apply(b, x, pos, inv_freq, N, H, K, 1.0f);
}

/* The fused op's twin is the sequence it replaces (rope_fwd of q and k, a copy per sequence): bit for bit. */
void kcpu_rope_cache_fwd(k_backend *b, float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                         const int32_t *q_start, const float *inv_freq, int B, int T, int Hq, int Hkv, int K, int Tmax)
{
    rope_apply(b, q, pos, inv_freq, B * T, Hq, K, 1.0f);
    rope_apply(b, k, pos, inv_freq, B * T, Hkv, K, 1.0f);
    size_t KD = (size_t)Hkv * K;
    for (int s = 0; s < B; s++) {
        if (q_start[s] < 0 || q_start[s] + T > Tmax)
            BUG("rope_cache_fwd: sequence %d writes cache positions %d..%d of %d", s, q_start[s], q_start[s] + T - 1, Tmax);
        memcpy(ck + ((size_t)s * Tmax + q_start[s]) * KD, k + (size_t)s * T * KD, (size_t)T * KD * sizeof(float));
        memcpy(cv + ((size_t)s * Tmax + q_start[s]) * KD, v + (size_t)s * T * KD, (size_t)T * KD * sizeof(float));
    }
}

/* The rotation is orthogonal: its transpose is the rotation by -angle. */
void kcpu_rope_bwd(k_backend *b, float *dx, const int32_t *pos, const float *inv_freq, int N, int H, int K)
{
    rope_apply(b, dx, pos, inv_freq, N, H, K, -1.0f);
}

/* ---- SwiGLU: out = silu(g) * u, silu(g) = g * sigmoid(g) ---- */

void kcpu_swiglu_fwd(k_backend *b, float *out, const float *gate, const float *up, size_t n)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* dgate += dout * u * sig(g) (1 + g (1 - sig(g)));  dup += dout * silu(g) */
void kcpu_swiglu_bwd(k_backend *b, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                     size_t n)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += dout[i] * g * s;
    }
}

/* ---- losses ---- */

void kcpu_xent_fwd_bwd(k_backend *b, float *loss, float *dlogits, const float *logits, const int32_t *target, int N,
                       int V, int ignore_index, float dscale)
{
#pragma omp parallel for num_threads(NT) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        int t = target[n];
        if (t == ignore_index || t < 0 || t >= V) {
            loss[n] = 0;
            if (dlogits) memset(dlogits + (size_t)n * V, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = -INFINITY;
        for (int i = 0; i < V; i++) mx = z[i] > mx ? z[i] : mx;
        /* expf of non-positive arguments, summed in double: accurate to float rounding, 4x cheaper than exp() */
        double s = 0;
        for (int i = 0; i < V; i++) s += expf(z[i] - mx);
        float lse = mx + (float)log(s), zt = z[t];
        loss[n] = (float)((double)mx + log(s) - zt);
        if (dlogits) {
            float *dz = dlogits + (size_t)n * V; /* may alias z: z[i] is read before dz[i] is written */
            for (int i = 0; i < V; i++) dz[i] = dscale * expf(z[i] - lse);
            dz[t] -= dscale;
        }
    }
}

/* log-softmax of z / temp into out (double precision accumulation). */
static void log_softmax_row(double *out, const float *z, int V, float temp)
{
    double mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = z[i] / temp > mx ? z[i] / temp : mx;
    double s = 0;
    for (int i = 0; i < V; i++) s += exp(z[i] / temp - mx);
    double lse = mx + log(s);
    for (int i = 0; i < V; i++) out[i] = z[i] / temp - lse;
}

void kcpu_kl_fwd_bwd(k_backend *b, float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                     const int32_t *mask, int N, int V, k_kl_mode mode, float temp, float dscale)
{
#pragma omp parallel num_threads(NT)
    {
        double *ls = xmalloc(2 * (size_t)V * sizeof(double)), *lt = ls + V;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            float *dz = dlogits_s ? dlogits_s + (size_t)n * V : NULL;
            if (mask && !mask[n]) {
                loss[n] = 0;
                if (dz) memset(dz, 0, (size_t)V * sizeof(float));
                continue;
            }
            log_softmax_row(ls, logits_s + (size_t)n * V, V, temp);
            log_softmax_row(lt, logits_t + (size_t)n * V, V, temp);
            double kl = 0;
            if (mode == K_KL_FORWARD) {
                for (int i = 0; i < V; i++) kl += exp(lt[i]) * (lt[i] - ls[i]);
                if (dz)
                    for (int i = 0; i < V; i++) dz[i] = (float)(dscale * (exp(ls[i]) - exp(lt[i])) / temp);
            } else {
                for (int i = 0; i < V; i++) kl += exp(ls[i]) * (ls[i] - lt[i]);
                if (dz)
                    for (int i = 0; i < V; i++)
                        dz[i] = (float)(dscale * exp(ls[i]) * (ls[i] - lt[i] - kl) / temp);
            }
            loss[n] = (float)kl;
        }
        free(ls);
    }
}

void kcpu_mse_fwd_bwd(k_backend *b, float *loss, float *dx, const float *x, const float *y, int N, int d,
                      float dscale)
{
#pragma omp parallel for num_threads(NT) schedule(static) if (N > 16)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * d, *yr = y + (size_t)n * d;
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)(xr[i] - yr[i]) * (xr[i] - yr[i]);
        loss[n] = (float)(s / d);
        if (dx)
            for (int i = 0; i < d; i++) dx[(size_t)n * d + i] = dscale * 2.0f * (xr[i] - yr[i]) / d;
    }
}

/* ---- AdamW (torch.optim.AdamW, non-amsgrad) ----
 * p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
void kcpu_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, int nseg,
                const size_t *seg_end, const unsigned char *decay, const k_adamw_hp *hp)
{
    double bc1 = 1.0 - pow(hp->beta1, hp->step), bc2 = 1.0 - pow(hp->beta2, hp->step);
    float step_size = (float)(hp->lr / bc1), bc2s = (float)sqrt(bc2);
    float b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps;
    size_t start = 0;
    for (int s = 0; s < nseg; s++) {
        size_t end = seg_end[s] < n ? seg_end[s] : n;
        float shrink = decay[s] ? 1.0f - hp->lr * hp->weight_decay : 1.0f;
#pragma omp parallel for num_threads(NT) schedule(static) if (end - start > 16384)
        for (size_t i = start; i < end; i++) {
            float gi = g[i];
            p[i] *= shrink;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2s + eps);
        }
        start = end;
    }
}
