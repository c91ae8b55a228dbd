/* train.h - training primitives: packed data loader with document boundaries, LR schedules, AdamW steps with
 * accumulation and clipping, and checkpoint/resume of the whole training state. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/nn/model.h"
#include "engine/nn/tokenizer.h"

/* A tokenised corpus: one stream; documents end with the eos token (which belongs to its document). */
typedef struct nn_data {
    int32_t *tok;
    size_t n;
    int32_t eos;          /* document boundary token, -1 for none */
    size_t n_docs;
} nn_data;

/* Encodes a text file (documents separated by lines of exactly "<|endoftext|>", which the tokenizer maps to its
 * special token) into a stream. */
int nn_data_from_text(nn_data *d, const nn_tokenizer *t, const char *path);
void nn_data_release(nn_data *d);

/*
 * Packed rows of T tokens: row r reads the window [pos, pos + T] of the stream (T + 1 tokens), pos advances by T
 * and wraps to 0 at the end (epoch + 1). Within a row, a new segment (and position 0) starts after each eos; the
 * target of token t is token t+1, except after an eos (-100: never predict across documents). The state is
 * (pos, epoch): resuming from it reproduces the same batches.
 */
typedef struct nn_loader {
    const nn_data *d;
    int B, T;
    size_t pos;
    long long epoch;
} nn_loader;

int nn_loader_init(nn_loader *l, const nn_data *d, int B, int T);
/* ids, targets, seg, pos: [B*T] host arrays. */
void nn_loader_next(nn_loader *l, int32_t *ids, int32_t *targets, int32_t *seg, int32_t *pos);

/* Learning-rate schedules over `total` steps after `warmup` linear warmup steps:
 *   constant; cosine (to min_lr at the end); wsd (warmup-stable-decay: constant, then linear to min_lr over the
 *   last decay_frac of the steps). */
typedef enum { NN_SCHED_CONSTANT, NN_SCHED_COSINE, NN_SCHED_WSD } nn_sched_kind;
typedef struct nn_sched {
    nn_sched_kind kind;
    double lr, min_lr, decay_frac;
    int warmup, total;
} nn_sched;
int nn_sched_parse(const char *s, nn_sched_kind *k); /* "constant" | "cosine" | "wsd" */
double nn_sched_lr(const nn_sched *s, int step);     /* step is 0-based */

typedef struct nn_trainer {
    nn_model *m;
    nn_loader ld;
    nn_sched sched;
    float beta1, beta2, eps, weight_decay, clip; /* clip <= 0: none */
    int accum;              /* micro-batches per step (gradient accumulation) */
    int step;               /* steps done */
    long long tokens;       /* target tokens seen */
    int32_t *ids, *tg, *seg, *pos;
} nn_trainer;

/* The model must have its trainable groups set (nn_model_set_trainable); sizes its activations for B x T. */
int nn_trainer_init(nn_trainer *tr, nn_model *m, const nn_data *d, int B, int T, const nn_sched *s, int accum);
void nn_trainer_release(nn_trainer *tr);
/* One optimizer step: accum x (forward, xent, backward), clip, AdamW. Mean loss, grad norm (before clipping), lr. */
int nn_train_step(nn_trainer *tr, double *loss, double *grad_norm, double *lr);
/* The optimizer half of a step, for callers that compute their own gradients (distillation): clip the gradients in
 * m->g, AdamW at the scheduled lr, step + 1. Grad norm before clipping and lr (either may be NULL). */
int nn_train_update(nn_trainer *tr, double *grad_norm, double *lr);

/* The AdamW update of every trainable tensor with the gradients in m->g: one multi-tensor op call per run of
 * tensors that are contiguous in both buffers. */
void nn_adamw_step(nn_model *m, const k_adamw_hp *hp);

/* Keeps the lines of a train_log.jsonl up to `step` (a resumed run rewrites what the killed one logged later);
 * returns the loss of the first line kept, NAN if none (or no file). */
double nn_train_log_trim(const char *path, int step);
/* Saves / restores weights, AdamW moments, step, tokens and data position (dir/state-<step>.safetensors, then
 * dir/state.json naming it, written atomically; the previous state file is removed). nn_train_resume returns 1 if a state was restored, 0 if dir has none, -1 on error. */
int nn_train_save(const nn_trainer *tr, const char *dir);
int nn_train_resume(nn_trainer *tr, const char *dir);

#endif
