/* stage_align.c - the `align` stage kind (GenDistill stages 1-2): each converted layer learns, from the teacher's hidden
 * state at its input, to reproduce the teacher layer's mixer output or block output (MSE); only mixers train. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_distill.h"

static const hx_field align_fields[] = {
    {"target", HX_T_STR, "\"mixer_out\"", "mixer_out|block_out",
     "what each converted layer matches: the teacher's attention output, or its whole block's output"},
    {"file", HX_T_STR, "\"corpus/pretrain.txt\"", NULL, "the text inside the data artifact"},
    HX_TRAIN_FIELDS("200", "0.001", "0.0001", "10"),
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role align_roles[] = {
    {"student", "convert|align", 0, "the hybrid student straight from convert (or an earlier align)"},
    {"teacher", "pretrain|finetune", 0, "the Qwen3 teacher it was converted from (pretrained, or post-trained by finetune)"},
    {"data", "data", 0, "the data world: its `file` is the text whose hidden states are matched"},
    {NULL, NULL, 0, NULL},
};

typedef struct align_job {
    nn_trainer *tr;
    nn_align al;
} align_job;

static int align_micro(void *arg, long long micro, float scale, nn_fit_stats *st)
{
    (void)micro;
    align_job *j = arg;
    nn_trainer *tr = j->tr;
    nn_loader_next(&tr->ld, tr->ids, tr->tg, tr->seg, tr->pos);
    nn_batch bt = {.B = tr->ld.B, .T = tr->ld.T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
    double loss;
    if (nn_align_micro(&j->al, &bt, scale, 1, &loss)) return -1;
    st->loss += loss;
    for (int i = 0; i < 4 && i < j->al.n; i++) st->part[i] += j->al.mse[i];
    st->tokens += (long long)bt.B * bt.T;
    return 0;
}

static int align_run(hx_stage_ctx *c)
{
    nn_align_target target;
    if (nn_align_target_parse(hx_with_str(c, "target"), &target))
        return error("stage '%s': target must be mixer_out or block_out", c->stage_name);
    stage_train_env env;
    nn_data d = {0};
    align_job j = {0};
    nn_trainer tr = {0};
    int steps, r = -1;
    char names[4][32];
    if (stage_train_open(c, &env, 1, 1) || nn_data_from_text(&d, env.tok, env.data_path)) goto out;
    nn_model_set_trainable(env.student, NN_GROUP_BIT(NN_G_KDA)); /* the converted mixers; attention is the teacher's */
    if (stage_train_trainer(c, &tr, env.student, &d, &steps)) goto out;
    if (nn_align_init(&j.al, env.student, env.teacher, tr.ld.B, tr.ld.T, target)) {
        error_prefix("stage '%s'", c->stage_name);
        goto out;
    }
    j.tr = &tr;
    log_info("aligning %d of %d layers (%s) on %zu tokens, %d steps of %d x %d x %d", j.al.n,
             env.student->cfg.n_layers, hx_with_str(c, "target"), d.n, steps, tr.accum, tr.ld.B, tr.ld.T);
    nn_fit_cfg fc;
    stage_train_env_fit_cfg(c, &env, &fc, steps);
    for (int i = 0; i < 4 && i < j.al.n; i++) {
        snprintf(names[i], sizeof names[i], "mse_layer_%d", j.al.layer[i]);
        fc.part_names[i] = names[i];
    }
    nn_fit_result res;
    if (nn_fit(&tr, &fc, align_micro, &j, &res)) goto out;
    r = stage_train_finish(c, &env, &tr, &res);
    if (!r && c->metrics) {
        /* the final MSE of every aligned layer on one more batch, without a gradient */
        nn_loader_next(&tr.ld, tr.ids, tr.tg, tr.seg, tr.pos);
        nn_batch bt = {.B = tr.ld.B, .T = tr.ld.T, .ids = tr.ids, .pos = tr.pos, .seg = tr.seg};
        double loss;
        if (nn_align_micro(&j.al, &bt, 0, 0, &loss)) {
            r = -1;
            goto out;
        }
        json_t *per = json_object();
        for (int i = 0; i < j.al.n; i++) {
            char k[32];
            snprintf(k, sizeof k, "%d", j.al.layer[i]);
            json_object_set_new(per, k, hx_json_num(j.al.mse[i]));
        }
        json_object_set_new(c->metrics, "mse_per_layer", per);
        json_object_set_new(c->metrics, "aligned_layers", json_integer(j.al.n));
    }
out:
    nn_align_release(&j.al);
    nn_trainer_release(&tr);
    nn_data_release(&d);
    stage_train_close(&env);
    return r;
}

const hx_stage_kind hx_kind_align = {
    .name = "align",
    .version = 1,
    .doc = "GenDistill stages 1-2: per-layer hidden-state alignment (MSE) of the converted layers to the teacher's",
    .fields = align_fields,
    .roles = align_roles,
    .needs_gpu = 1,
    .run = align_run,
    .canon = stage_train_canon,
};
