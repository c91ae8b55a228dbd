/* config.c - model hyper-parameters from and to Hugging Face config.json (Qwen3, hx_hybrid), parameter groups. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/hfdir.h"
#include "nn/model.h"

static const char *const group_names[NN_NGROUPS] = {"embed", "attention", "kda", "mlp", "norm", "lm_head"};

const char *nn_group_name(nn_group g) { return (unsigned)g < NN_NGROUPS ? group_names[g] : "?"; }

int nn_group_parse(const char *s, nn_group *g)
{
    for (int i = 0; i < NN_NGROUPS; i++)
        if (!strcmp(s, group_names[i])) {
            *g = (nn_group)i;
            return 0;
        }
    return -1;
}

void nn_config_qwen3(nn_config *c, int vocab, int d, int n_layers, int n_heads, int n_kv_heads, int head_dim,
                     int ffn)
{
    memset(c, 0, sizeof *c);
    strcpy(c->model_type, "qwen3");
    c->vocab = vocab;
    c->d = d;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->ffn = ffn;
    c->max_pos = 40960;
    c->rope_theta = 1e6f;
    c->norm_eps = 1e-6f;
    c->init_range = 0.02f;
    c->tied = 1;
    c->bos_id = c->eos_id = c->pad_id = -1;
    c->conv_size = 4;
    c->gate_rank = head_dim;
    strcpy(c->conv_act, "identity");
}

/* Integer field: required (def < -1e9 means required) or default. */
static int get_int(json_t *root, const char *key, int *out, long long def, const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < -1000000000LL) return error("%s: missing required field \"%s\"", name, key);
        *out = (int)def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 1000000000)
        return error("%s: field \"%s\" must be an integer in [-1, 1e9]", name, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_num(json_t *root, const char *key, float *out, double def, int required, const char *name)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return error("%s: missing required field \"%s\"", name, key);
        *out = (float)def;
        return 0;
    }
    if (!json_is_number(v)) return error("%s: field \"%s\" must be a number", name, key);
    double x = json_number_value(v);
    if (!isfinite(x)) return error("%s: field \"%s\" is not finite", name, key);
    *out = (float)x;
    return 0;
}

/* eos_token_id may be an int or a list (generation configs): take the first. */
static int get_token_id(json_t *root, const char *key, int *out, const char *name)
{
    json_t *v = json_object_get(root, key);
    *out = -1;
    if (!v || json_is_null(v)) return 0;
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000000)
        return error("%s: field \"%s\" must be a token id", name, key);
    *out = (int)json_integer_value(v);
    return 0;
}

