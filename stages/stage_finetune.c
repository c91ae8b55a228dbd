/* stage_finetune.c - the `finetune` stage kind (GenDistill stage 3b): post-training on chat/instruction pairs by KL to the
 * teacher (kd) or cross-entropy (sft), on all tokens or the completion only, with chosen groups frozen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_distill.h"

static const hx_field finetune_fields[] = {
    {"objective", HX_T_STR, "\"kd\"", "kd|sft", "kd: KL to the teacher's next-token distribution; sft: cross-entropy"},
    {"masking", HX_T_STR, "\"completion_only\"", "all_tokens|completion_only",
     "which positions carry the loss: every next token of the conversation, or the answer's only"},
    {"temperature", HX_T_NUM, "1.0", NULL, "kd: softmax temperature (the KL is scaled by its square)"},
    {"freeze", HX_T_STRLIST, "[]", "embed|attention|kda|mlp|norm|lm_head",
     "parameter groups kept fixed (the paper freezes attention)"},
    {"file", HX_T_STR, "\"instruct.jsonl\"", NULL,
     "JSONL inside the data artifact: {prompt, completion} or {messages: [...]} per line"},
    HX_TRAIN_FIELDS("200", "0.0003", "0.00003", "10"),
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role finetune_roles[] = {
    {"student", "convert|align|distill|finetune|pretrain", 0, "the model to post-train (usually after distill)"},
    {"teacher", "pretrain|finetune", 1, "the teacher (objective kd): a pretrain stage, or its post-trained finetune"},
    {"data", "data", 0, "the data world: its `file` holds the instruction pairs"},
    {NULL, NULL, 0, NULL},
};

typedef struct sft_job {
    nn_trainer *tr;
    nn_sft_data sd;
    nn_distill ds;
} sft_job;

/* Micro-batch `micro` reads rows micro*B .. of the endless shuffled row sequence: a function of the step alone. */
static int sft_micro(void *arg, long long micro, float scale, nn_fit_stats *st)
{
    sft_job *j = arg;
    nn_trainer *tr = j->tr;
    int B = tr->ld.B, T = tr->ld.T;
    nn_sft_rows(&j->sd, micro * B, B, tr->ids, tr->tg, tr->seg, tr->pos);
    nn_batch bt = {.B = B, .T = T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
    nn_distill_loss L;
    if (nn_distill_micro(&j->ds, &bt, tr->tg, scale, 1, &L)) return -1;
    stage_fit_stats_add(st, &L);
    return 0;
}

static int finetune_run(hx_stage_ctx *c)
{
    nn_objective obj;
    if (nn_objective_parse(hx_with_str(c, "objective"), &obj)) return error("stage '%s': unknown objective", c->stage_name);
    int completion_only = !strcmp(hx_with_str(c, "masking"), "completion_only");
    int T = (int)hx_with_int(c, "seq_len");
    stage_train_env env;
    nn_data flat = {0};
    sft_job j = {0};
    nn_trainer tr = {0};
    unsigned mask;
    int steps, r = -1;
    if (stage_train_open(c, &env, nn_objective_needs_teacher(obj), 1) || stage_train_freeze(c, &mask)) goto out;
    int32_t pad = nn_tokenizer_token_id(env.tok, "<|endoftext|>");
    if (pad < 0) pad = env.student->cfg.eos_id >= 0 ? env.student->cfg.eos_id : 0;
    if (T < 2) {
        error("stage '%s': seq_len must be >= 2", c->stage_name);
        goto out;
    }
    if (nn_sft_load(&j.sd, env.tok, env.data_path, T, completion_only, pad, (uint64_t)hx_with_int(c, "seed"))) {
        error_prefix("stage '%s'", c->stage_name);
        goto out;
    }
    /* the trainer wants a token stream; rows come from nn_sft_rows, so its loader only carries the shape */
    flat.n = (size_t)j.sd.R * T + 1;
    flat.tok = xcalloc(flat.n, sizeof(int32_t));
    memcpy(flat.tok, j.sd.ids, (flat.n - 1) * sizeof(int32_t));
    flat.eos = pad;
    nn_model_set_trainable(env.student, mask);
    if (stage_train_trainer(c, &tr, env.student, &flat, &steps)) goto out;
    if (nn_distill_init(&j.ds, env.student, env.teacher, tr.ld.B, T, obj, 0, (float)hx_with_num(c, "temperature"))) {
        error_prefix("stage '%s'", c->stage_name);
        goto out;
    }
    j.tr = &tr;
    log_info("%s on %zu examples (%lld rows of %d, %zu truncated), %s, %lld loss tokens per epoch, %d steps",
             hx_with_str(c, "objective"), j.sd.n_examples, j.sd.R, T, j.sd.n_truncated,
             hx_with_str(c, "masking"), j.sd.n_loss_tokens, steps);
    nn_fit_result res;
    r = stage_train_fit_kl_ce(c, &env, &tr, steps, sft_micro, &j, &res);
    if (!r && c->metrics) {
        json_object_set_new(c->metrics, "examples", json_integer((json_int_t)j.sd.n_examples));
        json_object_set_new(c->metrics, "truncated", json_integer((json_int_t)j.sd.n_truncated));
        json_object_set_new(c->metrics, "loss_tokens_per_epoch", json_integer(j.sd.n_loss_tokens));
        json_object_set_new(c->metrics, "epochs", hx_json_num((double)tr.step * tr.accum * tr.ld.B / (double)j.sd.R));
    }
out:
    nn_distill_release(&j.ds);
    nn_sft_release(&j.sd);
    nn_trainer_release(&tr);
    free(flat.tok);
    stage_train_close(&env);
    return r;
}

const hx_stage_kind hx_kind_finetune = {
    .name = "finetune",
    .version = 1,
    .doc = "GenDistill stage 3b: post-training on instruction pairs (kd or sft; all_tokens or completion_only masking)",
    .fields = finetune_fields,
    .roles = finetune_roles,
    .needs_gpu = 1,
    .run = finetune_run,
    .canon = stage_train_canon,
};
