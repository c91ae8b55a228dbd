/* generate.h - greedy generation with a KV cache (batched prefill, then decode) and log-likelihood scoring. */
#ifndef NN_GENERATE_H
#define NN_GENERATE_H

#include <stdint.h>
#include "nn/model.h"

/* Called after each new token of sequence b (gen: its n generated tokens so far); nonzero stops b. */
typedef int (*nn_stop_fn)(void *ud, int b, const int32_t *gen, int n);

typedef struct nn_gen_opts {
    int max_new;               /* new tokens per sequence at most */
    const int32_t *stop_ids;   /* tokens that end a sequence (kept in the output), e.g. eos; may be NULL */
    int n_stop_ids;
    nn_stop_fn stop;           /* optional, e.g. stop strings (nn_stop_strings) */
    void *stop_ud;
    struct nn_gen_times *times; /* optional: where the time went (benchmarks) */
} nn_gen_opts;

/* Wall time of one nn_generate call, split at the first logits on the host (the download synchronizes the
 * device): prefill_s is the prompt's forward up to them, decode_s the decode steps after them. */
typedef struct nn_gen_times {
    double prefill_s, decode_s;
    int decode_steps;
} nn_gen_times;

/*
 * Greedy decoding of B prompts (lengths lens[b] >= 1): one right-padded prefill of all prompts, then one
 * batched decode step per new token with the KV cache. out[b] (xmalloc'd) receives the generated tokens only,
 * n_out[b] their count. Ties in argmax go to the lowest id (as torch.argmax).
 */
int nn_generate(nn_model *m, const int32_t *const *prompts, const int *lens, int B, const nn_gen_opts *o,
                int32_t **out, int *n_out);

/*
 * Continuous batching (nn/batcher.c): greedy decoding of n prompts through `slots` sequence slots. The
 * prompts enter in order; a sequence that stops (max_new, a stop id, the stop callback, which gets the item's
 * index as b) frees its slot and the next prompts' prefill (right-padded, all free slots at once) fills it, so
 * the batch never waits for its longest member. The tokens are those of nn_generate of each prompt alone.
 * out[i], n_out[i] as nn_generate's; times: prefill_s the prefills, decode_s the decode steps.
 */
int nn_generate_stream(nn_model *m, const int32_t *const *prompts, const int *lens, int n, int slots,
                       const nn_gen_opts *o, int32_t **out, int *n_out);

/* The same by recomputing the whole sequence for each new token (no cache): the reference decode must equal. */
int nn_generate_recompute(nn_model *m, const int32_t *prompt, int len, int max_new, int32_t *out);

/*
 * Log-likelihood of continuations: for each item b, context ctx[b] (n_ctx[b] >= 1 tokens) and continuation
 * cont[b] (n_cont[b] >= 1): logp[b] = sum_t log p(cont_t | ctx, cont_<t); greedy[b] = 1 if every continuation
 * token is the argmax. per_token (may be NULL): per_token[b] xmalloc'd array of n_cont[b] log-probs.
 * Items are scored in batches of up to `batch` sequences.
 */
int nn_score(nn_model *m, const int32_t *const *ctx, const int *n_ctx, const int32_t *const *cont, const int *n_cont,
             int n, int batch, double *logp, int *greedy, float **per_token);

#endif
