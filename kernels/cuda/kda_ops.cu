// kda_ops.cu - CUDA twins of the small ops around the KDA core: short conv, L2 norm, decay gate, gated RMSNorm,
// sigmoid, GQA head repeat (semantics: kernels/cpu/kda_ops.c).
#include <math.h>

#include "kernels/cuda/cuda.cuh"

#define ST KCUDA_STREAM(b)
#define GSTRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
#define RP 64 /* rows per partial of the deterministic column sums */

static unsigned ew_grid(k_backend *b, size_t n)
{
    unsigned g = kc_blocks(n, 256), cap = (unsigned)KCUDA_CTX(b)->n_sm * 16u;
    return g < cap ? g : cap;
}

/* PyTorch's softplus (beta 1, threshold 20) */
__device__ __forceinline__ float kc_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* ---- causal depthwise conv: x, y [B,T,C], w [C,W], cache [B,W-1,C] ---- */

__device__ __forceinline__ float conv_in(const float *x, const float *cache, int b, int s, int c, int T, int C,
                                         int W)
{
    if (s >= 0) return x[((size_t)b * T + s) * C + c];
    if (!cache) return 0.0f;
    return cache[((size_t)b * (W - 1) + (W - 1 + s)) * C + c];
}

__global__ void conv_fwd_kernel(float *y, const float *x, const float *w, const float *cache, int B, int T, int C,
                                int W, int act)
{
    GSTRIDE(idx, (size_t)B * T * C)
    {
        int c = idx % C, t = (idx / C) % T, bb = idx / ((size_t)C * T);
        float a = 0;
        for (int j = 0; j < W; j++) a += w[(size_t)c * W + j] * conv_in(x, cache, bb, t - W + 1 + j, c, T, C, W);
        y[idx] = act ? a * kc_sigmoid(a) : a;
    }
}

/* the last W-1 inputs, oldest first; one thread per (b, c) reads all before writing (cache_out may be cache) */
__global__ void conv_cache_kernel(float *cache_out, const float *x, const float *cache, int B, int T, int C, int W)
{
    GSTRIDE(idx, (size_t)B * C)
    {
        int c = idx % C, bb = idx / C;
        float last[16];
        for (int m = 0; m < W - 1; m++) last[m] = conv_in(x, cache, bb, T - (W - 1) + m, c, T, C, W);
        for (int m = 0; m < W - 1; m++) cache_out[((size_t)bb * (W - 1) + m) * C + c] = last[m];
    }
}

void kcuda_conv_fwd(k_backend *b, float *y, float *cache_out, const float *x, const float *w, const float *cache,
                    int B, int T, int C, int W, int act)
{
    if (W - 1 > 16 || W < 1) BUG("conv width %d outside [1, 17]", W);
    size_t n = (size_t)B * T * C;
    if (n) {
        conv_fwd_kernel<<<ew_grid(b, n), 256, 0, ST>>>(y, x, w, cache, B, T, C, W, act);
        KLAUNCH_CHECK();
    }
    if (cache_out && W > 1 && B * C) {
        conv_cache_kernel<<<ew_grid(b, (size_t)B * C), 256, 0, ST>>>(cache_out, x, cache, B, T, C, W);
        KLAUNCH_CHECK();
    }
}

/* dpre[b,t,c] = dy * act'(pre) */
__global__ void conv_dpre_kernel(float *dpre, const float *dy, const float *x, const float *w, const float *cache,
                                 int B, int T, int C, int W, int act)
{
    GSTRIDE(idx, (size_t)B * T * C)
    {
        float d = dy[idx];
        if (act) {
            int c = idx % C, t = (idx / C) % T, bb = idx / ((size_t)C * T);
            float a = 0;
            for (int j = 0; j < W; j++) a += w[(size_t)c * W + j] * conv_in(x, cache, bb, t - W + 1 + j, c, T, C, W);
            float sg = kc_sigmoid(a);
            d *= sg * (1.0f + a * (1.0f - sg));
        }
        dpre[idx] = d;
    }
}

