/* model.h - Qwen3 and Hybrid models: HF config, parameter table with groups, forward/backward, checkpoints. */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "nn/safetensors.h"

#define NN_MAX_LAYERS 256

/* Mixer of a layer (config.json `layer_types`). */
typedef enum { NN_MIX_ATTN = 0, NN_MIX_KDA = 1, NN_MIX_GDN = 2 } nn_mixer;

/* Parameter groups (docs/models.md, "Checkpoints and parameter groups"): freezing is per group. */
typedef enum { NN_G_EMBED, NN_G_ATTENTION, NN_G_KDA, NN_G_MLP, NN_G_NORM, NN_G_LM_HEAD, NN_NGROUPS } nn_group;
#define NN_GROUP_BIT(g) (1u << (g))
#define NN_ALL_GROUPS ((1u << NN_NGROUPS) - 1)
const char *nn_group_name(nn_group g);
int nn_group_parse(const char *s, nn_group *g); /* "attention" -> NN_G_ATTENTION; -1 if unknown */

/* A model's hyper-parameters: HF config.json (Qwen3ForCausalLM) plus the hx_hybrid fields. */
typedef struct nn_config {
    char model_type[32];   /* "qwen3" or "hx_hybrid" */
    int vocab, d, n_layers, n_heads, n_kv_heads, head_dim, ffn, max_pos;
    float rope_theta, norm_eps, init_range;
    int tied;
    int bos_id, eos_id, pad_id;   /* -1 when absent */
    nn_mixer mixer[NN_MAX_LAYERS];
    int conv_size, gate_rank;     /* linear_attn (hybrid) */
    char conv_act[16];            /* "identity" | "silu" */
    char dtype[16];               /* checkpoint dtype from config.json ("bfloat16", "float32", "" unknown) */
    int kda_save;                 /* not from config.json: floats per (sequence, head, chunk) the model's backend
                                   * keeps for the KDA backward beyond the chunk-start state (k_ops.kda_save);
                                   * nn_model_new sets it, 0 elsewhere */
} nn_config;

/* Parses config.json text; `name` (a path) appears in messages. Missing optional fields get Qwen3 defaults. */
int nn_config_parse(nn_config *c, const char *json, size_t len, const char *name);
int nn_config_load(nn_config *c, const char *path);
/* DIR/config.json: a checkpoint directory's config. */
int nn_config_load_dir(nn_config *c, const char *dir);
/* HF-compatible config.json (transformers loads it: Qwen3ForCausalLM, or HxHybridForCausalLM). */
int nn_config_save(const nn_config *c, const char *path, const char *dtype_name);
/* A Qwen3 config of the given shape with defaults (tied, theta 1e6, eps 1e-6, init 0.02). */
void nn_config_qwen3(nn_config *c, int vocab, int d, int n_layers, int n_heads, int n_kv_heads, int head_dim,
                     int ffn);
int nn_config_check(const nn_config *c, const char *name);
int nn_config_has_linear(const nn_config *c); /* any kda/gdn layer */
/* RoPE inverse frequencies [K/2] as transformers computes them: float32 1 / theta^((2i)/K), rounded to bf16
 * (fp16) when the config's dtype is bfloat16 (float16): transformers then holds its inv_freq buffer in that
 * dtype, and the fixtures' logits depend on it. */
void nn_rope_inv_freq(const nn_config *c, float *inv);
size_t nn_config_n_params(const nn_config *c);  /* parameter count (tied lm_head counted once) */

/* One named parameter (HF name, shape, group) placed in the flat parameter buffer. */
typedef struct nn_param {
    char name[96];
    int ndim;
    int64_t shape[2];
    size_t off, numel;     /* offset in the parameter buffer */
    size_t goff;           /* offset in the gradient/moment buffers; SIZE_MAX when its group is frozen */
    nn_group group;
    int layer;             /* -1 for embeddings, final norm, lm_head */
    int decay;             /* weight decay applies (matrices; not norms, biases, A_log, dt_bias) */
} nn_param;

