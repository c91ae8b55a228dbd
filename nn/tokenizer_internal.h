/* tokenizer_internal.h - pieces shared by the tokenizer, its BPE trainer and NFC normaliser (not a public API). */
#ifndef NN_TOKENIZER_INTERNAL_H
#define NN_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include "base/base.h"
#include "base/strmap.h"
#include "nn/tokenizer.h"

/* Qwen3's pre-tokenizer split pattern (tokenizer.json pre_tokenizer.pretokenizers[0].pattern.Regex). */
#define NN_QWEN3_SPLIT_PATTERN                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

/* The hash of the tokenizer's and the trainer's tables keyed by packed id pairs: MurmurHash3's 64-bit finaliser
 * (tables keyed by strings are base/strmap.h's). */
static inline uint64_t nn_hash_u64(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

/*
 * NN_HEAP_DEFINE(name, T, CTX, BEFORE): a binary heap of T in an array the caller owns and grows (room for one
 * more before a push). BEFORE(ctx, a, b), a and b pointers to T, is true when a must leave the heap before b.
 * Defines  void name_push(CTX ctx, T *h, size_t *n, T e)  and  T name_pop(CTX ctx, T *h, size_t *n)  (n > 0).
 * Used by the encoder's merge queue (lowest rank first) and the trainer's pair queue (highest count first).
 */
#define NN_HEAP_DEFINE(name, T, CTX, BEFORE)                                                                        \
    static inline void name##_push(CTX ctx, T *h, size_t *n, T e)                                                  \
    {                                                                                                              \
        size_t i = (*n)++;                                                                                         \
        while (i > 0 && BEFORE(ctx, &e, &h[(i - 1) / 2])) {                                                        \
            h[i] = h[(i - 1) / 2];                                                                                 \
            i = (i - 1) / 2;                                                                                       \
        }                                                                                                          \
        h[i] = e;                                                                                                  \
    }                                                                                                              \
    static inline T name##_pop(CTX ctx, T *h, size_t *n)                                                           \
    {                                                                                                              \
        T top = h[0], last = h[--*n];                                                                              \
        size_t i = 0, m = *n;                                                                                      \
        for (;;) {                                                                                                 \
            size_t c = 2 * i + 1;                                                                                  \
            if (c >= m) break;                                                                                     \
            if (c + 1 < m && BEFORE(ctx, &h[c + 1], &h[c])) c++;                                                   \
            if (!BEFORE(ctx, &h[c], &last)) break;                                                                 \
            h[i] = h[c];                                                                                           \
            i = c;                                                                                                 \
        }                                                                                                          \
        if (m) h[i] = last;                                                                                        \
        return top;                                                                                                \
    }

/* GPT-2 bytes_to_unicode: byte -> code point, and back (-1 for code points that are not a byte's image). */
void nn_bytelevel_tables(uint16_t byte_to_cp[256], int16_t cp_to_byte[324]);
size_t nn_utf8_put(char *out, uint32_t cp);
/* One scalar at s[i..n): its length 1-4, or 0 if malformed. */
size_t nn_utf8_get(const unsigned char *s, size_t i, size_t n, uint32_t *cp);

/*
 * Unicode NFC of valid UTF-8 s[0..n). Returns 0 with *out = NULL when s is already NFC (the common case,
 * found by a quick check), else 0 with an xmalloc'd normalised copy in *out / *out_len.
 */
int nn_nfc(const char *s, size_t n, char **out, size_t *out_len);

/* ---- the tokenizer's state, shared by its files (tokenizer.c, tokenizer_load.c, tokenizer_pkg.c,
 * tokenizer_encode.c) ---- */

typedef struct added_token {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word;
} added_token;

typedef enum { PT_SPLIT, PT_BYTELEVEL } pretok_type;
typedef enum { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT } split_behavior;

typedef struct pretok_step {
    pretok_type type;
    pcre2_code *re;           /* the split pattern (ByteLevel with use_regex: GPT-2's pattern) */
    split_behavior behavior;
    int add_prefix_space;     /* ByteLevel */
} pretok_step;

struct nn_tokenizer {
    char *name;
    size_t n_ids;             /* max id + 1 */
    char **tok_str;           /* [n_ids] as written in the file (NULL if unused) */
    char **tok_bytes;         /* [n_ids] decoded bytes */
    size_t *tok_bytes_len;
    unsigned char *is_special;
    hx_strmap str;            /* token string (as written) -> its id as the value */
    /* (left << 32 | right) -> rank, merged id: open addressing of its own, keyed by a pair of ids (the encoder's
     * hottest lookup; base/strmap.h is for byte strings) */
    uint64_t *pair_key;
    int32_t *pair_rank, *pair_new;
    size_t pair_cap, n_merges;
    int32_t byte_id[256];     /* id of each byte's single-character token, -1 if absent */
    uint16_t byte_to_cp[256];
    int16_t cp_to_byte[324];
    added_token *added;       /* sorted by length, longest first */
    size_t n_added;
    unsigned char added_first[256]; /* 1 if some added token starts with this byte */
    int nfc;                  /* normalizer: NFC */
    pretok_step steps[8];
    int n_steps;
    int bytelevel;            /* a ByteLevel pre-tokenizer maps bytes to unicode before BPE */
};

/* The smallest power of two >= n, at least 16 (the merge table's size). */
size_t nn_pow2_at_least(size_t n);
/* The id of token string s[0..n), or -1. */
int32_t nn_tok_str_find(const nn_tokenizer *t, const char *s, size_t n);
/* The merge (a, b): 1 with its rank and merged id, or 0. */
int nn_tok_pair_find(const nn_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *new_id);

#endif
