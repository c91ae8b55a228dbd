/* kda_ops.c - CPU fp32 small ops around the KDA core: causal short conv, L2 norm, decay gate, gated RMSNorm. */
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <omp.h>

#include "base/base.h"
#include "kernels/cpu/kda.h"

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
/* PyTorch's softplus (beta 1, threshold 20) */
static inline float softplusf_(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* input s (may be negative: the cache) of channel c of sequence b */
static inline float conv_in(const float *x, const float *cache, int b, int s, int c, int T, int C, int W)
{
    if (s >= 0) return x[((size_t)b * T + s) * C + c];
    if (!cache) return 0.0f;
    return cache[((size_t)b * (W - 1) + (W - 1 + s)) * C + c];
}

/* Forward: y_t[c] = act(sum_j w[c,j] x_{t-W+1+j}[c]); silu(z) = z * sigmoid(z). */
void kcpu_conv_fwd(float *y, float *cache_out, const float *x, const float *w, const float *cache, int B, int T,
                   int C, int W, int act)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float *wc = w + (size_t)c * W;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                float a = 0;
                for (int j = 0; j < W; j++) a += wc[j] * conv_in(x, cache, b, t - W + 1 + j, c, T, C, W);
                y[((size_t)b * T + t) * C + c] = act ? a * sigmoidf_(a) : a;
            }
            if (cache_out) {
                /* the last W-1 inputs, oldest first; read all before writing (cache_out may alias cache) */
                float last[16];
                int nw = W - 1 < 16 ? W - 1 : 16;
                if (W - 1 > 16) BUG("conv width %d > 17", W);
                for (int m = 0; m < nw; m++) last[m] = conv_in(x, cache, b, T - (W - 1) + m, c, T, C, W);
                for (int m = 0; m < nw; m++) cache_out[((size_t)b * (W - 1) + m) * C + c] = last[m];
            }
        }
    }
}

/* Backward: dpre = dy * act'(pre); dx_s[c] += w[c,j] dpre_t[c]; dw[c,j] += dpre_t[c] x_s[c], s = t-W+1+j. */
void kcpu_conv_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *cache,
                   int B, int T, int C, int W, int act)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float *wc = w + (size_t)c * W;
        float *dwc = dw ? dw + (size_t)c * W : NULL;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                float d = dy[((size_t)b * T + t) * C + c];
                if (act) {
                    float a = 0;
                    for (int j = 0; j < W; j++) a += wc[j] * conv_in(x, cache, b, t - W + 1 + j, c, T, C, W);
                    float sg = sigmoidf_(a);
                    d *= sg * (1.0f + a * (1.0f - sg));
                }
                for (int j = 0; j < W; j++) {
                    int s = t - W + 1 + j;
                    if (dwc) dwc[j] += d * conv_in(x, cache, b, s, c, T, C, W);
                    if (s >= 0) dx[((size_t)b * T + s) * C + c] += wc[j] * d;
                }
            }
    }
}

void kcpu_l2norm_fwd(float *y, const float *x, size_t n, int K, float scale, float eps)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * K;
        float ss = 0;
        for (int c = 0; c < K; c++) ss += xi[c] * xi[c];
        float r = scale / sqrtf(ss + eps);
        for (int c = 0; c < K; c++) y[i * K + c] = xi[c] * r;
    }
}

void kcpu_l2norm_bwd(float *dx, const float *dy, const float *x, size_t n, int K, float scale, float eps)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * K, *dyi = dy + i * K;
        float ss = 0, xd = 0;
        for (int c = 0; c < K; c++) {
            ss += xi[c] * xi[c];
            xd += xi[c] * dyi[c];
        }
        float r2 = 1.0f / (ss + eps), r = sqrtf(r2);
        for (int c = 0; c < K; c++) dx[i * K + c] += scale * r * (dyi[c] - xi[c] * xd * r2);
    }
}

void kcpu_gate_fwd(float *g, const float *f, const float *A_log, const float *dt_bias, size_t N, int H, int K,
                   int per_head)
{
    const int Kf = per_head ? 1 : K;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            float a = -expf(A_log[h]);
            for (int c = 0; c < K; c++) {
                int j = h * Kf + (per_head ? 0 : c);
                g[(n * H + h) * K + c] = a * softplusf_(f[n * H * Kf + j] + dt_bias[j]);
            }
        }
}