/* Builds the parameter table of a config (no allocation of weights): for checkpoint checks and the model. */
int nn_param_table(const nn_config *c, nn_param **table, int *n);

/* Training-mode activations and the batch they were sized for. */
typedef struct nn_batch {
    int B, T;
    const int32_t *ids;    /* [B*T] host */
    const int32_t *pos;    /* [B*T] host, or NULL: 0..T-1 per row */
    const int32_t *seg;    /* [B*T] host, or NULL: one document per row (attention never crosses segments) */
} nn_batch;

/* Attention KV cache / recurrent state for generation: per layer, per sequence. */
typedef struct nn_cache {
    int B, Tmax;
    int B_cap;             /* sequences the memory was made for (nn_cache_rebatch) */
    float *mem;            /* device memory of all layers */
    size_t *layer_off;     /* [n_layers] offset into mem */
    int *len;              /* [B] host: tokens stored per sequence */
} nn_cache;

typedef struct nn_model nn_model;
struct nn_layer_ix; /* model.c: per-layer parameter indices */

/* Activation modes of nn_model_prepare. */
enum {
    NN_ACT_GEN = 0,     /* inference, logits only for one row per sequence (generation) */
    NN_ACT_TRAIN = 1,   /* keep every layer's activations for the backward; logits by row chunks (nn_model_head) */
    NN_ACT_SCORE = 2,   /* inference with full logits (scoring), layers share one activation block */
    NN_ACT_HIDDEN = 3,  /* inference up to hidden_out (a teacher beside a student's nn_model_head), shared block */
};

struct nn_model {
    nn_config cfg;
    k_backend *be;
    int n_params;
    nn_param *params;      /* table (HF names) */
    size_t n_floats;       /* parameter buffer size */
    float *p;              /* parameters (device), one allocation */
    unsigned trainable;    /* bit mask of groups with gradients */
    size_t n_gfloats;      /* gradient / moment buffer size (trainable tensors only) */
    float *g, *m, *v;      /* gradients, AdamW moments (device), NULL until nn_model_set_trainable */
    struct nn_layer_ix *lix;  /* [n_layers] */
    int embed_idx, norm_idx, lm_head_idx;
    float *rope_inv;       /* [head_dim/2] device */
    /* activations (one allocation, sized by nn_model_prepare) */
    int act_B, act_T, act_mode;
    size_t act_floats;
    float *act;
    size_t *act_off;       /* [n_layers + 1] per-layer block offsets (all 0 when layers share one block) */
    int recompute;         /* NN_ACT_TRAIN keeps only each layer's input (nn_model_set_recompute) */
    int act_recompute;     /* the activations were sized with recompute on */
    size_t act_work;       /* recompute: offset of the one layer block every layer's (re)computation shares */
    int32_t *io;           /* device ints: ids, pos, seg, targets [B*T] each, q_start [B] */
    float *logits;         /* [B*T, V] (score), [head_rows, V] (train, hidden), [B, V] (gen) */
    int head_rows;         /* rows per LM-head chunk in NN_ACT_TRAIN / NN_ACT_HIDDEN (NN_HEAD_FLOATS) */
    size_t head_floats;    /* the bound on a chunk's logits; 0: NN_HEAD_FLOATS (nn_model_set_head_floats) */
    int head_done;         /* the last training forward's LM-head backward has run (nn_model_head, grad) */
    int logits_ready;      /* m->logits holds every row's logits of the last forward (score; train in one chunk) */
    float *hidden_out;     /* [B*T, d] after the final norm */
    float *loss_rows;      /* [B*T] */
    int cur_B, cur_T, cur_has_seg, fwd_train; /* the last forward */
    int frozen;            /* nn_model_freeze: the weights are inference-only */
    int32_t *argmax_d;     /* nn_model_argmax's device tokens [argmax_cap] */
    int argmax_cap;
};

/* Creates a model of config c on backend be with zeroed parameters. error() for configs it cannot build
 * (e.g. "kda mixer not available" when the KDA mixer is not linked in). */