int nn_config_parse(nn_config *c, const char *json, size_t len, const char *name)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return error("%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    int r = -1;
    if (!json_is_object(root)) {
        error("%s: not a JSON object", name);
        goto out;
    }
    nn_config_qwen3(c, 0, 0, 0, 0, 0, 0, 0);
    json_t *mt = json_object_get(root, "model_type");
    if (mt && !json_is_string(mt)) {
        error("%s: \"model_type\" must be a string", name);
        goto out;
    }
    const char *type = mt ? json_string_value(mt) : "qwen3";
    if (strcmp(type, "qwen3") && strcmp(type, "hx_hybrid")) {
        error("%s: model_type \"%s\" is not supported (qwen3 or hx_hybrid)", name, type);
        goto out;
    }
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    if (get_int(root, "vocab_size", &c->vocab, -2000000000LL, name) ||
        get_int(root, "hidden_size", &c->d, -2000000000LL, name) ||
        get_int(root, "num_hidden_layers", &c->n_layers, -2000000000LL, name) ||
        get_int(root, "num_attention_heads", &c->n_heads, -2000000000LL, name) ||
        get_int(root, "intermediate_size", &c->ffn, -2000000000LL, name) ||
        get_int(root, "num_key_value_heads", &c->n_kv_heads, c->n_heads, name) ||
        get_int(root, "max_position_embeddings", &c->max_pos, 40960, name))
        goto out;
    if (c->n_heads <= 0) {
        error("%s: num_attention_heads must be positive", name);
        goto out;
    }
    if (get_int(root, "head_dim", &c->head_dim, c->d / c->n_heads, name)) goto out;
    if (get_num(root, "rms_norm_eps", &c->norm_eps, 1e-6, 0, name) ||
        get_num(root, "initializer_range", &c->init_range, 0.02, 0, name))
        goto out;
    /* rope_theta: transformers 5.x writes rope_parameters.rope_theta, real Qwen3 checkpoints the top level */
    json_t *rp = json_object_get(root, "rope_parameters");
    if (rp && json_is_object(rp) && json_object_get(rp, "rope_theta")) {
        if (get_num(rp, "rope_theta", &c->rope_theta, 1e6, 1, name)) goto out;
        json_t *rt = json_object_get(rp, "rope_type");
        if (rt && (!json_is_string(rt) || strcmp(json_string_value(rt), "default"))) {
            error("%s: rope_parameters.rope_type must be \"default\" (no rope scaling is supported)", name);
            goto out;
        }
    } else if (get_num(root, "rope_theta", &c->rope_theta, 1e6, 0, name))
        goto out;
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        error("%s: rope_scaling is not supported", name);
        goto out;
    }
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie)) {
        error("%s: tie_word_embeddings must be true or false", name);
        goto out;
    }
    c->tied = tie ? json_is_true(tie) : 1;
    json_t *bias = json_object_get(root, "attention_bias");
    if (bias && json_is_true(bias)) {
        error("%s: attention_bias true is not supported (Qwen3 has none)", name);
        goto out;
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu"))) {
        error("%s: hidden_act must be \"silu\"", name);
        goto out;
    }
    if (get_token_id(root, "bos_token_id", &c->bos_id, name) || get_token_id(root, "eos_token_id", &c->eos_id, name) ||
        get_token_id(root, "pad_token_id", &c->pad_id, name))
        goto out;
    if (c->n_layers <= 0 || c->n_layers > NN_MAX_LAYERS) {
        error("%s: num_hidden_layers %d must be in 1..%d", name, c->n_layers, NN_MAX_LAYERS);
        goto out;
    }
    /* layer_types: Qwen3 writes full_attention (or sliding_attention, unsupported); hybrids add kda/gdn */
    json_t *lt = json_object_get(root, "layer_types");
    for (int i = 0; i < c->n_layers; i++) c->mixer[i] = NN_MIX_ATTN;
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != c->n_layers) {
            error("%s: layer_types must be a list of num_hidden_layers (%d) strings", name, c->n_layers);
            goto out;
        }
        for (int i = 0; i < c->n_layers; i++) {
            const char *s = json_string_value(json_array_get(lt, (size_t)i));
            if (s && !strcmp(s, "full_attention")) c->mixer[i] = NN_MIX_ATTN;
            else if (s && !strcmp(s, "kda")) c->mixer[i] = NN_MIX_KDA;
            else if (s && !strcmp(s, "gdn")) c->mixer[i] = NN_MIX_GDN;
            else {
                error("%s: layer_types[%d] = %s: expected full_attention, kda or gdn", name, i, s ? s : "(not a string)");
                goto out;
            }
            if (c->mixer[i] != NN_MIX_ATTN && strcmp(c->model_type, "hx_hybrid")) {
                error("%s: layer_types[%d] is %s but model_type is %s (use hx_hybrid)", name, i, s, c->model_type);
                goto out;
            }
        }
    }
    json_t *sw = json_object_get(root, "use_sliding_window");
    if (sw && json_is_true(sw)) {
        error("%s: use_sliding_window true is not supported", name);
        goto out;
    }
    /* transformers 5 writes "dtype", 4.x "torch_dtype" */
    json_t *dt = json_object_get(root, "dtype");
    if (!json_is_string(dt)) dt = json_object_get(root, "torch_dtype");
    if (json_is_string(dt)) snprintf(c->dtype, sizeof c->dtype, "%s", json_string_value(dt));
    c->gate_rank = c->head_dim;
    json_t *la = json_object_get(root, "linear_attn");
    if (la && !json_is_null(la)) {
        if (!json_is_object(la)) {
            error("%s: linear_attn must be an object {conv_size, conv_act, gate_rank}", name);
            goto out;
        }
        if (get_int(la, "conv_size", &c->conv_size, 4, name) || get_int(la, "gate_rank", &c->gate_rank, c->head_dim, name))
            goto out;
        json_t *ca = json_object_get(la, "conv_act");
        if (ca) {
            const char *s = json_string_value(ca);
            if (!s || (strcmp(s, "identity") && strcmp(s, "silu"))) {
                error("%s: linear_attn.conv_act must be \"identity\" or \"silu\"", name);
                goto out;
            }
            snprintf(c->conv_act, sizeof c->conv_act, "%s", s);
        }
    }
    r = nn_config_check(c, name);
out:
    json_decref(root);
    return r;
}

