/* test_grade.c - evalsuite grading: every answer-extraction rule of docs/eval.md (the audit's cases included), open
 * lists, lm-eval acc / acc_norm of log-likelihoods, and the items.jsonl outcome of one item. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "evalsuite/grade.h"

static const char *const ch4[] = {"Puerto Rican", "Lebanese", "Tokelauan", "Ugandan"};

static void check_letter(const char *text, int want, ev_rule want_rule)
{
    ev_rule r;
    int got = ev_extract_letter(text, ch4, 4, &r);
    if (got != want || r != want_rule)
        fail_msg("'%s': got %d (%s), want %d (%s)", text, got, ev_rule_name(r), want, ev_rule_name(want_rule));
}

/* The audit's cases (issue 11, item 6) and the article rule. */
static void test_audit(void **state)
{
    (void)state;
    check_letter("A is the answer", 0, EV_RULE_LEADING);
    check_letter("Correct answer: A is right", 0, EV_RULE_EXPLICIT);
    check_letter("A because it is an island", 0, EV_RULE_LEADING);
    check_letter("I pick A and not the others", 0, EV_RULE_ANYWHERE); /* "A and not": no second letter */
    check_letter("A country in Africa", -1, EV_RULE_NONE);           /* the article starts a noun phrase */
    check_letter("A small island nation", -1, EV_RULE_NONE);
    check_letter("C or D", -1, EV_RULE_AMBIGUOUS);
    check_letter("B, C", -1, EV_RULE_AMBIGUOUS);
    check_letter("A and B", -1, EV_RULE_AMBIGUOUS);
    check_letter("The answer is C or D", -1, EV_RULE_AMBIGUOUS);
    check_letter("either (B) or (C)", -1, EV_RULE_AMBIGUOUS);
    check_letter("B/D", -1, EV_RULE_AMBIGUOUS);
    check_letter("A, B or C", -1, EV_RULE_AMBIGUOUS);
    check_letter("Lebanese or Ugandan", -1, EV_RULE_AMBIGUOUS);      /* two choice texts named */
    check_letter("B or B", 1, EV_RULE_LEADING);                      /* the same option twice is one answer */
    check_letter("The answer is B. C is wrong", 1, EV_RULE_EXPLICIT); /* ". " does not offer an alternative */
    check_letter("E or B", 1, EV_RULE_ANYWHERE);                     /* E is not an option of 4 */
}

/* Each rule, in the order they are tried: a leading letter, an explicit "answer is", a choice's text, a letter
 * anywhere, none. */
static void test_rules(void **state)
{
    (void)state;
    check_letter("B", 1, EV_RULE_LEADING);
    check_letter(" (C)", 2, EV_RULE_LEADING);
    check_letter("A. Puerto Rican", 0, EV_RULE_LEADING);
    check_letter("D) Ugandan", 3, EV_RULE_LEADING);
    check_letter("The answer is D.", 3, EV_RULE_EXPLICIT);
    check_letter("Answer: B", 1, EV_RULE_EXPLICIT);
    check_letter("answer - option B", 1, EV_RULE_EXPLICIT);
    check_letter("I would say the answer is (C), since", 2, EV_RULE_EXPLICIT);
    check_letter("Ugandan", 3, EV_RULE_CHOICE);
    check_letter("They are called Lebanese people", 1, EV_RULE_CHOICE);
    check_letter("I think it is C because", 2, EV_RULE_ANYWHERE);
    check_letter("answer: a country", -1, EV_RULE_NONE);
    check_letter("", -1, EV_RULE_NONE);
    assert_string_equal(ev_rule_name(EV_RULE_AMBIGUOUS), "ambiguous");
}

/* A letter counts only as one of the item's options, standing alone. */
static void test_letter_range(void **state)
{
    (void)state;
    check_letter("E", -1, EV_RULE_NONE); /* not one of 4 options */
    check_letter("BA", -1, EV_RULE_NONE); /* not standalone */
    assert_int_equal(ev_extract_letter("C", NULL, 2, NULL), -1); /* only A-B with 2 choices */
    assert_int_equal(ev_extract_letter("B", NULL, 2, NULL), 1);
}

static void check_open(const char *reply, const char *target, const char *alias, int want_list, int want_contains,
                       int want_exact)
{
    const char *al[1] = {alias};
    int n = alias ? 1 : 0, ex = -1, co = -1;
    int list = ev_open_is_list(reply, target, al, n);
    ev_match_open(reply, target, al, n, &ex, &co);
    if (list != want_list || co != want_contains || ex != want_exact)
        fail_msg("'%s' vs '%s': list %d contains %d exact %d, want %d %d %d", reply, target, list, co, ex, want_list,
                 want_contains, want_exact);
}

static void test_open_lists(void **state)
{
    (void)state;
    check_open("Paris, London or Berlin", "Paris", NULL, 1, 0, 0);
    check_open("Paris or London", "Paris", NULL, 1, 0, 0);
    check_open("Paris, London, Berlin", "Paris", NULL, 1, 0, 0);
    check_open("either Paris or Rome", "paris", NULL, 1, 0, 0);
    check_open("Paris/Lyon", "Paris", NULL, 1, 0, 0);
    check_open("Paris, France", "Paris", NULL, 0, 1, 0);            /* two parts, no disjunction: an answer */
    check_open("Paris", "Paris", NULL, 0, 1, 1);
    check_open("Bosnia and Herzegovina", "Bosnia and Herzegovina", "Bosnia", 0, 1, 1);
    check_open("Trinidad and Tobago or Jamaica", "Trinidad and Tobago", NULL, 1, 0, 0);
    check_open("Paris or paris", "Paris", NULL, 0, 1, 0);           /* one candidate said twice */
    check_open("The capital of France is Paris, which lies on the Seine, and it is old", "Paris", NULL, 0, 1, 0);
}

