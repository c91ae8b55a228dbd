/* stage_train.h - what every training stage kind (pretrain, align, distill, finetune) shares: the configuration of the one
 * training loop (nn_fit, nn/train.h) from the stage's context and parameters. */
#ifndef HX_STAGES_TRAIN_H
#define HX_STAGES_TRAIN_H

#include "stages/stage.h"
#include "nn/train.h"

/* The training log every training kind writes into its artifact (one JSON line per log_every steps). */
#define STAGE_TRAIN_LOG "train_log.jsonl"

/*
 * The loop's configuration for `steps` steps: label = the stage's name, checkpoints in ctx->ckpt_dir, the log at
 * log_path, the parameters log_every, ckpt_every, accum x batch x seq_len tokens per step, Ctrl-C through
 * ctx->interrupted. Test hook: HX_TEST_INTERRUPT_STEP=N stops the loop as Ctrl-C would once N steps are done.
 */
void stage_train_fit_cfg(hx_stage_ctx *c, nn_fit_cfg *fc, int steps, const char *log_path);

/*
 * What every training kind records of its fit: the metrics final_loss, train_tokens, tokens_per_s, peak_mem_bytes
 * and params (of m; none without ctx->metrics), and one log line of the losses, steps, time, speed and memory.
 */
void stage_train_metrics(hx_stage_ctx *c, const nn_model *m, const nn_trainer *tr, const nn_fit_result *res);

#endif
