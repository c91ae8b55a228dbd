/* test_report.c - reports: tables of a synthetic run (rows per axis value, Δ, did and retention vs the teacher's eval
 * with hand-computed values, letters, significance-gated reversals, undefined Kendall tau, n/a retention), the four
 * renderers, spec errors, the work tables share (items read once, comparisons computed once, independent of the
 * threads), run-id resolution, the diff of two runs and of two evals. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <omp.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"
#include "test_util.h"

/* An eval artifact of 20 lettered items of task t (split eval, gold B): the first ll_k LL-correct (else LL picks A),
 * generation right on [gen_offset, gen_offset + gen_k), else "C", and no letter at all on items 18 and 19. */
static void add_eval(json_t *store, const char *key, int ll_k, int gen_k, int gen_offset)
{
    if (json_object_get(store, key)) return;
    json_t *items = json_array();
    for (int i = 0; i < 20; i++) {
        char doc[16];
        snprintf(doc, sizeof doc, "t-%02d", i);
        int g = i >= gen_offset && i < gen_offset + gen_k;
        json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s,s:i,s:b,s:b,s:s,s:o,s:i,s:i}", "task", "t", "doc_id", doc,
                                               "split", "eval", "format", "mcq", "n_choices", 4, "ll_correct", i < ll_k,
                                               "gen_correct", g, "gen_rule", g ? "leading" : i >= 18 ? "none" : "anywhere",
                                               "gen_pred", g ? json_string("B") : i >= 18 ? json_null() : json_string("C"),
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

/* world -> teacher -> student[m] -> eval[m]; eval_teacher on the teacher (LL t_ll/20, gen t_gen/20).
 * Arm a: LL 15/20, gen 6/20; arm b: LL b_ll/20, gen b_gen/20. */
static json_t *make_run(const char *id, json_t *store, int t_ll, int t_gen, int b_ll, int b_gen)
{
    json_t *st = json_array();
    json_array_append_new(st, rec("world", "data", "kw", NULL, json_pack("{s:s}", "scale", "tiny"), NULL));
    json_array_append_new(st, rec("teacher", "pretrain", "kt", NULL, json_pack("{s:i}", "steps", 100), json_pack("{s:s}", "data", "kw")));
    json_array_append_new(st, rec("student", "finetune", "ksa", json_pack("{s:s}", "m", "a"), json_pack("{s:s}", "masking", "a"),
                                  json_pack("{s:s}", "model", "kt")));
    json_array_append_new(st, rec("student", "finetune", "ksb", json_pack("{s:s}", "m", "b"), json_pack("{s:s}", "masking", "b"),
                                  json_pack("{s:s}", "model", "kt")));
    char kt[32], kb[32];
    snprintf(kt, sizeof kt, "ket%d_%d", t_ll, t_gen);
    snprintf(kb, sizeof kb, "keb%d_%d", b_ll, b_gen);
    json_array_append_new(st, rec("eval_teacher", "eval", kt, NULL, NULL, json_pack("{s:s,s:s}", "model", "kt", "data", "kw")));
    json_array_append_new(st, rec("eval", "eval", "kea", json_pack("{s:s}", "m", "a"), NULL, json_pack("{s:s,s:s}", "model", "ksa", "data", "kw")));
    json_array_append_new(st, rec("eval", "eval", kb, json_pack("{s:s}", "m", "b"), json_pack("{s:i}", "max_new_tokens", b_gen),
                                  json_pack("{s:s,s:s}", "model", "ksb", "data", "kw")));
    add_eval(store, kt, t_ll, t_gen, 0);
    add_eval(store, "kea", 15, 6, 0);
    add_eval(store, kb, b_ll, b_gen, 0);
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

static double val(json_t *row, const char *col) { return json_number_value(json_object_get(row, col)); }

static json_t *table0(json_t *rep) { return json_array_get(json_object_get(rep, "tables"), 0); }

static void test_report_tables(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *run = make_run("20260101-000000-000aa", store, 16, 16, 12, 10);
    rp_source src = {tu_mem_load, store};
    json_t *rep = rp_report_build(run, &src);
    assert_non_null(rep);
    json_t *tab = table0(rep);
    assert_string_equal(json_string_value(json_object_get(tab, "name")), "masking");
    assert_int_equal(json_array_size(json_object_get(tab, "rows")), 3); /* teacher + 2 arms */
    /* the headline columns first, then the spec's others once each (`retention` is both retentions) */
    json_t *want = json_pack("[s,s,s,s,s,s,s,s,s]", "ll_acc", "delta_ll", "gen_acc", "delta_gen", "did", "did_p", "gap",
                             "ll_retention", "gen_retention");
    assert_true(json_equal(json_object_get(tab, "columns"), want));
    json_decref(want);
    json_t *t = json_array_get(json_object_get(tab, "rows"), 0);
    assert_true(json_is_true(json_object_get(t, "teacher")));
    assert_true(json_is_null(json_object_get(t, "delta_ll")));
    json_t *a = row_of(tab, "m=a"), *b = row_of(tab, "m=b");
    assert_float_equal(val(a, "ll_acc"), 0.75, 1e-12);
    assert_float_equal(val(a, "gen_acc"), 0.30, 1e-12);
    /* chance 1/4 both ways (mcq): normalised = (acc - 0.25) / 0.75; teacher 0.8 -> 0.55 / 0.75 */
    assert_float_equal(val(a, "delta_ll"), -0.05 / 0.75, 1e-12);
    assert_float_equal(val(a, "delta_gen"), -0.50 / 0.75, 1e-12);
    assert_float_equal(val(a, "did"), -0.45 / 0.75, 1e-12);
    assert_float_equal(val(a, "ll_retention"), 0.50 / 0.55, 1e-12);
    assert_float_equal(val(a, "gen_retention"), 0.05 / 0.55, 1e-12);
    assert_float_equal(val(a, "delta_gen_raw"), -0.50, 1e-12);
    assert_float_equal(val(a, "gap"), 0.45 / 0.75, 1e-12);
    assert_float_equal(val(b, "did"), -0.10 / 0.75, 1e-12);
    assert_float_equal(val(b, "gen_retention"), 0.25 / 0.55, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(a, "n_paired")), 20);
    static const char *const ci_fields[] = {"ll_acc", "delta_ll", "delta_gen", "did", "ll_retention", "gen_retention", NULL};
    for (int i = 0; ci_fields[i]; i++) {
        char *k = xstrfmt("%s_ci", ci_fields[i]);
        json_t *ci = json_object_get(a, k);
        assert_int_equal(json_array_size(ci), 2);
        assert_true(json_number_value(json_array_get(ci, 0)) <= val(a, ci_fields[i]) + 1e-12 &&
                    val(a, ci_fields[i]) <= json_number_value(json_array_get(ci, 1)) + 1e-12);
        free(k);
    }
    /* did of arm a: generation lost 10 of the teacher's items, LL 1: far from 0 */
    assert_true(val(a, "did_p") < 0.001);
    /* letters of arm a: gold B x20; LL B x15, A x5; gen B x6, C x12, no letter x2 */
    json_t *lt = json_object_get(a, "letters");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lt, "gen"), "C")), 12);
    assert_int_equal(json_integer_value(json_object_get(lt, "invalid")), 2);
    assert_float_equal(json_number_value(json_object_get(lt, "letter_tv")), (14 + 12 + 2) / 40.0, 1e-12);
    assert_float_equal(json_number_value(json_object_get(lt, "ll_letter_tv")), 0.25, 1e-12);
    /* reversal: LL prefers a (15 vs 12), generation prefers b (10 vs 6); the interaction did_b - did_a =
     * (Δgen(b-a) - ΔLL(b-a)) = (0.2 + 0.15) / 0.75 rests on 7 of 20 items: significant */
    assert_float_equal(json_number_value(json_object_get(json_object_get(tab, "ranking"), "kendall_tau")), -1, 1e-12);
    json_t *rev = json_object_get(tab, "reversals");
    assert_int_equal(json_array_size(rev), 1);
    json_t *e = json_array_get(rev, 0);
    assert_float_equal(json_number_value(json_object_get(e, "did_diff")), 0.35 / 0.75, 1e-12);
    assert_true(json_number_value(json_object_get(e, "p_holm")) < 0.01);
    assert_true(json_number_value(json_object_get(e, "p_holm")) == json_number_value(json_object_get(e, "p"))); /* one pair */
    assert_true(json_is_null(json_object_get(tab, "largest_nonsignificant_reversal")));

    char *s;
    assert_int_equal(rp_render(rep, "md", &s), 0);
    assert_non_null(strstr(s, "| m | LL acc | Δ LL vs teacher | Gen acc | Δ Gen vs teacher | Δgen − ΔLL | p (did) | "
                              "LL − gen within (norm.) | LL retention | Gen retention |"));
    assert_non_null(strstr(s, "| m=a | 75.0 [53.1, 88.8] | -6.7 ["));
    assert_non_null(strstr(s, "| 30.0 [14.5, 51.9] | -66.7 ["));
    assert_non_null(strstr(s, "| *teacher (eval_teacher)* | 80.0 [58.4, 91.9] | — |"));
    assert_non_null(strstr(s, "90.9% ["));
    assert_non_null(strstr(s, "**Ranking reversal** (significant after Holm over 1 pair): m=a vs m=b"));
    assert_non_null(strstr(s, "| m=a | 20 | 0/20/0/0 | 5/15/0/0 | 0/6/12/0 | 2 (10.0%) | C (60.0%) | 0.70 | 0.25 |"));
    free(s);
    assert_int_equal(rp_render(rep, "tex", &s), 0);
    assert_non_null(strstr(s, "\\toprule"));
    assert_non_null(strstr(s, "90.9\\%"));
    assert_non_null(strstr(s, "$\\Delta$ LL vs teacher"));
    for (const char *u = strchr(s, '\n'); (u = strchr(u + 1, '_'));) /* after the comment line: every _ escaped */
        assert_true(u[-1] == '\\');
    assert_non_null(strstr(s, "eval\\_teacher"));
    assert_null(strstr(s, "Δ"));
    free(s);
    assert_int_equal(rp_render(rep, "html", &s), 0);
    assert_non_null(strstr(s, "<table>"));
    assert_non_null(strstr(s, "class=\"teacher\""));
    assert_non_null(strstr(s, "75.0 <small>[53.1, 88.8]</small>"));
    free(s);
    assert_int_equal(rp_render(rep, "json", &s), 0);
    json_t *back = json_loads(s, 0, NULL);
    assert_non_null(back);
    json_decref(back);
    free(s);
    assert_int_equal(rp_render(rep, "pdf", &s), -1);
    json_decref(rep);

    /* a reversal on 2 of 20 items (LL 15 vs 14, gen 6 vs 7): not significant, named as the largest one */
    json_t *run2 = make_run("20260101-000001-000bb", store, 16, 16, 14, 7);
    rep = rp_report_build(run2, &src);
    tab = table0(rep);
    assert_int_equal(json_array_size(json_object_get(tab, "reversals")), 0);
    json_t *big = json_object_get(tab, "largest_nonsignificant_reversal");
    assert_float_equal(json_number_value(json_object_get(big, "did_diff")), (2 / 0.75) / 20, 1e-12);
    assert_true(json_number_value(json_object_get(big, "p_holm")) > 0.05);
    assert_int_equal(rp_render(rep, "md", &s), 0);
    assert_non_null(strstr(s, "No significant ranking reversal"));
    assert_non_null(strstr(s, "the largest non-significant one: m=a vs m=b"));
    assert_null(strstr(s, "**Ranking reversal**"));
    free(s);
    json_decref(rep);
    json_decref(run2);

    /* no reversal when generation agrees with LL */
    run2 = make_run("20260101-000001-000bb", store, 16, 16, 12, 4);
    rep = rp_report_build(run2, &src);
    tab = table0(rep);
    assert_int_equal(json_array_size(json_object_get(tab, "reversals")), 0);
    assert_true(json_is_null(json_object_get(tab, "largest_nonsignificant_reversal")));
    json_decref(rep);

    /* default tables: one per eval stage when the recipe has none */
    json_object_del(run2, "report");
    rep = rp_report_build(run2, &src);
    assert_int_equal(json_array_size(json_object_get(rep, "tables")), 2);
    json_decref(rep);
    json_decref(run2);

    /* tied arms under LL: Kendall's tau-b is undefined, never 0 */
    run2 = make_run("20260101-000002-000cc", store, 16, 16, 15, 10);
    rep = rp_report_build(run2, &src);
    tab = table0(rep);
    assert_true(json_is_null(json_object_get(json_object_get(tab, "ranking"), "kendall_tau")));
    assert_int_equal(rp_render(rep, "md", &s), 0);
    assert_non_null(strstr(s, "Kendall tau-b undefined"));
    free(s);
    json_decref(rep);
    json_decref(run2);

    /* a teacher at chance by LL (5 of 20 with 4 choices): LL retention n/a, with the reason in the notes */
    run2 = make_run("20260101-000003-000dd", store, 5, 16, 12, 10);
    rep = rp_report_build(run2, &src);
    tab = table0(rep);
    a = row_of(tab, "m=a");
    assert_true(json_is_null(json_object_get(a, "ll_retention")));
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(a, "na"), "ll_retention")), "not above chance"));
    assert_true(json_is_number(json_object_get(a, "gen_retention")));
    assert_int_equal(rp_render(rep, "md", &s), 0);
    assert_non_null(strstr(s, "LL retention n/a (m=a, m=b): the baseline's LL accuracy 25.0% [11.2, 46.9] is not above chance (25.0%)"));
    free(s);
    json_decref(rep);
    json_decref(run2);

    /* spec errors name the table and the field */
    json_t *spec = json_array_get(json_object_get(json_object_get(run, "report"), "tables"), 0);
    json_object_set_new(spec, "columns", json_pack("[s]", "ll_accc"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "ll_accc"));
    assert_non_null(strstr(hx_last_error(), "delta_ll"));
    json_object_set_new(spec, "columns", json_pack("[s]", "ll_acc"));
    json_object_set_new(spec, "rows", json_string("axes.nope"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "no axis 'nope'"));
    json_object_set_new(spec, "rows", json_string("axes.m"));
    json_object_set_new(spec, "colums", json_pack("[s]", "ll_acc"));
    assert_null(rp_report_build(run, &src));
    assert_non_null(strstr(hx_last_error(), "unknown field 'colums'"));
    json_decref(run);
    json_decref(store);
}

