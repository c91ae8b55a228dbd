/* test_world_stage.c - the JSONL benchmark loaders and the data stage kind, through a hand-made context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base.h"
#include "stages/stage.h"
#include "world/world.h"
#include "test_util.h"

/* ---- JSONL loaders ---- */

static void test_jsonl_formats(void **state)
{
    (void)state;
    json_t *items = json_array();
    assert_int_equal(world_jsonl_load("tests/data/jsonl/mmlu.jsonl", "mmlu", items), 0);
    assert_int_equal(world_jsonl_load("tests/data/jsonl/arc.jsonl", "arc", items), 0);
    assert_int_equal(world_jsonl_load("tests/data/jsonl/hellaswag.jsonl", "hs", items), 0);
    assert_int_equal(json_array_size(items), 7);
    static const struct { int answer; const char *target; } want[] = {
        {2, "Paris"}, {1, "Carbon dioxide"}, {1, "4"}, {2, "wind"}, {1, "heart"},
        {3, "starts pulling up roofing on a roof."}, {0, "She drinks it."}};
    for (size_t i = 0; i < 7; i++) {
        json_t *o = json_array_get(items, i);
        assert_int_equal(json_integer_value(json_object_get(o, "answer")), want[i].answer);
        assert_string_equal(json_string_value(json_object_get(o, "target")), want[i].target);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "doc_id")), "mmlu-00000");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 6), "question")),
                        "A woman pours water into a glass.");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 5), "format")), "cloze");
    json_decref(items);
}

static void test_jsonl_malformed(void **state)
{
    (void)state;
    json_t *items = json_array();
    tu_expect_error(world_jsonl_load("tests/data/jsonl/bad_json.jsonl", "x", items), "bad_json.jsonl:3:");
    tu_expect_error(world_jsonl_load("tests/data/jsonl/bad_answer.jsonl", "x", items), "bad_answer.jsonl:2: answer");
    tu_expect_error(world_jsonl_load("tests/data/jsonl/bad_fields.jsonl", "x", items), "bad_fields.jsonl:1: no string 'question'");
    tu_expect_error(world_jsonl_load("tests/data/jsonl/bad_arc.jsonl", "x", items), "bad_arc.jsonl:1: answer");
    tu_expect_error(world_jsonl_load("tests/data/jsonl/missing.jsonl", "x", items), "missing.jsonl");
    tu_expect_error(world_jsonl_parse("empty.jsonl", "\n\n", 2, "x", items), "empty.jsonl: no items");
    json_decref(items);
}

/* ---- the stage, through a hand-made context ---- */

extern const hx_stage_kind hx_kind_data;

static json_t *defaults(void)
{
    json_t *w = json_object();
    for (const hx_field *f = hx_kind_data.fields; f->name; f++)
        json_object_set_new(w, f->name, json_loads(f->default_json, JSON_DECODE_ANY, NULL));
    return w;
}

static void test_stage_jsonl(void **state)
{
    (void)state;
    json_t *with = defaults();
    json_object_set_new(with, "source", json_string("jsonl"));
    json_object_set_new(with, "jsonl", json_pack("[ss]", "tests/data/jsonl/arc.jsonl", "tests/data/jsonl/mmlu.jsonl"));
    char *out = tu_path("stage-jsonl");
    assert_int_equal(hx_mkdir_p(out), 0);
    json_t *metrics = json_object();
    hx_stage_ctx c = {.stage_name = "bench", .with = with, .out_dir = out, .metrics = metrics};
    assert_int_equal(hx_kind_data.run(&c), 0);
    assert_int_equal(json_integer_value(json_object_get(metrics, "bench_items")), 5);
    char *arc = tu_slurp(out, "bench/arc.jsonl");
    assert_non_null(strstr(arc, "\"answer\":2"));
    free(arc);
    /* a malformed file fails the stage with the file and line */
    json_object_set_new(with, "jsonl", json_pack("[s]", "tests/data/jsonl/bad_json.jsonl"));
    tu_expect_error(hx_kind_data.run(&c), "bad_json.jsonl:3:");
    json_decref(with);
    json_decref(metrics);
    free(out);
}

