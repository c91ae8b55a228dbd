/* test_eval.c - evalsuite: normalisation and open answers, statistics against known values, prompts, item parsing
 * errors, metrics of hand-made outcomes (letter extraction, every rule: test_grade.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "evalsuite/extract.h"
#include "evalsuite/metrics.h"
#include "evalsuite/prompt.h"
#include "evalsuite/stats.h"

static void check_norm(const char *in, const char *want)
{
    char *s = ev_normalize(in);
    assert_string_equal(s, want);
    free(s);
}

static void test_normalize(void **state)
{
    (void)state;
    check_norm("The  Quick, brown-fox!", "quick brownfox");
    check_norm("An apple a day", "apple day");
    check_norm("  Uzbekistani soʻm. ", "uzbekistani soʻm");
    check_norm("the", "");
    check_norm("Theatre", "theatre");
}

static void test_open(void **state)
{
    (void)state;
    const char *al[] = {"properness", "mic"};
    int ex, co;
    assert_int_equal(ev_match_open("Propriety.", "propriety", al, 2, &ex, &co), 1);
    assert_true(ex && co);
    ev_match_open("It is propriety, I think", "propriety", al, 2, &ex, &co);
    assert_true(!ex && co);
    ev_match_open("proprietyx", "propriety", al, 2, &ex, &co);
    assert_true(!ex && !co);
    ev_match_open("The mic", "microphone", al, 2, &ex, &co);
    assert_true(ex && co);
    ev_match_open("Answer: Properness\nmore text", "propriety", al, 2, &ex, &co);
    assert_true(ex && co);
    ev_match_open("", "the", NULL, 0, &ex, &co); /* target normalises to nothing: never matches */
    assert_true(!ex && !co);
    char *a = ev_open_answer("\n\n  The answer is Paris  \nLyon");
    assert_string_equal(a, "Paris");
    free(a);
}

static void test_stats(void **state)
{
    (void)state;
    ev_ci w = ev_wilson(8, 10, EV_Z95);
    assert_float_equal(w.lo, 0.49016247153664183, 1e-12);
    assert_float_equal(w.hi, 0.9433178485456247, 1e-12);
    w = ev_wilson(0, 10, EV_Z95);
    assert_float_equal(w.lo, 0, 1e-15);
    assert_float_equal(w.hi, 0.2775327998628892, 1e-12);
    w = ev_wilson(0, 0, EV_Z95);
    assert_true(w.lo == 0 && w.hi == 1);
    /* McNemar exact: b=10, c=2 -> 2 * (1 + 12 + 66) / 4096 */
    assert_float_equal(ev_mcnemar_exact(10, 2), 2.0 * 79 / 4096, 1e-12);
    assert_float_equal(ev_mcnemar_exact(2, 10), 2.0 * 79 / 4096, 1e-12);
    assert_float_equal(ev_mcnemar_exact(0, 0), 1, 0);
    assert_float_equal(ev_mcnemar_exact(3, 3), 1, 0);
    assert_float_equal(ev_mcnemar_exact(2000, 2100), ev_mcnemar_exact(2100, 2000), 1e-12); /* large n: no overflow */
    double p;
    assert_float_equal(ev_mcnemar_chi2(10, 2, &p), 49.0 / 12, 1e-12);
    assert_float_equal(p, 0.04330814281079198, 1e-9);
    double x[] = {1, 2, 3, 4}, y[] = {1, 3, 2, 4}, z[] = {4, 3, 2, 1}, t[] = {1, 1, 2, 2};
    double tau;
    assert_true(ev_kendall_tau(x, y, 4, &tau) && fabs(tau - 4.0 / 6) < 1e-12);
    assert_true(ev_kendall_tau(x, z, 4, &tau) && fabs(tau + 1) < 1e-12);
    assert_true(ev_kendall_tau(x, t, 4, &tau) && fabs(tau - 4 / sqrt(6.0 * 4)) < 1e-12); /* tau-b with ties in y */
    /* bootstrap: a constant difference has a point interval; equal seeds give equal intervals */
    double one[50], zero[50], half[50];
    for (int i = 0; i < 50; i++) one[i] = 1, zero[i] = 0, half[i] = i % 2;
    ev_ci b = ev_bootstrap_paired(one, zero, 50, 200, 7, 0.95);
    assert_true(b.lo == 1 && b.hi == 1);
    ev_ci h1 = ev_bootstrap_paired(half, NULL, 50, 500, 7, 0.95), h2 = ev_bootstrap_paired(half, NULL, 50, 500, 7, 0.95);
    assert_true(h1.lo == h2.lo && h1.hi == h2.hi);
    /* the normal approximation of the interval of a mean of 0.5 over 50: 0.5 +- 1.96 * 0.0707 = [0.36, 0.64] */
    assert_true(h1.lo > 0.33 && h1.lo < 0.39 && h1.hi > 0.61 && h1.hi < 0.67);
}

