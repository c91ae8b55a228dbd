/* tokenizer.c - HF tokenizer.json byte-level BPE (Qwen3/GPT-2): byte <-> unicode mapping, the tables, accessors,
 * decoding (loading: tokenizer_load.c, encoding: tokenizer_encode.c, pinned files: tokenizer_pkg.c). */
#include <glob.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/base.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"

/* ---- GPT-2 byte <-> unicode mapping ---- */

/* Printable Latin-1 bytes map to themselves; the other 68 bytes to U+0100.. in byte order (GPT-2 encoder.py). */
void nn_bytelevel_tables(uint16_t byte_to_cp[256], int16_t cp_to_byte[324])
{
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = (uint16_t)(printable ? b : 256 + extra++);
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

size_t nn_utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one UTF-8 scalar at s[i..n); returns its length (1-4), or 0 if malformed (overlong, surrogate, > U+10FFFF). */
size_t nn_utf8_get(const unsigned char *s, size_t i, size_t n, uint32_t *cp)
{
    unsigned c = s[i];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || c > 0xF4 || i + len > n) return 0;
    uint32_t v = c & (0x3F >> (len - 1));
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
}

/* ---- hash tables ---- */

size_t nn_pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* ---- the tokenizer's tables ---- */

int32_t nn_tok_str_find(const nn_tokenizer *t, const char *s, size_t n)
{
    int64_t k = hx_strmap_find(&t->str, s, n);
    return k < 0 ? -1 : (int32_t)*hx_strmap_val(&t->str, (size_t)k);
}

int nn_tok_pair_find(const nn_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *new_id)
{
    if (!t->pair_cap) return 0;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t m = t->pair_cap - 1, i = nn_hash_u64(key) & m;
    for (; t->pair_rank[i] >= 0; i = (i + 1) & m)
        if (t->pair_key[i] == key) {
            *rank = t->pair_rank[i];
            *new_id = t->pair_new[i];
            return 1;
        }
    return 0;
}

void nn_tokenizer_free(nn_tokenizer *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_ids; i++) {
        free(t->tok_str ? t->tok_str[i] : NULL);
        free(t->tok_bytes ? t->tok_bytes[i] : NULL);
    }
    free(t->tok_str); free(t->tok_bytes); free(t->tok_bytes_len); free(t->is_special);
    hx_strmap_free(&t->str);
    free(t->pair_key); free(t->pair_rank); free(t->pair_new);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    for (int i = 0; i < t->n_steps; i++) pcre2_code_free(t->steps[i].re);
    free(t->name);
    free(t);
}

/* ---- accessors ---- */

int nn_tokenizer_token_id(const nn_tokenizer *t, const char *token) { return nn_tok_str_find(t, token, strlen(token)); }
size_t nn_tokenizer_vocab_size(const nn_tokenizer *t) { return t->n_ids; }

const char *nn_tokenizer_token_str(const nn_tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids ? t->tok_str[id] : NULL;
}

int nn_tokenizer_token_bytes(const nn_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids || !t->tok_str[id]) return -1;
    *bytes = t->tok_bytes[id];
    *len = t->tok_bytes_len[id];
    return 0;
}

int nn_tokenizer_is_special(const nn_tokenizer *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && t->is_special[id];
}

int nn_tokenizer_decode(const nn_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids || !t->tok_str[ids[i]])
            return error("%s: decode: id %d at position %zu is not in the vocabulary (size %zu)", t->name, ids[i], i,
                         t->n_ids);
        total += t->tok_bytes_len[ids[i]];
    }
    char *out = xmalloc(total + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + k, t->tok_bytes[ids[i]], t->tok_bytes_len[ids[i]]);
        k += t->tok_bytes_len[ids[i]];
    }
    out[k] = 0;
    *text = out;
    *len = k;
    return 0;
}