static void test_stage_world_tiny(void **state)
{
    (void)state;
    json_t *with = defaults();
    json_object_set_new(with, "n_facts", json_integer(40));
    json_object_set_new(with, "brown_files", json_integer(20));
    char *out = tu_path("stage-world");
    assert_int_equal(hx_mkdir_p(out), 0);
    json_t *metrics = json_object();
    hx_stage_ctx c = {.stage_name = "world", .with = with, .out_dir = out, .metrics = metrics};
    assert_int_equal(hx_kind_data.run(&c), 0);
    assert_int_equal(json_integer_value(json_object_get(metrics, "facts")), 160);
    char *st = tu_slurp(out, "stats.json");
    json_t *stats = json_loads(st, 0, NULL);
    assert_non_null(stats);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "corpus"), "brown_files")), 20);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "params"), "paraphrases")), 12);
    json_decref(stats);
    free(st);
    /* the alternative distillation texts: chat.txt holds every instruction pair as one document, and
     * generic.txt shares no paragraph with the pretraining corpus */
    char *chat = tu_slurp(out, "corpus/chat.txt"), *gen = tu_slurp(out, "corpus/generic.txt");
    char *pre = tu_slurp(out, "corpus/pretrain.txt"), *ins = tu_slurp(out, "instruct.jsonl");
    int n_docs = 0, n_pairs = 0;
    for (char *q = chat; (q = strstr(q, "<|endoftext|>\n")); q++) n_docs++;
    for (char *q = ins; *q; q++) n_pairs += *q == '\n';
    assert_true(n_pairs > 0);
    assert_int_equal(n_docs, n_pairs);
    assert_true(strlen(gen) > 1000);
    int shared = 0, lines = 0;
    for (char *line = strtok(gen, "\n"); line; line = strtok(NULL, "\n")) {
        if (strlen(line) < 60) continue; /* boundaries and short lines may repeat by chance */
        lines++;
        if (strstr(pre, line)) shared++;
    }
    assert_true(lines > 10);
    assert_int_equal(shared, 0);
    free(chat); free(gen); free(pre); free(ins);
    /* bad fractions: a clear error */
    json_object_set_new(with, "frac_eval", json_real(0.9));
    tu_expect_error(hx_kind_data.run(&c), "split fractions");
    json_decref(with);
    json_decref(metrics);
    free(out);
}

/* Every Brown file but the cloze files in the corpus (as at `small`): generic.txt is still non-empty, made of the
 * corpus's own Brown paragraphs, one line per paragraph, and none of the fact paragraphs. */
static void test_stage_world_generic_all_brown(void **state)
{
    (void)state;
    json_t *with = defaults();
    json_object_set_new(with, "n_facts", json_integer(20));
    json_object_set_new(with, "paraphrases", json_integer(2));
    json_object_set_new(with, "brown_files", json_integer(0));
    char *out = tu_path("stage-world-all");
    assert_int_equal(hx_mkdir_p(out), 0);
    json_t *metrics = json_object();
    hx_stage_ctx c = {.stage_name = "world", .with = with, .out_dir = out, .metrics = metrics};
    assert_int_equal(hx_kind_data.run(&c), 0);
    char *st = tu_slurp(out, "stats.json");
    json_t *stats = json_loads(st, 0, NULL), *cs = json_object_get(stats, "corpus"), *gs = json_object_get(stats, "generic");
    assert_non_null(gs);
    int corpus_files = (int)json_integer_value(json_object_get(cs, "brown_files"));
    int brown_paras = (int)json_integer_value(json_object_get(cs, "brown_paragraphs"));
    assert_int_equal(corpus_files, 500 - 2); /* the Brown corpus less the 2 cloze files */
    assert_true(json_integer_value(json_object_get(cs, "fact_paragraphs")) > 0);
    assert_int_equal(json_integer_value(json_object_get(gs, "unseen_files")), 0);
    assert_int_equal(json_integer_value(json_object_get(gs, "seen_files")), corpus_files);
    char *gen = tu_slurp(out, "corpus/generic.txt"), *pre = tu_slurp(out, "corpus/pretrain.txt");
    int paras = 0, docs = 0, checked = 0;
    for (char *line = strtok(gen, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strcmp(line, "<|endoftext|>")) {
            docs++;
            continue;
        }
        if (paras++ % 997 == 0 && strlen(line) >= 60) { /* a sample: the paragraph is in the teacher's text */
            assert_non_null(strstr(pre, line));
            checked++;
        }
    }
    assert_int_equal(docs, corpus_files);
    assert_int_equal(paras, brown_paras); /* every Brown paragraph of the corpus, no fact paragraph */
    assert_true(checked > 5);
    free(gen); free(pre); free(st);
    json_decref(stats);
    json_decref(with);
    json_decref(metrics);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_formats),
        cmocka_unit_test(test_jsonl_malformed),
        cmocka_unit_test(test_stage_jsonl),
        cmocka_unit_test(test_stage_world_tiny),
        cmocka_unit_test(test_stage_world_generic_all_brown),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
