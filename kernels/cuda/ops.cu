// ops.cu - CUDA twins of the dense CPU ops: add, scale, sumsq, embedding, RMSNorm, RoPE, SwiGLU, losses, AdamW.
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "kernels/cuda/cuda.cuh"

#define ST KCUDA_STREAM(b)

/* grid for a grid-stride elementwise loop over n values: enough blocks to fill the chip, no more */
static unsigned ew_grid(k_backend *b, size_t n)
{
    unsigned g = kc_blocks(n, 256), cap = (unsigned)KCUDA_CTX(b)->n_sm * 16u;
    return g < cap ? g : cap;
}
#define GSTRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* ---- elementwise ---- */

__global__ void add_kernel(float *y, const float *a, const float *c, size_t n) { GSTRIDE(i, n) y[i] = a[i] + c[i]; }
__global__ void scale_kernel(float *x, float s, size_t n) { GSTRIDE(i, n) x[i] *= s; }

void kcuda_add(k_backend *b, float *y, const float *a, const float *c, size_t n)
{
    if (!n) return;
    add_kernel<<<ew_grid(b, n), 256, 0, ST>>>(y, a, c, n);
    KLAUNCH_CHECK();
}

void kcuda_scale(k_backend *b, float *x, float s, size_t n)
{
    if (!n) return;
    scale_kernel<<<ew_grid(b, n), 256, 0, ST>>>(x, s, n);
    KLAUNCH_CHECK();
}

/* sum of squares in double: a fixed grid of SUMSQ_BLOCKS blocks, each a fixed strided slice, then one block
 * adds the partials in block order: the same result on every run. */
#define SUMSQ_BLOCKS 1024
__global__ void sumsq_part_kernel(double *part, const float *x, size_t n)
{
    __shared__ double sh[32];
    double s = 0;
    GSTRIDE(i, n) s += (double)x[i] * x[i];
    s = kc_block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
__global__ void sumsq_final_kernel(double *out, const double *part, int P)
{
    __shared__ double sh[32];
    double s = 0;
    for (int i = threadIdx.x; i < P; i += blockDim.x) s += part[i];
    s = kc_block_sum_d(s, sh);
    if (threadIdx.x == 0) *out = s;
}

void kcuda_sumsq(k_backend *b, double *out, const float *x, size_t n)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    if (!n) { *out = 0; return; }
    sumsq_part_kernel<<<SUMSQ_BLOCKS, 256, 0, ST>>>(c->sumsq_part, x, n);
    KLAUNCH_CHECK();
    sumsq_final_kernel<<<1, 1024, 0, ST>>>(c->sumsq_part + SUMSQ_BLOCKS, c->sumsq_part, SUMSQ_BLOCKS);
    KLAUNCH_CHECK();
    CK(cudaMemcpyAsync(c->host_dbl, c->sumsq_part + SUMSQ_BLOCKS, sizeof(double), cudaMemcpyDeviceToHost, ST));
    CK(cudaStreamSynchronize(ST));
    *out = *c->host_dbl;
}

/* ---- embedding ---- */

/* out[n, :] = table[ids[n], :]; an id outside [0, V) gives a zero row (the CPU twin BUGs; the model checks ids
 * on the host before upload). */
__global__ void embedding_fwd_kernel(float *out, const int32_t *ids, const float *table, int N, int d, int V)
{
    int n = blockIdx.x;
    int id = ids[n];
    float *o = out + (size_t)n * d;
    if (id < 0 || id >= V) {
        for (int c = threadIdx.x; c < d; c += blockDim.x) o[c] = 0;
        return;
    }
    const float *t = table + (size_t)id * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) o[c] = t[c];
}

void kcuda_embedding_fwd(k_backend *b, float *out, const int32_t *ids, const float *table, int N, int d, int V)
{
    if (N <= 0) return;
    embedding_fwd_kernel<<<N, 256, 0, ST>>>(out, ids, table, N, d, V);
    KLAUNCH_CHECK();
}

/* dtable[ids[n], :] += dout[n, :] with rows in order n = 0..N-1 (the CPU's order: deterministic, no atomics):
 * one thread per column walks all rows; the read-modify-writes of a row are coalesced across the warp.
 * Parallel only over d columns: fine for the model (one call per step), a sort-by-token version would be faster. */
