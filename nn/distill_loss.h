/* distill_loss.h - GenDistill training machinery: teacher forward, KL/CE objectives into the student's backward,
 * layer-wise hidden-state alignment (MSE) and the instruction-data loader with completion masks; their stages train
 * with nn_fit (nn/train.h). */
#ifndef NN_DISTILL_H
#define NN_DISTILL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "nn/tokenizer.h"
#include "nn/train.h"

/* ---- objectives ----
 * With s = student, t = teacher, p^tau = softmax(logits / tau), over the positions whose target is not -100:
 *   kl          tau^2 * mean KL(p_t^tau || p_s^tau)            (forward KL, Hinton's tau^2 keeps gradients O(1))
 *   reverse_kl  tau^2 * mean KL(p_s^tau || p_t^tau)            (mode seeking)
 *   ce          mean cross-entropy against the data's next token (no teacher)
 *   kl+ce       alpha * kl + (1 - alpha) * ce
 * finetune's `kd` is kl and `sft` is ce (nn_objective_parse accepts both spellings). */
typedef enum { NN_OBJ_KL, NN_OBJ_REVERSE_KL, NN_OBJ_CE, NN_OBJ_KL_CE } nn_objective;
int nn_objective_parse(const char *s, nn_objective *o); /* -1 if unknown */
const char *nn_objective_name(nn_objective o);
int nn_objective_needs_teacher(nn_objective o);

/* Group mask of everything but the named groups ("embed", "attention", ...). -1 + error() naming the bad one. */
int nn_freeze_mask(const char *const *frozen, int n, unsigned *trainable);

/* Loss of one micro-batch, means over the counted positions. */
typedef struct nn_distill_loss {
    double loss;     /* the objective */
    double kl;       /* mean KL at temperature tau (without the tau^2 factor); 0 for ce */
    double ce;       /* mean cross-entropy of the student (always computed) */
    int count;       /* positions counted */
} nn_distill_loss;

/* Distillation of a student against a teacher (borrowed; its weights are never written) for batches of up to
 * B x T tokens. The student must have its trainable groups set. */
typedef struct nn_distill {
    nn_model *s, *t;
    nn_objective obj;
    float alpha, temp;
    int B, T;
    float *dkl;          /* [head_rows, V] device: a chunk's KL gradient before it joins the CE one */
    float *tlog;         /* [head_rows, V] device: the teacher's logits of the chunk */
    float *rows;         /* [B*T] device: per-row KL */
    int32_t *mask;       /* [B*T] device: 1 where the target counts */
    int32_t *hmask;      /* [B*T] host */
    float *hrows;        /* [B*T] host */
} nn_distill;

int nn_distill_init(nn_distill *ds, nn_model *student, nn_model *teacher, int B, int T, nn_objective obj,
                    float alpha, float temp);
void nn_distill_release(nn_distill *ds);
/*
 * One micro-batch: teacher forward (objectives with a KL), student forward, the objective over the positions whose
 * targets [B*T] (host) are not -100, and with grad the student's backward of grad_scale * objective (gradients
 * accumulate). out may be NULL.
 */
int nn_distill_micro(nn_distill *ds, const nn_batch *bt, const int32_t *targets, float grad_scale, int grad,
                     nn_distill_loss *out);

/* ---- layer-wise alignment (GenDistill stages 1-2) ----
 * Every student layer whose mixer differs from the teacher's (kda/gdn where the teacher has attention) is fed
 * the teacher's hidden state at its input, hidden_states.l, and trained to reproduce the teacher's
 *   mixer_out   mixer output  Mixer(RMSNorm(h_l))            (attention output alignment), or
 *   block_out   block output  h_{l+1} before any final norm  (hidden-state alignment).
 * loss = mean over aligned layers of MSE(student, teacher) (mean over tokens and the d channels). Layers are
 * independent (teacher inputs), so only their mixers need gradients: train the kda group. */
typedef enum { NN_ALIGN_MIXER_OUT, NN_ALIGN_BLOCK_OUT } nn_align_target;
int nn_align_target_parse(const char *s, nn_align_target *t);

typedef struct nn_align {
    nn_model *s, *t;
    nn_align_target target;
    int n;                        /* aligned layers */
    int layer[NN_MAX_LAYERS];
    double mse[NN_MAX_LAYERS];    /* per aligned layer, of the last micro-batch */
    int B, T;
    float **hid;                  /* [L+1] host [B*T, d] teacher hidden states */
    float *x, *y, *dy, *rows;     /* device: input, teacher target, student output, dloss/doutput, per-row mse */
    float *hrows;                 /* host [B*T] */
} nn_align;

/* error() when the models do not fit (shapes, vocabulary) or no layer differs. */
int nn_align_init(nn_align *al, nn_model *student, nn_model *teacher, int B, int T, nn_align_target target);
void nn_align_release(nn_align *al);
/* One micro-batch: loss into *loss (mean over layers), per-layer MSE into al->mse; with grad, the student's
 * aligned layers get grad_scale * dloss. */
int nn_align_micro(nn_align *al, const nn_batch *bt, float grad_scale, int grad, double *loss);

/* ---- instruction data ----
 * JSONL of {prompt, completion} (the data world's instruct.jsonl), or {messages: [{role, content}...]} whose last
 * message is the assistant's answer (Qwen3 chat template, nn/chat.h). Prompt and completion are encoded
 * separately (the boundary is a token boundary), examples are shuffled (seed) and packed first-fit in order into
 * rows of T tokens, one segment each (attention never crosses examples), the rest of a row padded with pad_id in a
 * segment of its own. An example longer than T keeps its first T tokens. Target of token t = token t+1 of the same
 * example, -100 otherwise; with completion_only also -100 where token t+1 is in the prompt (prompt tokens are
 * never predicted: the loss is on the completion, its <|im_end|> included). */
typedef struct nn_sft_data {
    int T;
    long long R;                  /* rows */
    int32_t *ids, *tg, *seg, *pos;   /* [R*T] each */
    size_t n_examples, n_truncated;
    long long n_prompt_tokens, n_completion_tokens, n_loss_tokens;
    uint64_t seed;
    long long perm_epoch;         /* epoch of perm, -1 none */
    long long *perm;              /* [R] row order of that epoch */
} nn_sft_data;

int nn_sft_load(nn_sft_data *d, const nn_tokenizer *tok, const char *jsonl_path, int T, int completion_only,
                int32_t pad_id, uint64_t seed);
/* The same from memory (name appears in messages). */
int nn_sft_load_mem(nn_sft_data *d, const nn_tokenizer *tok, const char *text, size_t len, const char *name, int T,
                    int completion_only, int32_t pad_id, uint64_t seed);
void nn_sft_release(nn_sft_data *d);
/* Rows k .. k+B-1 of the endless sequence of rows (epoch e = k / R reads every row once, in an order seeded by
 * (seed, e)): a pure function of k, so a resumed run reads the same batches. Host arrays [B*T]. */
void nn_sft_rows(nn_sft_data *d, long long k, int B, int32_t *ids, int32_t *tg, int32_t *seg, int32_t *pos);

#endif