static json_t *item_json(const char *fmt_name)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s,s,s,s],s:i,s:s,s:[s]}", "task", "kn_mcq_country", "doc_id", "d-1",
                     "split", "eval", "format", fmt_name, "question", "What is the capital of France?", "choices", "Lyon",
                     "Paris", "Nice", "Lille", "answer", 1, "target", "Paris", "aliases", "paris");
}

static void test_prompts(void **state)
{
    (void)state;
    json_t *j = item_json("mcq"), *s = item_json("open");
    json_object_set_new(s, "doc_id", json_string("d-2"));
    json_object_set_new(s, "question", json_string("Capital of Italy?"));
    json_object_set_new(s, "target", json_string("Rome"));
    json_array_set_new(json_object_get(s, "choices"), 1, json_string("Rome"));
    ev_item it, shot;
    assert_int_equal(ev_item_parse(j, "x.jsonl:1", &it), 0);
    assert_int_equal(ev_item_parse(s, "x.jsonl:2", &shot), 0);
    char *c = ev_ll_context(&it, NULL, 0);
    assert_string_equal(c, "Question: What is the capital of France?\nA. Lyon\nB. Paris\nC. Nice\nD. Lille\nAnswer:");
    free(c);
    c = ev_ll_continuation(&it, 2);
    assert_string_equal(c, " C");
    free(c);
    c = ev_gen_prompt(&it, NULL, 0, 1);
    assert_string_equal(c, "<|im_start|>user\nWhat is the capital of France?\nA. Lyon\nB. Paris\nC. Nice\nD. Lille\n"
                           "Answer with the letter of the correct option.<|im_end|>\n<|im_start|>assistant\n");
    free(c);
    /* open format: choice texts as continuations; one shot in front */
    it.format = EV_FMT_OPEN;
    const ev_item *shots[] = {&shot};
    c = ev_ll_context(&it, shots, 1);
    assert_string_equal(c, "Question: Capital of Italy?\nAnswer: Rome\n\nQuestion: What is the capital of France?\nAnswer:");
    free(c);
    c = ev_ll_continuation(&it, 1);
    assert_string_equal(c, " Paris");
    free(c);
    c = ev_gen_prompt(&it, shots, 1, 1);
    assert_string_equal(c, "<|im_start|>user\nCapital of Italy? Answer in a few words.<|im_end|>\n<|im_start|>assistant\n"
                           "Rome<|im_end|>\n<|im_start|>user\nWhat is the capital of France? Answer in a few words.<|im_end|>\n"
                           "<|im_start|>assistant\n");
    free(c);
    c = ev_gen_prompt(&it, NULL, 0, 0); /* without chat: the LL context (lm-eval generate_until) */
    assert_string_equal(c, "Question: What is the capital of France?\nAnswer:");
    free(c);
    assert_true(ev_has_acc_norm(&it) && !ev_gen_is_letter(&it));
    ev_item_release(&it);
    ev_item_release(&shot);
    /* malformed items name the place and the field */
    json_object_set_new(j, "answer", json_integer(7));
    assert_int_equal(ev_item_parse(j, "bench/x.jsonl:3", &it), -1);
    assert_non_null(strstr(hx_last_error(), "bench/x.jsonl:3"));
    assert_non_null(strstr(hx_last_error(), "answer"));
    json_object_del(j, "choices");
    assert_int_equal(ev_item_parse(j, "bench/x.jsonl:4", &it), -1);
    assert_non_null(strstr(hx_last_error(), "choices"));
    json_object_set_new(j, "format", json_string("essay"));
    json_object_set_new(j, "choices", json_pack("[s,s]", "a", "b"));
    assert_int_equal(ev_item_parse(j, "bench/x.jsonl:5", &it), -1);
    assert_non_null(strstr(hx_last_error(), "essay"));
    assert_non_null(strstr(hx_last_error(), "prose")); /* the message lists the formats */
    json_decref(j);
    json_decref(s);
}