__global__ void embedding_bwd_kernel(float *dtable, const int32_t *ids, const float *dout, int N, int d, int V)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        if (id < 0 || id >= V) continue;
        dtable[(size_t)id * d + c] += dout[(size_t)n * d + c];
    }
}

void kcuda_embedding_bwd(k_backend *b, float *dtable, const int32_t *ids, const float *dout, int N, int d, int V)
{
    if (N <= 0) return;
    embedding_bwd_kernel<<<kc_blocks(d, 64), 64, 0, ST>>>(dtable, ids, dout, N, d, V);
    KLAUNCH_CHECK();
}

/* ---- RMSNorm: one block per row ---- */

__global__ void rmsnorm_fwd_kernel(float *out, float *rstd, const float *x, const float *w, int d, float eps)
{
    __shared__ float sh[33];
    size_t n = blockIdx.x;
    const float *xr = x + n * d;
    float ss = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
    ss = kc_block_sum(ss, sh);
    float r = rsqrtf(ss / d + eps);
    if (rstd && threadIdx.x == 0) rstd[n] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x) out[n * d + i] = xr[i] * r * w[i];
}

static int row_threads(int d)
{
    int t = ((d + 31) / 32) * 32;
    if (t > 256) t = 256;
    return t < 32 ? 32 : t;
}

void kcuda_rmsnorm_fwd(k_backend *b, float *out, float *rstd, const float *x, const float *w, int N, int d,
                       float eps)
{
    if (N <= 0) return;
    rmsnorm_fwd_kernel<<<N, row_threads(d), 0, ST>>>(out, rstd, x, w, d, eps);
    KLAUNCH_CHECK();
}

/* One block per row: each thread scans its strided elements in order (the first of equal maxima, NaN skipped),
 * then a fixed tree picks the larger value, the lower index on ties: the first maximum of the non-NaN values, which
 * is the host scan's answer whenever x[n,0] is not NaN (when it is, the host scan never moves: 0). */
#define ARGMAX_THREADS 1024
__global__ void argmax_rows_kernel(int32_t *out, const float *x, int V)
{
    __shared__ float sv[ARGMAX_THREADS];
    __shared__ int si[ARGMAX_THREADS];
    const float *r = x + (size_t)blockIdx.x * V;
    float bv = 0.0f;
    int bi = -1;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float v = r[i];
        if (!isnan(v) && (bi < 0 || v > bv)) bv = v, bi = i;
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h) {
            float ov = sv[threadIdx.x + h];
            int oi = si[threadIdx.x + h], mi = si[threadIdx.x];
            if (oi >= 0 && (mi < 0 || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < mi))) {
                sv[threadIdx.x] = ov;
                si[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = isnan(r[0]) || si[0] < 0 ? 0 : si[0];
}

void kcuda_argmax_rows(k_backend *b, int32_t *out, const float *x, int N, int V)
{
    if (N <= 0 || V <= 0) return;
    argmax_rows_kernel<<<N, ARGMAX_THREADS, 0, ST>>>(out, x, V);
    KLAUNCH_CHECK();
}

/* add then rmsnorm_fwd_kernel in one pass: the same thread layout and sum order, so the same values */
__global__ void add_rmsnorm_fwd_kernel(float *sum, float *out, float *rstd, const float *x, const float *y,
                                       const float *w, int d, float eps)
{
    __shared__ float sh[33];
    size_t n = blockIdx.x;
    float ss = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float s = x[n * d + i] + y[n * d + i];
        sum[n * d + i] = s;
        ss += s * s;
    }
    ss = kc_block_sum(ss, sh);
    float r = rsqrtf(ss / d + eps);
    if (rstd && threadIdx.x == 0) rstd[n] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x) out[n * d + i] = sum[n * d + i] * r * w[i];
}

void kcuda_add_rmsnorm_fwd(k_backend *b, float *sum, float *out, float *rstd, const float *x, const float *y,
                           const float *w, int N, int d, float eps)
{
    if (N <= 0) return;
    add_rmsnorm_fwd_kernel<<<N, row_threads(d), 0, ST>>>(sum, out, rstd, x, y, w, d, eps);
    KLAUNCH_CHECK();
}

