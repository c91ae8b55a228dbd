/* test_findings.c - the pre-registered findings (reports/findings.c, docs/results.md) on a synthetic run whose items
 * make every number hand-computable: preconditions, F1 did of the baseline arm, F1b signs, F2 reversals from the axis
 * tables (`arms:` rows), F3/F4 paired Gen differences, F5 the largest axis, F6 retention, a failed precondition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "reports/report.h"
#include "test_util.h"

/* doubles to EPS (cmocka's assert_float_equal compares floats) */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/* 200 eval items (i < 100 mcq, else open; 4 choices, gold B), item i right by LL when i % 100 < ll, by generation
 * when i % 100 < gen; with `control`, 40 heldout mcq items (LL right on the first 10) and 20 heldout open ones
 * (never right by generation). */
static json_t *items(int ll, int gen, int control)
{
    json_t *a = json_array();
    for (int i = 0; i < 200; i++) {
        char doc[16];
        snprintf(doc, sizeof doc, "k-%03d", i);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:b,s:b}", "task", i < 100 ? "kn_mcq" : "kn_open",
                                           "doc_id", doc, "split", "eval", "format", i < 100 ? "mcq" : "open",
                                           "n_choices", 4, "answer", 1, "ll_correct", i % 100 < ll, "gen_correct",
                                           i % 100 < gen));
    }
    for (int i = 0; control && i < 60; i++) {
        char doc[16];
        snprintf(doc, sizeof doc, "h-%03d", i);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:b,s:b}", "task", i < 40 ? "kn_mcq" : "kn_open",
                                           "doc_id", doc, "split", "heldout", "format", i < 40 ? "mcq" : "open",
                                           "n_choices", 4, "answer", 1, "ll_correct", i < 10, "gen_correct", 0));
    }
    return a;
}

static json_t *rec(const char *stage, const char *key, const char *arm)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:{},s:{},s:s}", "stage", stage, "kind", "eval", "key", key, "axes",
                     arm ? json_pack("{s:s}", "arm", arm) : json_object(), "with", "inputs", "state", "executed");
}

/* A store entry of an eval: its items and their metrics.json (the report's accuracies). */
static void put(json_t *store, const char *key, json_t *its)
{
    json_t *m = ev_metrics(its, 100, 0);
    assert_non_null(m);
    json_object_set_new(store, key, json_pack("{s:o,s:o}", "items.jsonl", its, "metrics.json", m));
}

static const char *const arms[] = {"base", "mask", "freeze", "data1", "data2"};

/* The run: the teacher (LL 90, Gen t_gen of 100 per format) and five arms; report tables per design axis. */
static json_t *make_run(json_t *store, int t_gen)
{
    static const int ll[] = {85, 85, 85, 95, 85}, gen[] = {40, 20, 40, 10, 40};
    put(store, "kt", items(90, t_gen, 1));
    json_t *st = json_array(), *ax = json_array();
    json_array_append_new(st, rec("eval_teacher", "kt", NULL));
    for (int a = 0; a < 5; a++) {
        char key[16];
        snprintf(key, sizeof key, "k%s", arms[a]);
        put(store, key, items(ll[a], gen[a], 0));
        json_array_append_new(st, rec("eval", key, arms[a]));
        json_array_append_new(ax, json_string(arms[a]));
    }
    json_t *tables = json_array();
    static const char *const groups[][4] = {{"masking", "base", "mask", NULL}, {"freezing", "base", "freeze", NULL},
                                            {"dataset", "base", "data1", "data2"}};
    json_t *axes = json_object();
    for (int g = 0; g < 3; g++) {
        json_t *list = json_array();
        for (int k = 1; k < 4 && groups[g][k]; k++) json_array_append_new(list, json_string(groups[g][k]));
        json_array_append_new(tables, json_pack("{s:s,s:s,s:s,s:s,s:O}", "name", groups[g][0], "stage", "eval", "rows",
                                                "axes.arm", "baseline", "eval_teacher", "arms", list));
        json_object_set_new(axes, groups[g][0], list);
    }
    json_t *findings = json_pack("{s:s,s:s,s:s,s:s,s:o,s:[{s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s}],s:s,s:[f,f]}",
                                 "stage", "eval", "teacher", "eval_teacher", "axis", "arm", "baseline", "base", "axes",
                                 axes, "helps", "id", "F3", "finding", "masking", "a", "base", "b", "mask", "id", "F4",
                                 "finding", "freezing", "a", "base", "b", "freeze", "largest", "dataset", "retention",
                                 0.86, 0.90);
    return json_pack("{s:s,s:{s:s},s:s,s:s,s:{s:o},s:o,s:{s:o,s:o}}", "run_id", "r1", "recipe", "name", "paper", "status",
                     "ok", "started", "2026-01-01T00:00:00Z", "axes", "arm", ax, "stages", st, "report", "tables",
                     tables, "findings", findings);
}

