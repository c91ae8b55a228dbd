/* tokenizer_internal.h - pieces shared by the tokenizer, its BPE trainer and NFC normaliser (not a public API). */
#ifndef NN_TOKENIZER_INTERNAL_H
#define NN_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

/* Qwen3's pre-tokenizer split pattern (tokenizer.json pre_tokenizer.pretokenizers[0].pattern.Regex). */
#define NN_QWEN3_SPLIT_PATTERN                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

/* Hashes of the tokenizer's and the trainer's open-addressing tables: FNV-1a (base.h) over bytes with a final fold,
 * and MurmurHash3's 64-bit finaliser for packed id pairs. */
static inline uint64_t nn_hash_bytes(const char *s, size_t n)
{
    uint64_t h = hx_fnv1a(HX_FNV1A_INIT, s, n);
    return h ^ (h >> 29);
}

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

#endif