/* tu_mem_load that counts each entry's items.jsonl loads: {key: n} in the source's "loads". */
static json_t *counting_load(void *ud, const char *key, const char *file)
{
    json_t *loads = json_object_get(ud, "loads");
    if (!strcmp(file, "items.jsonl"))
        json_object_set_new(loads, key, json_integer(json_integer_value(json_object_get(loads, key)) + 1));
    return tu_mem_load(json_object_get(ud, "store"), key, file);
}

/* Two tables over the same split and task (the second over arm a only) share the report's work: each eval's items are
 * read once per report, the comparisons of the second table are the first's (the same streams, the same numbers), and
 * the report is the same whatever the number of threads that compute the comparisons. */
static void test_shared_work(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *run = make_run("20260101-000000-000aa", store, 16, 16, 12, 10);
    json_array_append_new(json_object_get(json_object_get(run, "report"), "tables"),
                          json_pack("{s:s,s:s,s:s,s:[s]}", "name", "arm_a", "rows", "axes.m", "stage", "eval", "arms", "a"));
    json_t *ud = json_pack("{s:O,s:{}}", "store", store, "loads");
    rp_source src = {counting_load, ud};
    omp_set_num_threads(1);
    json_t *one = rp_report_build(run, &src);
    assert_non_null(one);
    const char *k;
    json_t *v;
    int keys = 0;
    json_object_foreach(json_object_get(ud, "loads"), k, v) {
        assert_int_equal(json_integer_value(v), 1);
        keys++;
    }
    assert_int_equal(keys, 3); /* the teacher's eval and the two arms' */
    json_t *t0 = json_array_get(json_object_get(one, "tables"), 0), *t1 = json_array_get(json_object_get(one, "tables"), 1);
    assert_int_equal(json_array_size(json_object_get(t1, "rows")), 2); /* teacher + arm a */
    static const char *const same[] = {"delta_ll_ci", "delta_gen_ci", "did_ci", "did_p", "ll_retention_ci", NULL};
    for (int i = 0; same[i]; i++)
        assert_true(json_equal(json_object_get(row_of(t0, "m=a"), same[i]), json_object_get(row_of(t1, "m=a"), same[i])));
    omp_set_num_threads(4);
    json_t *four = rp_report_build(run, &src);
    char *a = json_dumps(one, JSON_SORT_KEYS), *b = json_dumps(four, JSON_SORT_KEYS);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(one);
    json_decref(four);
    json_decref(ud);
    json_decref(run);
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

static json_t *eval_of(json_t *d, const char *inst)
{
    json_t *evals = json_object_get(d, "evals");
    for (size_t i = 0; i < json_array_size(evals); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(evals, i), "instance")), inst)) return json_array_get(evals, i);
    fail_msg("no eval %s", inst);
    return NULL;
}

