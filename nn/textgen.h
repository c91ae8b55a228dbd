/* textgen.h - text-level generation and scoring over a model + tokenizer: chat template, stop strings. */
#ifndef NN_TEXTGEN_H
#define NN_TEXTGEN_H

#include "nn/generate.h"
#include "nn/tokenizer.h"

/* One user turn in the Qwen3 chat template with the generation prompt (chat.h's nn_chat_render):
 * "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n". xmalloc'd. */
char *nn_chat_wrap(const char *user);

/* The tokens that end a generation: the config's eos, then <|im_end|> and <|endoftext|> when the tokenizer (may be
 * NULL) has them inside the vocabulary; no duplicates. Returns how many. */
#define NN_MAX_STOP_IDS 3
int nn_eos_ids(const nn_config *c, const nn_tokenizer *tok, int32_t ids[NN_MAX_STOP_IDS]);

typedef struct nn_textgen_opts {
    int max_new;
    int chat;                      /* wrap each prompt in the chat template */
    const char *const *stop;       /* stop strings: the output ends before the first occurrence */
    int n_stop;
    int stop_at_eos;               /* also stop at the config's eos and <|im_end|> / <|endoftext|> tokens */
} nn_textgen_opts;

/* Greedy completions of n prompts through `batch` sequence slots (continuous batching: nn_generate_stream). out[i]: xmalloc'd UTF-8 completion text (cut at a stop string). */
int nn_textgen(nn_model *m, const nn_tokenizer *tok, const char *const *prompts, int n, int batch,
               const nn_textgen_opts *o, char **out);

/*
 * A (context, continuation) pair as token ids, as lm-eval 0.4.x's TemplateLM._encode_pair does for a causal model:
 * the context's trailing whitespace (Python's str.isspace, so also "\n", U+00A0, U+3000) moves to the start of the
 * continuation; the context's ids are encode(context), the continuation's are encode(context + continuation) after
 * as many ids as the context has. Errors when either comes out empty. Both xmalloc'd.
 */
int nn_encode_pair(const nn_tokenizer *tok, const char *ctx, const char *cont, int32_t **ctx_ids, int *n_ctx,
                   int32_t **cont_ids, int *n_cont);

/* Log-likelihood of continuation texts given context texts (chat: the context is wrapped in the chat template
 * first), each pair encoded by nn_encode_pair (lm-eval's). logp, greedy (every continuation token is the argmax:
 * lm-eval's is_greedy), n_tokens per item. */
int nn_textscore(nn_model *m, const nn_tokenizer *tok, const char *const *ctx, const char *const *cont, int n,
                 int batch, int chat, double *logp, int *greedy, int *n_tokens);

#endif