/* dx[b,s,c] += sum_j w[c,j] dpre[b, s+W-1-j, c] (gather: one writer per element) */
__global__ void conv_dx_kernel(float *dx, const float *dpre, const float *w, int B, int T, int C, int W)
{
    GSTRIDE(idx, (size_t)B * T * C)
    {
        int c = idx % C, s = (idx / C) % T, bb = idx / ((size_t)C * T);
        float a = 0;
        for (int j = 0; j < W; j++) {
            int t = s + W - 1 - j;
            if (t < T) a += w[(size_t)c * W + j] * dpre[((size_t)bb * T + t) * C + c];
        }
        dx[idx] += a;
    }
}

/* partial dw over rows (b,t) in [p*RP, p*RP+RP): part[p, c*W + j] */
__global__ void conv_dw_part_kernel(float *part, const float *dpre, const float *x, const float *cache, int B, int T,
                                    int C, int W)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= C) return;
    int r0 = p * RP, r1 = min(B * T, r0 + RP);
    float acc[17];
    for (int j = 0; j < W; j++) acc[j] = 0;
    for (int r = r0; r < r1; r++) {
        int bb = r / T, t = r % T;
        float d = dpre[(size_t)r * C + c];
        for (int j = 0; j < W; j++) acc[j] += d * conv_in(x, cache, bb, t - W + 1 + j, c, T, C, W);
    }
    for (int j = 0; j < W; j++) part[(size_t)p * C * W + (size_t)c * W + j] = acc[j];
}

void kcuda_conv_bwd(k_backend *b, float *dx, float *dw, const float *dy, const float *x, const float *w,
                    const float *cache, int B, int T, int C, int W, int act)
{
    if (W - 1 > 16 || W < 1) BUG("conv width %d outside [1, 17]", W);
    size_t n = (size_t)B * T * C;
    if (!n) return;
    int P = (B * T + RP - 1) / RP;
    size_t pbytes = dw ? (size_t)P * C * W * sizeof(float) : 0;
    char *s = (char *)kcuda_scratch(b, n * sizeof(float) + pbytes + 256);
    float *dpre = (float *)s, *part = (float *)(s + ((n * sizeof(float) + 255) & ~(size_t)255));
    conv_dpre_kernel<<<ew_grid(b, n), 256, 0, ST>>>(dpre, dy, x, w, cache, B, T, C, W, act);
    KLAUNCH_CHECK();
    conv_dx_kernel<<<ew_grid(b, n), 256, 0, ST>>>(dx, dpre, w, B, T, C, W);
    KLAUNCH_CHECK();
    if (dw) {
        conv_dw_part_kernel<<<dim3(kc_blocks(C, 128), P), 128, 0, ST>>>(part, dpre, x, cache, B, T, C, W);
        KLAUNCH_CHECK();
        kcuda_colsum_final(b, dw, part, P, C * W, 1);
    }
}

/* ---- L2 norm over rows of K: one warp per row ---- */

__global__ void l2norm_fwd_kernel(float *y, const float *x, size_t n, int K, float scale, float eps)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= n) return;
    const float *xi = x + i * K;
    float ss = 0;
    for (int c = lane; c < K; c += 32) ss += xi[c] * xi[c];
    ss = kc_warp_sum(ss);
    float r = scale / sqrtf(ss + eps);
    for (int c = lane; c < K; c += 32) y[i * K + c] = xi[c] * r;
}

__global__ void l2norm_bwd_kernel(float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                                  float eps)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= n) return;
    const float *xi = x + i * K, *dyi = dy + i * K;
    float ss = 0, xd = 0;
    for (int c = lane; c < K; c += 32) {
        ss += xi[c] * xi[c];
        xd += xi[c] * dyi[c];
    }
    ss = kc_warp_sum(ss);
    xd = kc_warp_sum(xd);
    float r2 = 1.0f / (ss + eps), r = sqrtf(r2);
    for (int c = lane; c < K; c += 32) dx[i * K + c] += scale * r * (dyi[c] - xi[c] * xd * r2);
}