static void test_diff(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *a = make_run("20260101-000000-000aa", store, 16, 16, 12, 10), *b = make_run("20260101-000001-000bb", store, 16, 16, 12, 4);
    rp_source src = {tu_mem_load, store};
    json_t *d = rp_diff(a, b, &src, 0);
    assert_non_null(d);
    /* one parameter differs: eval[m=b].with.max_new_tokens 10 -> 4 */
    json_t *params = json_object_get(d, "params");
    assert_int_equal(json_array_size(params), 1);
    json_t *p = json_array_get(params, 0);
    assert_string_equal(json_string_value(json_object_get(p, "instance")), "eval[m=b]");
    assert_string_equal(json_string_value(json_object_get(p, "path")), "with.max_new_tokens");
    assert_int_equal(json_array_size(json_object_get(d, "evals")), 3);
    json_t *eb = eval_of(d, "eval[m=b]");
    assert_false(json_is_true(json_object_get(eb, "same_key")));
    json_t *sp = json_object_get(json_object_get(eb, "splits"), "eval");
    json_t *gen = json_object_get(sp, "gen_acc");
    assert_float_equal(json_number_value(json_object_get(gen, "delta")), -0.30, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(gen, "a_only")), 6);
    assert_int_equal(json_integer_value(json_object_get(gen, "b_only")), 0);
    assert_float_equal(json_number_value(json_object_get(gen, "mcnemar_p")), 2.0 / 64, 1e-12);
    assert_true(json_is_true(json_object_get(gen, "significant")));
    /* the paired statistics of B against A: LL unchanged, generation -0.3 raw = -0.4 normalised */
    json_t *pd = json_object_get(sp, "paired");
    assert_float_equal(json_number_value(json_object_get(pd, "delta_ll")), 0, 1e-12);
    assert_float_equal(json_number_value(json_object_get(pd, "did")), -0.30 / 0.75, 1e-12);
    assert_float_equal(json_number_value(json_object_get(pd, "gen_retention")), -0.05 / 0.25, 1e-12); /* below chance */
    json_t *fl = json_object_get(json_object_get(sp, "flips"), "gen");
    assert_int_equal(json_array_size(json_object_get(fl, "a_only")), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(fl, "a_only"), 0), "doc_id")), "t-04");
    char *text = rp_diff_text(d, 2);
    assert_non_null(strstr(text, "eval[m=b]"));
    assert_non_null(strstr(text, "significant at 0.05"));
    assert_non_null(strstr(text, "... 4 more"));
    assert_non_null(strstr(text, "did = ΔGen - ΔLL -40.0 ["));
    free(text);
    json_decref(d);

    /* two evals of one run: the teacher's and an arm's, the same numbers as the report's row */
    json_t *ta = rp_find_instance(a, "eval_teacher"), *ea = rp_find_instance(a, "eval[m=a]");
    assert_non_null(ta);
    assert_non_null(ea);
    d = rp_diff_instances(a, ta, a, ea, &src, 0);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "b"), "instance")), "eval[m=a]");
    pd = json_object_get(json_object_get(json_object_get(json_array_get(json_object_get(d, "evals"), 0), "splits"), "eval"), "paired");
    assert_float_equal(json_number_value(json_object_get(pd, "delta_ll")), -0.05 / 0.75, 1e-12);
    assert_float_equal(json_number_value(json_object_get(pd, "did")), -0.45 / 0.75, 1e-12);
    assert_float_equal(json_number_value(json_object_get(pd, "ll_retention")), 0.50 / 0.55, 1e-12);
    text = rp_diff_text(d, 1);
    assert_non_null(strstr(text, "A: run 20260101-000000-000aa  ablate_m  (ok)  eval_teacher"));
    assert_non_null(strstr(text, "split eval: 20 paired items (0 only in A, 0 only in B)"));
    assert_null(strstr(text, "stage keys"));
    free(text);
    json_decref(d);
    /* naming errors list what exists */
    assert_null(rp_find_instance(a, "eval"));
    assert_non_null(strstr(hx_last_error(), "names 2 instances"));
    assert_non_null(strstr(hx_last_error(), "eval[m=a], eval[m=b]"));
    assert_null(rp_find_instance(a, "eval[m=z]"));
    assert_non_null(strstr(hx_last_error(), "no instance eval[m=z]"));
    assert_null(rp_find_instance(a, "evl"));
    assert_non_null(strstr(hx_last_error(), "its eval stages: eval_teacher, eval"));
    assert_null(rp_find_instance(a, "eval[m]"));
    assert_null(rp_find_instance(a, "eval[m=a"));
    /* only evals are compared */
    assert_null(rp_diff_instances(a, rp_find_instance(a, "teacher"), a, ea, &src, 0));
    assert_non_null(strstr(hx_last_error(), "teacher is a pretrain stage, not an eval"));
    json_decref(a);
    json_decref(b);
    json_decref(store);
}

