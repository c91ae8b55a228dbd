/* stage_distill.c - the `distill` stage kind (GenDistill stage 3a: end-to-end distillation on pretraining text), and what
 * the training stages align, distill and finetune share (stages/stage_distill.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_distill.h"
#include "nn/engine.h"
#include "nn/hfdir.h"

/* ---------------------------------------------------------------- shared by the training stages */

int stage_train_open(hx_stage_ctx *c, stage_train_env *env, int need_teacher, int need_data)
{
    memset(env, 0, sizeof *env);
    const char *sdir = hx_input_dir(c, "student"), *tdir = hx_input_dir(c, "teacher"), *ddir = hx_input_dir(c, "data");
    if (!sdir) return error("stage '%s': input 'student' is not bound (a convert, align or distill stage)", c->stage_name);
    if (need_teacher && !tdir)
        return error("stage '%s': input 'teacher' is not bound (a pretrain stage), and this stage needs it",
                     c->stage_name);
    if (need_data && !ddir) return error("stage '%s': input 'data' is not bound (a data stage)", c->stage_name);
    if (!(env->be = hx_stage_backend(c, &env->own_be))) return -1;
    if (nn_model_load(&env->student, sdir, env->be)) return error_prefix("stage '%s': student", c->stage_name);
    nn_model_set_recompute(env->student, c->recompute);
    if (need_teacher) {
        const char *key = hx_input_key(c, "teacher");
        if (c->engine && key) {
            env->teacher = nn_engine_model(c->engine, key, tdir);
        } else {
            env->own_teacher = 1;
            if (nn_model_load(&env->teacher, tdir, env->be)) env->teacher = NULL;
        }
        if (!env->teacher) return error_prefix("stage '%s': teacher", c->stage_name);
    }
    char *sp = hx_path_join(sdir, "tokenizer.json");
    if (hx_file_exists(sp)) {
        env->tok_path = sp;
    } else {
        free(sp);
        if (tdir) {
            char *tp = hx_path_join(tdir, "tokenizer.json");
            if (hx_file_exists(tp)) env->tok_path = tp;
            else free(tp);
        }
    }
    if (!env->tok_path)
        return error("stage '%s': neither the student's nor the teacher's artifact has a tokenizer.json", c->stage_name);
    if (nn_tokenizer_load(&env->tok, env->tok_path)) return error_prefix("stage '%s'", c->stage_name);
    if (need_data) {
        const char *f = hx_with_str(c, "file");
        if (!f[0] || f[0] == '/' || strstr(f, ".."))
            return error("stage '%s': file '%s' must be a relative path inside the data artifact", c->stage_name, f);
        env->data_path = hx_path_join(ddir, f);
        if (!hx_file_exists(env->data_path))
            return error("stage '%s': the data artifact has no %s (%s)", c->stage_name, f, env->data_path);
    }
    return 0;
}

void stage_train_close(stage_train_env *env)
{
    nn_model_free(env->student);
    if (env->own_teacher) nn_model_free(env->teacher);
    if (env->own_be && env->be) k_backend_free(env->be);
    nn_tokenizer_free(env->tok);
    free(env->tok_path);
    free(env->data_path);
    free(env->log_path);
    memset(env, 0, sizeof *env);
}

int stage_train_freeze(hx_stage_ctx *c, unsigned *trainable)
{
    json_t *fz = hx_with_json(c, "freeze");
    size_t n = json_array_size(fz);
    const char **names = xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = json_string_value(json_array_get(fz, i));
    int r = nn_freeze_mask(names, (int)n, trainable);
    free(names);
    if (r) return error_prefix("stage '%s'", c->stage_name);
    if (!*trainable) return error("stage '%s': every parameter group is frozen", c->stage_name);
    return 0;
}

/* The optimizer steps a run makes: ceil(tokens / (accum * batch * seq_len)) when tokens > 0, else steps. */
static long long train_steps(long long steps, long long tokens, long long accum, long long batch, long long seq_len)
{
    if (tokens <= 0 || accum < 1 || batch < 1 || seq_len < 1) return steps;
    long long per = accum * batch * seq_len;
    return (tokens + per - 1) / per;
}