int nn_model_new(nn_model **out, const nn_config *c, k_backend *be);
void nn_model_free(nn_model *m);
/* HF init: normal(0, init_range) for matrices and embeddings, 1 for norm weights (deterministic in seed). */
void nn_model_init_random(nn_model *m, uint64_t seed);
int nn_model_find(const nn_model *m, const char *name);          /* table index or -1 */
float *nn_model_param(const nn_model *m, const char *name);      /* device pointer or NULL */
float *nn_model_grad(const nn_model *m, const char *name);       /* NULL when frozen or absent */

/*
 * Inference weights: after nn_model_freeze the weights must not change until nn_model_thaw (nn_model_free thaws);
 * the backend keeps them once in its matmul operand format (CUDA: a bf16 copy, half the fp32 bytes), so no matmul
 * converts a weight (k_ops.weights_freeze). nn_engine_model freezes the models it shares (eval, teachers).
 * nn_model_set_trainable with a non-empty mask refuses a frozen model.
 */
void nn_model_freeze(nn_model *m);
/* Greedy tokens: tok[r] = the argmax of logits row r (the first of equal maxima), r < n; on the device when the
 * backend has argmax_rows (only n ints come back), else over the downloaded rows (host scratch `rows`, n x V). */
void nn_model_argmax(nn_model *m, int n, int32_t *tok, float *rows);
void nn_model_thaw(nn_model *m);

/* Gradients and AdamW moments only for the groups in mask (NN_GROUP_BIT(...) | ...); zeroed. */
int nn_model_set_trainable(nn_model *m, unsigned group_mask);
void nn_model_zero_grad(nn_model *m);

/* Sizes activations for up to B x T tokens in mode NN_ACT_* (reallocates only when larger or the mode changes). */
int nn_model_prepare(nn_model *m, int B, int T, int mode);

/*
 * Activation recomputation for long sequences (off by default): in NN_ACT_TRAIN, each layer keeps only its input
 * (B*T*d floats) and the backward recomputes the layer's forward into one shared block before differentiating
 * it. One more forward per step for about 1/(4 + 3 ffn/d + mixer) of the layer activations; gradients are
 * bit-identical (the kernels are deterministic). Takes effect at the next nn_model_prepare.
 */
void nn_model_set_recompute(nn_model *m, int on);

/*
 * Forward of a batch of B x T tokens: hidden states -> m->hidden_out, logits -> m->logits for every row
 * (NN_ACT_SCORE, and NN_ACT_TRAIN when all rows make one head chunk; otherwise in NN_ACT_TRAIN and
 * NN_ACT_HIDDEN the logits come later, a row chunk at a time: nn_model_head, nn_model_logits).
 * If cache is given (inference), the tokens of sequence b go to cache positions cache->len[b] ..; the
 * caller advances cache->len. hidden (may be NULL): host array of (n_layers + 1) pointers to [B*T*d]
 * buffers receiving hidden_states.i (HF output_hidden_states convention: i = 0 embeddings, i < L residual
 * after layer i, i = L after the final norm). logits_rows: NULL for all rows, or host array [B] of the one
 * row (t index) per sequence whose logits are wanted; m->logits then holds [B, V].
 */
int nn_model_forward(nn_model *m, const nn_batch *bt, nn_cache *cache, const int *logits_rows, float **hidden);
/* Cross-entropy against targets [B*T] host (ignore -100) after a forward of all rows; mean loss over counted
 * rows into *loss, count into *count. NN_ACT_SCORE: over m->logits. NN_ACT_TRAIN: through nn_model_head, and
 * with grad the gradient scaled by grad_scale / count goes through the LM head (adding into its weight gradient
 * already: zero the gradients before the loss, not between it and nn_model_backward). */
int nn_model_xent(nn_model *m, const int32_t *targets, int grad, float grad_scale, double *loss, int *count);

/*
 * The LM head of the last NN_ACT_TRAIN forward and a loss, a chunk of head_rows rows at a time, so that the
 * [B*T, V] fp32 logits never exist at once (NN_HEAD_FLOATS bounds a chunk; a small model takes all rows in
 * one). For rows [r0, r0 + n), fn gets their logits (device [n, V], m->logits) and, with grad, overwrites them
 * with d(loss)/d(logits); the head's backward then runs for those rows (into its weight gradient and the
 * gradient of hidden_out, where nn_model_backward starts).
 */
