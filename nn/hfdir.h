/* hfdir.h - what makes a checkpoint directory a complete Hugging Face one, beyond config.json and the weights. */
#ifndef NN_HFDIR_H
#define NN_HFDIR_H

#include <jansson.h>

#include "nn/model.h"

/* The transformers release hx's checkpoints target: the GPU machine's (docs/cuda.md), where
 * tests/reference/hf_hybrid_check.py loads them. Written as transformers_version in config.json and
 * generation_config.json. */
#define NN_HF_TRANSFORMERS_VERSION "5.17.0"

/* The remote code of hx_hybrid checkpoints: the file written next to config.json, and config.json's auto_map. */
#define NN_HF_HYBRID_MODULE "modeling_hx_hybrid"
json_t *nn_hfdir_auto_map(void); /* new reference */

/*
 * Completes the directory of a model just written (config.json, weights): generation_config.json (greedy, the
 * config's eos/bos/pad), and for hx_hybrid models modeling_hx_hybrid.py (nn/modeling_hx_hybrid.py).
 * Called by nn_model_save.
 */
int nn_hfdir_model_files(const char *dir, const nn_config *c);

/*
 * Adds the tokenizer to a model directory written by nn_model_save: copies tokenizer_json (unless it is already
 * DIR/tokenizer.json) and writes tokenizer_config.json (chat template, eos, pad) and generation_config.json with
 * every token that ends hx's generations (nn_eos_ids). Reads DIR/config.json.
 */
int nn_hfdir_add_tokenizer(const char *dir, const char *tokenizer_json);

#endif
