/* conform_tokenizer.h - `hx conform` for fixture directories of kind `tokenizer` (tokenizer_cases.json). */
#ifndef NN_CONFORM_TOKENIZER_H
#define NN_CONFORM_TOKENIZER_H

#include "nn/conform.h"

/*
 * Encodes every case of dir/tokenizer_cases.json ({"cases": [{"text", "ids"}, ...]}) with the tokenizer
 * (tokenizer_json_or_NULL: a tokenizer.json, a directory holding one, or NULL / "qwen3" for the pinned Qwen3
 * tokenizer) and checks the ids exactly, plus decode(encode(text)) == text. One line per case on c->out.
 * Returns 0 if every check passed, -1 otherwise (error() set when the fixture or tokenizer cannot be read).
 */
int nn_conform_tokenizer(const char *dir, const char *tokenizer_json_or_NULL, nn_check *c);

#endif
