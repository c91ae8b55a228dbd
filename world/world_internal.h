/* world_internal.h - helpers shared by the world builder's files: string maps, ASCII tests (string buffers: hx_sbuf in base). */
#ifndef HX_WORLD_INTERNAL_H
#define HX_WORLD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"
#include "base/strmap.h"


/* String -> int map: base's string table with an int per key. Lookups only: nothing may depend on its slot order. */
typedef struct wmap {
    hx_strmap keys;
    int *vals; /* [keys.n], by the key's index */
    size_t cap;
} wmap;
int *wmap_get(const wmap *m, const char *key);          /* NULL if absent */
int *wmap_put(wmap *m, const char *key, int init);      /* inserts `init` if absent; returns the slot */
void wmap_free(wmap *m);

/* Brown word counts by tag class (world_brown.freq). */
struct world_wordfreq {
    wmap all, noun, adj;
};

/* Locale-free ASCII tests (bytes >= 0x80 are never letters here). */
static inline int w_isalpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int w_isdigit(int c) { return c >= '0' && c <= '9'; }
/* The line of data[0..len) that starts at *i (without its newline, *n bytes); *i moves past the newline. */
static inline const char *w_next_line(const char *data, size_t len, size_t *i, size_t *n)
{
    size_t l0 = *i;
    while (*i < len && data[*i] != '\n') (*i)++;
    *n = *i - l0;
    if (*i < len) (*i)++;
    return data + l0;
}
static inline int w_isspace(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
/* The next line of data[0..len) from *i that is not all white space (*n bytes), counting every line passed in
 * *lineno (1-based: the returned line's number); NULL at the end. */
static inline const char *w_next_text_line(const char *data, size_t len, size_t *i, size_t *n, int *lineno)
{
    while (*i < len) {
        const char *line = w_next_line(data, len, i, n);
        (*lineno)++;
        size_t k = 0;
        while (k < *n && w_isspace((unsigned char)line[k])) k++;
        if (k < *n) return line;
    }
    return NULL;
}
static inline int w_tolower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static inline int w_toupper(int c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }
char *w_lower(const char *s);       /* xmalloc'd ASCII lowercase copy */
int w_strcaseeq(const char *a, const char *b);
int w_count_words(const char *s);
char *w_strndup(const char *s, size_t n);

/* Seeded shuffle of an int array (Fisher-Yates with hx_rng). */
void w_shuffle_int(hx_rng *r, int *a, int n);

#endif
