/* test_generate.c - text generation and scoring through a tokenizer: chat template, stop strings, batching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/bpe_train.h"
#include "nn/textgen.h"

static void test_textgen(void **state)
{
    (void)state;
    const char *text = "The capital of France is Paris. The capital of Spain is Madrid. The cat sat on the mat. "
                       "The capital of Italy is Rome. <|im_start|>user\nWhat?<|im_end|>\n";
    char *json;
    size_t jl;
    nn_bpe_opts bo = {.vocab_size = 300, .min_frequency = 1};
    assert_int_equal(nn_bpe_train(text, strlen(text), &bo, &json, &jl, NULL), 0);
    nn_tokenizer *tok;
    assert_int_equal(nn_tokenizer_load_mem(&tok, json, jl, "<bpe>"), 0);
    free(json);
    k_backend *be = k_cpu_new(2);
    nn_config c;
    nn_config_qwen3(&c, (int)nn_tokenizer_vocab_size(tok), 32, 2, 4, 2, 8, 64);
    nn_model *m;
    assert_int_equal(nn_model_new(&m, &c, be), 0);
    nn_model_init_random(m, 5);
    const char *prompts[3] = {"The capital of", "The cat", "What is the capital of Italy?"};
    char *out[3], *out1[3];
    nn_textgen_opts o = {.max_new = 6};
    assert_int_equal(nn_textgen(m, tok, prompts, 3, 3, &o, out), 0);
    assert_int_equal(nn_textgen(m, tok, prompts, 3, 1, &o, out1), 0); /* batching does not change greedy output */
    for (int i = 0; i < 3; i++) assert_string_equal(out[i], out1[i]);
    /* a stop string cuts the completion where it first occurs */
    if (strlen(out[0]) > 2) {
        char stop[3] = {out[0][1], out[0][2], 0};
        const char *stops[1] = {stop};
        nn_textgen_opts os = {.max_new = 6, .stop = stops, .n_stop = 1};
        char *cut;
        assert_int_equal(nn_textgen(m, tok, prompts, 1, 1, &os, &cut), 0);
        assert_null(strstr(cut, stop));
        assert_int_equal(strncmp(cut, out[0], strlen(cut)), 0);
        free(cut);
    }
    char *w = nn_chat_wrap("Hi");
    assert_string_equal(w, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(w);
    nn_textgen_opts oc = {.max_new = 3, .chat = 1, .stop_at_eos = 1};
    char *co;
    assert_int_equal(nn_textgen(m, tok, prompts + 2, 1, 1, &oc, &co), 0);
    free(co);
    const char *ctx[2] = {"The capital of France is", "The cat sat on"}, *cont[2] = {" Paris", " the mat"};
    double lp[2];
    int greedy[2], nt[2];
    assert_int_equal(nn_textscore(m, tok, ctx, cont, 2, 2, 0, lp, greedy, nt), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(lp[i] < 0);
        assert_true(nt[i] >= 1);
    }
    for (int i = 0; i < 3; i++) {
        free(out[i]);
        free(out1[i]);
    }
    nn_model_free(m);
    nn_tokenizer_free(tok);
    k_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_textgen)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
