/* tokenizer_nfc.c - Unicode NFC (canonical decomposition, reordering, composition) for the NFC normalizer (UAX #15). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/tokenizer_internal.h"
#include "nn/tokenizer_nfc_tables.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Hangul syllables compose and decompose algorithmically (Unicode ch. 3.12). */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static int in_ranges2(const uint32_t (*r)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int ccc_of(uint32_t cp)
{
    size_t lo = 0, hi = NELEM(nfc_ccc);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc[mid][0]) hi = mid;
        else if (cp > nfc_ccc[mid][1]) lo = mid + 1;
        else return (int)nfc_ccc[mid][2];
    }
    return 0;
}

/* Appends the full canonical decomposition of cp. */
static void decompose(uint32_t cp, uint32_t **v, size_t *n, size_t *cap)
{
    uint32_t tmp[4];
    const uint32_t *d = &cp;
    size_t len = 1;
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        tmp[0] = LBASE + s / NCOUNT;
        tmp[1] = VBASE + (s % NCOUNT) / TCOUNT;
        tmp[2] = TBASE + s % TCOUNT;
        len = tmp[2] == TBASE ? 2 : 3;
        d = tmp;
    } else {
        size_t lo = 0, hi = NELEM(nfc_decomp);
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < nfc_decomp[mid][0]) hi = mid;
            else if (cp > nfc_decomp[mid][0]) lo = mid + 1;
            else { d = nfc_decomp_cps + nfc_decomp[mid][1]; len = nfc_decomp[mid][2]; break; }
        }
    }
    if (*n + len > *cap) {
        *cap = 2 * (*n + len) + 16;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    memcpy(*v + *n, d, len * sizeof *d);
    *n += len;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = NELEM(nfc_comp);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = nfc_comp[mid];
        if (a < e[0] || (a == e[0] && b < e[1])) hi = mid;
        else if (a > e[0] || b > e[1]) lo = mid + 1;
        else return e[2];
    }
    return 0;
}

int nn_nfc(const char *s, size_t n, char **out, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    *out = NULL;
    *out_len = 0;
    size_t i = 0;
    for (; i < n; i++) { /* quick check: ASCII and Latin-1 are always NFC; so is any text free of unsafe code points */
        if (u[i] < 0xCC) {
            while (i + 1 < n && (u[i + 1] & 0xC0) == 0x80) i++;
            continue;
        }
        uint32_t cp;
        size_t l = nn_utf8_get(u, i, n, &cp);
        if (!l) return error("NFC: invalid UTF-8 at byte offset %zu", i);
        if (in_ranges2(nfc_unsafe, NELEM(nfc_unsafe), cp)) break;
        i += l - 1;
    }
    if (i >= n) return 0;

    /* Full NFC: decompose everything, reorder marks by combining class, then compose. */
    uint32_t *v = NULL;
    size_t nv = 0, cap = 0;
    for (size_t j = 0; j < n;) {
        uint32_t cp;
        size_t l = nn_utf8_get(u, j, n, &cp);
        if (!l) { free(v); return error("NFC: invalid UTF-8 at byte offset %zu", j); }
        decompose(cp, &v, &nv, &cap);
        j += l;
    }
    for (size_t j = 1; j < nv; j++) { /* canonical ordering: stable insertion sort within runs of non-starters */
        int c = ccc_of(v[j]);
        if (!c) continue;
        for (size_t k = j; k > 0; k--) {
            int cp = ccc_of(v[k - 1]);
            if (cp <= c) break;
            uint32_t tmp = v[k]; v[k] = v[k - 1]; v[k - 1] = tmp;
        }
    }
    size_t starter = 0, w = 0;
    int have_starter = 0, last_ccc = 0;
    for (size_t j = 0; j < nv; j++) {
        uint32_t cp = v[j];
        int c = ccc_of(cp);
        if (have_starter) {
            /* cp combines with the last starter unless blocked: a mark in between of class 0 or >= its own */
            int blocked = w > starter + 1 && (last_ccc == 0 || last_ccc >= c);
            uint32_t comp = blocked ? 0 : compose_pair(v[starter], cp);
            if (comp) { v[starter] = comp; continue; }
        }
        if (c == 0) { starter = w; have_starter = 1; }
        last_ccc = c;
        v[w++] = cp;
    }
    char *o = xmalloc(4 * w + 1);
    size_t k = 0;
    for (size_t j = 0; j < w; j++) k += nn_utf8_put(o + k, v[j]);
    o[k] = 0;
    free(v);
    *out = o;
    *out_len = k;
    return 0;
}
