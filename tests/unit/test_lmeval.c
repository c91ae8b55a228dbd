/* test_lmeval.c - lm-eval 0.4.x conformance pieces: encode_pair with the Qwen3 tokenizer, Python's float repr and
 * json.dumps, results.json / samples_<task>.jsonl of a hand-made run, chat-form LL requests, the bench kind's files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"
#include "nn/textgen.h"
#include "stages/stage.h"
#include "evalsuite/lmeval.h"
#include "evalsuite/prompt.h"

static nn_tokenizer *qwen;

static int setup(void **state)
{
    (void)state;
    if (nn_tokenizer_load_qwen3(&qwen)) fail_msg("%s", hx_last_error());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nn_tokenizer_free(qwen);
    return 0;
}

static char *decode(const int32_t *ids, int n)
{
    char *s;
    size_t len;
    if (nn_tokenizer_decode(qwen, ids, (size_t)n, &s, &len)) fail_msg("%s", hx_last_error());
    return s;
}

static void check_pair(const char *ctx, const char *cont, const char *want_ctx, const char *want_cont)
{
    int32_t *ci, *ki, *wi;
    int nc, nk;
    size_t nw;
    if (nn_encode_pair(qwen, ctx, cont, &ci, &nc, &ki, &nk)) fail_msg("%s", hx_last_error());
    char *c = decode(ci, nc), *k = decode(ki, nk);
    assert_string_equal(c, want_ctx);
    assert_string_equal(k, want_cont);
    /* the context's ids are encode(context without its trailing whitespace) */
    assert_int_equal(nn_tokenizer_encode(qwen, want_ctx, strlen(want_ctx), &wi, &nw), 0);
    assert_int_equal((int)nw, nc);
    assert_memory_equal(wi, ci, nw * sizeof *wi);
    free(c), free(k), free(ci), free(ki), free(wi);
}

static void test_encode_pair(void **state)
{
    (void)state;
    check_pair("Question: 2+2?\nAnswer:", " B", "Question: 2+2?\nAnswer:", " B");
    check_pair("The capital of France is ", " Paris", "The capital of France is", "  Paris");
    check_pair("door and  ", " walked in.", "door and", "   walked in.");
    /* the whole string's ".\n" is one token where the context has "."; the continuation is what follows it, so
     * the "\n" is scored by no one (lm-eval's slicing does the same) */
    check_pair("Recipe:\n1. Mix.\n", " 2. Knead.", "Recipe:\n1. Mix.", " 2. Knead.");
    check_pair("capital of\xe3\x80\x80", " Japan", "capital of", "\xe3\x80\x80 Japan");          /* U+3000 */
    check_pair("co\xc3\xbbte 3\xc2\xa0\xe2\x82\xac,\xc2\xa0", " merci", "co\xc3\xbbte 3\xc2\xa0\xe2\x82\xac,",
               "\xc2\xa0 merci");                                                                 /* U+00A0 */
    check_pair("\xe5\x8c\x97\xe4\xba\xac", " \xe9\xa6\x96", "\xe5\x8c\x97\xe4\xba\xac", " \xe9\xa6\x96");
    /* separately encoded, "France is " keeps its space and " Paris" is one token; lm-eval scores "  Paris" */
    int32_t *ci, *ki;
    int nc, nk;
    assert_int_equal(nn_encode_pair(qwen, "The capital of France is ", " Paris", &ci, &nc, &ki, &nk), 0);
    assert_int_equal(nk, 2);
    free(ci), free(ki);
    /* errors as lm-eval's assertions: nothing left of the continuation, or an empty context */
    assert_int_equal(nn_encode_pair(qwen, "Hello wor", "ld", &ci, &nc, &ki, &nk), -1);
    assert_non_null(strstr(hx_last_error(), "continuation encodes to no tokens"));
    assert_int_equal(nn_encode_pair(qwen, " \n", " A", &ci, &nc, &ki, &nk), -1);
    assert_non_null(strstr(hx_last_error(), "context encodes to no tokens"));
}

static void check_float(double v, const char *want)
{
    char b[32];
    assert_string_equal(ev_py_float(v, b), want);
}

