/* stage_convert.c - the `convert` stage kind: a Qwen3 teacher checkpoint in, the Hybrid-KDA student checkpoint out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage.h"
#include "stages/stage_convert.h"
#include "nn/kda_layer.h"
#include "nn/hfdir.h"
#include "nn/model.h"

static const int paper28[] = {0, 2, 6, 11, 13, 18, 21}; /* the authors' search, 28 layers (docs/models.md section 3) */

/*
 * Which layers stay attention (docs/kda.md):
 *   paper      for 28 layers {0,2,6,11,13,18,21}; for L layers n = max(1, round(L/4)) layers, the paper's
 *              j-th kept layer (j spread evenly over the 7) mapped to round(p (L-1) / 27), moved up to the next
 *              free layer on a collision, so the ratio stays 1:3 and the positions follow the paper's.
 *   every_4th  layers 0, 4, 8, ...;  first_last  {0, L-1};  all_kda  none;  [i, j, ...]  exactly those.
 */
int stage_convert_layers(const json_t *spec, int L, unsigned char *attn)
{
    memset(attn, 0, (size_t)L);
    if (L <= 0) return error("convert: the teacher has no layers");
    if (json_is_array(spec)) {
        size_t i;
        json_t *v;
        json_array_foreach(spec, i, v) {
            if (!json_is_integer(v)) return error("convert: layers[%zu] is not an integer", i);
            long long l = json_integer_value(v);
            if (l < 0 || l >= L) return error("convert: layers[%zu] = %lld outside 0..%d", i, l, L - 1);
            attn[l] = 1;
        }
        return 0;
    }
    const char *s = json_string_value(spec);
    if (!s) return error("convert: layers must be paper, every_4th, first_last, all_kda or a list of layer indices");
    if (!strcmp(s, "paper")) {
        int n = (int)lround(L / 4.0);
        if (n < 1) n = 1;
        if (n > 7) n = 7;
        if (L == 28) n = 7;
        for (int j = 0; j < n; j++) {
            int p = paper28[n == 1 ? 0 : (int)lround(j * 6.0 / (n - 1))];
            int l = (int)lround(p * (L - 1) / 27.0);
            while (l < L && attn[l]) l++;
            if (l == L) for (l = 0; attn[l]; l++) {}
            attn[l] = 1;
        }
    } else if (!strcmp(s, "every_4th")) {
        for (int l = 0; l < L; l += 4) attn[l] = 1;
    } else if (!strcmp(s, "first_last")) {
        attn[0] = attn[L - 1] = 1;
    } else if (strcmp(s, "all_kda")) {
        return error("convert: layers '%s' is not paper, every_4th, first_last, all_kda or a list", s);
    }
    return 0;
}

/* inverse of softplus: y = log(1 + e^x)  <=>  x = y + log(-expm1(-y)) */
static float inv_softplus(double y) { return (float)(y + log(-expm1(-y))); }

