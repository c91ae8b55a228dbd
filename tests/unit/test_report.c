/* test_report.c - reports: tables of a synthetic run (rows per axis value, retention vs the teacher's eval, ranking
 * reversals with McNemar), the four renderers, spec errors, run-id resolution, and the diff of two runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "reports/report.h"

/* Artifacts in memory: {key: {"items.jsonl": [...], "metrics.json": {...}}} */
static json_t *mem_load(void *ud, const char *key, const char *file)
{
    json_t *v = json_object_get(json_object_get(ud, key), file);
    if (!v) {
        error("no %s in entry %s", file, key);
        return NULL;
    }
    return json_incref(v);
}

/* An eval artifact of 20 items of task t (split eval): the first ll_k LL-correct, gen correct per gen_mask. */
static void add_eval(json_t *store, const char *key, int ll_k, int gen_k, int gen_offset)
{
    json_t *items = json_array();
    for (int i = 0; i < 20; i++) {
        char doc[16];
        snprintf(doc, sizeof doc, "t-%02d", i);
        int g = i >= gen_offset && i < gen_offset + gen_k;
        json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:i,s:b,s:b,s:s,s:s,s:i,s:i}", "task", "t", "doc_id", doc,
                                               "split", "eval", "n_choices", 4, "ll_correct", i < ll_k, "gen_correct", g,
                                               "gen_rule", g ? "leading" : "anywhere", "gen_pred", g ? "B" : "C",
                                               "answer", 1, "ll_pred", i < ll_k ? 1 : 0));
    }
    json_t *m = ev_metrics(items, 100, 0);
    assert_non_null(m);
    json_object_set_new(store, key, json_pack("{s:o,s:o}", "items.jsonl", items, "metrics.json", m));
}

static json_t *rec(const char *stage, const char *kind, const char *key, json_t *axes, json_t *with, json_t *inputs)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:s,s:i}", "stage", stage, "kind", kind, "key", key, "axes",
                     axes ? axes : json_object(), "with", with ? with : json_object(), "inputs",
                     inputs ? inputs : json_object(), "state", "executed", "kind_version", 1);
}

/* world -> teacher -> student[m] -> eval[m]; eval_teacher on the teacher. Arm a: LL 15/20, gen 6/20;
 * arm b: LL 12/20, gen 10/20 (a reversal); the teacher: LL 16/20, gen 16/20. */
static json_t *make_run(const char *id, json_t *store, int b_gen)
{
    json_t *st = json_array();
    json_array_append_new(st, rec("world", "data", "kw", NULL, json_pack("{s:s}", "scale", "tiny"), NULL));
    json_array_append_new(st, rec("teacher", "pretrain", "kt", NULL, json_pack("{s:i}", "steps", 100), json_pack("{s:s}", "data", "kw")));
    json_array_append_new(st, rec("student", "finetune", "ksa", json_pack("{s:s}", "m", "a"), json_pack("{s:s}", "masking", "a"),
                                  json_pack("{s:s}", "model", "kt")));
    json_array_append_new(st, rec("student", "finetune", "ksb", json_pack("{s:s}", "m", "b"), json_pack("{s:s}", "masking", "b"),
                                  json_pack("{s:s}", "model", "kt")));
    json_array_append_new(st, rec("eval_teacher", "eval", "ket", NULL, NULL, json_pack("{s:s,s:s}", "model", "kt", "data", "kw")));
    char kb[16];
    snprintf(kb, sizeof kb, "keb%d", b_gen);
    json_array_append_new(st, rec("eval", "eval", "kea", json_pack("{s:s}", "m", "a"), NULL, json_pack("{s:s,s:s}", "model", "ksa", "data", "kw")));
    json_array_append_new(st, rec("eval", "eval", kb, json_pack("{s:s}", "m", "b"), json_pack("{s:i}", "max_new_tokens", b_gen),
                                  json_pack("{s:s,s:s}", "model", "ksb", "data", "kw")));
    add_eval(store, "ket", 16, 16, 0);
    add_eval(store, "kea", 15, 6, 0);
    add_eval(store, kb, 12, b_gen, 0);
    return json_pack("{s:s,s:{s:s,s:[]},s:s,s:s,s:[],s:{s:[s,s]},s:o,s:{s:[{s:s,s:s,s:s,s:[s,s,s,s,s]}]}}", "run_id", id,
                     "recipe", "name", "ablate_m", "files", "status", "ok", "started", "2026-01-01T00:00:00Z", "overrides",
                     "axes", "m", "a", "b", "stages", st, "report", "tables", "name", "masking", "rows", "axes.m", "stage",
                     "eval", "columns", "ll_acc", "gen_acc", "gap", "retention", "ll_retention");
}

