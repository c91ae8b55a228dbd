/* bpe_train.h - learning a byte-level BPE (Qwen3's pre-tokenizer) from a corpus, written as an HF tokenizer.json. */
#ifndef NN_BPE_TRAIN_H
#define NN_BPE_TRAIN_H

#include <stddef.h>

typedef struct nn_bpe_opts {
    size_t vocab_size;           /* total ids: 256 bytes + merges + special tokens */
    long long min_frequency;     /* a pair is merged only if it occurs at least this often (>= 1) */
    const char *const *special;  /* NULL-terminated added tokens, or NULL: nn_bpe_default_special */
} nn_bpe_opts;

/* <|endoftext|> <|im_start|> <|im_end|> <think> </think> (the first three special, the think tags not, as in Qwen3). */
extern const char *const nn_bpe_default_special[];

typedef struct nn_bpe_stats {
    size_t n_words;       /* pre-tokens in the corpus */
    size_t n_unique;      /* distinct pre-tokens */
    size_t n_merges;      /* merges learned */
    size_t vocab_size;    /* ids in the written tokenizer */
    double seconds;       /* wall time of counting + merging */
} nn_bpe_stats;

/*
 * Learns merges from text[0..len) (valid UTF-8; special tokens in it are cut out and never merged across;
 * NFC applied): split with Qwen3's pattern, count distinct pre-tokens, then repeatedly merge the most frequent
 * adjacent pair (ties: the pair whose left then right token has the smaller bytes) with incremental pair-count
 * updates. Deterministic. Writes a tokenizer.json of Qwen3's structure (NFC, Split + ByteLevel, [a, b] merges,
 * special tokens as added_tokens after the vocabulary) into *json (xmalloc'd, NUL-terminated).
 */
int nn_bpe_train(const char *text, size_t len, const nn_bpe_opts *o, char **json, size_t *json_len, nn_bpe_stats *st);
/* The same from a corpus file to an output tokenizer.json (written atomically). */
int nn_bpe_train_file(const char *corpus_path, const nn_bpe_opts *o, const char *out_path, nn_bpe_stats *st);

#endif
