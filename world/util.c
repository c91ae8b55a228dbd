/* util.c - string -> int maps (over base/strmap) and ASCII helpers for the world builder (world_internal.h). */
#include "world/world_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int *wmap_get(const wmap *m, const char *key)
{
    int64_t i = hx_strmap_find(&m->keys, key, strlen(key));
    return i < 0 ? NULL : &m->vals[i];
}

int *wmap_put(wmap *m, const char *key, int init)
{
    int added;
    size_t i = (size_t)hx_strmap_add(&m->keys, key, strlen(key), &added);
    if (i == m->cap) m->vals = xrealloc(m->vals, (m->cap = m->cap ? 2 * m->cap : 1024) * sizeof *m->vals);
    if (added) m->vals[i] = init;
    return &m->vals[i];
}

void wmap_free(wmap *m)
{
    hx_strmap_free(&m->keys);
    free(m->vals);
    m->vals = NULL;
    m->cap = 0;
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
