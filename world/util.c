/* util.c - string buffers, string maps and ASCII helpers for the world builder (world_internal.h). */
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s) { return hx_fnv1a(HX_FNV1A_INIT, s, strlen(s)); }

int *wmap_get(const wmap *m, const char *key)
{
    if (!m->cap) return NULL;
    for (size_t i = fnv1a(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return NULL;
        if (!strcmp(m->keys[i], key)) return &m->vals[i];
    }
}

int *wmap_put(wmap *m, const char *key, int init)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        char **keys = xcalloc(cap, sizeof *keys);
        int *vals = xcalloc(cap, sizeof *vals);
        for (size_t j = 0; j < m->cap; j++) {
            if (!m->keys[j]) continue;
            size_t i = fnv1a(m->keys[j]) & (cap - 1);
            while (keys[i]) i = (i + 1) & (cap - 1);
            keys[i] = m->keys[j];
            vals[i] = m->vals[j];
        }
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = cap;
    }
    size_t i = fnv1a(key) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (!strcmp(m->keys[i], key)) return &m->vals[i];
    m->keys[i] = xstrdup(key);
    m->vals[i] = init;
    m->n++;
    return &m->vals[i];
}

void wmap_free(wmap *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

char *w_lower(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; *p; p++) *p = (char)w_tolower((unsigned char)*p);
    return r;
}

int w_strcaseeq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (w_tolower((unsigned char)*a) != w_tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

int w_count_words(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        if (w_isspace((unsigned char)*s)) in = 0;
        else if (!in) { in = 1; n++; }
    }
    return n;
}

char *w_strndup(const char *s, size_t n)
{
    char *r = xmalloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

void w_shuffle_int(hx_rng *r, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)hx_rng_below(r, (uint64_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}