int stage_convert(const char *teacher_dir, const char *out_dir, const json_t *layers, const char *mixer,
               const char *conv_act, int gate_rank, uint64_t seed)
{
    k_backend *be = k_cpu_new(0);
    nn_model *t = NULL, *s = NULL;
    int rc = -1;
    if (nn_model_load(&t, teacher_dir, be) < 0) {
        error_prefix("convert: teacher");
        goto out;
    }
    nn_config c = t->cfg;
    if (nn_config_has_linear(&c)) {
        error("convert: the teacher in %s is already a hybrid (layer_types has kda/gdn layers)", teacher_dir);
        goto out;
    }
    unsigned char attn[NN_MAX_LAYERS];
    if (stage_convert_layers(layers, c.n_layers, attn) < 0) goto out;
    snprintf(c.model_type, sizeof c.model_type, "hx_hybrid");
    for (int l = 0; l < c.n_layers; l++)
        c.mixer[l] = attn[l] ? NN_MIX_ATTN : !strcmp(mixer, "gdn") ? NN_MIX_GDN : NN_MIX_KDA;
    c.conv_size = 4;
    c.gate_rank = gate_rank > 0 ? gate_rank : c.head_dim;
    snprintf(c.conv_act, sizeof c.conv_act, "%s", conv_act);
    if (nn_model_new(&s, &c, be) < 0) goto out;

    /* everything with the same name is copied (embeddings, norms, MLPs, kept attention layers) */
    hx_rng rng;
    hx_rng_seed(&rng, seed);
    for (int i = 0; i < s->n_params; i++) {
        nn_param *p = &s->params[i];
        float *dst = s->p + p->off;
        int ti = nn_model_find(t, p->name);
        if (ti >= 0) {
            memcpy(dst, t->p + t->params[ti].off, sizeof(float) * p->numel);
            continue;
        }
        const char *la = strstr(p->name, ".linear_attn.");
        if (!la) BUG("convert: student tensor %s has no source", p->name);
        const char *leaf = la + strlen(".linear_attn.");
        char src[128];
        if (!strcmp(leaf, "q_proj.weight") || !strcmp(leaf, "k_proj.weight") || !strcmp(leaf, "v_proj.weight") ||
            !strcmp(leaf, "o_proj.weight")) {
            /* Wq, Wk, Wv, Wo from the teacher's layer: no head expansion, the repeat is on activations */
            snprintf(src, sizeof src, "model.layers.%d.self_attn.%s", p->layer, leaf);
            int si = nn_model_find(t, src);
            if (si < 0 || t->params[si].numel != p->numel) BUG("convert: %s does not match %s", src, p->name);
            memcpy(dst, t->p + t->params[si].off, sizeof(float) * p->numel);
        } else if (strstr(leaf, "_conv.weight")) {
            /* identity: last tap 1, so at init q, k, v equal the teacher's projections */
            int W = (int)p->shape[1];
            for (size_t j = 0; j < p->numel; j++) dst[j] = (j % W) == (size_t)(W - 1) ? 1.0f : 0.0f;
        } else if (!strcmp(leaf, "A_log")) {
            for (size_t j = 0; j < p->numel; j++) dst[j] = (float)log(1.0 + 15.0 * hx_rng_uniform(&rng));
        } else if (!strcmp(leaf, "dt_bias")) {
            for (size_t j = 0; j < p->numel; j++) {
                double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * hx_rng_uniform(&rng));
                dst[j] = inv_softplus(dt < 1e-4 ? 1e-4 : dt);
            }
        } else if (!strcmp(leaf, "g_up.weight") || !strcmp(leaf, "g_up.bias")) {
            memset(dst, 0, sizeof(float) * p->numel); /* output gate sigmoid(0) = 0.5 */
        } else if (!strcmp(leaf, "o_norm.weight")) {
            for (size_t j = 0; j < p->numel; j++) dst[j] = 1.0f;
        } else { /* f_down, f_up, b_proj, g_down: small random */
            for (size_t j = 0; j < p->numel; j++) dst[j] = c.init_range * hx_rng_normal(&rng);
        }
    }
    if (nn_model_save(s, out_dir, ST_F32, 0) < 0) goto out;
    char *tp = hx_path_join(teacher_dir, "tokenizer.json");
    int tr = hx_file_exists(tp) ? nn_hfdir_add_tokenizer(out_dir, tp) : 0;
    free(tp);
    if (tr) goto out;
    int na = 0;
    for (int l = 0; l < c.n_layers; l++) na += attn[l];
    log_info("%d of %d layers stay attention, %d are %s", na, c.n_layers, c.n_layers - na, mixer);
    rc = 0;
out:
    nn_model_free(s);
    nn_model_free(t);
    k_backend_free(be);
    return rc;
}

static const hx_field convert_fields[] = {
    {"layers", HX_T_ANY, "\"paper\"", NULL,
     "layers kept as attention: paper | every_4th | first_last | all_kda | [i, j, ...] (docs/kda.md)"},
    {"mixer", HX_T_STR, "\"kda\"", "kda|gdn", "mixer of the converted layers: kda (per-channel decay) or gdn"},
    {"conv_act", HX_T_STR, "\"identity\"", "identity|silu", "activation after the short convolutions"},
    {"gate_rank", HX_T_INT, "0", NULL, "rank r of the decay and output gates (0: head_dim)"},
    {"seed", HX_T_INT, "0", NULL, "seed of A_log, dt_bias and the small random gate weights"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role convert_roles[] = {
    {"teacher", NULL, 0, "a Qwen3 checkpoint directory (config.json + model.safetensors)"},
    {NULL, NULL, 0, NULL},
};

static int convert_run(hx_stage_ctx *ctx)
{
    const char *tdir = hx_input_dir(ctx, "teacher");
    if (!tdir) return error("stage %s: input 'teacher' is not bound", ctx->stage_name);
    long long r = hx_with_int(ctx, "gate_rank");
    if (r < 0) return error("stage %s: gate_rank must be >= 0", ctx->stage_name);
    if (stage_convert(tdir, ctx->out_dir, hx_with_json(ctx, "layers"), hx_with_str(ctx, "mixer"),
                   hx_with_str(ctx, "conv_act"), (int)r, (uint64_t)hx_with_int(ctx, "seed")) < 0)
        return error_prefix("stage %s", ctx->stage_name);
    return 0;
}

const hx_stage_kind hx_kind_convert = {
    .name = "convert",
    .version = 1,
    .doc = "builds the Hybrid-KDA student from a Qwen3 teacher (docs/models.md section 3)",
    .fields = convert_fields,
    .roles = convert_roles,
    .needs_gpu = 0,
    .run = convert_run,
};
