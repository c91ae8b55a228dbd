/* stage_pretrain.c - the `pretrain` stage kind: trains a Qwen3 teacher from scratch on the data world, or loads an HF dir. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_train.h"
#include "nn/engine.h"
#include "nn/hfdir.h"
#include "nn/model.h"
#include "nn/tokenizer.h"

/* Sizes come from the recipe (recipes/base/scales.yaml, scales.<scale>.teacher); one it leaves out takes the default
 * below, which is the tiny scale's (docs/design.md, "Scales"; tests/e2e/engine_pretrain.sh checks they agree). */
static const hx_field pretrain_fields[] = {
    {"source", HX_T_STR, "\"train\"", "train|load", "train: from scratch on the data world; load: an HF directory `path`"},
    {"path", HX_T_PATH, "\"\"", NULL, "load: a Hugging Face checkpoint directory (config.json + safetensors; content keyed)"},
    {"hidden", HX_T_INT, "128", NULL, "hidden size d"},
    {"layers", HX_T_INT, "4", NULL, "decoder layers"},
    {"heads", HX_T_INT, "4", NULL, "query heads"},
    {"kv_heads", HX_T_INT, "2", NULL, "key/value heads (GQA)"},
    {"head_dim", HX_T_INT, "32", NULL, "head dimension K"},
    {"ffn", HX_T_INT, "384", NULL, "MLP width"},
    {"tied", HX_T_BOOL, "true", NULL, "tie the lm_head to the embeddings"},
    {"rope_theta", HX_T_NUM, "10000", NULL, "RoPE base"},
    {"seq_len", HX_T_INT, "128", NULL, "tokens per packed row"},
    {"batch", HX_T_INT, "16", NULL, "rows per micro-batch"},
    {"accum", HX_T_INT, "1", NULL, "micro-batches per optimizer step (gradient accumulation)"},
    {"steps", HX_T_INT, "500", NULL, "optimizer steps"},
    {"lr", HX_T_NUM, "0.003", NULL, "peak learning rate"},
    {"min_lr", HX_T_NUM, "0.0003", NULL, "final learning rate (cosine, wsd)"},
    {"warmup", HX_T_INT, "20", NULL, "linear warmup steps"},
    {"schedule", HX_T_STR, "\"cosine\"", "cosine|wsd|constant", "learning-rate schedule"},
    {"decay_frac", HX_T_NUM, "0.2", NULL, "wsd: fraction of the steps spent decaying"},
    {"weight_decay", HX_T_NUM, "0.1", NULL, "AdamW decoupled weight decay (matrices only)"},
    {"grad_clip", HX_T_NUM, "1.0", NULL, "clip the global gradient norm (0: off)"},
    {"seed", HX_T_INT, "0", NULL, "initialisation seed"},
    {"ckpt_every", HX_T_INT, "100", NULL, "steps between resume checkpoints"},
    {"log_every", HX_T_INT, "10", NULL, "steps between train_log.jsonl lines"},
    {"dtype", HX_T_STR, "\"float32\"", "float32|bfloat16", "dtype of the written model.safetensors"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role pretrain_roles[] = {
    {"data", "data", 1, "the data world: its corpus/pretrain.txt is the training text (source train)"},
    {"tokenizer", "tokenizer", 1, "the tokenizer stage: its tokenizer.json (source train; copied to the output)"},
    {NULL, NULL, 0, NULL},
};

static int pretrain_load(hx_stage_ctx *c)
{
    const char *path = hx_with_str(c, "path");
    if (!path[0]) return error("stage '%s': source load needs `path` (a Hugging Face checkpoint directory)", c->stage_name);
    if (nn_checkpoint_check(path)) return error_prefix("stage '%s'", c->stage_name);
    int own;
    k_backend *be = hx_stage_backend(c, &own);
    if (!be) return -1;
    nn_model *m;
    int r = nn_model_load(&m, path, be);
    if (!r) {
        st_dtype dt = !strcmp(m->cfg.dtype, "bfloat16") ? ST_BF16 : !strcmp(m->cfg.dtype, "float16") ? ST_F16 : ST_F32;
        r = nn_model_save(m, c->out_dir, dt, NN_SHARD_BYTES);
        nn_model_free(m);
    }
    if (own) k_backend_free(be);
    char *ts = hx_path_join(path, "tokenizer.json");
    if (!r && hx_file_exists(ts)) r = nn_hfdir_add_tokenizer(c->out_dir, ts);
    free(ts);
    return r;
}

static int pretrain_run(hx_stage_ctx *c)
{
    if (!strcmp(hx_with_str(c, "source"), "load")) return pretrain_load(c);
    const char *data = hx_input_dir(c, "data"), *tokd = hx_input_dir(c, "tokenizer");
    if (!data || !tokd)
        return error("stage '%s': source train needs the inputs `data` (a data stage) and `tokenizer` (a tokenizer stage)",
                     c->stage_name);
    int steps = (int)hx_with_int(c, "steps"), B = (int)hx_with_int(c, "batch"), T = (int)hx_with_int(c, "seq_len");
    int accum = (int)hx_with_int(c, "accum"), ckpt_every = (int)hx_with_int(c, "ckpt_every");
    int log_every = (int)hx_with_int(c, "log_every");
    if (steps < 1 || B < 1 || T < 2 || accum < 1 || ckpt_every < 1 || log_every < 1)
        return error("stage '%s': steps, batch, accum, ckpt_every, log_every must be >= 1 and seq_len >= 2", c->stage_name);
    char *tokp = hx_path_join(tokd, "tokenizer.json"), *corpus = hx_path_join(data, "corpus/pretrain.txt");
    nn_tokenizer *tok = NULL;
    nn_data d = {0};
    k_backend *be = NULL;
    nn_model *m = NULL;
    nn_trainer tr = {0};
    int own = 0;
    char *logp = hx_path_join(c->out_dir, STAGE_TRAIN_LOG);
    int r = -1;
    if (nn_tokenizer_load(&tok, tokp) || nn_data_from_text(&d, tok, corpus)) goto out;
    nn_config cfg;
    nn_config_qwen3(&cfg, (int)nn_tokenizer_vocab_size(tok), (int)hx_with_int(c, "hidden"), (int)hx_with_int(c, "layers"),
                    (int)hx_with_int(c, "heads"), (int)hx_with_int(c, "kv_heads"), (int)hx_with_int(c, "head_dim"),
                    (int)hx_with_int(c, "ffn"));
    cfg.tied = hx_with_bool(c, "tied");
    cfg.rope_theta = (float)hx_with_num(c, "rope_theta");
    cfg.max_pos = T > 512 ? T : 512;
    cfg.eos_id = d.eos;
    cfg.bos_id = d.eos;
    strcpy(cfg.dtype, "float32"); /* training numerics; the written dtype is recorded when saving */
    if (!(be = hx_stage_backend(c, &own)) || nn_model_new(&m, &cfg, be)) goto out;
    nn_model_init_random(m, (uint64_t)hx_with_int(c, "seed"));
    nn_model_set_trainable(m, NN_ALL_GROUPS);
    nn_model_set_recompute(m, c->recompute);
    nn_sched sch = {.lr = hx_with_num(c, "lr"), .min_lr = hx_with_num(c, "min_lr"), .decay_frac = hx_with_num(c, "decay_frac"),
                    .warmup = (int)hx_with_int(c, "warmup"), .total = steps};
    if (nn_sched_parse(hx_with_str(c, "schedule"), &sch.kind)) {
        error("stage '%s': unknown schedule", c->stage_name);
        goto out;
    }
    if (nn_trainer_init(&tr, m, &d, B, T, &sch, accum)) goto out;
    tr.weight_decay = (float)hx_with_num(c, "weight_decay");
    tr.clip = (float)hx_with_num(c, "grad_clip");
    log_info("Qwen3 teacher of %zu parameters, %zu tokens (%zu documents), %d steps of %d x %d x %d tokens",
             nn_config_n_params(&cfg), d.n, d.n_docs, steps, accum, B, T);
    nn_fit_cfg fc;
    nn_fit_result res;
    stage_train_fit_cfg(c, &fc, steps, logp);
    if (nn_fit(&tr, &fc, nn_train_xent_micro, &tr, &res)) goto out;
    if (nn_model_save(m, c->out_dir, !strcmp(hx_with_str(c, "dtype"), "bfloat16") ? ST_BF16 : ST_F32, NN_SHARD_BYTES))
        goto out;
    r = nn_hfdir_add_tokenizer(c->out_dir, tokp);
    if (!r) {
        if (c->metrics) json_object_set_new(c->metrics, "corpus_tokens", json_integer((json_int_t)d.n));
        stage_train_metrics(c, m, &tr, &res);
    }
out:
    nn_trainer_release(&tr);
    nn_model_free(m);
    if (own) k_backend_free(be);
    nn_data_release(&d);
    nn_tokenizer_free(tok);
    free(tokp);
    free(corpus);
    free(logp);
    return r;
}

const hx_stage_kind hx_kind_pretrain = {
    .name = "pretrain",
    .version = 1,
    .doc = "trains a Qwen3 teacher from scratch on the data world's corpus, or loads an HF checkpoint directory",
    .fields = pretrain_fields,
    .roles = pretrain_roles,
    .needs_gpu = 1, /* trains a model: a GPU when --device gives one */
    .run = pretrain_run,
};
