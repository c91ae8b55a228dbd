/* strmap.c - the string table of base/strmap.h: open addressing, linear probing, FNV-1a. */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* FNV-1a with a final fold: the slot is taken from the low bits, which FNV-1a alone mixes poorly. */
static uint64_t key_hash(const void *key, size_t len)
{
    uint64_t h = hx_fnv1a(HX_FNV1A_INIT, key, len);
    return h ^ (h >> 29);
}

/* A slot holds the hash's high half (compared before the key) and index + 1 (0: empty). */
static uint64_t slot_of(uint64_t hash, size_t i) { return (hash >> 32 << 32) | (uint64_t)(i + 1); }

static void rehash(hx_strmap *m, size_t cap)
{
    free(m->slot);
    m->slot = xcalloc(cap, sizeof *m->slot);
    m->cap = cap;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->ent[i].hash & (cap - 1);
        while (m->slot[j]) j = (j + 1) & (cap - 1);
        m->slot[j] = slot_of(m->ent[i].hash, i);
    }
}

void hx_strmap_reserve(hx_strmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 16;
    while (cap < 2 * n) cap *= 2;
    if (cap != m->cap) rehash(m, cap);
}

/* The slot holding key (its index + 1 in the low half), or the empty slot where it would go. Inlined: the
 * tokenizer's word cache calls hx_strmap_add once per pre-token. */
static inline __attribute__((always_inline)) size_t probe(const hx_strmap *m, uint64_t h, const void *key, size_t len)
{
    size_t mask = m->cap - 1, j = h & mask;
    for (uint64_t s; (s = m->slot[j]); j = (j + 1) & mask) {
        if (s >> 32 != h >> 32) continue;
        const hx_strmap_entry *e = &m->ent[(uint32_t)s - 1];
        if (e->len == len && (!len || !memcmp(m->keys + e->off, key, len))) break;
    }
    return j;
}

int64_t hx_strmap_find(const hx_strmap *m, const void *key, size_t len)
{
    if (!m->n) return -1;
    uint64_t s = m->slot[probe(m, key_hash(key, len), key, len)];
    return s ? (int64_t)(uint32_t)s - 1 : -1;
}

int64_t hx_strmap_add(hx_strmap *m, const void *key, size_t len, int *added)
{
    if (2 * (m->n + 1) > m->cap) hx_strmap_reserve(m, m->n + 1);
    uint64_t h = key_hash(key, len);
    size_t j = probe(m, h, key, len);
    if (added) *added = !m->slot[j];
    if (m->slot[j]) return (int64_t)(uint32_t)m->slot[j] - 1;
    if (m->n >= UINT32_MAX - 1) hx_oom("string table full: more than %u keys", UINT32_MAX - 2);
    if (m->n == m->ent_cap) {
        m->ent_cap = m->ent_cap ? 2 * m->ent_cap : 16;
        m->ent = xrealloc(m->ent, m->ent_cap * sizeof *m->ent);
    }
    if (m->keys_len + len + 1 > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap : 256;
        while (cap < m->keys_len + len + 1) cap *= 2;
        m->keys = xrealloc(m->keys, m->keys_cap = cap);
    }
    if (len) memcpy(m->keys + m->keys_len, key, len);
    m->keys[m->keys_len + len] = 0;
    m->ent[m->n] = (hx_strmap_entry){h, m->keys_len, len, 0};
    m->keys_len += len + 1;
    m->slot[j] = slot_of(h, m->n);
    return (int64_t)m->n++;
}

void hx_strmap_free(hx_strmap *m)
{
    free(m->slot);
    free(m->ent);
    free(m->keys);
    memset(m, 0, sizeof *m);
}
