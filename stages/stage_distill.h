/* stage_distill.h - what the GenDistill training stage kinds (align, distill, finetune) share: the common parameter
 * rows, opening teacher/student/tokenizer from the inputs, the trainer from the parameters, writing the artifact. */
#ifndef HX_STAGES_DISTILL_H
#define HX_STAGES_DISTILL_H

#include "stages/stage_train.h"
#include "nn/distill_loss.h"

/* Schema rows every training stage has (defaults differ per kind: steps, learning rate). */
#define HX_TRAIN_FIELDS(STEPS, LR, MIN_LR, WARMUP)                                                                    \
    {"steps", HX_T_INT, STEPS, NULL, "optimizer steps (ignored when tokens > 0)"},                                  \
    {"tokens", HX_T_INT, "0", NULL, "train on this many tokens instead: steps = ceil(tokens / (accum*batch*seq_len))"}, \
    {"seq_len", HX_T_INT, "128", NULL, "tokens per row"},                                                           \
    {"batch", HX_T_INT, "8", NULL, "rows per micro-batch"},                                                          \
    {"accum", HX_T_INT, "1", NULL, "micro-batches per optimizer step (gradient accumulation)"},                      \
    {"lr", HX_T_NUM, LR, NULL, "peak learning rate"},                                                                \
    {"min_lr", HX_T_NUM, MIN_LR, NULL, "final learning rate (cosine, wsd)"},                                         \
    {"warmup", HX_T_INT, WARMUP, NULL, "linear warmup steps"},                                                       \
    {"schedule", HX_T_STR, "\"cosine\"", "cosine|wsd|constant", "learning-rate schedule"},                          \
    {"decay_frac", HX_T_NUM, "0.2", NULL, "wsd: fraction of the steps spent decaying"},                             \
    {"weight_decay", HX_T_NUM, "0.0", NULL, "AdamW decoupled weight decay (matrices only)"},                        \
    {"grad_clip", HX_T_NUM, "1.0", NULL, "clip the global gradient norm (0: off)"},                                 \
    {"seed", HX_T_INT, "0", NULL, "data order: start offset in the text, shuffle of instruction rows"},             \
    {"ckpt_every", HX_T_INT, "50", NULL, "steps between resume checkpoints"},                                       \
    {"log_every", HX_T_INT, "10", NULL, "steps between train_log.jsonl lines"},                                     \
    {"dtype", HX_T_STR, "\"float32\"", "float32|bfloat16", "dtype of the written model.safetensors"}

/* Models, tokenizer and backend of one training stage run. */
typedef struct stage_train_env {
    k_backend *be;
    int own_be;
    nn_model *teacher;          /* the shared engine's (never written) or a private one (own_teacher) */
    int own_teacher;
    nn_model *student;          /* private: trained and written */
    char *tok_path;             /* tokenizer.json of the student's artifact, else the teacher's */
    nn_tokenizer *tok;
    char *data_path;            /* the `file` parameter inside the data artifact, or NULL without data */
    char *log_path;             /* out_dir/train_log.jsonl (stage_train_fit_cfg) */
} stage_train_env;

/* Opens the inputs: student (required), teacher (need_teacher: 1 required, 0 not loaded), the tokenizer, and the
 * data file `file` inside the `data` input when need_data is set. error() naming the stage and the input. */
int stage_train_open(hx_stage_ctx *c, stage_train_env *env, int need_teacher, int need_data);
void stage_train_close(stage_train_env *env);
/* The group mask from the `freeze` list parameter. */
int stage_train_freeze(hx_stage_ctx *c, unsigned *trainable);
/* The kinds' `canon` (stage.h): when tokens > 0, `steps` (which the run ignores) becomes the steps it makes, so arms
 * that differ only in an ignored `steps` share a key and `hx plan` names the axis that changes nothing. */
void stage_train_canon(json_t *with);
/* nn_trainer_init with the common parameters; *steps from steps / tokens. d is the text the loader reads (its
 * start offset comes from the seed). */
int stage_train_trainer(hx_stage_ctx *c, nn_trainer *tr, nn_model *m, const nn_data *d, int *steps);
/* stage_train_fit_cfg with the log at out_dir/train_log.jsonl (env->log_path). */
void stage_train_env_fit_cfg(hx_stage_ctx *c, stage_train_env *env, nn_fit_cfg *fc, int steps);
/* Writes config.json + model.safetensors (dtype parameter) and tokenizer.json into out_dir; metrics common to every
 * training stage. */
int stage_train_finish(hx_stage_ctx *c, stage_train_env *env, const nn_trainer *tr, const nn_fit_result *res);

/* The distillation objectives' fit (distill, finetune): nn_fit with the parts kl and ce logged, stage_train_finish,
 * and the metrics final_kl / final_ce. *res receives the fit's result. */
int stage_train_fit_kl_ce(hx_stage_ctx *c, stage_train_env *env, nn_trainer *tr, int steps, nn_fit_micro fn, void *arg,
                       nn_fit_result *res);
/* Adds one micro-batch's distillation loss to the step's statistics (parts: kl, ce). */
static inline void stage_fit_stats_add(nn_fit_stats *st, const nn_distill_loss *L)
{
    st->loss += L->loss;
    st->part[0] += L->kl;
    st->part[1] += L->ce;
    st->tokens += L->count;
}

#endif