static json_t *by_id(json_t *list, const char *id)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(list, i), "id")), id)) return json_array_get(list, i);
    fail_msg("no %s", id);
    return NULL;
}

static double nget(const json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2) v = json_object_get(v, path2);
    return json_number_value(v);
}

static const char *verdict(json_t *fd, const char *id) { return json_string_value(json_object_get(by_id(json_object_get(fd, "findings"), id), "verdict")); }

static void test_findings(void **state)
{
    (void)state;
    json_t *store = json_object(), *run = make_run(store, 80);
    rp_source src = {tu_mem_load, store};
    json_t *rep = rp_report_build(run, &src);
    assert_non_null(rep);
    json_t *fd = json_object_get(rep, "findings");
    assert_non_null(fd);
    assert_null(json_object_get(fd, "error"));
    /* P1: teacher Gen 80/100 on mcq and on open; P2: heldout LL 10/60, open Gen 0/20 */
    json_t *p1 = by_id(json_object_get(fd, "preconditions"), "P1"), *p2 = by_id(json_object_get(fd, "preconditions"), "P2");
    assert_true(json_is_true(json_object_get(p1, "passed")));
    assert_near(nget(json_object_get(p1, "gen"), "mcq", "acc"), 0.80, 1e-12);
    assert_near(nget(json_object_get(p1, "gen"), "open", "chance"), 0.0, 1e-12);
    assert_true(json_is_true(json_object_get(p2, "passed")));
    assert_near(nget(p2, "ll", "acc"), 10.0 / 60, 1e-12); /* Wilson [0.093, 0.280] holds 0.25 */
    assert_near(nget(p2, "ll", "chance"), 0.25, 1e-12);
    assert_true(json_is_true(json_object_get(fd, "preconditions_passed")));
    /* F1, chance-normalised (LL chance 1/4 everywhere; Gen chance 1/4 on mcq, 0 on open):
     * teacher LL (0.9 - .25)/.75 = 0.8667, Gen ((0.8 - .25)/.75 + 0.8) / 2 = 0.7667;
     * base LL (0.85 - .25)/.75 = 0.8, Gen ((0.4 - .25)/.75 + 0.4) / 2 = 0.3 -> dLL -0.0667, dGen -0.4667, did -0.4 */
    json_t *f1 = by_id(json_object_get(fd, "findings"), "F1");
    assert_near(nget(f1, "numbers", "delta_ll"), 0.8 - 0.65 / 0.75, 1e-9);
    assert_near(nget(f1, "numbers", "delta_gen"), 0.3 - (0.55 / 0.75 + 0.8) / 2, 1e-9);
    assert_near(nget(f1, "numbers", "did"), (0.3 - (0.55 / 0.75 + 0.8) / 2) - (0.8 - 0.65 / 0.75), 1e-9);
    assert_string_equal(verdict(fd, "F1"), "reproduced");
    /* F1 equals the report's own did for that row (one computation, one seed) */
    json_t *t0 = json_array_get(json_object_get(rep, "tables"), 0), *rows = json_object_get(t0, "rows");
    for (size_t i = 0; i < json_array_size(rows); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(rows, i), "label")), "arm=base"))
            assert_true(json_equal(json_object_get(json_array_get(rows, i), "did_ci"), json_object_get(json_object_get(f1, "numbers"), "did_ci")));
    /* F1b: did < 0 in all five arms */
    assert_string_equal(verdict(fd, "F1b"), "reproduced");
    assert_int_equal((int)nget(by_id(json_object_get(fd, "findings"), "F1b"), "numbers", "did_negative"), 5);
    /* F2: data1 beats base and data2 by LL (95 vs 85) and loses to both by generation (10 vs 40): two significant
     * reversals, both in `dataset` */
    json_t *f2 = by_id(json_object_get(fd, "findings"), "F2");
    assert_string_equal(verdict(fd, "F2"), "reproduced");
    json_t *rv = json_object_get(json_object_get(f2, "numbers"), "significant_reversals");
    assert_int_equal((int)json_array_size(rv), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rv, 0), "table")), "dataset");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rv, 1), "table")), "dataset");
    /* the axis tables hold only their arms */
    assert_int_equal((int)json_array_size(json_object_get(t0, "rows")), 3); /* teacher, base, mask */
    /* F3: Gen base - mask = 0.40 - 0.20 on every item pair; F4: base and freeze answer alike (interval [0, 0]) */
    json_t *f3 = by_id(json_object_get(fd, "findings"), "F3");
    assert_near(nget(f3, "numbers", "delta_gen"), 0.20, 1e-12);
    assert_string_equal(verdict(fd, "F3"), "reproduced");
    assert_near(nget(by_id(json_object_get(fd, "findings"), "F4"), "numbers", "delta_gen"), 0.0, 1e-12);
    assert_string_equal(verdict(fd, "F4"), "inconclusive");
    /* F5: dataset |0.40 - 0.10| = 0.30 vs masking 0.20 (freezing 0): difference 0.10, its interval above 0 */
    json_t *f5 = by_id(json_object_get(fd, "findings"), "F5");
    assert_near(nget(f5, "numbers", "difference"), 0.10, 1e-12);
    assert_string_equal(json_string_value(json_object_get(json_object_get(f5, "numbers"), "runner_up")), "masking");
    assert_string_equal(verdict(fd, "F5"), "reproduced");
    /* F6: Gen retention 0.3 / 0.7667, outside [0.86, 0.90] */
    json_t *f6 = by_id(json_object_get(fd, "findings"), "F6");
    assert_near(nget(f6, "numbers", "gen_retention"), 0.3 / ((0.55 / 0.75 + 0.8) / 2), 1e-9);
    assert_string_equal(verdict(fd, "F6"), "outside the paper's range");
    /* rendered: the findings section with each verdict */
    char *md;
    assert_int_equal(rp_render(rep, "md", &md), 0);
    assert_non_null(strstr(md, "## Findings (docs/results.md)"));
    assert_non_null(strstr(md, "| F3 | masking | Gen base − mask: +20.0 pp ["));
    assert_non_null(strstr(md, "| P1 | teacher Gen acc (eval split) >= 50% on mcq and on open, interval above chance | "
                               "teacher Gen: mcq 80.0% ["));
    free(md);
    json_decref(rep);
    json_decref(run);

    /* a teacher at 30% by generation fails P1: every verdict is inconclusive, the rule's verdict kept beside it */
    run = make_run(store, 30);
    rep = rp_report_build(run, &src);
    fd = json_object_get(rep, "findings");
    assert_false(json_is_true(json_object_get(fd, "preconditions_passed")));
    assert_string_equal(verdict(fd, "F3"), "inconclusive (a precondition failed)");
    assert_string_equal(json_string_value(json_object_get(by_id(json_object_get(fd, "findings"), "F3"), "verdict_by_rule")),
                        "reproduced");
    json_decref(rep);

    /* spec errors are reported in place of the findings, the tables stay */
    json_object_set_new(json_object_get(json_object_get(run, "report"), "findings"), "largest", json_string("nope"));
    rep = rp_report_build(run, &src);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rep, "findings"), "error")),
                           "report.findings.largest: 'nope' is not one of report.findings.axes"));
    assert_int_equal((int)json_array_size(json_object_get(rep, "tables")), 3);
    json_decref(rep);
    json_object_set_new(json_object_get(json_object_get(run, "report"), "findings"), "largest", json_string("dataset"));
    json_object_set_new(json_object_get(json_object_get(run, "report"), "findings"), "baseline", json_string("zzz"));
    rep = rp_report_build(run, &src);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(rep, "findings"), "error")),
                           "no instance of stage 'eval' with arm=zzz"));
    json_decref(rep);
    json_decref(run);
    json_decref(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_findings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