int nn_config_check(const nn_config *c, const char *name)
{
    if (c->vocab <= 0 || c->d <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 || c->ffn <= 0)
        return error("%s: vocab_size, hidden_size, heads, head_dim and intermediate_size must be positive", name);
    if (c->n_heads % c->n_kv_heads)
        return error("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", name, c->n_heads,
                     c->n_kv_heads);
    if (c->head_dim % 2 || c->head_dim > 1024)
        return error("%s: head_dim %d must be even and at most 1024", name, c->head_dim);
    if (c->n_layers <= 0 || c->n_layers > NN_MAX_LAYERS)
        return error("%s: num_hidden_layers %d must be in 1..%d", name, c->n_layers, NN_MAX_LAYERS);
    /* 2^31 rows x columns overflow int in BLAS calls; stay far below */
    if ((double)c->vocab * c->d > 2e9 || (double)c->ffn * c->d > 2e9 || (double)c->n_heads * c->head_dim * c->d > 2e9)
        return error("%s: a weight matrix is too large", name);
    if (!(c->rope_theta > 0) || !(c->norm_eps > 0))
        return error("%s: rope_theta and rms_norm_eps must be positive", name);
    if (nn_config_has_linear(c) && (c->conv_size < 1 || c->conv_size > 17 || c->gate_rank <= 0))
        return error("%s: linear_attn.conv_size must be in 1..17 and gate_rank positive", name);
    return 0;
}

void nn_rope_inv_freq(const nn_config *c, float *inv)
{
    int K = c->head_dim;
    for (int i = 0; i < K / 2; i++) {
        float expo = (float)(2 * i) / (float)K; /* torch: arange(0, K, 2).float() / K */
        float r = 1.0f / powf(c->rope_theta, expo);
        if (!strcmp(c->dtype, "bfloat16")) r = st_bf16_to_f32(st_f32_to_bf16(r));
        else if (!strcmp(c->dtype, "float16")) r = st_f16_to_f32(st_f32_to_f16(r));
        inv[i] = r;
    }
}

int nn_config_has_linear(const nn_config *c)
{
    for (int i = 0; i < c->n_layers; i++)
        if (c->mixer[i] != NN_MIX_ATTN) return 1;
    return 0;
}

int nn_config_load(nn_config *c, const char *path)
{
    char *buf;
    size_t len;
    if (hx_read_input(path, HX_IN_DOC, &buf, &len)) return -1;
    int r = nn_config_parse(c, buf, len, path);
    free(buf);
    return r;
}

int nn_config_load_dir(nn_config *c, const char *dir)
{
    char *path = hx_path_join(dir, "config.json");
    int r = nn_config_load(c, path);
    free(path);
    return r;
}

int nn_config_save(const nn_config *c, const char *path, const char *dtype_name)
{
    int hybrid = !strcmp(c->model_type, "hx_hybrid");
    json_t *o = json_object();
    json_object_set_new(o, "architectures",
                        json_pack("[s]", hybrid ? "HxHybridForCausalLM" : "Qwen3ForCausalLM"));
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab));
    json_object_set_new(o, "hidden_size", json_integer(c->d));
    json_object_set_new(o, "intermediate_size", json_integer(c->ffn));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_pos));
    json_object_set_new(o, "initializer_range", hx_json_num(c->init_range));
    json_object_set_new(o, "rms_norm_eps", hx_json_num(c->norm_eps));
    json_object_set_new(o, "rope_theta", hx_json_num(c->rope_theta));
    json_object_set_new(o, "rope_parameters", json_pack("{s:o, s:s}", "rope_theta", hx_json_num(c->rope_theta),
                                                        "rope_type", "default"));
    json_object_set_new(o, "rope_scaling", json_null());
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "attention_dropout", hx_json_num(0));
    json_object_set_new(o, "use_cache", json_true());
    json_object_set_new(o, "use_sliding_window", json_false());
    json_object_set_new(o, "sliding_window", json_null());
    json_object_set_new(o, "max_window_layers", json_integer(c->n_layers));
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    if (c->pad_id >= 0) json_object_set_new(o, "pad_token_id", json_integer(c->pad_id));
    json_t *lt = json_array();
    for (int i = 0; i < c->n_layers; i++)
        json_array_append_new(lt, json_string(c->mixer[i] == NN_MIX_ATTN ? "full_attention"
                                              : c->mixer[i] == NN_MIX_KDA ? "kda" : "gdn"));
    json_object_set_new(o, "layer_types", lt);
    if (hybrid)
        json_object_set_new(o, "linear_attn", json_pack("{s:i, s:s, s:i}", "conv_size", c->conv_size, "conv_act",
                                                        c->conv_act, "gate_rank", c->gate_rank));
    json_object_set_new(o, "torch_dtype", json_string(dtype_name));
    json_object_set_new(o, "dtype", json_string(dtype_name));
    if (hybrid) json_object_set_new(o, "auto_map", nn_hfdir_auto_map());
    json_object_set_new(o, "transformers_version", json_string(NN_HF_TRANSFORMERS_VERSION));
    char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    size_t len = strlen(txt);
    char *buf = xmalloc(len + 2);
    memcpy(buf, txt, len);
    buf[len] = '\n';
    free(txt);
    int r = hx_write_file_atomic(path, buf, len + 1);
    free(buf);
    return r;
}
