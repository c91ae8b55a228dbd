/* backend.c - the CPU backend: host memory, OpenMP thread count, and its op table. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>

#include "base/base.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/kda.h"

/* 64-byte aligned and zeroed (whole-model arenas are one call), behind a 64-byte header that holds the size
 * for the backend's memory accounting. */
static void *cpu_alloc(k_backend *b, size_t bytes)
{
    void *p = NULL;
    size_t n = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, n + 64)) hx_oom("out of memory allocating %zu bytes", bytes);
    memset(p, 0, n + 64);
    *(size_t *)p = n;
    k_mem_add(b, n);
    return (char *)p + 64;
}

static void cpu_free(k_backend *b, void *p)
{
    if (!p) return;
    char *h = (char *)p - 64;
    k_mem_sub(b, *(size_t *)h);
    free(h);
}
static void cpu_memcpy(k_backend *b, void *dst, const void *src, size_t n) { (void)b; if (n) memmove(dst, src, n); }
static void cpu_zero(k_backend *b, void *p, size_t n) { (void)b; if (n) memset(p, 0, n); }
static void cpu_sync(k_backend *b) { (void)b; }

static const k_ops cpu_ops = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .matmul = kcpu_matmul,
    .add = kcpu_add,
    .scale = kcpu_scale,
    .sumsq = kcpu_sumsq,
    .embedding_fwd = kcpu_embedding_fwd,
    .embedding_bwd = kcpu_embedding_bwd,
    .rmsnorm_fwd = kcpu_rmsnorm_fwd,
    .add_rmsnorm_fwd = kcpu_add_rmsnorm_fwd,
    .argmax_rows = kcpu_argmax_rows,
    .rmsnorm_bwd = kcpu_rmsnorm_bwd,
    .rope_fwd = kcpu_rope_fwd,
    .rope_bwd = kcpu_rope_bwd,
    .rope_cache_fwd = kcpu_rope_cache_fwd,
    .attn_fwd = kcpu_attn_fwd,
    .attn_bwd = kcpu_attn_bwd,
    .swiglu_fwd = kcpu_swiglu_fwd,
    .swiglu_bwd = kcpu_swiglu_bwd,
    .xent_fwd_bwd = kcpu_xent_fwd_bwd,
    .kl_fwd_bwd = kcpu_kl_fwd_bwd,
    .mse_fwd_bwd = kcpu_mse_fwd_bwd,
    .adamw = kcpu_adamw,
    /* ---- KDA ops (owned by the KDA engineer) ---- */
    KCPU_KDA_OPS,
    /* ---- end of KDA ops ---- */
};

k_backend *k_cpu_new(int threads)
{
    threads = hx_threads(threads);
    k_backend *b = xcalloc(1, sizeof *b);
    b->op = &cpu_ops;
    b->name = "cpu";
    b->threads = threads;
    b->device = -1;
    /* Our loops are OpenMP regions of `threads`; BLAS runs outside them with the same count (Debian's
     * OpenMP build of OpenBLAS shares the OpenMP pool, so they never oversubscribe). */
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    return b;
}