/* A run over axes m (a, b) and seed (the first nseeds of 0, 1): the teacher LL 16/20, gen 16/20; arm a's seeds
 * LL 15 and 11, gen 6 and 8; arm b's LL 12 and 12, gen 10 and 4. */
static json_t *make_seed_run(json_t *store, int nseeds)
{
    static const int ll[2][2] = {{15, 11}, {12, 12}}, gen[2][2] = {{6, 8}, {10, 4}};
    json_t *st = json_array();
    json_array_append_new(st, rec("world", "data", "kw", NULL, NULL, NULL));
    json_array_append_new(st, rec("teacher", "pretrain", "kt", NULL, NULL, json_pack("{s:s}", "data", "kw")));
    json_array_append_new(st, rec("eval_teacher", "eval", "ket", NULL, NULL, json_pack("{s:s,s:s}", "model", "kt", "data", "kw")));
    add_eval(store, "ket", 16, 16, 0);
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < nseeds; s++) {
            char key[32];
            snprintf(key, sizeof key, "ke%c%d", "ab"[m], s);
            add_eval(store, key, ll[m][s], gen[m][s], 0);
            json_array_append_new(st, rec("eval", "eval", key, json_pack("{s:s%,s:i}", "m", "ab" + m, (size_t)1, "seed", s), NULL,
                                          json_pack("{s:s,s:s}", "model", "kt", "data", "kw")));
        }
    json_t *seeds = json_array();
    for (int s = 0; s < nseeds; s++) json_array_append_new(seeds, json_integer(s));
    return json_pack("{s:s,s:{s:s},s:s,s:{s:[s,s],s:o},s:o,s:{s:[{s:s,s:s,s:s}]}}", "run_id", "20260101-000000-000cc",
                     "recipe", "name", "seeds", "status", "ok", "axes", "m", "a", "b", "seed", seeds, "stages", st, "report",
                     "tables", "name", "arms", "rows", "axes.m", "stage", "eval");
}