static json_t *row_of(json_t *tab, const char *label)
{
    json_t *rows = json_object_get(tab, "rows");
    for (size_t i = 0; i < json_array_size(rows); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(rows, i), "label")), label)) return json_array_get(rows, i);
    fail_msg("no row %s", label);
    return NULL;
}

static double val(json_t *row, const char *col) { return json_number_value(json_object_get(json_object_get(row, "values"), col)); }

static void test_report_tables(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *run = make_run("20260101-000000-000aa", store, 10);
    rp_source src = {mem_load, store};
    json_t *rep = rp_report_build(run, &src);
    assert_non_null(rep);
    json_t *tab = json_array_get(json_object_get(rep, "tables"), 0);
    assert_string_equal(json_string_value(json_object_get(tab, "name")), "masking");
    assert_int_equal(json_array_size(json_object_get(tab, "rows")), 3); /* teacher + 2 arms */
    json_t *t = json_array_get(json_object_get(tab, "rows"), 0);
    assert_true(json_is_true(json_object_get(t, "teacher")));
    json_t *a = row_of(tab, "m=a"), *b = row_of(tab, "m=b");
    assert_float_equal(val(a, "ll_acc"), 0.75, 1e-12);
    assert_float_equal(val(a, "gen_acc"), 0.30, 1e-12);
    assert_float_equal(val(a, "gap"), 0.45, 1e-12);
    assert_float_equal(val(a, "retention"), 0.30 / 0.80, 1e-12);
    assert_float_equal(val(b, "retention"), 0.50 / 0.80, 1e-12);
    assert_float_equal(val(a, "ll_retention"), 0.75 / 0.80, 1e-12);
    assert_int_equal(json_array_size(json_object_get(json_object_get(a, "ci"), "ll_acc")), 2);
    /* reversal: LL prefers a (15 vs 12), generation prefers b (10 vs 6); McNemar on the paired items:
     * LL: a-only 3, b-only 0 -> p = 0.25; gen: a-only 0, b-only 4 -> p = 0.125 */
    json_t *rev = json_object_get(tab, "reversals");
    assert_int_equal(json_array_size(rev), 1);
    json_t *e = json_array_get(rev, 0);
    assert_float_equal(json_number_value(json_object_get(e, "ll_p")), 0.25, 1e-12);
    assert_float_equal(json_number_value(json_object_get(e, "gen_p")), 0.125, 1e-12);
    assert_float_equal(json_number_value(json_object_get(json_object_get(tab, "ranking"), "kendall_tau")), -1, 1e-12);

    char *s;
    assert_int_equal(rp_render(rep, "md", &s), 0);
    assert_non_null(strstr(s, "| m | LL acc | Gen acc | Gap (pp) | Retention (gen) | LL retention |"));
    assert_non_null(strstr(s, "| m=a | 75.0 [53.1, 88.8] | 30.0 [14.5, 51.9] |"));
    assert_non_null(strstr(s, "37.5%"));
    assert_non_null(strstr(s, "**Ranking reversal**: m=a vs m=b"));
    free(s);
    assert_int_equal(rp_render(rep, "tex", &s), 0);
    assert_non_null(strstr(s, "\\toprule"));
    assert_non_null(strstr(s, "37.5\\%"));
    for (const char *u = strchr(s, '\n'); (u = strchr(u + 1, '_'));) /* after the comment line: every _ escaped */
        assert_true(u[-1] == '\\');
    assert_non_null(strstr(s, "eval\\_teacher"));
    free(s);
    assert_int_equal(rp_render(rep, "html", &s), 0);
    assert_non_null(strstr(s, "<table>"));
    assert_non_null(strstr(s, "class=\"teacher\""));
    free(s);
    assert_int_equal(rp_render(rep, "json", &s), 0);
    json_t *back = json_loads(s, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(s);
    assert_int_equal(rp_render(rep, "pdf", &s), -1);
    json_decref(rep);

    /* no reversal when generation agrees with LL */
    json_t *run2 = make_run("20260101-000001-000bb", store, 4);
    rep = rp_report_build(run2, &src);
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(rep, "tables"), 0), "reversals")), 0);
    json_decref(rep);

    /* default tables: one per eval stage when the recipe has none */
    json_object_del(run2, "report");
    rep = rp_report_build(run2, &src);
    assert_int_equal(json_array_size(json_object_get(rep, "tables")), 2);
    json_decref(rep);

    /* spec errors name the table and the field */
    json_t *spec = json_array_get(json_object_get(json_object_get(run, "report"), "tables"), 0);
    json_object_set_new(spec, "columns", json_pack("[s]", "ll_accc"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "ll_accc"));
    json_object_set_new(spec, "columns", json_pack("[s]", "ll_acc"));
    json_object_set_new(spec, "rows", json_string("axes.nope"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "no axis 'nope'"));
    json_object_set_new(spec, "rows", json_string("axes.m"));
    json_object_set_new(spec, "colums", json_pack("[s]", "ll_acc"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "unknown field 'colums'"));
    json_decref(run);
    json_decref(run2);
    json_decref(store);
}