/* dx += r w dy - r^3/d x sum(w dy x) */
__global__ void rmsnorm_bwd_dx_kernel(float *dx, const float *dout, const float *x, const float *w,
                                      const float *rstd, int d)
{
    __shared__ float sh[33];
    size_t n = blockIdx.x;
    const float *xr = x + n * d, *dy = dout + n * d;
    float dot = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dot += w[i] * dy[i] * xr[i];
    dot = kc_block_sum(dot, sh);
    float r = rstd[n], c = r * r * r * dot / d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dx[n * d + i] += r * w[i] * dy[i] - c * xr[i];
}

/* partial dw: part[p, c] = sum over rows [p*RP, p*RP+RP) of dy x rstd */
#define RP 64
__global__ void rmsnorm_dw_part_kernel(float *part, const float *dout, const float *x, const float *rstd, int N,
                                       int d)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= d) return;
    int r0 = p * RP, r1 = min(N, r0 + RP);
    float a = 0;
    for (int r = r0; r < r1; r++) a += dout[(size_t)r * d + c] * x[(size_t)r * d + c] * rstd[r];
    part[(size_t)p * d + c] = a;
}

void kcuda_rmsnorm_bwd(k_backend *b, float *dx, float *dw, const float *dout, const float *x, const float *w,
                       const float *rstd, int N, int d)
{
    if (N <= 0) return;
    rmsnorm_bwd_dx_kernel<<<N, row_threads(d), 0, ST>>>(dx, dout, x, w, rstd, d);
    KLAUNCH_CHECK();
    if (!dw) return;
    int P = (N + RP - 1) / RP;
    float *part = (float *)kcuda_scratch(b, (size_t)P * d * sizeof(float));
    rmsnorm_dw_part_kernel<<<dim3(kc_blocks(d, 128), P), 128, 0, ST>>>(part, dout, x, rstd, N, d);
    KLAUNCH_CHECK();
    kcuda_colsum_final(b, dw, part, P, d, 1);
}

/* ---- RoPE (rotate-half): angle = (float)pos[n] * inv_freq[i] in float32 as HF; cos/sin in double of that
 * float angle, as the CPU twin ---- */

__global__ void rope_kernel(float *x, const int32_t *pos, const float *inv_freq, int H, int K, float sign)
{
    size_t n = blockIdx.x;
    int h2 = K / 2;
    for (int i = threadIdx.x; i < h2; i += blockDim.x) {
        float ang = (float)pos[n] * inv_freq[i];
        double sd, cd;
        sincos((double)ang, &sd, &cd);
        float cs = (float)cd, sn = sign * (float)sd;
        for (int h = 0; h < H; h++) {
            float *xr = x + (n * H + h) * K;
            float x1 = xr[i], x2 = xr[i + h2];
            xr[i] = x1 * cs - x2 * sn;
            xr[i + h2] = x2 * cs + x1 * sn;
        }
    }
}

static void rope(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K, float sign)
{
    if (N <= 0) return;
    if (K % 2) BUG("rope: odd head dim %d", K);
    int t = K / 2 < 32 ? 32 : (K / 2 > 256 ? 256 : K / 2);
    rope_kernel<<<N, t, 0, ST>>>(x, pos, inv_freq, H, K, sign);
    KLAUNCH_CHECK();
}

void kcuda_rope_fwd(k_backend *b, float *x, const int32_t *pos, const float *inv_freq, int N, int H, int K)
{
    rope(b, x, pos, inv_freq, N, H, K, 1.0f);
}

void kcuda_rope_bwd(k_backend *b, float *dx, const int32_t *pos, const float *inv_freq, int N, int H, int K)
{
    rope(b, dx, pos, inv_freq, N, H, K, -1.0f);
}

/* One block per token row n = s*T + t: q and k rotated in place (rope_kernel's arithmetic: the same values), the
 * rotated k and v written to cache row q_start[s] + t of sequence s. */