static ev_item item(ev_format f, int n, const char *const *choices, int answer)
{
    ev_item it;
    memset(&it, 0, sizeof it);
    it.task = "t";
    it.doc_id = "t-0";
    it.split = "eval";
    it.question = "q";
    it.format = f;
    it.n_choices = n;
    for (int i = 0; i < n; i++) it.choices[i] = choices[i];
    it.answer = answer;
    it.target = choices[answer];
    return it;
}

/* lm-eval: acc = argmax ll, acc_norm = argmax ll / len(choice) in code points; ties to the first. */
static void test_ll(void **state)
{
    (void)state;
    static const char *const c[] = {"ab", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "abc"}; /* "éééé": 4 code points */
    ev_item it = item(EV_FMT_CLOZE, 3, c, 1);
    double lp[3] = {-4.0, -6.0, -4.0};
    int gr[3] = {0, 1, 0};
    ev_ll_grade g;
    ev_grade_ll(&it, lp, gr, &g);
    assert_int_equal(g.pred, 0);      /* -4 twice: the first */
    assert_int_equal(g.pred_norm, 2); /* per char -2, -1.5, -1.333 */
    assert_int_equal(g.greedy, 1);
    assert_int_equal(g.has_norm, 1);
    double lp2[3] = {-3.0, -4.0, -3.3}; /* per char -1.5, -1.0, -1.1 */
    ev_grade_ll(&it, lp2, gr, &g);
    assert_int_equal(g.pred, 0);
    assert_int_equal(g.pred_norm, 1);
    double lp3[3] = {-4.0, -6.0, -3.0}; /* per char -2, -1.5, -1 -> 2; per byte (8 for "éééé") it would be 1 */
    ev_grade_ll(&it, lp3, gr, &g);
    assert_int_equal(g.pred_norm, 2);
    assert_int_equal(ev_utf8_len("\xc3\xa9t\xe2\x82\xac"), 3);
    static const char *const l[] = {"x", "y", "z", "w"};
    ev_item m = item(EV_FMT_MCQ, 4, l, 2);
    double lpm[4] = {-1.2, -1.0, -9.0, -9.0}; /* divided by the texts' lengths (1 each here) or by the letters' */
    static const char *const lt[] = {"xxxxxx", "y", "z", "w"};
    ev_item m2 = item(EV_FMT_MCQ, 4, lt, 0);
    ev_grade_ll(&m2, lpm, NULL, &g);
    assert_int_equal(g.pred, 1);
    assert_int_equal(g.pred_norm, 1); /* per letter: -1.2, -1.0 -> B; per text "xxxxxx" would give -0.2 -> A */
    ev_grade_ll(&m, lpm, NULL, &g);
    assert_int_equal(g.has_norm, 0);
    assert_int_equal(g.greedy, 0);
}

static void test_outcome(void **state)
{
    (void)state;
    static const char *const c[] = {"Paris", "London"};
    ev_item it = item(EV_FMT_OPEN, 2, c, 0);
    double lp[2] = {-1.5, -2.5};
    int gr[2] = {1, 0};
    char reply[] = "Paris or London";
    json_t *o = ev_grade_outcome(&it, lp, gr, reply, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "ll_pred")), 0);
    assert_true(json_is_true(json_object_get(o, "ll_correct")));
    assert_true(json_is_true(json_object_get(o, "ll_greedy")));
    assert_true(json_is_true(json_object_get(o, "ll_norm_correct")));
    assert_null(json_object_get(o, "gen_rule")); /* letter items only (metrics.c) */
    assert_true(json_is_true(json_object_get(o, "gen_list")));
    assert_true(json_is_false(json_object_get(o, "gen_correct")));
    assert_true(json_is_false(json_object_get(o, "gen_em")));
    json_decref(o);

    ev_item m = item(EV_FMT_MCQ, 2, c, 0);
    char bad[] = "A\xff is it";
    o = ev_grade_outcome(&m, lp, gr, bad, 0);
    assert_string_equal(json_string_value(json_object_get(o, "gen_text")), "A? is it");
    assert_string_equal(json_string_value(json_object_get(o, "gen_pred")), "A");
    assert_string_equal(json_string_value(json_object_get(o, "gen_rule")), "leading");
    assert_true(json_is_true(json_object_get(o, "gen_correct")));
    assert_true(json_is_null(json_object_get(o, "ll_norm_correct")));
    assert_null(json_object_get(o, "gen_list"));
    json_decref(o);

    /* prose: the reply is cut where its sentence ends, the answer's own "." included */
    static const char *const p[] = {"Washington D.C.", "Boston"};
    ev_item pr = item(EV_FMT_PROSE, 2, p, 0);
    char cont[] = " Washington D.C. It is large.";
    ev_prose_cut(&pr, cont);
    assert_string_equal(cont, " Washington D.C");
    ev_gen_grade g;
    ev_grade_reply(&pr, cont, 1, &g);
    assert_int_equal(g.correct, 1);
    assert_int_equal(g.em, 1);
    ev_gen_grade_release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit), cmocka_unit_test(test_rules), cmocka_unit_test(test_letter_range),
        cmocka_unit_test(test_open_lists), cmocka_unit_test(test_ll), cmocka_unit_test(test_outcome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
