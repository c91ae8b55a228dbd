/* test_estimate.c - totals of time estimates: the serial sum, the wall time with N workers (list scheduling in plan
 * order, as the executor), unknown estimates, and what is left of a run in progress. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "base/base.h"
#include "interp/estimate.h"
#include "interp/exec.h"

/* A plan of N instances with edges given as input lists (only the fields the totals read). */
typedef struct tplan {
    hx_plan p;
    hx_instance inst[8];
    int inputs[8][4];
} tplan;

static void make(tplan *t, int n, const int (*edges)[4])
{
    memset(t, 0, sizeof *t);
    t->p.n = n;
    t->p.inst = t->inst;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < 4 && edges[i][k] >= 0) t->inputs[i][k] = edges[i][k], k++;
        t->inst[i].n_inputs = k;
        t->inst[i].input_inst = t->inputs[i];
    }
}

/* a -> {b, c} -> d (a diamond) and an independent e */
static const int diamond[5][4] = {{-1}, {0, -1}, {0, -1}, {1, 2, -1}, {-1}};

static void test_totals(void **state)
{
    (void)state;
    tplan t;
    make(&t, 5, diamond);
    double secs[5] = {1, 4, 2, 3, 5}, serial, wall;
    int unknown;
    hx_estimate_totals(&t.p, secs, 1, &serial, &wall, &unknown);
    assert_true(serial == 15 && wall == 15 && unknown == 0);
    /* 2 workers: a and e start; a ends at 1: b, c... b (1-5) and e (0-5) busy; c starts at 5 (ends 7); d at 7 (10) */
    hx_estimate_totals(&t.p, secs, 2, &serial, &wall, &unknown);
    assert_true(serial == 15 && wall == 10);
    /* enough workers: the critical path a-b-d = 8 */
    hx_estimate_totals(&t.p, secs, 8, &serial, &wall, &unknown);
    assert_true(wall == 8);
    /* unknown estimates count as nothing and are counted */
    double some[5] = {1, -1, 2, -1, 0};
    hx_estimate_totals(&t.p, some, 1, &serial, &wall, &unknown);
    assert_true(serial == 3 && wall == 3 && unknown == 2);
}

static void test_left(void **state)
{
    (void)state;
    tplan t;
    make(&t, 5, diamond);
    hx_estimate est[5] = {{1, ""}, {4, ""}, {2, ""}, {3, ""}, {5, ""}};
    /* a done, b running with 0.5 s left by its own progress (c pending, d pending, e cached) */
    int st[5] = {HX_ST_EXECUTED, HX_ST_RUNNING, HX_ST_PENDING, HX_ST_PENDING, HX_ST_CACHED};
    double live[5] = {-1, 0.5, -1, -1, -1}, left;
    int unknown;
    left = hx_estimate_left(&t.p, est, st, live, 1, &unknown);
    assert_true(left == 0.5 + 2 + 3 && unknown == 0);
    /* b has printed no ETA yet: its estimate counts */
    live[1] = -1;
    left = hx_estimate_left(&t.p, est, st, live, 1, &unknown);
    assert_true(left == 4 + 2 + 3);
    /* with 2 workers b and c overlap */
    left = hx_estimate_left(&t.p, est, st, live, 2, &unknown);
    assert_true(left == 4 + 3);
    est[3].seconds = -1;
    left = hx_estimate_left(&t.p, est, st, live, 1, &unknown);
    assert_true(left == 6 && unknown == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
