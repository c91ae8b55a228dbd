/* strmap.h - the one string table of every layer: byte strings -> dense indexes (insertion order) and values. */
#ifndef HX_STRMAP_H
#define HX_STRMAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Keys are byte strings of any content (NULs included), copied into the map NUL-terminated. The n keys added
 * so far have the indexes 0 .. n-1 in the order they were first added, and each an int64 value (0 when
 * added) that the caller may use; indexes let callers keep typed data in their own arrays. Open addressing
 * with linear probing over a power-of-two slot array kept at most half full, hashed with FNV-1a (base.h);
 * no deletion. Slot order is never visible: iterate by index, so results never depend on the hash.
 * Used by the tokenizer (vocabulary, the encoder's word cache), the BPE trainer (tokens, words) and the
 * world builder (word counts). {0} is an empty map.
 */
typedef struct hx_strmap_entry {
    uint64_t hash;
    size_t off, len; /* the key is keys[off .. off+len) */
    int64_t val;
} hx_strmap_entry;

typedef struct hx_strmap {
    uint64_t *slot;       /* [cap]: (hash >> 32) << 32 | (index + 1); 0 is empty */
    size_t cap;
    hx_strmap_entry *ent; /* [n] in insertion order */
    size_t n, ent_cap;
    char *keys;           /* every key, NUL-terminated */
    size_t keys_len, keys_cap;
} hx_strmap;

/* Room for n keys without growing (a size hint; results never depend on it). */
void hx_strmap_reserve(hx_strmap *m, size_t n);
/* The index of key[0..len), or -1. */
int64_t hx_strmap_find(const hx_strmap *m, const void *key, size_t len);
/* The index of key[0..len), added (as index n, value 0) if absent; *added (may be NULL) says whether it was. */
int64_t hx_strmap_add(hx_strmap *m, const void *key, size_t len, int *added);
void hx_strmap_free(hx_strmap *m);

/* Key i (NUL-terminated; *len without the NUL, len may be NULL) and its value. The key pointer stays valid
 * until the next add. */
static inline const char *hx_strmap_key(const hx_strmap *m, size_t i, size_t *len)
{
    if (len) *len = m->ent[i].len;
    return m->keys + m->ent[i].off;
}
static inline int64_t *hx_strmap_val(const hx_strmap *m, size_t i) { return &m->ent[i].val; }

#endif