__global__ void rope_cache_kernel(float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                                  const int32_t *q_start, const float *inv_freq, int T, int Hq, int Hkv, int K,
                                  int Tmax)
{
    size_t n = blockIdx.x;
    int s = (int)(n / T), t = (int)(n % T), h2 = K / 2, row = q_start[s] + t;
    size_t KD = (size_t)Hkv * K;
    int in_cache = row >= 0 && row < Tmax; /* the caller checks; a bad q_start writes nothing rather than elsewhere */
    float *crow = ck + ((size_t)s * Tmax + row) * KD;
    for (int i = threadIdx.x; i < h2; i += blockDim.x) {
        float ang = (float)pos[n] * inv_freq[i];
        double sd, cd;
        sincos((double)ang, &sd, &cd);
        float cs = (float)cd, sn = (float)sd;
        for (int h = 0; h < Hq; h++) {
            float *xr = q + (n * Hq + h) * K;
            float x1 = xr[i], x2 = xr[i + h2];
            xr[i] = x1 * cs - x2 * sn;
            xr[i + h2] = x2 * cs + x1 * sn;
        }
        for (int h = 0; h < Hkv; h++) {
            float *xr = k + (n * Hkv + h) * K;
            float x1 = xr[i], x2 = xr[i + h2];
            float y1 = x1 * cs - x2 * sn, y2 = x2 * cs + x1 * sn;
            xr[i] = y1;
            xr[i + h2] = y2;
            if (in_cache) {
                crow[(size_t)h * K + i] = y1;
                crow[(size_t)h * K + i + h2] = y2;
            }
        }
    }
    if (in_cache)
        for (size_t j = threadIdx.x; j < KD; j += blockDim.x)
            cv[((size_t)s * Tmax + row) * KD + j] = v[n * KD + j];
}

void kcuda_rope_cache_fwd(k_backend *b, float *q, float *k, const float *v, float *ck, float *cv, const int32_t *pos,
                          const int32_t *q_start, const float *inv_freq, int B, int T, int Hq, int Hkv, int K, int Tmax)
{
    if (B <= 0 || T <= 0) return;
    if (K % 2) BUG("rope_cache_fwd: odd head dim %d", K);
    int t = K / 2 < 32 ? 32 : (K / 2 > 256 ? 256 : K / 2);
    rope_cache_kernel<<<(unsigned)((size_t)B * T), t, 0, ST>>>(q, k, v, ck, cv, pos, q_start, inv_freq, T, Hq, Hkv,
                                                               K, Tmax);
    KLAUNCH_CHECK();
}

/* ---- SwiGLU ---- */

__global__ void swiglu_fwd_kernel(float *out, const float *gate, const float *up, size_t n)
{
    GSTRIDE(i, n)
    {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void swiglu_bwd_kernel(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                  size_t n)
{
    GSTRIDE(i, n)
    {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g)), d = dout[i];
        dgate[i] += d * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += d * g * s;
    }
}

void kcuda_swiglu_fwd(k_backend *b, float *out, const float *gate, const float *up, size_t n)
{
    if (!n) return;
    swiglu_fwd_kernel<<<ew_grid(b, n), 256, 0, ST>>>(out, gate, up, n);
    KLAUNCH_CHECK();
}

void kcuda_swiglu_bwd(k_backend *b, float *dgate, float *dup, const float *dout, const float *gate,
                      const float *up, size_t n)
{
    if (!n) return;
    swiglu_bwd_kernel<<<ew_grid(b, n), 256, 0, ST>>>(dgate, dup, dout, gate, up, n);
    KLAUNCH_CHECK();
}

/* ---- losses: one block per row, vocabulary walked in chunks with an online log-sum-exp ----
 * Each thread keeps (max, sum of exp(z - max)) over its strided slice; the block merges the pairs in a fixed
 * order. No softmax buffer exists: the gradient pass recomputes exp(z - lse) straight into dlogits. */