static json_t *prose_json(const char *doc, const char *q, const char *c0, const char *c1, const char *c2, const char *c3,
                          int answer)
{
    const char *c[] = {c0, c1, c2, c3};
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:[s,s,s,s],s:i,s:s,s:[]}", "task", "kn_prose_country", "doc_id", doc,
                     "fact_id", doc, "split", "eval", "format", "prose", "question", q, "choices", c0, c1, c2, c3,
                     "answer", answer, "target", c[answer], "aliases");
}

static void check_prose_reply(const ev_item *it, const char *reply, size_t want_end, int want_em, int want_co)
{
    size_t e = ev_prose_end(reply, it->target, it->aliases, it->n_aliases);
    if (e != want_end) fail_msg("'%s': ends at %zu, want %zu", reply, e, want_end);
    char *cut = xstrfmt("%.*s", (int)e, reply);
    int ex, co;
    ev_match_open(cut, it->target, it->aliases, it->n_aliases, &ex, &co);
    if (ex != want_em || co != want_co) fail_msg("'%s': em %d contains %d, want %d %d", cut, ex, co, want_em, want_co);
    free(cut);
}

/* prose items: a raw prefix continued by each choice; generation continues the same prefix, never in the chat
 * template; the reply ends at the first newline or "." outside the answer and is matched as an open answer */
static void test_prose(void **state)
{
    (void)state;
    json_t *j = prose_json("p-1", "The capital of Laos is", "Hanoi", "Vientiane", "Bangkok", "Phnom Penh", 1);
    json_t *s = prose_json("p-2", "The only country bordering Portugal is", "Spain", "the Netherlands", "France",
                           "Italy", 0);
    json_t *d = prose_json("p-3", "The capital of the United States is", "Ottawa", "Washington D.C.", "Lima", "Rome", 1);
    json_t *g = prose_json("p-4", "The capital of Grenada is", "St. George's", "Kingstown", "Roseau", "Castries", 0);
    json_array_append_new(json_object_get(g, "aliases"), json_string("Saint George's"));
    ev_item it, shot, dc, gr;
    assert_int_equal(ev_item_parse(j, "p.jsonl:1", &it), 0);
    assert_int_equal(ev_item_parse(s, "p.jsonl:2", &shot), 0);
    assert_int_equal(ev_item_parse(d, "p.jsonl:3", &dc), 0);
    assert_int_equal(ev_item_parse(g, "p.jsonl:4", &gr), 0);
    assert_int_equal(it.format, EV_FMT_PROSE);
    assert_string_equal(ev_format_name(it.format), "prose");
    assert_true(ev_has_acc_norm(&it) && !ev_gen_is_letter(&it));
    assert_true(!ev_uses_chat(&it, 1) && !ev_uses_chat(&it, 0));
    char *c = ev_ll_context(&it, NULL, 0);
    assert_string_equal(c, "The capital of Laos is");
    free(c);
    c = ev_ll_continuation(&it, 3);
    assert_string_equal(c, " Phnom Penh");
    free(c);
    c = ev_gen_prompt(&it, NULL, 0, 1); /* chat: true is ignored for a prose prefix */
    assert_string_equal(c, "The capital of Laos is");
    free(c);
    c = ev_gen_answer(&it);
    assert_string_equal(c, "Vientiane");
    free(c);
    /* shots: finished sentences of one paragraph, as facts appear in the corpus; an answer ending in "." is not
     * doubled */
    const ev_item *shots[] = {&shot, &dc};
    c = ev_ll_context(&it, shots, 2);
    assert_string_equal(c, "The only country bordering Portugal is Spain. The capital of the United States is "
                           "Washington D.C. The capital of Laos is");
    free(c);
    c = ev_gen_prompt(&it, shots, 1, 1);
    assert_string_equal(c, "The only country bordering Portugal is Spain. The capital of Laos is");
    free(c);
    /* replies as greedy decoding gives them (the leading space of the continuation included) */
    check_prose_reply(&it, " Vientiane", 10, 1, 1);
    check_prose_reply(&it, " Vientiane. The capital of Thailand is Bangkok.", 10, 1, 1);
    check_prose_reply(&it, " Hanoi. Vientiane is the capital of Laos.", 6, 0, 0); /* later sentences never count */
    check_prose_reply(&it, " the city of Vientiane, on the Mekong.", 37, 0, 1);
    check_prose_reply(&it, " Vientiane\nThe", 10, 1, 1);
    check_prose_reply(&it, " Vientianes.", 11, 0, 0);
    check_prose_reply(&it, "", 0, 0, 0);
    check_prose_reply(&shot, " the Netherlands.", 16, 0, 0);
    check_prose_reply(&shot, " Spain.", 6, 1, 1);
    /* a "." inside an accepted answer does not end the reply; the answer's final "." ends the sentence */
    check_prose_reply(&dc, " Washington D.C. It lies on the Potomac.", 15, 1, 1);
    check_prose_reply(&dc, " Washington D.C.", 15, 1, 1);
    check_prose_reply(&dc, " Washington. It lies on the Potomac.", 11, 0, 0);
    check_prose_reply(&gr, " St. George's. The capital of Dominica is Roseau.", 13, 1, 1);
    check_prose_reply(&gr, " st. george's", 13, 1, 1);
    check_prose_reply(&gr, " Saint George's.", 15, 1, 1);
    check_prose_reply(&gr, " St. Kitts.", 3, 0, 0); /* only a whole accepted answer protects its "." */
    ev_item_release(&it);
    ev_item_release(&shot);
    ev_item_release(&dc);
    ev_item_release(&gr);
    json_decref(j);
    json_decref(s);
    json_decref(d);
    json_decref(g);
}

