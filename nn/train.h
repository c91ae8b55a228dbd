/* train.h - training primitives: packed data loader with document boundaries, LR schedules, AdamW steps with
 * accumulation and clipping, checkpoint/resume of the whole training state, and the one resumable training loop
 * (nn_fit) that every training stage runs with its own per-micro-batch loss. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nn/model.h"
#include "nn/tokenizer.h"

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

/*
 * The training state in dir: state-<step>.safetensors (weights, AdamW moments) and state.json listing the newest
 * NN_TRAIN_KEEP states, newest first, each with its step, tokens, data position, the SHA-256 of its tensor file and
 * the caller's `extra` object (the loop's loss window). nn_train_save writes the tensor file, digests it, replaces
 * state.json (atomic rename), then removes state files no longer listed: a kill at any point leaves a state.json
 * naming complete files.
 */
#define NN_TRAIN_KEEP 2
int nn_train_save(const nn_trainer *tr, const char *dir, json_t *extra);
/*
 * Restores the newest listed state whose file matches its digest; a damaged or missing one is skipped with a
 * warning naming it (then the previous one is tried; with none left, or an unreadable state.json, training starts
 * over). 1 if a state was restored (*extra, if not NULL, gets a new reference to its extra object or NULL), 0 if
 * none was, -1 + error() if the state is of another model shape or freezing.
 */
int nn_train_resume(nn_trainer *tr, const char *dir, json_t **extra);

/* ---- the training loop ----
 * One loop for every training stage: the caller supplies the loss of a micro-batch (its gradients added into the
 * model's); the loop owns the optimizer step, the log, checkpoints, resume and interruption. */
typedef struct nn_fit_stats {
    double loss;
    double part[4];               /* named extra values (nn_fit_cfg.part_names), averaged like the loss */
    long long tokens;             /* loss positions seen */
} nn_fit_stats;

/* Computes one micro-batch's gradients (added into the model's) scaled by grad_scale, and adds its loss and parts
 * (unscaled means) into st. micro: index of the micro-batch since the start of training (step * accum + a). */
typedef int (*nn_fit_micro)(void *arg, long long micro, float grad_scale, nn_fit_stats *st);

/* The next-token cross-entropy of the trainer's packed text rows (arg: the nn_trainer): pretraining's loss. */
int nn_train_xent_micro(void *trainer, long long micro, float grad_scale, nn_fit_stats *st);

typedef struct nn_fit_cfg {
    const char *label;            /* progress label and message prefix */
    const char *ckpt_dir;         /* resume state (nn_train_save); NULL: no checkpoints */
    const char *log_path;         /* train_log.jsonl, one line per log_every steps; NULL: none */
    int steps, log_every, ckpt_every;
    long long tokens_per_step;    /* for the progress bar */
    const char *part_names[4];    /* names of nn_fit_stats.part[] in the log; NULL ends the list */
    volatile int *interrupted;    /* set: save at the next step boundary and fail */
    int stop_after;               /* tests: act as if interrupted when this call has reached this step (0: never) */
} nn_fit_cfg;

typedef struct nn_fit_result {
    double first_loss, last_loss; /* first logged window (of this run or the resumed one), last window */
    double last_part[4];
    int start_step;               /* where this call started (> 0 after a resume) */
    double seconds, tokens_per_s; /* of the steps run by this call */
    size_t peak_mem;              /* the most backend memory any step held (k_backend.mem_peak per step) */
} nn_fit_result;

/*
 * Trains tr->m to cfg->steps: resumes from cfg->ckpt_dir if it holds a state (the log is cut back to that step),
 * then per step zero the gradients, accum x fn, nn_train_update; logs {step, loss, parts, lr, grad_norm, tokens};
 * saves the state with the current log window every ckpt_every steps and when interrupted, so a run stopped at any
 * step resumes to the same weights and the same log. tr->ld is saved and restored with the state (callers that read
 * the text loader use it; others derive their position from the micro-batch index).
 */
int nn_fit(nn_trainer *tr, const nn_fit_cfg *cfg, nn_fit_micro fn, void *arg, nn_fit_result *res);

#endif