struct ms { float m, s; };
__device__ __forceinline__ ms ms_merge(ms a, ms c)
{
    if (a.m == -INFINITY) return c;
    if (c.m == -INFINITY) return a;
    float m = fmaxf(a.m, c.m);
    return {m, a.s * expf(a.m - m) + c.s * expf(c.m - m)};
}
__device__ __forceinline__ ms ms_add(ms a, float z)
{
    if (z > a.m) return {z, a.s * expf(a.m - z) + 1.0f};
    return {a.m, a.s + expf(z - a.m)};
}
/* block-wide merge; returns lse of the row for every thread */
__device__ float block_lse(ms v, float *shm, float *shs)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        ms u = {__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
        v = ms_merge(v, u);
    }
    __syncthreads();
    if (lane == 0) { shm[w] = v.m; shs[w] = v.s; }
    __syncthreads();
    ms t = {-INFINITY, 0};
    for (int i = 0; i < nw; i++) t = ms_merge(t, ms{shm[i], shs[i]});
    return t.m + logf(t.s);
}

#define LOSS_THREADS 512
__global__ void xent_kernel(float *loss, float *dlogits, const float *logits, const int32_t *target, int V,
                            int ignore_index, float dscale)
{
    __shared__ float shm[32], shs[32];
    size_t n = blockIdx.x;
    const float *z = logits + n * V;
    int t = target[n];
    if (t == ignore_index || t < 0 || t >= V) {
        if (threadIdx.x == 0) loss[n] = 0;
        if (dlogits)
            for (int i = threadIdx.x; i < V; i += blockDim.x) dlogits[n * V + i] = 0;
        return;
    }
    ms acc = {-INFINITY, 0};
    for (int i = threadIdx.x; i < V; i += blockDim.x) acc = ms_add(acc, z[i]);
    float lse = block_lse(acc, shm, shs);
    float zt = z[t];
    __syncthreads(); /* every thread has read z[t] before any overwrite (dlogits may alias logits) */
    if (threadIdx.x == 0) loss[n] = lse - zt;
    if (dlogits) {
        float *dz = dlogits + n * V;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float p = expf(z[i] - lse);
            dz[i] = dscale * (i == t ? p - 1.0f : p);
        }
    }
}

void kcuda_xent_fwd_bwd(k_backend *b, float *loss, float *dlogits, const float *logits, const int32_t *target,
                        int N, int V, int ignore_index, float dscale)
{
    if (N <= 0) return;
    xent_kernel<<<N, LOSS_THREADS, 0, ST>>>(loss, dlogits, logits, target, V, ignore_index, dscale);
    KLAUNCH_CHECK();
}

__global__ void kl_kernel(float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                          const int32_t *mask, int V, int mode, float temp, float dscale)
{
    __shared__ float shm[32], shs[32], shk[33];
    size_t n = blockIdx.x;
    float *dz = dlogits_s ? dlogits_s + n * V : NULL;
    if (mask && !mask[n]) {
        if (threadIdx.x == 0) loss[n] = 0;
        if (dz)
            for (int i = threadIdx.x; i < V; i += blockDim.x) dz[i] = 0;
        return;
    }
    const float *zs = logits_s + n * V, *zt = logits_t + n * V;
    float it = 1.0f / temp;
    ms as = {-INFINITY, 0}, at = {-INFINITY, 0};
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        as = ms_add(as, zs[i] * it);
        at = ms_add(at, zt[i] * it);
    }
    float lse_s = block_lse(as, shm, shs);
    __syncthreads();
    float lse_t = block_lse(at, shm, shs);
    float kl = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float ls = zs[i] * it - lse_s, lt = zt[i] * it - lse_t;
        kl += mode == K_KL_FORWARD ? expf(lt) * (lt - ls) : expf(ls) * (ls - lt);
    }
    kl = kc_block_sum(kl, shk);
    __syncthreads(); /* all reads of zs done before dz (may alias) is written */
    if (threadIdx.x == 0) loss[n] = kl;
    if (dz)
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            float ls = zs[i] * it - lse_s, lt = zt[i] * it - lse_t;
            float g = mode == K_KL_FORWARD ? expf(ls) - expf(lt) : expf(ls) * (ls - lt - kl);
            dz[i] = dscale * g * it;
        }
}

void kcuda_kl_fwd_bwd(k_backend *b, float *loss, float *dlogits_s, const float *logits_s, const float *logits_t,
                      const int32_t *mask, int N, int V, k_kl_mode mode, float temp, float dscale)
{
    if (N <= 0) return;
    kl_kernel<<<N, LOSS_THREADS, 0, ST>>>(loss, dlogits_s, logits_s, logits_t, mask, V, (int)mode, temp, dscale);
    KLAUNCH_CHECK();
}

