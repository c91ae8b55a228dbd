/* test_hfdir.c - checkpoint directories are complete Hugging Face ones (nn/hfdir.c): the files, their fields,
 * the embedded remote code equal to nn/modeling_hx_hybrid.py, weights unchanged, the committed directories of
 * tests/reference/hf_hybrid_check.py still what hx writes, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/chat.h"
#include "nn/hfdir.h"
#include "nn/model.h"
#include "nn/textgen.h"
#include "nn/tokenizer.h"

static char *top_path(const char *rel)
{
    const char *top = getenv("TOP");
    return xstrfmt("%s/%s", top ? top : ".", rel);
}

static json_t *load_json(const char *dir, const char *name)
{
    char *p = hx_path_join(dir, name);
    json_error_t e;
    json_t *o = json_load_file(p, 0, &e);
    if (!o) fail_msg("%s: %s", p, e.text);
    free(p);
    return o;
}

static char *slurp(const char *path, size_t *len)
{
    char *buf;
    if (hx_read_file(path, &buf, len)) fail_msg("%s", hx_last_error());
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

/* tests/reference/hf_hybrid_model (written by hx from tests/e2e/distill_chain.sh) saved again into a fresh directory
 * gives the same directory, byte for byte: the weights are unchanged by the save, and the committed copy that
 * tests/reference/hf_hybrid_check.py loads on the GPU machine is what this hx writes (remote code included). */
static void test_hybrid_dir(void **state)
{
    (void)state;
    k_backend *be = k_backend_new("cpu", 1);
    char *ref = top_path("tests/reference/hf_hybrid_model");
    nn_model *m;
    if (nn_model_load(&m, ref, be)) fail_msg("%s", hx_last_error());
    char tmpl[] = "/tmp/hx-hfdir-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    if (nn_model_save(m, tmpl, ST_F32, 0)) fail_msg("%s", hx_last_error());

    /* config.json: the remote code's classes and the targeted transformers release */
    json_t *c = load_json(tmpl, "config.json");
    json_t *am = json_object_get(c, "auto_map");
    assert_string_equal(json_string_value(json_object_get(am, "AutoConfig")), "modeling_hx_hybrid.HxHybridConfig");
    assert_string_equal(json_string_value(json_object_get(am, "AutoModelForCausalLM")),
                        "modeling_hx_hybrid.HxHybridForCausalLM");
    assert_string_equal(json_string_value(json_object_get(c, "transformers_version")), NN_HF_TRANSFORMERS_VERSION);
    json_decref(c);
    /* the remote code is the file of the source tree */
    char *src = top_path("nn/modeling_hx_hybrid.py"), *py = hx_path_join(tmpl, "modeling_hx_hybrid.py");
    assert_true(same_file(src, py));
    free(src);
    free(py);

    /* generation_config.json before a tokenizer: greedy, the config's eos */
    json_t *g = load_json(tmpl, "generation_config.json");
    assert_true(json_is_false(json_object_get(g, "do_sample")));
    assert_int_equal(json_integer_value(json_object_get(g, "eos_token_id")), m->cfg.eos_id);
    assert_string_equal(json_string_value(json_object_get(g, "transformers_version")), NN_HF_TRANSFORMERS_VERSION);
    json_decref(g);

    /* the tokenizer: tokenizer.json copied, tokenizer_config.json (chat template, eos, pad), every stop token */
    char *tj = hx_path_join(ref, "tokenizer.json");
    if (nn_hfdir_add_tokenizer(tmpl, tj)) fail_msg("%s", hx_last_error());
    json_t *tc = load_json(tmpl, "tokenizer_config.json");
    assert_string_equal(json_string_value(json_object_get(tc, "chat_template")), nn_chat_template_jinja);
    assert_string_equal(json_string_value(json_object_get(tc, "tokenizer_class")), "PreTrainedTokenizerFast");
    nn_tokenizer *tok;
    if (nn_tokenizer_load(&tok, tj)) fail_msg("%s", hx_last_error());
    int end = nn_tokenizer_token_id(tok, "<|endoftext|>"), im_end = nn_tokenizer_token_id(tok, "<|im_end|>");
    assert_int_equal(m->cfg.eos_id, end); /* the pretrain stage's eos; the config has no pad */
    assert_int_equal(m->cfg.pad_id, -1);
    int32_t eos[NN_MAX_STOP_IDS];
    assert_int_equal(nn_eos_ids(&m->cfg, tok, eos), 2); /* eos, <|im_end|>; <|endoftext|> is the eos already */
    assert_int_equal(eos[0], end);
    assert_int_equal(eos[1], im_end);
    assert_string_equal(json_string_value(json_object_get(tc, "eos_token")), "<|endoftext|>");
    assert_string_equal(json_string_value(json_object_get(tc, "pad_token")), "<|endoftext|>");
    assert_true(json_is_false(json_object_get(tc, "add_bos_token")));
    json_decref(tc);
    g = load_json(tmpl, "generation_config.json");
    json_t *ge = json_object_get(g, "eos_token_id");
    assert_int_equal(json_array_size(ge), 2);
    for (int i = 0; i < 2; i++) assert_int_equal(json_integer_value(json_array_get(ge, (size_t)i)), eos[i]);
    json_decref(g);
    nn_tokenizer_free(tok);

    /* every file equals the committed one */
    const char *files[] = {"config.json", "model.safetensors", "modeling_hx_hybrid.py", "tokenizer.json",
                           "tokenizer_config.json", "generation_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *a = hx_path_join(tmpl, files[i]), *b = hx_path_join(ref, files[i]);
        if (!same_file(a, b)) fail_msg("%s differs from %s", a, b);
        free(a);
        free(b);
    }
    /* a second call with the directory's own tokenizer.json keeps it */
    char *own = hx_path_join(tmpl, "tokenizer.json");
    if (nn_hfdir_add_tokenizer(tmpl, own)) fail_msg("%s", hx_last_error());
    assert_true(same_file(tj, own));
    free(own);
    free(tj);
    free(ref);
    hx_rm_rf(tmpl);
    nn_model_free(m);
    k_backend_free(be);
}