#define NN_HEAD_FLOATS ((size_t)1 << 28)
typedef int (*nn_head_fn)(void *ctx, float *logits, int r0, int n);
/* Another bound on a head chunk's logits (0: NN_HEAD_FLOATS); takes effect at the next nn_model_prepare that
 * allocates (tests make small models take many chunks with it). */
void nn_model_set_head_floats(nn_model *m, size_t n);
int nn_model_head(nn_model *m, int grad, nn_head_fn fn, void *ctx);
/* logits of rows [r0, r0 + n) of the last forward into out (device [n, V]): a teacher's, beside a student's
 * nn_model_head (NN_ACT_HIDDEN, NN_ACT_TRAIN or NN_ACT_SCORE) */
void nn_model_head_rows(nn_model *m, float *out, int r0, int n);
/* All logits of the last forward (every row) into host [B*T, V], a chunk at a time in NN_ACT_TRAIN. */
int nn_model_logits(nn_model *m, float *host);
/* Backward from the gradient nn_model_head left (nn_model_xent with grad, or a caller's loss, e.g. a KL);
 * adds into the gradients of trainable parameters. Requires a forward with train = 1 and no cache. */
int nn_model_backward(nn_model *m);

/*
 * One decoder block in isolation, for layer-wise alignment (GenDistill stages 1-2): x [B*T, d] (device) is the
 * block's input, hidden_states.l; writes the mixer output Mixer(RMSNorm(x)) to mix_out and the block output to
 * block_out (device [B*T, d], either NULL). bt gives positions and segments (bt->ids is not read). Needs
 * NN_ACT_TRAIN activations to be differentiated (each layer keeps its own slot), NN_ACT_SCORE for inference.
 */
int nn_model_layer_forward(nn_model *m, int l, const nn_batch *bt, const float *x, float *mix_out, float *block_out);
/* Backward of the last nn_model_layer_forward of layer l from dmix = dloss/dmix_out and/or dblock =
 * dloss/dblock_out (device, either NULL): adds into layer l's trainable gradients, and into dx if given. */
int nn_model_layer_backward(nn_model *m, int l, const float *dmix, const float *dblock, float *dx);

/* Checkpoints: config.json + model.safetensors (or shards + model.safetensors.index.json). */
int nn_model_load(nn_model **out, const char *dir, k_backend *be);
int nn_model_load_weights(nn_model *m, const char *dir);
/* The shard size stages save checkpoints with: 5 GiB per file (Hugging Face saves 5 GB shards by default); a model
 * under it is one model.safetensors. */
#define NN_SHARD_BYTES ((size_t)5 << 30)
/* dtype ST_F32 / ST_BF16 / ST_F16; max_shard_bytes 0: one file. */
int nn_model_save(const nn_model *m, const char *dir, st_dtype dtype, size_t max_shard_bytes);
/* Checks that the checkpoint in dir has every tensor of its config with the right shape, without loading
 * weights (a real Qwen/Qwen3-0.6B directory passes this cheaply). */
int nn_checkpoint_check(const char *dir);

/* KV cache / recurrent state for B sequences of up to Tmax tokens. */
int nn_cache_new(nn_cache **out, nn_model *m, int B, int Tmax);
void nn_cache_reset(nn_model *m, nn_cache *c);
/* The same memory as a cache of B <= B_cap sequences (layers re-laid out, reset): one allocation serves the
 * prefills of any number of new sequences (nn_generate_stream). */
int nn_cache_rebatch(nn_model *m, nn_cache *c, int B);
/* Sequence sb of src (its src->len[sb] tokens: KV rows, or the recurrent state and conv caches) into sequence db
 * of dst, which may have another B and Tmax; dst->len[db] = src->len[sb]. */
int nn_cache_copy_seq(nn_model *m, nn_cache *dst, int db, const nn_cache *src, int sb);
void nn_cache_free(nn_model *m, nn_cache *c);

#endif
