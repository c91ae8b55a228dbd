/* fuzz_tokenizer.c - libFuzzer target: tokenizer.json loading (hostile files) and Qwen3 encoding (round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"

static nn_tokenizer *qwen;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    if (nn_tokenizer_load_qwen3(&qwen)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", hx_last_error());
        abort();
    }
    return 0;
}

/* encode, then decode: must give the text back whenever the text is already NFC */
static void round_trip(const nn_tokenizer *t, const char *s, size_t n)
{
    int32_t *ids;
    size_t nids;
    if (nn_tokenizer_encode(t, s, n, &ids, &nids)) return; /* invalid UTF-8 or an incomplete alphabet: an error */
    char *back, *norm = NULL;
    size_t blen, nlen;
    if (nn_tokenizer_decode(t, ids, nids, &back, &blen)) abort();
    if (!nn_nfc(s, n, &norm, &nlen) && !norm && (blen != n || memcmp(back, s, n))) abort();
    free(norm);
    free(back);
    free(ids);
}

/* First byte: 0 = the rest is a tokenizer.json (load it; if it loads, encode a few texts with it);
 * otherwise the rest is text for the Qwen3 tokenizer. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] == 0) {
        nn_tokenizer *t;
        if (nn_tokenizer_load_mem(&t, rest, n, "fuzz.json")) return 0;
        const char *texts[] = {"Hello, world! 123 <|endoftext|>", "  \n\n\tx", "caf\xc3\xa9 e\xcc\x81"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t *ids;
            size_t k;
            if (!nn_tokenizer_encode(t, texts[i], strlen(texts[i]), &ids, &k)) {
                char *s;
                size_t l;
                for (size_t j = 0; j < k; j++)
                    if (ids[j] < 0 || (size_t)ids[j] >= nn_tokenizer_vocab_size(t)) abort();
                if (!nn_tokenizer_decode(t, ids, k, &s, &l)) free(s);
                free(ids);
            }
        }
        nn_tokenizer_free(t);
    } else {
        round_trip(qwen, rest, n);
    }
    return 0;
}