static void test_python_format(void **state)
{
    (void)state;
    /* repr() of each, from CPython 3 */
    check_float(0.1, "0.1");
    check_float(1e-05, "1e-05");
    check_float(1e16, "1e+16");
    check_float(1e15, "1000000000000000.0");
    check_float(123456789012345680.0, "1.2345678901234568e+17");
    check_float(-2.5, "-2.5");
    check_float(1.0, "1.0");
    check_float(0.0001, "0.0001");
    check_float(100.0, "100.0");
    check_float(-0.0, "-0.0");
    check_float(0.0, "0.0");
    check_float(1.5e-7, "1.5e-07");
    check_float(-10.904094219207764, "-10.904094219207764");
    check_float(2.0 / 3.0, "0.6666666666666666");
    check_float(5e-324, "5e-324");
    check_float(1.7976931348623157e308, "1.7976931348623157e+308");
    json_t *o = json_pack("{s:[i,f,{}],s:[],s:s,s:n,s:b}", "a", 1, 2.5, "b", "c", "x\xc3\xa9\n\"\x01\xe2\x80\xa8",
                          "d", "e", 1); /* jansson holds no NaN: a NaN metric is never written */
    char *s = ev_py_json(o, 2);
    assert_string_equal(s, "{\n  \"a\": [\n    1,\n    2.5,\n    {}\n  ],\n  \"b\": [],\n  \"c\": \"x\xc3\xa9\\n\\\"\\u0001"
                           "\xe2\x80\xa8\",\n  \"d\": null,\n  \"e\": true\n}");
    free(s);
    json_decref(o);
    o = json_pack("{s:[i,f,{}],s:[]}", "a", 1, 2.5, "b");
    s = ev_py_json(o, -1);
    assert_string_equal(s, "{\"a\": [1, 2.5, {}], \"b\": []}");
    free(s);
    json_decref(o);
}

/* The LL request in the chat template: one user turn, the generation prompt (with the empty think block when
 * thinking is off), and the continuation without its " " delimiter; prose is never wrapped. */
static void test_chat_requests(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s,s:s,s:s,s:[s,s],s:i}", "task", "t", "doc_id", "t-0", "question", "Q?", "choices", "x",
                          "y", "answer", 1);
    ev_item it;
    assert_int_equal(ev_item_parse(o, "t", &it), 0);
    char *c = ev_ll_prompt(&it, NULL, 0, EV_CHAT | EV_CHAT_NO_THINK), *k = ev_ll_target(&it, 1, EV_CHAT);
    assert_string_equal(c, "<|im_start|>user\nQuestion: Q?\nA. x\nB. y\nAnswer:<|im_end|>\n<|im_start|>assistant\n"
                           "<think>\n\n</think>\n\n");
    assert_string_equal(k, "B");
    free(c), free(k);
    c = ev_ll_prompt(&it, NULL, 0, 0), k = ev_ll_target(&it, 1, 0);
    assert_string_equal(c, "Question: Q?\nA. x\nB. y\nAnswer:");
    assert_string_equal(k, " B");
    free(c), free(k);
    c = ev_gen_prompt(&it, NULL, 0, EV_CHAT | EV_CHAT_NO_THINK);
    assert_non_null(strstr(c, "<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    free(c);
    json_object_set_new(o, "format", json_string("prose"));
    ev_item_release(&it);
    assert_int_equal(ev_item_parse(o, "t", &it), 0);
    c = ev_ll_prompt(&it, NULL, 0, EV_CHAT), k = ev_ll_target(&it, 0, EV_CHAT);
    assert_string_equal(c, "Q?");
    assert_string_equal(k, " x");
    free(c), free(k);
    ev_item_release(&it);
    json_decref(o);
}

static json_t *read_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    return j;
}