/* g = -exp(A) softplus(z), z = f + dt_bias: dz = dg * (-exp(A)) * sigmoid(z) (summed over broadcast), dA = dg*g */
void kcpu_gate_bwd(float *df, float *dA_log, float *ddt_bias, const float *dg, const float *f, const float *A_log,
                   const float *dt_bias, size_t N, int H, int K, int per_head)
{
    const int Kf = per_head ? 1 : K;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < H; h++) {
        float a = -expf(A_log[h]);
        double dA = 0;
        for (size_t n = 0; n < N; n++) {
            for (int cf = 0; cf < Kf; cf++) {
                int j = h * Kf + cf;
                float z = f[n * H * Kf + j] + dt_bias[j], sp = softplusf_(z), sg = sigmoidf_(z);
                float dsum = 0;
                if (per_head)
                    for (int c = 0; c < K; c++) dsum += dg[(n * H + h) * K + c];
                else
                    dsum = dg[(n * H + h) * K + cf];
                float dz = dsum * a * sg;
                df[n * H * Kf + j] += dz;
                if (ddt_bias) ddt_bias[j] += dz;
                dA += (double)dsum * a * sp;
            }
        }
        if (dA_log) dA_log[h] += (float)dA;
    }
}

void kcpu_gated_rmsnorm_fwd(float *y, const float *x, const float *z, const float *w, size_t N, int H, int V,
                            float eps)
{
#pragma omp parallel for schedule(static)
    for (size_t nh = 0; nh < N * H; nh++) {
        const float *xi = x + nh * V, *zi = z + nh * V;
        float ss = 0;
        for (int e = 0; e < V; e++) ss += xi[e] * xi[e];
        float rs = 1.0f / sqrtf(ss / V + eps);
        for (int e = 0; e < V; e++) y[nh * V + e] = xi[e] * rs * w[e] * sigmoidf_(zi[e]);
    }
}

/* y = xh * w * s, xh = x * rstd, s = sigmoid(z): dz = dy xh w s(1-s); dw = dy xh s; dx = rstd (dxh - xh mean(dxh xh)) */
void kcpu_gated_rmsnorm_bwd(float *dx, float *dz, float *dw, const float *dy, const float *x, const float *z,
                            const float *w, size_t N, int H, int V, float eps)
{
    /* dw: per-thread partial sums, reduced in thread order so the result is deterministic */
    int nt = omp_get_max_threads();
    float *part = dw ? xcalloc((size_t)nt * V, sizeof(float)) : NULL;
#pragma omp parallel
    {
        float *dwl = part ? part + (size_t)omp_get_thread_num() * V : NULL;
#pragma omp for schedule(static)
        for (size_t nh = 0; nh < N * H; nh++) {
            const float *xi = x + nh * V, *zi = z + nh * V, *dyi = dy + nh * V;
            float ss = 0;
            for (int e = 0; e < V; e++) ss += xi[e] * xi[e];
            float rs = 1.0f / sqrtf(ss / V + eps);
            float m = 0;
            for (int e = 0; e < V; e++) {
                float s = sigmoidf_(zi[e]), xh = xi[e] * rs;
                dz[nh * V + e] += dyi[e] * xh * w[e] * s * (1.0f - s);
                if (dwl) dwl[e] += dyi[e] * xh * s;
                m += dyi[e] * w[e] * s * xh;
            }
            m /= V;
            for (int e = 0; e < V; e++) {
                float s = sigmoidf_(zi[e]);
                dx[nh * V + e] += rs * (dyi[e] * w[e] * s - xi[e] * rs * m);
            }
        }
    }
    if (part) {
        for (int t = 0; t < nt; t++)
            for (int e = 0; e < V; e++) dw[e] += part[(size_t)t * V + e];
        free(part);
    }
}

void kcpu_sigmoid_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = sigmoidf_(x[i]);
}

void kcpu_sigmoid_bwd(float *dx, const float *dy, const float *y, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void kcpu_head_repeat_fwd(float *out, const float *in, size_t N, int Hq, int Hkv, int K)
{
    const int rep = Hq / Hkv;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (int h = 0; h < Hq; h++)
            memcpy(out + (n * Hq + h) * K, in + (n * Hkv + h / rep) * K, sizeof(float) * K);
}

void kcpu_head_repeat_bwd(float *din, const float *dout, size_t N, int Hq, int Hkv, int K)
{
    const int rep = Hq / Hkv;
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; n++)
        for (int h = 0; h < Hq; h++) {
            float *d = din + (n * Hkv + h / rep) * K;
            const float *s = dout + (n * Hq + h) * K;
            for (int c = 0; c < K; c++) d[c] += s[c];
        }
}
