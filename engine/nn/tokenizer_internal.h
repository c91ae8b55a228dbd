/* tokenizer_internal.h - pieces shared by the tokenizer, its BPE trainer and NFC normaliser (not a public API). */
#ifndef NN_TOKENIZER_INTERNAL_H
#define NN_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Qwen3's pre-tokenizer split pattern (tokenizer.json pre_tokenizer.pretokenizers[0].pattern.Regex). */
#define NN_QWEN3_SPLIT_PATTERN                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

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
