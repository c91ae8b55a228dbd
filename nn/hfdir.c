/* hfdir.c - completes hx's checkpoint directories as Hugging Face ones: generation and tokenizer configs, remote code. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/chat.h"
#include "nn/hfdir.h"
#include "nn/textgen.h"
#include "nn/tokenizer.h"

/* nn/modeling_hx_hybrid.py, NUL-terminated (the Makefile makes hfdir.o depend on it). */
__asm__(".pushsection .rodata\n"
        ".global nn_hf_modeling_py\n"
        "nn_hf_modeling_py:\n"
        ".incbin \"nn/modeling_hx_hybrid.py\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char nn_hf_modeling_py[];

json_t *nn_hfdir_auto_map(void)
{
    return json_pack("{s:s, s:s}", "AutoConfig", NN_HF_HYBRID_MODULE ".HxHybridConfig", "AutoModelForCausalLM",
                     NN_HF_HYBRID_MODULE ".HxHybridForCausalLM");
}

static int write_json(const char *dir, const char *name, json_t *o)
{
    char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *path = hx_path_join(dir, name), *buf = xstrfmt("%s\n", txt);
    int r = hx_write_file_atomic(path, buf, strlen(buf));
    free(path);
    free(buf);
    free(txt);
    return r;
}

/* generation_config.json: greedy decoding that ends at the given tokens (one id, or a list). */
static int write_generation_config(const char *dir, const nn_config *c, const int32_t *eos, int n_eos)
{
    json_t *o = json_object();
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (n_eos == 1) json_object_set_new(o, "eos_token_id", json_integer(eos[0]));
    else if (n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; i < n_eos; i++) json_array_append_new(a, json_integer(eos[i]));
        json_object_set_new(o, "eos_token_id", a);
    }
    if (c->pad_id >= 0) json_object_set_new(o, "pad_token_id", json_integer(c->pad_id));
    json_object_set_new(o, "do_sample", json_false());
    json_object_set_new(o, "transformers_version", json_string(NN_HF_TRANSFORMERS_VERSION));
    return write_json(dir, "generation_config.json", o);
}

int nn_hfdir_model_files(const char *dir, const nn_config *c)
{
    int32_t eos[NN_MAX_STOP_IDS];
    if (write_generation_config(dir, c, eos, nn_eos_ids(c, NULL, eos))) return -1;
    if (strcmp(c->model_type, "hx_hybrid")) return 0;
    char *path = hx_path_join(dir, NN_HF_HYBRID_MODULE ".py");
    int r = hx_write_file_atomic(path, nn_hf_modeling_py, strlen(nn_hf_modeling_py));
    free(path);
    return r;
}

/* The token string of id, or NULL when the tokenizer does not have it. */
static const char *token_or_null(const nn_tokenizer *t, int id)
{
    return id >= 0 ? nn_tokenizer_token_str(t, id) : NULL;
}

int nn_hfdir_add_tokenizer(const char *dir, const char *tokenizer_json)
{
    char *dst = hx_path_join(dir, "tokenizer.json");
    char *data = NULL;
    size_t len = 0;
    nn_config c;
    nn_tokenizer *tok = NULL;
    int r = nn_config_load_dir(&c, dir);
    if (!r && strcmp(tokenizer_json, dst)) r = hx_read_file(tokenizer_json, &data, &len) || hx_write_file_atomic(dst, data, len);
    if (!r) r = nn_tokenizer_load(&tok, dst);
    if (!r) {
        int32_t eos[NN_MAX_STOP_IDS];
        int n_eos = nn_eos_ids(&c, tok, eos);
        const char *eos_s = n_eos ? token_or_null(tok, eos[0]) : NULL;
        const char *pad_s = token_or_null(tok, c.pad_id);
        if (!pad_s) pad_s = nn_tokenizer_token_id(tok, "<|endoftext|>") >= 0 ? "<|endoftext|>" : eos_s;
        json_t *o = json_object();
        json_object_set_new(o, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
        json_object_set_new(o, "bos_token", c.bos_id >= 0 && token_or_null(tok, c.bos_id)
                                                ? json_string(token_or_null(tok, c.bos_id)) : json_null());
        json_object_set_new(o, "eos_token", eos_s ? json_string(eos_s) : json_null());
        json_object_set_new(o, "pad_token", pad_s ? json_string(pad_s) : json_null());
        json_object_set_new(o, "unk_token", json_null());
        json_object_set_new(o, "add_bos_token", json_false());
        json_object_set_new(o, "add_eos_token", json_false());
        json_object_set_new(o, "clean_up_tokenization_spaces", json_false());
        json_object_set_new(o, "split_special_tokens", json_false());
        json_object_set_new(o, "model_max_length", json_integer(c.max_pos));
        json_object_set_new(o, "chat_template", json_string(nn_chat_template_jinja));
        r = write_json(dir, "tokenizer_config.json", o);
        if (!r) r = write_generation_config(dir, &c, eos, n_eos);
    }
    nn_tokenizer_free(tok);
    free(data);
    free(dst);
    return r ? error_prefix("checkpoint %s: tokenizer files", dir) : 0;
}