void kcuda_l2norm_fwd(k_backend *b, float *y, const float *x, size_t n, int K, float scale, float eps)
{
    if (!n) return;
    l2norm_fwd_kernel<<<kc_blocks(n, 8), 256, 0, ST>>>(y, x, n, K, scale, eps);
    KLAUNCH_CHECK();
}

void kcuda_l2norm_bwd(k_backend *b, float *dx, const float *dy, const float *x, size_t n, int K, float scale,
                      float eps)
{
    if (!n) return;
    l2norm_bwd_kernel<<<kc_blocks(n, 8), 256, 0, ST>>>(dx, dy, x, n, K, scale, eps);
    KLAUNCH_CHECK();
}

/* ---- decay gate: g[n,h,c] = -exp(A_log[h]) softplus(f[n, h*Kf + cf] + dt_bias[h*Kf + cf]) ---- */

__global__ void gate_fwd_kernel(float *g, const float *f, const float *A_log, const float *dt_bias, size_t N, int H,
                                int K, int per_head)
{
    int Kf = per_head ? 1 : K;
    GSTRIDE(idx, N * H * K)
    {
        int c = idx % K, h = (idx / K) % H;
        size_t n = idx / ((size_t)K * H);
        int j = h * Kf + (per_head ? 0 : c);
        g[idx] = -expf(A_log[h]) * kc_softplus(f[n * H * Kf + j] + dt_bias[j]);
    }
}

void kcuda_gate_fwd(k_backend *b, float *g, const float *f, const float *A_log, const float *dt_bias, size_t N,
                    int H, int K, int per_head)
{
    if (!N) return;
    gate_fwd_kernel<<<ew_grid(b, N * H * K), 256, 0, ST>>>(g, f, A_log, dt_bias, N, H, K, per_head);
    KLAUNCH_CHECK();
}

/* per f element (n, j): dz = dsum a sigmoid(z) -> df += dz; dzs[n, j] = dz, das[n, j] = dsum a softplus(z) */
__global__ void gate_bwd_kernel(float *df, float *dzs, float *das, const float *dg, const float *f,
                                const float *A_log, const float *dt_bias, size_t N, int H, int K, int per_head)
{
    int Kf = per_head ? 1 : K;
    GSTRIDE(idx, N * H * Kf)
    {
        int j = idx % (H * Kf), h = j / Kf, cf = j % Kf;
        size_t n = idx / ((size_t)H * Kf);
        float a = -expf(A_log[h]);
        float z = f[idx] + dt_bias[j], sp = kc_softplus(z), sg = kc_sigmoid(z);
        float dsum = 0;
        if (per_head)
            for (int c = 0; c < K; c++) dsum += dg[(n * H + h) * K + c];
        else
            dsum = dg[(n * H + h) * K + cf];
        float dz = dsum * a * sg;
        df[idx] += dz;
        dzs[idx] = dz;
        das[idx] = dsum * a * sp;
    }
}

/* part[p, c] = sum over rows [p*RP, ...) of X[r, c] */
__global__ void colsum_part_kernel(float *part, const float *X, size_t R, int ncols)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= ncols) return;
    size_t r0 = (size_t)p * RP, r1 = r0 + RP < R ? r0 + RP : R;
    float a = 0;
    for (size_t r = r0; r < r1; r++) a += X[r * ncols + c];
    part[(size_t)p * ncols + c] = a;
}

/* dA_log[h] += sum_cf colsum[h*Kf + cf] */
__global__ void gate_dA_kernel(float *dA_log, const float *cs, int H, int Kf)
{
    int h = blockIdx.x * blockDim.x + threadIdx.x;
    if (h >= H) return;
    float a = 0;
    for (int c = 0; c < Kf; c++) a += cs[h * Kf + c];
    dA_log[h] += a;
}

