/* test_tokenizer.c - tokenizer.json loading, Qwen3 fixture cases, decode, NFC, added tokens, hostile files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "nn/conform_tokenizer.h"
#include "nn/tokenizer.h"
#include "nn/tokenizer_internal.h"

static nn_tokenizer *qwen;

static int setup(void **state)
{
    (void)state;
    if (nn_tokenizer_load_qwen3(&qwen)) {
        fprintf(stderr, "cannot load the pinned Qwen3 tokenizer: %s\n", hx_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nn_tokenizer_free(qwen);
    return 0;
}

static void encode_ok(const nn_tokenizer *t, const char *text, int32_t **ids, size_t *n)
{
    if (nn_tokenizer_encode(t, text, strlen(text), ids, n)) fail_msg("encode: %s", hx_last_error());
}

static void expect_ids(const nn_tokenizer *t, const char *text, const int32_t *want, size_t nw)
{
    int32_t *ids;
    size_t n;
    encode_ok(t, text, &ids, &n);
    if (n != nw) fail_msg("'%s': %zu ids, want %zu", text, n, nw);
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("'%s': id %zu is %d, want %d", text, i, ids[i], want[i]);
    free(ids);
}

static void test_fixture_cases(void **state)
{
    (void)state;
    nn_check c;
    FILE *out = tmpfile();
    nn_check_init(&c, out);
    int rc = nn_conform_tokenizer("tests/fixtures/qwen3_tokenizer", NULL, &c);
    if (rc) {
        rewind(out);
        char line[512];
        while (fgets(line, sizeof line, out)) if (strstr(line, "FAIL")) fputs(line, stderr);
    }
    fclose(out);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_fail, 0);
    assert_true(c.n_ok >= 20);
}

static void test_qwen3_basics(void **state)
{
    (void)state;
    assert_int_equal(nn_tokenizer_vocab_size(qwen), 151669);
    assert_int_equal(nn_tokenizer_token_id(qwen, "<|endoftext|>"), 151643);
    assert_int_equal(nn_tokenizer_token_id(qwen, "<|im_start|>"), 151644);
    assert_int_equal(nn_tokenizer_token_id(qwen, "<|im_end|>"), 151645);
    assert_int_equal(nn_tokenizer_token_id(qwen, "<think>"), 151667);
    assert_int_equal(nn_tokenizer_token_id(qwen, "Hello"), 9707);
    assert_int_equal(nn_tokenizer_token_id(qwen, "no such token here"), -1);
    assert_true(nn_tokenizer_is_special(qwen, 151645));
    assert_false(nn_tokenizer_is_special(qwen, 151667)); /* <think> is added but not special */
    assert_false(nn_tokenizer_is_special(qwen, 9707));
    assert_string_equal(nn_tokenizer_token_str(qwen, 220), "\xc4\xa0"); /* "Ġ" */
    const char *b;
    size_t bl;
    assert_int_equal(nn_tokenizer_token_bytes(qwen, 220, &b, &bl), 0);
    assert_int_equal(bl, 1);
    assert_int_equal(b[0], ' ');
    assert_int_equal(nn_tokenizer_token_bytes(qwen, 999999, &b, &bl), -1);

    /* special tokens in the text, leftmost-longest, with text around them */
    const int32_t chat[] = {151644, 872, 198, 9707, 151645, 198};
    expect_ids(qwen, "<|im_start|>user\nHello<|im_end|>\n", chat, 6);
    int32_t *ids; /* "<|im_end|" without its ">" is plain text */
    size_t n;
    encode_ok(qwen, "<|im_end|", &ids, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] < 151643);
    free(ids);
    encode_ok(qwen, "", &ids, &n);
    assert_int_equal(n, 0);
    free(ids);
}

static void test_decode(void **state)
{
    (void)state;
    const char *texts[] = {
        "Hello, world!", "  two  spaces\tand\ttabs\r\n", "<|im_start|>system\nYou are helpful.<|im_end|>\n",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 emoji", "x\n\n\n   \n",
        "1234567890 3.14159 -42", "The/at Fulton/np-tl County/nn-tl ./.",
    };
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        int32_t *ids;
        size_t n, bl;
        char *back;
        encode_ok(qwen, texts[k], &ids, &n);
        assert_int_equal(nn_tokenizer_decode(qwen, ids, n, &back, &bl), 0);
        assert_int_equal(bl, strlen(texts[k]));
        assert_string_equal(back, texts[k]);
        free(back);
        free(ids);
    }
    int32_t bad[] = {9707, 200000};
    char *out;
    size_t ol;
    assert_int_equal(nn_tokenizer_decode(qwen, bad, 2, &out, &ol), -1);
    assert_non_null(strstr(hx_last_error(), "position 1"));
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    int32_t *ids;
    size_t n;
    const char *bad[] = {"ok \xff", "ok \xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(nn_tokenizer_encode(qwen, bad[k], strlen(bad[k]), &ids, &n), -1);
        assert_non_null(strstr(hx_last_error(), "invalid UTF-8 at byte offset"));
    }
}