/* results.json and samples of three hand-made items: acc [1, 0, 1], acc_norm [1, 1, 1], gen [0, 0, 1]. */
static void test_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/hx-test-lmeval.XXXXXX";
    assert_non_null(mkdtemp(dir));
    json_t *docs[3];
    ev_item it[3];
    for (int i = 0; i < 3; i++) {
        docs[i] = json_pack("{s:s,s:s+,s:s,s:s,s:[s,s],s:i}", "task", "arc", "doc_id", "arc-", i == 0 ? "0" : i == 1 ? "1" : "2",
                            "format", "open", "question", "Q", "choices", "aa", "b", "answer", i == 1 ? 1 : 0);
        assert_int_equal(ev_item_parse(docs[i], "t", &it[i]), 0);
    }
    json_t *oc = json_array();
    int acc[3] = {1, 0, 1}, gen[3] = {0, 0, 1};
    for (int i = 0; i < 3; i++)
        json_array_append_new(oc, json_pack("{s:b,s:b,s:b,s:s}", "ll_correct", acc[i], "ll_norm_correct", 1,
                                            "gen_correct", gen[i], "gen_text", "r"));
    const char *ctx[6] = {"Question: Q\nAnswer:", "Question: Q\nAnswer:", "c1", "c1", "c2", "c2"};
    const char *cont[6] = {" aa", " b", " aa", " b", " aa", " b"};
    double lp[6] = {-1.0, -2.0, -1.0, -3.0, -0.5, -4.0};
    int gr[6] = {1, 0, 0, 0, 1, 0};
    const char *gp[3] = {"g0", "g1", "g2"};
    json_t *orig = json_pack("{s:i}", "arc", 7), *cfg = json_pack("{s:s}", "model", "hx"), *params = json_object();
    ev_lm_run r = {.n = 3, .items = it, .docs = docs, .outcomes = oc, .ll_ctx = ctx, .ll_cont = cont, .ll_logp = lp,
                   .ll_greedy = gr, .gen_prompt = gp, .n_original = orig, .shots = 2, .version = 2.0, .config = cfg,
                   .task_params = params};
    assert_int_equal(ev_lmeval_write(dir, &r), 0);
    char *path = xstrfmt("%s/results.json", dir);
    json_t *res = read_json(path);
    json_t *m = json_object_get(json_object_get(res, "results"), "arc");
    assert_string_equal(json_string_value(json_object_get(m, "alias")), "arc");
    assert_true(fabs(json_real_value(json_object_get(m, "acc,none")) - 2.0 / 3.0) < 1e-15);
    /* sample std of [1, 0, 1] = sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = 1/sqrt(3); / sqrt(3) = 1/3 */
    assert_true(fabs(json_real_value(json_object_get(m, "acc_stderr,none")) - 1.0 / 3.0) < 1e-15);
    assert_true(json_real_value(json_object_get(m, "acc_norm,none")) == 1.0);
    assert_true(json_real_value(json_object_get(m, "acc_norm_stderr,none")) == 0.0);
    assert_true(fabs(json_real_value(json_object_get(m, "gen_acc,none")) - 1.0 / 3.0) < 1e-15);
    json_t *ns = json_object_get(json_object_get(res, "n-samples"), "arc");
    assert_int_equal(json_integer_value(json_object_get(ns, "original")), 7);
    assert_int_equal(json_integer_value(json_object_get(ns, "effective")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "n-shot"), "arc")), 2);
    assert_true(json_real_value(json_object_get(json_object_get(res, "versions"), "arc")) == 2.0);
    json_t *conf = json_object_get(json_object_get(res, "configs"), "arc");
    assert_string_equal(json_string_value(json_object_get(conf, "output_type")), "multiple_choice");
    assert_string_equal(json_string_value(json_object_get(conf, "target_delimiter")), " ");
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "config"), "model")), "hx");
    json_decref(res);
    free(path);

    path = xstrfmt("%s/samples_arc.jsonl", dir);
    char *text;
    size_t len;
    assert_int_equal(hx_read_file(path, &text, &len), 0);
    char *nl = strchr(text, '\n');
    *nl = 0;
    json_t *s = json_loads(text, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(s, "doc_id")), 0);
    assert_string_equal(json_string_value(json_object_get(s, "target")), "0");
    assert_string_equal(json_string_value(json_object_get(s, "target_hash")),
                        "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"); /* sha256("0") */
    json_t *a1 = json_object_get(json_object_get(s, "arguments"), "gen_args_1");
    assert_string_equal(json_string_value(json_object_get(a1, "arg_0")), "Question: Q\nAnswer:");
    assert_string_equal(json_string_value(json_object_get(a1, "arg_1")), " b");
    json_t *r0 = json_array_get(json_array_get(json_object_get(s, "resps"), 0), 0);
    assert_string_equal(json_string_value(json_array_get(r0, 0)), "-1.0");
    assert_string_equal(json_string_value(json_array_get(r0, 1)), "True");
    json_t *f1 = json_array_get(json_object_get(s, "filtered_resps"), 1);
    assert_string_equal(json_string_value(json_array_get(f1, 0)), "-2.0");
    assert_string_equal(json_string_value(json_array_get(f1, 1)), "False");
    assert_string_equal(json_string_value(json_object_get(s, "filter")), "none");
    assert_true(json_real_value(json_object_get(s, "acc")) == 1.0);
    char hex[65];
    hx_sha256_hex("Question: Q\nAnswer:", 19, hex);
    assert_string_equal(json_string_value(json_object_get(s, "prompt_hash")), hex);
    char *dj = ev_py_json(docs[0], 2);
    hx_sha256_hex(dj, strlen(dj), hex);
    assert_string_equal(json_string_value(json_object_get(s, "doc_hash")), hex);
    /* the file's lines are Python's json.dumps of the same object */
    char *again = ev_py_json(s, -1);
    assert_string_equal(again, text);
    free(again), free(dj), free(text), free(path);
    json_decref(s);
    for (int i = 0; i < 3; i++) ev_item_release(&it[i]), json_decref(docs[i]);
    json_decref(oc), json_decref(orig), json_decref(cfg), json_decref(params);
    char *rm = xstrfmt("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_pair), cmocka_unit_test(test_python_format), cmocka_unit_test(test_chat_requests),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