/* out[c] (+)= sum_r X[r, c], deterministic two-pass; `work` holds P*ncols floats */
static void colsum(k_backend *b, float *out, const float *X, size_t R, int ncols, float *work, int acc)
{
    int P = (int)((R + RP - 1) / RP);
    colsum_part_kernel<<<dim3(kc_blocks(ncols, 128), P), 128, 0, ST>>>(work, X, R, ncols);
    KLAUNCH_CHECK();
    kcuda_colsum_final(b, out, work, P, ncols, acc);
}

void kcuda_gate_bwd(k_backend *b, float *df, float *dA_log, float *ddt_bias, const float *dg, const float *f,
                    const float *A_log, const float *dt_bias, size_t N, int H, int K, int per_head)
{
    if (!N) return;
    int Kf = per_head ? 1 : K, ncols = H * Kf;
    size_t m = N * ncols, P = (N + RP - 1) / RP;
    float *dzs = (float *)kcuda_scratch(b, (2 * m + P * ncols + ncols) * sizeof(float));
    float *das = dzs + m, *work = das + m, *cs = work + P * ncols;
    gate_bwd_kernel<<<ew_grid(b, m), 256, 0, ST>>>(df, dzs, das, dg, f, A_log, dt_bias, N, H, K, per_head);
    KLAUNCH_CHECK();
    if (ddt_bias) colsum(b, ddt_bias, dzs, N, ncols, work, 1);
    if (dA_log) {
        colsum(b, cs, das, N, ncols, work, 0);
        gate_dA_kernel<<<kc_blocks(H, 64), 64, 0, ST>>>(dA_log, cs, H, Kf);
        KLAUNCH_CHECK();
    }
}

/* ---- gated RMSNorm per head: y = x rstd w sigmoid(z); one warp per (n, h) row of V ---- */

__global__ void gated_rmsnorm_fwd_kernel(float *y, const float *x, const float *z, const float *w, size_t rows,
                                         int V, float eps)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= rows) return;
    const float *xi = x + i * V, *zi = z + i * V;
    float ss = 0;
    for (int e = lane; e < V; e += 32) ss += xi[e] * xi[e];
    ss = kc_warp_sum(ss);
    float rs = 1.0f / sqrtf(ss / V + eps);
    for (int e = lane; e < V; e += 32) y[i * V + e] = xi[e] * rs * w[e] * kc_sigmoid(zi[e]);
}

void kcuda_gated_rmsnorm_fwd(k_backend *b, float *y, const float *x, const float *z, const float *w, size_t N,
                             int H, int V, float eps)
{
    size_t rows = N * H;
    if (!rows) return;
    gated_rmsnorm_fwd_kernel<<<kc_blocks(rows, 8), 256, 0, ST>>>(y, x, z, w, rows, V, eps);
    KLAUNCH_CHECK();
}

/* dz += dy xh w s(1-s); dx += rs (dy w s - xh mean(dy w s xh)); dwc[i, e] = dy xh s (for the column sum) */
__global__ void gated_rmsnorm_bwd_kernel(float *dx, float *dz, float *dwc, const float *dy, const float *x,
                                         const float *z, const float *w, size_t rows, int V, float eps)
{
    size_t i = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (i >= rows) return;
    const float *xi = x + i * V, *zi = z + i * V, *dyi = dy + i * V;
    float ss = 0;
    for (int e = lane; e < V; e += 32) ss += xi[e] * xi[e];
    ss = kc_warp_sum(ss);
    float rs = 1.0f / sqrtf(ss / V + eps), m = 0;
    for (int e = lane; e < V; e += 32) {
        float s = kc_sigmoid(zi[e]), xh = xi[e] * rs;
        dz[i * V + e] += dyi[e] * xh * w[e] * s * (1.0f - s);
        if (dwc) dwc[i * V + e] = dyi[e] * xh * s;
        m += dyi[e] * w[e] * s * xh;
    }
    m = kc_warp_sum(m) / V;
    for (int e = lane; e < V; e += 32) {
        float s = kc_sigmoid(zi[e]);
        dx[i * V + e] += rs * (dyi[e] * w[e] * s - xi[e] * rs * m);
    }
}