/* A model of the hx_hybrid fixture (kda, attention, gdn, kda). */
static nn_model *load_fixture(k_backend *be)
{
    char *dir = top_path("tests/fixtures/hybrid_mixed");
    nn_model *m;
    if (nn_model_load(&m, dir, be)) fail_msg("%s", hx_last_error());
    free(dir);
    return m;
}

/* The fixture models that tests/reference/hf_hybrid_check.py also runs through transformers (a gdn layer; silu
 * convs): what hx writes for them is the committed tests/reference/hf_hybrid_{gdn,silu}, byte for byte. */
static void test_reference_dirs(void **state)
{
    (void)state;
    const char *pairs[][2] = {{"tests/fixtures/hybrid_mixed", "tests/reference/hf_hybrid_gdn"},
                              {"tests/fixtures/hybrid_all_kda_silu", "tests/reference/hf_hybrid_silu"}};
    const char *files[] = {"config.json", "model.safetensors", "modeling_hx_hybrid.py", "generation_config.json"};
    k_backend *be = k_backend_new("cpu", 1);
    for (int i = 0; i < 2; i++) {
        char *src = top_path(pairs[i][0]), *ref = top_path(pairs[i][1]);
        nn_model *m;
        if (nn_model_load(&m, src, be)) fail_msg("%s", hx_last_error());
        char tmpl[] = "/tmp/hx-hfdir-XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        if (nn_model_save(m, tmpl, ST_F32, 0)) fail_msg("%s", hx_last_error());
        for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
            char *a = hx_path_join(tmpl, files[f]), *b = hx_path_join(ref, files[f]);
            if (!same_file(a, b)) fail_msg("%s differs from %s", a, b);
            free(a);
            free(b);
        }
        hx_rm_rf(tmpl);
        nn_model_free(m);
        free(src);
        free(ref);
    }
    k_backend_free(be);
}

/* A Qwen3 checkpoint: no remote code and no auto_map (transformers knows qwen3); shards keep the other files. */
static void test_qwen3_sharded_dir(void **state)
{
    (void)state;
    k_backend *be = k_backend_new("cpu", 1);
    char *dir = top_path("tests/fixtures/qwen3_untied");
    nn_model *m;
    if (nn_model_load(&m, dir, be)) fail_msg("%s", hx_last_error());
    free(dir);
    char tmpl[] = "/tmp/hx-hfdir-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    if (nn_model_save(m, tmpl, ST_BF16, 4096)) fail_msg("%s", hx_last_error());
    char *idx = hx_path_join(tmpl, "model.safetensors.index.json"), *py = hx_path_join(tmpl, "modeling_hx_hybrid.py");
    assert_true(hx_file_exists(idx));
    assert_false(hx_file_exists(py));
    json_t *c = load_json(tmpl, "config.json");
    assert_null(json_object_get(c, "auto_map"));
    assert_string_equal(json_string_value(json_object_get(c, "transformers_version")), NN_HF_TRANSFORMERS_VERSION);
    json_decref(c);
    json_t *g = load_json(tmpl, "generation_config.json");
    assert_true(json_is_false(json_object_get(g, "do_sample")));
    json_decref(g);
    free(idx);
    free(py);
    hx_rm_rf(tmpl);
    nn_model_free(m);
    k_backend_free(be);
}

/* A missing tokenizer or a directory without config.json is an error naming the directory; nothing is half-written. */
static void test_errors(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/hx-hfdir-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *tj = top_path("tests/reference/hf_hybrid_model/tokenizer.json");
    assert_int_equal(nn_hfdir_add_tokenizer(tmpl, tj), -1); /* no config.json */
    assert_non_null(strstr(hx_last_error(), tmpl));
    assert_non_null(strstr(hx_last_error(), "config.json"));
    k_backend *be = k_backend_new("cpu", 1);
    nn_model *m = load_fixture(be);
    if (nn_model_save(m, tmpl, ST_F32, 0)) fail_msg("%s", hx_last_error());
    assert_int_equal(nn_hfdir_add_tokenizer(tmpl, "/nonexistent/tokenizer.json"), -1);
    assert_non_null(strstr(hx_last_error(), "/nonexistent/tokenizer.json"));
    char *tc = hx_path_join(tmpl, "tokenizer_config.json");
    assert_false(hx_file_exists(tc));
    free(tc);
    free(tj);
    hx_rm_rf(tmpl);
    nn_model_free(m);
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hybrid_dir),
        cmocka_unit_test(test_reference_dirs),
        cmocka_unit_test(test_qwen3_sharded_dir),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