static json_t *outcome(const char *task, const char *split, int ll, int gen, int em)
{
    json_t *o = json_pack("{s:s,s:s,s:i,s:b,s:b}", "task", task, "split", split, "n_choices", 4, "ll_correct", ll,
                          "gen_correct", gen);
    if (em >= 0) json_object_set_new(o, "gen_em", json_boolean(em));
    else {
        json_object_set_new(o, "gen_rule", json_string(gen ? "leading" : "none"));
        json_object_set_new(o, "gen_pred", gen ? json_string("A") : json_null());
    }
    return o;
}

static double getf(json_t *m, const char *a, const char *b, const char *c, const char *k)
{
    json_t *g = a ? json_object_get(m, a) : m;
    if (b) g = json_object_get(g, b);
    if (c) g = json_object_get(g, c);
    json_t *v = json_object_get(g, k);
    if (!v) fail_msg("no %s/%s/%s/%s", a ? a : "", b ? b : "", c ? c : "", k);
    return json_number_value(v);
}

static void test_metrics(void **state)
{
    (void)state;
    json_t *r = json_array();
    /* t1 eval: ll T T F T, gen T F F F (letter items) */
    int ll[] = {1, 1, 0, 1}, gen[] = {1, 0, 0, 0};
    for (int i = 0; i < 4; i++) json_array_append_new(r, outcome("t1", "eval", ll[i], gen[i], -1));
    /* t2 eval: open items, ll F T, gen T T, em F T */
    json_array_append_new(r, outcome("t2", "eval", 0, 1, 0));
    json_array_append_new(r, outcome("t2", "eval", 1, 1, 1));
    json_array_append_new(r, outcome("t1", "heldout", 0, 0, -1));
    json_array_append_new(r, outcome("t1", "heldout", 1, 0, -1));
    json_t *m = ev_metrics(r, 200, 1);
    assert_non_null(m);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "ll_acc"), 0.75, 1e-12);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "gen_acc"), 0.25, 1e-12);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "gap"), 0.5, 1e-12);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "ll_only"), 2, 0);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "both"), 1, 0);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "neither"), 1, 0);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "mcnemar_p"), 0.5, 1e-12);
    assert_float_equal(getf(m, "eval", "tasks", "t1", "gen_invalid"), 0.75, 1e-12);
    assert_float_equal(getf(m, "eval", "tasks", "t2", "gen_em"), 0.5, 1e-12);
    assert_float_equal(getf(m, "eval", "all", NULL, "ll_acc"), 4.0 / 6, 1e-12);
    assert_float_equal(getf(m, "eval", "all", NULL, "gen_acc"), 3.0 / 6, 1e-12);
    assert_float_equal(getf(m, "eval", "all", NULL, "chance"), 0.25, 1e-12);
    assert_float_equal(getf(m, "eval", "macro", NULL, "ll_acc"), (0.75 + 0.5) / 2, 1e-12);
    assert_float_equal(getf(m, "eval", "macro", NULL, "gen_acc"), (0.25 + 1) / 2, 1e-12);
    assert_float_equal(getf(m, "heldout", "all", NULL, "ll_acc"), 0.5, 1e-12);
    assert_float_equal(getf(m, "heldout", "all", NULL, "n"), 2, 0);
    assert_float_equal(getf(m, NULL, NULL, NULL, "gap"), 1.0 / 6, 1e-12);
    ev_ci w = ev_wilson(3, 4, EV_Z95);
    json_t *ci = json_object_get(json_object_get(json_object_get(json_object_get(m, "eval"), "tasks"), "t1"), "ll_ci");
    assert_float_equal(json_real_value(json_array_get(ci, 0)), w.lo, 1e-12);
    json_t *gci = json_object_get(json_object_get(json_object_get(m, "eval"), "all"), "gap_ci");
    double lo = json_real_value(json_array_get(gci, 0)), hi = json_real_value(json_array_get(gci, 1));
    assert_true(lo <= 1.0 / 6 && hi >= 1.0 / 6 && lo >= -1 && hi <= 1);
    /* deterministic */
    json_t *m2 = ev_metrics(r, 200, 1);
    assert_true(json_equal(m, m2));
    json_decref(m2);
    json_decref(m);
    /* families: kn_x_a and kn_x_b pool into kn_x_*, a task without a family suffix gets none */
    json_t *f = json_array();
    json_array_append_new(f, outcome("kn_x_a", "eval", 1, 0, 0));
    json_array_append_new(f, outcome("kn_x_a", "eval", 1, 1, 1));
    json_array_append_new(f, outcome("kn_x_b", "eval", 0, 0, 0));
    json_array_append_new(f, outcome("cloze", "eval", 1, 1, -1));
    json_t *mf = ev_metrics(f, 50, 1);
    assert_non_null(mf);
    assert_float_equal(getf(mf, "eval", "families", "kn_x_*", "n"), 3, 0);
    assert_float_equal(getf(mf, "eval", "families", "kn_x_*", "ll_acc"), 2.0 / 3, 1e-12);
    assert_float_equal(getf(mf, "eval", "families", "kn_x_*", "gen_acc"), 1.0 / 3, 1e-12);
    assert_int_equal(json_object_size(json_object_get(json_object_get(mf, "eval"), "families")), 1);
    json_decref(mf);
    json_decref(f);
    /* a malformed outcome is named */
    json_object_set_new(json_array_get(r, 3), "ll_correct", json_string("yes"));
    assert_null(ev_metrics(r, 10, 1));
    assert_non_null(strstr(hx_last_error(), "item outcome 3"));
    json_decref(r);
    /* JSONL parsing errors name file:line */
    json_t *a;
    assert_int_equal(ev_parse_jsonl("items.jsonl", "{\"a\":1}\n\n{\"b\":\n", 16, &a), -1);
    assert_non_null(strstr(hx_last_error(), "items.jsonl:3"));
    assert_int_equal(ev_parse_jsonl("items.jsonl", "{\"a\":1}\n\n[1]\n", 14, &a), -1);
    assert_non_null(strstr(hx_last_error(), "items.jsonl:3"));
    assert_int_equal(ev_parse_jsonl("items.jsonl", "{\"a\":1}\n\n{\"b\":2}", 16, &a), 0);
    assert_int_equal(json_array_size(a), 2);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize), cmocka_unit_test(test_open),
        cmocka_unit_test(test_stats),     cmocka_unit_test(test_prompts), cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_prose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