/* Expected NFC outputs computed with Python's unicodedata.normalize("NFC", ...) (hex UTF-8). */
static void test_nfc(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"65cc81", "c3a9"},
        {"41cc8acc81", "c7ba"},
        {"e18480e185a1e186a8", "eab081"},
        {"e284ab", "c385"},
        {"61cca3cc82", "e1baad"},
        {"71cc87cca3", "71cca3cc87"},
        {"cd84", "cc88cc81"},
        {"e1b88bcca3", "e1b88dcc87"},
        {"436166c3a9206e61cc8869766520c3856e67737472c3b66d", "436166c3a9206ec3a469766520c3856e67737472c3b66d"},
        {"e0a598", "e0a495e0a4bc"},
        {"d790d6b7d6bc", "d790d6b7d6bc"},
        {"cc81616263", "cc81616263"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char in[64], want[64];
        size_t ni = strlen(cases[k][0]) / 2, nw = strlen(cases[k][1]) / 2;
        for (size_t i = 0; i < ni; i++) sscanf(cases[k][0] + 2 * i, "%2hhx", (unsigned char *)&in[i]);
        for (size_t i = 0; i < nw; i++) sscanf(cases[k][1] + 2 * i, "%2hhx", (unsigned char *)&want[i]);
        char *out;
        size_t ol;
        assert_int_equal(nn_nfc(in, ni, &out, &ol), 0);
        const char *got = out ? out : in;
        size_t gl = out ? ol : ni;
        if (gl != nw || memcmp(got, want, nw)) fail_msg("NFC case %zu (%s) differs", k, cases[k][0]);
        free(out);
    }
    char *out;
    size_t ol;
    assert_int_equal(nn_nfc("plain ASCII and Latin-1 \xc3\xa9", 27, &out, &ol), 0);
    assert_null(out); /* already NFC: no copy */

    /* the encoder normalises: decomposed and precomposed text give the same ids */
    int32_t *a, *b;
    size_t na, nb;
    encode_ok(qwen, "cafe\xcc\x81 na\xcc\x88ive", &a, &na);
    encode_ok(qwen, "caf\xc3\xa9 n\xc3\xa4ive", &b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
}

/* A small hand-written tokenizer.json: GPT-2 style ByteLevel with its own regex, [a, b] merges, added tokens. */
static const char *SMALL_HEAD =
    "{\"version\":\"1.0\",\"added_tokens\":["
    "{\"id\":10,\"content\":\"<eos>\",\"special\":true,\"lstrip\":false,\"rstrip\":false,\"single_word\":false,"
    "\"normalized\":false},"
    "{\"id\":11,\"content\":\"<eos><eos>\",\"special\":true},"
    "{\"id\":12,\"content\":\"[M]\",\"special\":false,\"lstrip\":true,\"rstrip\":true}],"
    "\"normalizer\":null,"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
    "\"decoder\":{\"type\":\"ByteLevel\"},";

static nn_tokenizer *small_tokenizer(const char *model)
{
    char *json = xstrfmt("%s%s}", SMALL_HEAD, model);
    nn_tokenizer *t;
    int rc = nn_tokenizer_load_mem(&t, json, strlen(json), "small.json");
    if (rc) fail_msg("small tokenizer: %s", hx_last_error());
    free(json);
    return t;
}

static void test_small_tokenizer(void **state)
{
    (void)state;
    /* bytes needed: a b c, space (U+0120 "Ġ"); merges a b -> ab (rank 0), Ġ ab (1), ab c (2); b c (3) */
    nn_tokenizer *t = small_tokenizer(
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"\xc4\xa0\":3,\"ab\":4,\"\xc4\xa0" "ab\":5,"
        "\"abc\":6,\"bc\":7},\"merges\":[[\"a\",\"b\"],\"\xc4\xa0 ab\",[\"ab\",\"c\"],\"b c\"]}");
    assert_int_equal(nn_tokenizer_vocab_size(t), 13);
    const int32_t w1[] = {6, 5, 7}; /* "abc" -> abc; " abbc" -> Ġab bc (GPT-2 regex: ' ?\p{L}+') */
    expect_ids(t, "abc abbc", w1, 3);
    const int32_t w2[] = {0, 11, 10, 1};        /* longest added token first: <eos><eos> then <eos> */
    expect_ids(t, "a<eos><eos><eos>b", w2, 4);
    const int32_t w3[] = {0, 12, 1};            /* [M] strips the spaces on both sides */
    expect_ids(t, "a  [M]  b", w3, 3);
    char *out;
    size_t ol;
    assert_int_equal(nn_tokenizer_decode(t, (int32_t[]){5, 10, 7}, 3, &out, &ol), 0);
    assert_string_equal(out, " ab<eos>bc");
    free(out);
    int32_t *ids;
    size_t n;
    assert_int_equal(nn_tokenizer_encode(t, "x", 1, &ids, &n), -1); /* byte 'x' has no token */
    assert_non_null(strstr(hx_last_error(), "0x78"));
    nn_tokenizer_free(t);
}