void stage_train_canon(json_t *with)
{
    long long g[5];
    const char *names[5] = {"steps", "tokens", "accum", "batch", "seq_len"};
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(with, names[i]);
        if (!json_is_integer(v)) return; /* the run reports a bad value */
        g[i] = json_integer_value(v);
    }
    if (g[1] > 0) json_object_set_new(with, "steps", json_integer(train_steps(g[0], g[1], g[2], g[3], g[4])));
}

int stage_train_trainer(hx_stage_ctx *c, nn_trainer *tr, nn_model *m, const nn_data *d, int *steps)
{
    int B = (int)hx_with_int(c, "batch"), T = (int)hx_with_int(c, "seq_len"), accum = (int)hx_with_int(c, "accum");
    long long tokens = hx_with_int(c, "tokens");
    if (B < 1 || T < 2 || accum < 1) return error("stage '%s': batch, accum must be >= 1 and seq_len >= 2", c->stage_name);
    long long st_ll = train_steps(hx_with_int(c, "steps"), tokens, accum, B, T);
    if (st_ll > 1000000000) return error("stage '%s': %lld steps; at most 1e9", c->stage_name, st_ll);
    int st = (int)st_ll;
    if (st < 1) return error("stage '%s': steps must be >= 1 (or tokens > 0)", c->stage_name);
    nn_sched sch = {.lr = hx_with_num(c, "lr"), .min_lr = hx_with_num(c, "min_lr"),
                    .decay_frac = hx_with_num(c, "decay_frac"), .warmup = (int)hx_with_int(c, "warmup"), .total = st};
    if (nn_sched_parse(hx_with_str(c, "schedule"), &sch.kind)) return error("stage '%s': unknown schedule", c->stage_name);
    if (nn_trainer_init(tr, m, d, B, T, &sch, accum)) return error_prefix("stage '%s'", c->stage_name);
    tr->weight_decay = (float)hx_with_num(c, "weight_decay");
    tr->clip = (float)hx_with_num(c, "grad_clip");
    uint64_t seed = (uint64_t)hx_with_int(c, "seed");
    if (seed && d->n > (size_t)T + 1) { /* another seed reads the text from another place (resume restores pos) */
        hx_rng r;
        hx_rng_seed(&r, seed);
        tr->ld.pos = (size_t)hx_rng_below(&r, d->n - (size_t)T - 1);
    }
    *steps = st;
    return 0;
}

void stage_train_env_fit_cfg(hx_stage_ctx *c, stage_train_env *env, nn_fit_cfg *fc, int steps)
{
    free(env->log_path);
    env->log_path = hx_path_join(c->out_dir, STAGE_TRAIN_LOG);
    stage_train_fit_cfg(c, fc, steps, env->log_path);
}

int stage_train_finish(hx_stage_ctx *c, stage_train_env *env, const nn_trainer *tr, const nn_fit_result *res)
{
    nn_model *m = env->student;
    st_dtype dt = !strcmp(hx_with_str(c, "dtype"), "bfloat16") ? ST_BF16 : ST_F32;
    if (nn_model_save(m, c->out_dir, dt, NN_SHARD_BYTES)) return error_prefix("stage '%s'", c->stage_name);
    if (nn_hfdir_add_tokenizer(c->out_dir, env->tok_path)) return error_prefix("stage '%s'", c->stage_name);
    if (c->metrics) {
        size_t trainable = 0;
        for (int i = 0; i < m->n_params; i++)
            if (m->params[i].goff != SIZE_MAX) trainable += m->params[i].numel;
        json_object_set_new(c->metrics, "initial_loss", hx_json_num(res->first_loss));
        json_object_set_new(c->metrics, "steps", json_integer(tr->step));
        json_object_set_new(c->metrics, "trainable_params", json_integer((json_int_t)trainable));
    }
    stage_train_metrics(c, m, tr, res);
    return 0;
}

int stage_train_fit_kl_ce(hx_stage_ctx *c, stage_train_env *env, nn_trainer *tr, int steps, nn_fit_micro fn, void *arg,
                       nn_fit_result *res)
{
    nn_fit_cfg fc;
    stage_train_env_fit_cfg(c, env, &fc, steps);
    fc.part_names[0] = "kl";
    fc.part_names[1] = "ce";
    if (nn_fit(tr, &fc, fn, arg, res) || stage_train_finish(c, env, tr, res)) return -1;
    if (c->metrics) {
        json_object_set_new(c->metrics, "final_kl", hx_json_num(res->last_part[0]));
        json_object_set_new(c->metrics, "final_ce", hx_json_num(res->last_part[1]));
    }
    return 0;
}