/* Rows over seeds: the mean and the interval of ev_seed_mean (values by hand: docs/eval.md "Seeds"), the labels,
 * the interaction over common seeds, one seed dropping `seed=0` from the label, and the CSV quoting of a label. */
static void test_seeds(void **state)
{
    (void)state;
    json_t *store = json_object();
    json_t *run = make_seed_run(store, 2);
    rp_source src = {tu_mem_load, store};
    json_t *rep = rp_report_build(run, &src);
    assert_non_null(rep);
    json_t *tab = table0(rep);
    assert_int_equal(json_array_size(json_object_get(tab, "rows")), 3);
    json_t *a = row_of(tab, "m=a,seeds=2");
    row_of(tab, "m=b,seeds=2");
    assert_int_equal(json_array_size(json_object_get(a, "per_seed")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(a, "per_seed"), 1), "label")), "m=a,seed=1");
    /* LL: theta = 15/20, 11/20 -> 0.65; sd_seed = 0.2 / sqrt 2; vbar = 1 (x11), 0.5 (x4), 0 (x5): se_item^2 =
     * 3.55 / 19 / 20; se = sqrt(6.482875^2 * 0.02 / 2 + 3.55 / 380) -> 0.65 -+ 1.284665, clipped to [0, 1] (an
     * accuracy); arm b: both seeds 12/20, so the interval is the item one: 12 items at 1, 8 at 0, sum of squares
     * about 0.6 = 4.8, 0.6 -+ 1.96 sqrt(4.8 / 19 / 20) */
    assert_float_equal(val(a, "ll_acc"), 0.65, 1e-12);
    json_t *ci = json_object_get(a, "ll_acc_ci");
    assert_float_equal(json_number_value(json_array_get(ci, 0)), 0, 0);
    assert_float_equal(json_number_value(json_array_get(ci, 1)), 1, 0);
    ci = json_object_get(row_of(tab, "m=b,seeds=2"), "ll_acc_ci");
    assert_float_equal(json_number_value(json_array_get(ci, 0)), 0.6 - EV_Z95 * sqrt(4.8 / 19 / 20), 1e-12);
    assert_float_equal(json_number_value(json_array_get(ci, 1)), 0.6 + EV_Z95 * sqrt(4.8 / 19 / 20), 1e-12);
    assert_float_equal(json_number_value(json_object_get(json_object_get(a, "seed_sd"), "ll_acc")), 0.2 / sqrt(2), 1e-12);
    /* Δ LL: chance-normalised, teacher 16/20: per seed (-1/20, -5/20) / 0.75 -> mean -0.2 */
    assert_float_equal(val(a, "delta_ll"), -0.2, 1e-12);
    ci = json_object_get(a, "delta_ll_ci");
    assert_float_equal(json_number_value(json_array_get(ci, 0)), -1.9023620125, 1e-8);
    assert_float_equal(json_number_value(json_array_get(ci, 1)), 1.5023620125, 1e-8);
    assert_float_equal(val(a, "did"), val(a, "delta_gen") - val(a, "delta_ll"), 1e-12);
    assert_true(val(a, "did_p") > 0 && val(a, "did_p") <= 1);
    assert_int_equal(json_integer_value(json_object_get(a, "n_paired")), 20);
    /* a column without a seed interval: the mean of the seeds' rows */
    assert_float_equal(val(a, "ll_retention"),
                       (val(json_array_get(json_object_get(a, "per_seed"), 0), "ll_retention") +
                        val(json_array_get(json_object_get(a, "per_seed"), 1), "ll_retention")) / 2, 1e-12);
    /* letters over both seeds' 40 answers */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "letters"), "n")), 40);
    /* the interaction of the two arms over their two common seeds */
    json_t *in = json_array_get(json_object_get(tab, "interactions"), 0);
    assert_int_equal(json_integer_value(json_object_get(in, "n_paired")), 20);
    assert_true(json_is_number(json_object_get(in, "p")));
    /* CSV: the label with a comma is quoted; the seeds' own rows follow, with their seed */
    char *csv = rp_csv(rep);
    assert_non_null(strstr(csv, "run,recipe,table,stage,m,seed,label,seeds,teacher,task,split,metric,value,ci_lo,ci_hi,n\r\n"));
    assert_non_null(strstr(csv, ",eval,a,1,\"m=a,seed=1\",1,false,all,eval,ll_acc,0.55,"));
    assert_non_null(strstr(csv, ",\"m=a,seeds=2\",2,false,all,eval,ll_acc,0.65,"));
    free(csv);
    json_decref(rep);
    json_decref(run);
    /* one seed: the rows are the instances' own, labelled without seed=0 */
    run = make_seed_run(store, 1);
    rep = rp_report_build(run, &src);
    tab = table0(rep);
    a = row_of(tab, "m=a");
    assert_float_equal(val(a, "ll_acc"), 0.75, 1e-12);
    assert_null(json_object_get(a, "per_seed"));
    json_decref(rep);
    json_decref(run);
    json_decref(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_tables),
        cmocka_unit_test(test_shared_work),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