void kcuda_gated_rmsnorm_bwd(k_backend *b, float *dx, float *dz, float *dw, const float *dy, const float *x,
                             const float *z, const float *w, size_t N, int H, int V, float eps)
{
    size_t rows = N * H;
    if (!rows) return;
    size_t P = (rows + RP - 1) / RP;
    float *dwc = dw ? (float *)kcuda_scratch(b, (rows * V + P * V) * sizeof(float)) : NULL;
    gated_rmsnorm_bwd_kernel<<<kc_blocks(rows, 8), 256, 0, ST>>>(dx, dz, dwc, dy, x, z, w, rows, V, eps);
    KLAUNCH_CHECK();
    if (dw) colsum(b, dw, dwc, rows, V, dwc + rows * V, 1);
}

/* ---- sigmoid, head repeat ---- */

__global__ void sigmoid_fwd_kernel(float *y, const float *x, size_t n) { GSTRIDE(i, n) y[i] = kc_sigmoid(x[i]); }
__global__ void sigmoid_bwd_kernel(float *dx, const float *dy, const float *y, size_t n)
{
    GSTRIDE(i, n) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void kcuda_sigmoid_fwd(k_backend *b, float *y, const float *x, size_t n)
{
    if (!n) return;
    sigmoid_fwd_kernel<<<ew_grid(b, n), 256, 0, ST>>>(y, x, n);
    KLAUNCH_CHECK();
}

void kcuda_sigmoid_bwd(k_backend *b, float *dx, const float *dy, const float *y, size_t n)
{
    if (!n) return;
    sigmoid_bwd_kernel<<<ew_grid(b, n), 256, 0, ST>>>(dx, dy, y, n);
    KLAUNCH_CHECK();
}

__global__ void head_repeat_fwd_kernel(float *out, const float *in, size_t N, int Hq, int Hkv, int K)
{
    int rep = Hq / Hkv;
    GSTRIDE(idx, N * Hq * K)
    {
        int c = idx % K, h = (idx / K) % Hq;
        size_t n = idx / ((size_t)K * Hq);
        out[idx] = in[(n * Hkv + h / rep) * K + c];
    }
}

/* din[n, hk, c] += sum_{r < rep} dout[n, hk*rep + r, c] (gather, fixed order) */
__global__ void head_repeat_bwd_kernel(float *din, const float *dout, size_t N, int Hq, int Hkv, int K)
{
    int rep = Hq / Hkv;
    GSTRIDE(idx, N * Hkv * K)
    {
        int c = idx % K, hk = (idx / K) % Hkv;
        size_t n = idx / ((size_t)K * Hkv);
        float a = 0;
        for (int r = 0; r < rep; r++) a += dout[(n * Hq + hk * rep + r) * K + c];
        din[idx] += a;
    }
}

void kcuda_head_repeat_fwd(k_backend *b, float *out, const float *in, size_t N, int Hq, int Hkv, int K)
{
    if (!N) return;
    head_repeat_fwd_kernel<<<ew_grid(b, N * Hq * K), 256, 0, ST>>>(out, in, N, Hq, Hkv, K);
    KLAUNCH_CHECK();
}

void kcuda_head_repeat_bwd(k_backend *b, float *din, const float *dout, size_t N, int Hq, int Hkv, int K)
{
    if (!N) return;
    head_repeat_bwd_kernel<<<ew_grid(b, N * Hkv * K), 256, 0, ST>>>(din, dout, N, Hq, Hkv, K);
    KLAUNCH_CHECK();
}