static void test_resolve(void **state)
{
    (void)state;
    json_t *ids = json_pack("[s,s,s]", "20260101-000000-000aa", "20260101-000001-000bb", "20260102-000000-000cc");
    char *id = rp_resolve_run(ids, "20260102");
    assert_string_equal(id, "20260102-000000-000cc");
    free(id);
    assert_null(rp_resolve_run(ids, "20260101"));
    assert_non_null(strstr(hx_last_error(), "ambiguous"));
    assert_null(rp_resolve_run(ids, "1999"));
    json_decref(ids);
}

static void test_diff(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *a = make_run("20260101-000000-000aa", store, 10), *b = make_run("20260101-000001-000bb", store, 4);
    rp_source src = {mem_load, store};
    json_t *d = rp_diff(a, b, &src, 0);
    assert_non_null(d);
    /* one parameter differs: eval[m=b].with.max_new_tokens 10 -> 4 */
    json_t *params = json_object_get(d, "params");
    assert_int_equal(json_array_size(params), 1);
    json_t *p = json_array_get(params, 0);
    assert_string_equal(json_string_value(json_object_get(p, "instance")), "eval[m=b]");
    assert_string_equal(json_string_value(json_object_get(p, "path")), "with.max_new_tokens");
    json_t *evals = json_object_get(d, "evals");
    assert_int_equal(json_array_size(evals), 3);
    json_t *eb = NULL;
    for (size_t i = 0; i < json_array_size(evals); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(evals, i), "instance")), "eval[m=b]")) eb = json_array_get(evals, i);
    assert_non_null(eb);
    assert_false(json_is_true(json_object_get(eb, "same_key")));
    json_t *gen = json_object_get(json_object_get(json_object_get(eb, "splits"), "eval"), "gen_acc");
    assert_float_equal(json_number_value(json_object_get(gen, "delta")), -0.30, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(gen, "a_only")), 6);
    assert_int_equal(json_integer_value(json_object_get(gen, "b_only")), 0);
    assert_float_equal(json_number_value(json_object_get(gen, "mcnemar_p")), 2.0 / 64, 1e-12);
    assert_true(json_is_true(json_object_get(gen, "significant")));
    json_t *fl = json_object_get(json_object_get(json_object_get(json_object_get(eb, "splits"), "eval"), "flips"), "gen");
    assert_int_equal(json_array_size(json_object_get(fl, "a_only")), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(fl, "a_only"), 0), "doc_id")), "t-04");
    char *text = rp_diff_text(d, 2);
    assert_non_null(strstr(text, "eval[m=b]"));
    assert_non_null(strstr(text, "significant at 0.05"));
    assert_non_null(strstr(text, "... 4 more"));
    free(text);
    json_decref(d);
    json_decref(a);
    json_decref(b);
    json_decref(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_tables),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
