/* test_tokenizer_chat.c - Qwen3 chat template rendering, prompt/completion split, chat token ids and boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/chat.h"
#include "nn/tokenizer.h"

static const nn_chat_msg conv[] = {
    {"system", "Be brief."},
    {"user", "What is the capital of France?"},
    {"assistant", "Paris."},
};

static void test_render(void **state)
{
    (void)state;
    char *s = nn_chat_render(conv, 3, 0);
    assert_string_equal(s, "<|im_start|>system\nBe brief.<|im_end|>\n"
                           "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                           "<|im_start|>assistant\nParis.<|im_end|>\n");
    free(s);
    s = nn_chat_render(conv + 1, 1, NN_CHAT_GEN_PROMPT);
    assert_string_equal(s, "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    /* Qwen3's template verbatim (tokenizer_config.json chat_template, enable_thinking=false) */
    s = nn_chat_render(conv + 1, 1, NN_CHAT_GEN_PROMPT | NN_CHAT_EMPTY_THINK);
    assert_string_equal(s, "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                           "<|im_start|>assistant\n<think>\n\n</think>\n\n");
    free(s);
    s = nn_chat_render(conv, 0, NN_CHAT_GEN_PROMPT);
    assert_string_equal(s, "<|im_start|>assistant\n");
    free(s);
    nn_chat_msg bad[] = {{"tool", "x"}};
    assert_null(nn_chat_render(bad, 1, 0));
    assert_non_null(strstr(hx_last_error(), "message 0"));
}

static void test_split(void **state)
{
    (void)state;
    for (int flags = 0; flags <= NN_CHAT_EMPTY_THINK; flags += NN_CHAT_EMPTY_THINK) {
        char *p, *c, *all = nn_chat_render(conv, 3, flags);
        assert_int_equal(nn_chat_split(conv, 3, flags, &p, &c), 0);
        assert_string_equal(c, "Paris.<|im_end|>\n");
        char *joined = xstrfmt("%s%s", p, c);
        assert_string_equal(joined, all); /* prompt + completion == the rendered conversation */
        free(joined); free(all); free(p); free(c);
    }
    char *p, *c;
    assert_int_equal(nn_chat_split(conv, 2, 0, &p, &c), -1);
    assert_non_null(strstr(hx_last_error(), "assistant"));
}

static void test_parse(void **state)
{
    (void)state;
    json_t *j = json_loads("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]", 0,
                           NULL);
    nn_chat_msg *m;
    size_t n;
    assert_int_equal(nn_chat_parse(j, &m, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(m[1].content, "hello");
    free(m);
    json_decref(j);
    j = json_loads("[{\"role\":\"user\"}]", 0, NULL);
    assert_int_equal(nn_chat_parse(j, &m, &n), -1);
    assert_non_null(strstr(hx_last_error(), "messages[0]"));
    json_decref(j);
}

static void test_encode(void **state)
{
    (void)state;
    nn_tokenizer *t;
    if (nn_tokenizer_load_qwen3(&t)) fail_msg("%s", hx_last_error());
    int32_t *ids;
    size_t n, np;
    assert_int_equal(nn_chat_encode(t, conv + 1, 2, 0, &ids, &n, &np), 0);
    /* <|im_start|> user \n What is the capital of France ? <|im_end|> \n <|im_start|> assistant \n | Paris . <|im_end|> \n */
    const int32_t want[] = {151644, 872, 198, 3838, 374, 279, 6722, 315, 9625, 30, 151645, 198, 151644, 77091, 198,
                            59604, 13, 151645, 198};
    assert_int_equal(n, sizeof want / sizeof *want);
    assert_int_equal(np, 15);
    assert_memory_equal(ids, want, sizeof want);
    /* the split ids equal the ids of the whole rendered text here (the boundary is a token boundary) */
    char *all = nn_chat_render(conv + 1, 2, 0);
    int32_t *ids2;
    size_t n2;
    assert_int_equal(nn_tokenizer_encode(t, all, strlen(all), &ids2, &n2), 0);
    assert_int_equal(n2, n);
    assert_memory_equal(ids2, ids, n * sizeof *ids);
    free(all); free(ids2); free(ids);
    nn_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render), cmocka_unit_test(test_split),
        cmocka_unit_test(test_parse),  cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