/* ---------------------------------------------------------------- the distill kind */

static const hx_field distill_fields[] = {
    {"objective", HX_T_STR, "\"kl\"", "kl|reverse_kl|ce|kl+ce",
     "kl: forward KL to the teacher; reverse_kl; ce: next-token cross-entropy only; kl+ce: alpha*kl + (1-alpha)*ce"},
    {"alpha", HX_T_NUM, "0.5", NULL, "kl+ce: weight of the KL term"},
    {"temperature", HX_T_NUM, "1.0", NULL, "softmax temperature of both distributions (the KL is scaled by its square)"},
    {"freeze", HX_T_STRLIST, "[]", "embed|attention|kda|mlp|norm|lm_head", "parameter groups kept fixed"},
    {"file", HX_T_STR, "\"corpus/pretrain.txt\"", NULL, "the text inside the data artifact (documents end with <|endoftext|> lines)"},
    HX_TRAIN_FIELDS("500", "0.001", "0.0001", "20"),
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role distill_roles[] = {
    {"student", "convert|align|distill|finetune|pretrain", 0, "the hybrid student (usually after align)"},
    {"teacher", "pretrain|finetune", 1, "the Qwen3 teacher (objectives with a KL): a pretrain stage, or its post-trained finetune"},
    {"data", "data", 0, "the data world: its `file` is the distillation text"},
    {NULL, NULL, 0, NULL},
};

typedef struct text_job {
    nn_trainer *tr;
    nn_distill ds;
} text_job;

/* One micro-batch of packed text: the loader's next rows, then the objective and its backward. */
static int text_micro(void *arg, long long micro, float scale, nn_fit_stats *st)
{
    (void)micro;
    text_job *j = arg;
    nn_trainer *tr = j->tr;
    nn_loader_next(&tr->ld, tr->ids, tr->tg, tr->seg, tr->pos);
    nn_batch bt = {.B = tr->ld.B, .T = tr->ld.T, .ids = tr->ids, .pos = tr->pos, .seg = tr->seg};
    nn_distill_loss L;
    if (nn_distill_micro(&j->ds, &bt, tr->tg, scale, 1, &L)) return -1;
    stage_fit_stats_add(st, &L);
    return 0;
}

static int distill_run(hx_stage_ctx *c)
{
    nn_objective obj;
    if (nn_objective_parse(hx_with_str(c, "objective"), &obj)) return error("stage '%s': unknown objective", c->stage_name);
    stage_train_env env;
    nn_data d = {0};
    text_job j = {0};
    nn_trainer tr = {0};
    unsigned mask;
    int steps, r = -1;
    if (stage_train_open(c, &env, nn_objective_needs_teacher(obj), 1) || stage_train_freeze(c, &mask)) goto out;
    if (nn_data_from_text(&d, env.tok, env.data_path)) goto out;
    nn_model_set_trainable(env.student, mask);
    if (stage_train_trainer(c, &tr, env.student, &d, &steps)) goto out;
    if (nn_distill_init(&j.ds, env.student, env.teacher, tr.ld.B, tr.ld.T, obj, (float)hx_with_num(c, "alpha"),
                        (float)hx_with_num(c, "temperature"))) {
        error_prefix("stage '%s'", c->stage_name);
        goto out;
    }
    j.tr = &tr;
    log_info("%s distillation of a %zu-parameter student, %zu tokens of text, %d steps of %d x %d x %d",
             nn_objective_name(obj), nn_config_n_params(&env.student->cfg), d.n, steps, tr.accum, tr.ld.B, tr.ld.T);
    nn_fit_result res;
    r = stage_train_fit_kl_ce(c, &env, &tr, steps, text_micro, &j, &res);
out:
    nn_distill_release(&j.ds);
    nn_trainer_release(&tr);
    nn_data_release(&d);
    stage_train_close(&env);
    return r;
}

const hx_stage_kind hx_kind_distill = {
    .name = "distill",
    .version = 1,
    .doc = "GenDistill stage 3a: end-to-end distillation of the student on pretraining text (KL / reverse KL / CE)",
    .fields = distill_fields,
    .roles = distill_roles,
    .needs_gpu = 1,
    .run = distill_run,
    .canon = stage_train_canon,
};