__global__ void mse_kernel(float *loss, float *dx, const float *x, const float *y, int d, float dscale)
{
    __shared__ float sh[33];
    size_t n = blockIdx.x;
    const float *xr = x + n * d, *yr = y + n * d;
    float s = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) s += (xr[i] - yr[i]) * (xr[i] - yr[i]);
    s = kc_block_sum(s, sh);
    if (threadIdx.x == 0) loss[n] = s / d;
    if (dx)
        for (int i = threadIdx.x; i < d; i += blockDim.x) dx[n * d + i] = dscale * 2.0f * (xr[i] - yr[i]) / d;
}

void kcuda_mse_fwd_bwd(k_backend *b, float *loss, float *dx, const float *x, const float *y, int N, int d,
                       float dscale)
{
    if (N <= 0) return;
    mse_kernel<<<N, row_threads(d), 0, ST>>>(loss, dx, x, y, d, dscale);
    KLAUNCH_CHECK();
}

/* ---- AdamW, multi-tensor: one launch over the flat buffer; each element finds its tensor by binary search
 * in the (device copy of the) segment table, which is re-uploaded only when it changes. ---- */

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n, int nseg,
                             const size_t *seg_end, const unsigned char *decay, float shrink, float b1, float b2,
                             float eps, float step_size, float bc2s)
{
    GSTRIDE(i, n)
    {
        int lo = 0, hi = nseg - 1;
        while (lo < hi) { /* first segment whose end > i */
            int mid = (lo + hi) >> 1;
            if (seg_end[mid] > i) hi = mid;
            else lo = mid + 1;
        }
        if (seg_end[lo] <= i) continue; /* past the last tensor */
        float gi = g[i], pi = p[i];
        if (decay[lo]) pi *= shrink;
        float mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / bc2s + eps);
    }
}

void kcuda_adamw(k_backend *b, float *p, const float *g, float *m, float *v, size_t n, int nseg,
                 const size_t *seg_end, const unsigned char *decay, const k_adamw_hp *hp)
{
    kcuda_ctx *c = KCUDA_CTX(b);
    if (!n || nseg <= 0) return;
    if (nseg > c->nseg_cap) {
        CK(cudaStreamSynchronize(ST));
        cudaFree(c->seg_end_d);
        cudaFree(c->decay_d);
        c->nseg_cap = nseg;
        CK(cudaMalloc((void **)&c->seg_end_d, nseg * sizeof(size_t)));
        CK(cudaMalloc((void **)&c->decay_d, nseg));
        c->seg_end_h = (size_t *)xrealloc(c->seg_end_h, nseg * sizeof(size_t));
        c->decay_h = (unsigned char *)xrealloc(c->decay_h, nseg);
        c->nseg_last = 0;
    }
    if (nseg != c->nseg_last || memcmp(c->seg_end_h, seg_end, nseg * sizeof(size_t)) ||
        memcmp(c->decay_h, decay, nseg)) {
        memcpy(c->seg_end_h, seg_end, nseg * sizeof(size_t));
        memcpy(c->decay_h, decay, nseg);
        CK(cudaMemcpyAsync(c->seg_end_d, c->seg_end_h, nseg * sizeof(size_t), cudaMemcpyHostToDevice, ST));
        CK(cudaMemcpyAsync(c->decay_d, c->decay_h, nseg, cudaMemcpyHostToDevice, ST));
        CK(cudaStreamSynchronize(ST));
        c->nseg_last = nseg;
    }
    /* the CPU's scalars exactly: bias corrections in double, then float */
    double bc1 = 1.0 - pow(hp->beta1, hp->step), bc2 = 1.0 - pow(hp->beta2, hp->step);
    float step_size = (float)(hp->lr / bc1), bc2s = (float)sqrt(bc2);
    float shrink = 1.0f - hp->lr * hp->weight_decay;
    adamw_kernel<<<ew_grid(b, n), 256, 0, ST>>>(p, g, m, v, n, nseg, c->seg_end_d, c->decay_d, shrink, hp->beta1,
                                                 hp->beta2, hp->eps, step_size, bc2s);
    KLAUNCH_CHECK();
}