static void expect_load_error(const char *json, const char *needle)
{
    nn_tokenizer *t = (nn_tokenizer *)1;
    int rc = nn_tokenizer_load_mem(&t, json, strlen(json), "bad.json");
    if (rc != -1) fail_msg("loaded: %s", json);
    assert_null(t);
    if (needle && !strstr(hx_last_error(), needle)) fail_msg("error '%s' lacks '%s'", hx_last_error(), needle);
}

static void test_hostile_files(void **state)
{
    (void)state;
    expect_load_error("", "bad.json:");
    expect_load_error("[1,2]", "not a JSON object");
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "not supported");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", "model.vocab[\"a\"]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999}}}", "model.vocab");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}", "id 0");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                      "model.merges[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a  b\"]}}",
                      "model.merges[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", "model.merges[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":\"x\"}]}",
                      "added_tokens[0]");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Split\","
                      "\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\"}}",
                      "pre_tokenizer pattern");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"NFKD\"}}",
                      "normalizer");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"WordPiece\"}}",
                      "decoder");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", "empty");
    /* Sequence nodes name the failing element by its path, nested ones too */
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Sequence\","
                      "\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":\"Punctuation\"}]}}",
                      "bad.json: pre_tokenizer.pretokenizers[1]: pre-tokenizer type \"Punctuation\" is not supported");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Sequence\"}}",
                      "bad.json: pre_tokenizer: Sequence without a \"pretokenizers\" list");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"Sequence\","
                      "\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Sequence\","
                      "\"normalizers\":[{\"type\":\"NFKD\"}]}]}}",
                      "bad.json: normalizer.normalizers[1].normalizers[0]: normalizer \"NFKD\" is not supported");
    expect_load_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"Sequence\","
                      "\"normalizers\":{}}}",
                      "bad.json: normalizer: Sequence without a \"normalizers\" list");

    /* every truncation of a small valid file is an error, never a crash */
    char *json = xstrfmt("%s%s}", SMALL_HEAD,
                         "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}");
    size_t len = strlen(json);
    for (size_t cut = 0; cut < len - 1; cut++) {
        nn_tokenizer *t;
        int rc = nn_tokenizer_load_mem(&t, json, cut, "cut.json");
        assert_int_equal(rc, -1);
        assert_non_null(strstr(hx_last_error(), "cut.json:"));
    }
    nn_tokenizer *t;
    assert_int_equal(nn_tokenizer_load_mem(&t, json, len, "whole.json"), 0);
    nn_tokenizer_free(t);
    free(json);
    assert_int_equal(nn_tokenizer_load(&t, "/nonexistent/tokenizer.json"), -1);
    assert_non_null(strstr(hx_last_error(), "/nonexistent/tokenizer.json"));
}

/* Encoding from several threads at once gives what one thread gives (no shared mutable state). */
static void test_threads(void **state)
{
    (void)state;
    const char *text = "The quick brown fox jumps over the lazy dog. <|im_end|> 12345 caf\xc3\xa9\n\n";
    int32_t *ref;
    size_t nref;
    encode_ok(qwen, text, &ref, &nref);
    int bad = 0;
#pragma omp parallel for num_threads(2) reduction(+ : bad)
    for (int i = 0; i < 64; i++) {
        int32_t *ids;
        size_t n;
        if (nn_tokenizer_encode(qwen, text, strlen(text), &ids, &n)) { bad++; continue; }
        bad += n != nref || memcmp(ids, ref, n * sizeof *ids);
        free(ids);
    }
    assert_int_equal(bad, 0);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases), cmocka_unit_test(test_qwen3_basics),
        cmocka_unit_test(test_decode),        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nfc),           cmocka_unit_test(test_small_tokenizer),
        cmocka_unit_test(test_hostile_files), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
