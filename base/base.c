/* base.c - allocation, errors, thread counts, the deterministic RNG (base.h; also log.c, files.c, sha256.c). */
#include "base.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- allocation ---- */

static _Thread_local hx_oom_trap *oom_trap;

void hx_oom_trap_push(hx_oom_trap *t)
{
    t->prev = oom_trap;
    oom_trap = t;
}

void hx_oom_trap_pop(hx_oom_trap *t) { oom_trap = t->prev; }

void hx_oom(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hx_oom_trap *t = oom_trap;
    if (t && !omp_in_parallel()) {
        oom_trap = t->prev;
        error("%s", msg);
        longjmp(t->jb, 1);
    }
    fprintf(stderr, "fatal: %s\n", msg);
    exit(HX_EXIT_STAGE);
}

static HX_NORETURN void oom(size_t n) { hx_oom("out of memory allocating %zu bytes", n); }

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

char *xstrfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) oom(strlen(fmt));
    va_end(ap);
    return s;
}

void hx_sb_add(hx_sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void hx_sb_puts(hx_sbuf *b, const char *s) { hx_sb_add(b, s, strlen(s)); }
void hx_sb_putc(hx_sbuf *b, char c) { hx_sb_add(b, &c, 1); }

void hx_sb_printf(hx_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) BUG("vsnprintf failed");
    if ((size_t)n < sizeof tmp) {
        hx_sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    hx_sb_add(b, big, (size_t)n);
    free(big);
}

char *hx_sb_take(hx_sbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void hx_sb_free(hx_sbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ---- errors ---- */

/* The last error of this thread: library code records, the CLI reports. */
static _Thread_local char last_error[4096];

int error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

int error_prefix(const char *fmt, ...)
{
    char ctx[1024];
    static _Thread_local char old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(ctx);
    memcpy(last_error, ctx, n);
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - n - 3, m = strnlen(old, room);
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = 0;
    return -1;
}

const char *hx_last_error(void) { return last_error[0] ? last_error : "unknown error"; }
void hx_clear_error(void) { last_error[0] = 0; }

void die(int status, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hx_log(HX_LOG_ERROR, "%s", msg);
    exit(status);
}

void hx_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "BUG: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- threads ---- */

int hx_threads(int requested)
{
    long n = requested;
    if (n <= 0) {
        const char *e = getenv("OMP_NUM_THREADS");
        n = e && atol(e) > 0 ? atol(e) : sysconf(_SC_NPROCESSORS_ONLN);
    }
    return n < 1 ? 1 : n > HX_MAX_THREADS ? HX_MAX_THREADS : (int)n;
}

/* ---- rng ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void hx_rng_seed(hx_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t hx_rng_u64(hx_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

double hx_rng_uniform(hx_rng *r) { return (hx_rng_u64(r) >> 11) * 0x1.0p-53; }

float hx_rng_normal(hx_rng *r)
{
    double u1 = hx_rng_uniform(r), u2 = hx_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t hx_rng_below(hx_rng *r, uint64_t n)
{
    if (n == 0) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = hx_rng_u64(r); while (x >= lim);
    return x % n;
}
