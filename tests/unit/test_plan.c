/* test_plan.c - the planner: axis expansion and sharing, zip, schema validation with positions, key stability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/plan.h"

static int run_nothing(hx_stage_ctx *c) { (void)c; return 0; }

static const hx_field src_fields[] = {
    {"seed", HX_T_INT, "0", NULL, "seed"},
    {"lr", HX_T_NUM, "0.001", NULL, "learning rate"},
    {"mode", HX_T_STR, "\"a\"", "a|b|completion_only", "mode"},
    {"groups", HX_T_STRLIST, "[]", "attention|mlp|embed", "frozen groups"},
    {"flag", HX_T_BOOL, "false", NULL, "a flag"},
    {"opts", HX_T_MAP, "{}", NULL, "free-form"},
    {0},
};
static const hx_field need_fields[] = {{"steps", HX_T_INT, NULL, NULL, "training steps"}, {0}};
static const hx_role no_roles[] = {{0}};
static const hx_role mid_roles[] = {{"data", "p_src", 0, "the source"}, {0}};
static const hx_role end_roles[] = {{"model", "p_mid", 0, "the model"}, {"data", NULL, 1, "optional data"}, {0}};
static const hx_stage_kind k_src = {"p_src", 1, "source", src_fields, no_roles, 0, run_nothing, NULL};
static const hx_stage_kind k_mid = {"p_mid", 1, "middle", src_fields, mid_roles, 0, run_nothing, NULL};
static const hx_stage_kind k_end = {"p_end", 3, "end", src_fields, end_roles, 0, run_nothing, NULL};
static const hx_stage_kind k_need = {"p_need", 1, "needs steps", need_fields, no_roles, 0, run_nothing, NULL};
static const hx_stage_kind *const kinds[] = {&k_src, &k_mid, &k_end, &k_need, NULL};

static int build(hx_recipe *r, hx_plan *p, const char *text, const char *const *sets, int n)
{
    if (hx_recipe_load_mem(r, "p.yaml", text, strlen(text), NULL, sets, n) < 0) return -1;
    if (hx_plan_build(p, r, NULL) < 0) {
        hx_recipe_release(r);
        return -1;
    }
    return 0;
}

static void done(hx_recipe *r, hx_plan *p)
{
    hx_plan_release(p);
    hx_recipe_release(r);
}

static void assert_plan_error(const char *text, const char *where, const char *what)
{
    hx_recipe r;
    hx_plan p;
    assert_int_equal(build(&r, &p, text, NULL, 0), -1);
    const char *e = hx_last_error();
    if (strncmp(e, where, strlen(where)) || !strstr(e, what)) fail_msg("error was: %s\nwanted:    %s ... %s", e, where, what);
}

static int count_stage(const hx_plan *p, const char *name)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) n += !strcmp(p->inst[i].stage_name, name);
    return n;
}

static const char *chain = "hx: 1\n"
                           "axes: {m: [a, b, completion_only]}\n"
                           "stages:\n"
                           "  world: {kind: p_src, with: {seed: 1}}\n"
                           "  teacher: {kind: p_mid, inputs: {data: world}}\n"
                           "  ft: {kind: p_end, inputs: {model: teacher, data: world}, with: {mode: \"${axes.m}\"}}\n";

static void test_chain_sharing(void **state)
{
    (void)state;
    hx_recipe r;
    hx_plan p;
    assert_int_equal(build(&r, &p, chain, NULL, 0), 0);
    /* 2 shared + 3 arm instances, inputs before users. */
    assert_int_equal(p.n, 5);
    assert_int_equal(p.n_arms, 3);
    assert_string_equal(p.inst[0].stage_name, "world");
    assert_string_equal(p.inst[1].stage_name, "teacher");
    assert_int_equal(json_object_size(p.inst[0].axes), 0);
    assert_int_equal(json_object_size(p.inst[1].axes), 0);
    for (int i = 2; i < 5; i++) {
        assert_string_equal(p.inst[i].stage_name, "ft");
        assert_int_equal(p.inst[i].n_inputs, 2);
        assert_int_equal(p.inst[i].input_inst[0], 1);
        assert_int_equal(p.inst[i].input_inst[1], 0);
        assert_string_equal(json_string_value(json_object_get(p.inst[i].inputs, "model")), p.inst[1].key);
    }
    assert_string_equal(json_string_value(json_object_get(p.inst[3].axes, "m")), "b");
    assert_string_equal(json_string_value(json_object_get(p.inst[4].with, "mode")), "completion_only");
    /* Defaults are filled in. */
    assert_true(json_is_real(json_object_get(p.inst[0].with, "lr")));
    assert_int_equal(json_object_size(p.inst[0].with), 6);
    assert_string_not_equal(p.inst[2].key, p.inst[3].key);
    char *label = hx_plan_axes_label(p.inst[4].axes);
    assert_string_equal(label, "m=completion_only");
    free(label);
    int *ft = hx_plan_stage_instances(&p, "ft");
    assert_int_equal(ft[0], 2);
    assert_int_equal(ft[3], -1);
    free(ft);
    assert_null(hx_plan_stage_instances(&p, "nope"));
    done(&r, &p);
}

static void test_axis_propagates(void **state)
{
    (void)state;
    hx_recipe r;
    hx_plan p;
    /* An axis used by the middle stage multiplies it and everything downstream, not the source. */
    const char *t = "hx: 1\n"
                    "params: {lr: \"${axes.lr}\"}\n"
                    "axes: {lr: [0.1, 0.01], m: [a, b, completion_only]}\n"
                    "stages:\n"
                    "  ft: {kind: p_end, inputs: {model: teacher}, with: {mode: \"${axes.m}\"}}\n"
                    "  world: {kind: p_src}\n"
                    "  teacher: {kind: p_mid, inputs: {data: world}, with: {lr: \"${params.lr}\"}}\n";
    assert_int_equal(build(&r, &p, t, NULL, 0), 0);
    assert_int_equal(p.n_arms, 6);
    assert_int_equal(count_stage(&p, "world"), 1);
    assert_int_equal(count_stage(&p, "teacher"), 2);
    assert_int_equal(count_stage(&p, "ft"), 6);
    assert_string_equal(p.inst[0].stage_name, "world"); /* topological, not declaration order */
    for (int i = 0; i < p.n; i++)
        if (!strcmp(p.inst[i].stage_name, "ft")) assert_int_equal(json_object_size(p.inst[i].axes), 2);
    done(&r, &p);

    /* zip: axes move together. */
    const char *z = "hx: 1\naxes: {lr: [0.1, 0.01, 0.001], m: [a, b, a], s: [1, 2]}\nzip: [[lr, m]]\n"
                    "stages:\n  w: {kind: p_src, with: {lr: \"${axes.lr}\", mode: \"${axes.m}\", seed: \"${axes.s}\"}}\n";
    assert_int_equal(build(&r, &p, z, NULL, 0), 0);
    assert_int_equal(p.n_arms, 6);
    assert_int_equal(p.n, 6);
    done(&r, &p);
    /* -S narrows an axis. */
    const char *sets[] = {"axes.m=[completion_only]"};
    assert_int_equal(build(&r, &p, chain, sets, 1), 0);
    assert_int_equal(p.n, 3);
    done(&r, &p);
}

static void test_key_stability(void **state)
{
    (void)state;
    hx_recipe r;
    hx_plan p;
    const char *a = "hx: 1\nstages:\n  w: {kind: p_src, with: {seed: 1, lr: 0.001}}\n"
                    "  t: {kind: p_mid, inputs: {data: w}, with: {mode: b}}\n"
                    "  o: {kind: p_src, with: {seed: 9}}\n";
    /* Same meaning: defaults explicit, keys reordered, 1e-3 for 0.001, 1.0 for 1, flow vs block style. */
    const char *b = "hx: 1\nstages:\n  o:\n    kind: p_src\n    with: {seed: 9.0}\n"
                    "  t: {with: {mode: b, flag: false, groups: []}, inputs: {data: w}, kind: p_mid}\n"
                    "  w: {kind: p_src, with: {lr: 1e-3, seed: 1.0, mode: a, opts: {}}}\n";
    char ka[3][65], kb[3][65];
    assert_int_equal(build(&r, &p, a, NULL, 0), 0);
    for (int i = 0; i < 3; i++) memcpy(ka[i], p.inst[i].key, 65);
    done(&r, &p);
    assert_int_equal(build(&r, &p, b, NULL, 0), 0);
    /* Order differs (o first); compare by stage. */
    for (int i = 0; i < 3; i++) {
        const char *n = p.inst[i].stage_name;
        memcpy(kb[!strcmp(n, "w") ? 0 : !strcmp(n, "t") ? 1 : 2], p.inst[i].key, 65);
    }
    done(&r, &p);
    for (int i = 0; i < 3; i++) assert_string_equal(ka[i], kb[i]);
    /* One parameter changes its stage and dependents only. */
    const char *sets[] = {"stages.w.with.seed=2"};
    assert_int_equal(build(&r, &p, a, sets, 1), 0);
    assert_string_not_equal(p.inst[0].key, ka[0]);
    assert_string_not_equal(p.inst[1].key, ka[1]);
    assert_string_equal(p.inst[2].key, ka[2]);
    done(&r, &p);
}

static void test_schema_errors(void **state)
{
    (void)state;
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_srx}\n", "p.yaml:3:7:", "unknown kind 'p_srx' (did you mean 'p_src'?)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {sede: 1}}\n", "p.yaml:3:27:",
                      "kind p_src has no parameter 'sede' (did you mean 'seed'?)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {seed: x}}\n", "p.yaml:3:27:",
                      "seed must be an integer, got a string 'x'");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {seed: 1.5}}\n", "p.yaml:3:27:", "must be an integer");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {lr: [1]}}\n", "p.yaml:3:27:", "lr must be a number");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {mode: completion_onyl}}\n", "p.yaml:3:27:",
                      "'completion_onyl' is not one of a|b|completion_only (did you mean 'completion_only'?)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {groups: [attention, mpl]}}\n", "p.yaml:3:27:",
                      "'mpl' is not one of attention|mlp|embed (did you mean 'mlp'?)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {groups: [1]}}\n", "p.yaml:3:27:", "a list of strings");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src, with: {flag: 1}}\n", "p.yaml:3:27:", "true or false");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_need, with: {}}\n", "p.yaml:3:21:",
                      "missing parameter 'steps' (training steps)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src}\n  t: {kind: p_mid, inputs: {dat: w}}\n", "p.yaml:4:29:",
                      "no input role 'dat' (did you mean 'data'?); its roles: data");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src}\n  t: {kind: p_mid, inputs: {data: ww}}\n", "p.yaml:4:29:",
                      "inputs.data: no stage 'ww' (did you mean 'w'?)");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src}\n  t: {kind: p_mid}\n", "p.yaml:4:3:", "needs input role 'data'");
    assert_plan_error("hx: 1\nstages:\n  w: {kind: p_src}\n  t: {kind: p_end, inputs: {model: w}}\n", "p.yaml:4:29:",
                      "stage 'w' is of kind p_src, but role 'model' takes p_mid");
    assert_plan_error("hx: 1\nstages:\n  a: {kind: p_end, inputs: {model: b}}\n  b: {kind: p_mid, inputs: {data: c}}\n"
                      "  c: {kind: p_src}\n  d: {kind: p_mid, inputs: {data: d}}\n",
                      "p.yaml:6:29:", "a stage cannot be its own input");
    /* An axis value of the wrong type is reported with its arm. */
    assert_plan_error("hx: 1\naxes: {s: [1, x]}\nstages:\n  w: {kind: p_src, with: {seed: \"${axes.s}\"}}\n",
                      "p.yaml:4:27:", "must be an integer, got a string 'x' (arm s=x)");
    assert_plan_error("hx: 1\naxes: {s: [1]}\nstages:\n  w: {kind: p_src, with: {seed: \"${axes.t}\"}}\n",
                      "p.yaml:4:27:", "no axis 't'");
}

static const hx_role loop_roles[] = {{"x", NULL, 1, NULL}, {0}};
static const hx_stage_kind k_loop = {"p_loop", 1, "loop", NULL, loop_roles, 0, run_nothing, NULL};

static void test_cycle(void **state)
{
    (void)state;
    static const hx_stage_kind *const with_loop[] = {&k_src, &k_mid, &k_end, &k_need, &k_loop, NULL};
    hx_stage_kinds_add(with_loop);
    assert_plan_error("hx: 1\nstages:\n  a: {kind: p_loop, inputs: {x: b}}\n  b: {kind: p_loop, inputs: {x: c}}\n"
                      "  c: {kind: p_loop, inputs: {x: a}}\n",
                      "p.yaml:3:21:", "stages form a cycle through their inputs: a -> b -> c -> a");
    hx_stage_kinds_add(kinds);
}

static void test_sweep_64(void **state)
{
    (void)state;
    hx_recipe r;
    hx_plan p;
    const char *t = "hx: 1\naxes:\n  lr: [1, 2, 3, 4, 5, 6, 7, 8]\n  seed: [1, 2, 3, 4, 5, 6, 7, 8]\n"
                    "stages:\n  w: {kind: p_src}\n  t: {kind: p_mid, inputs: {data: w}, with: {lr: \"${axes.lr}\"}}\n"
                    "  e: {kind: p_end, inputs: {model: t}, with: {seed: \"${axes.seed}\"}}\n";
    double t0 = hx_now();
    assert_int_equal(build(&r, &p, t, NULL, 0), 0);
    double dt = hx_now() - t0;
    assert_int_equal(p.n_arms, 64);
    assert_int_equal(p.n, 1 + 8 + 64);
    print_message("planned 64 arms (73 instances) in %.1f ms\n", dt * 1e3);
    done(&r, &p);
}

static int setup(void **state)
{
    (void)state;
    hx_stage_kinds_add(kinds);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_sharing), cmocka_unit_test(test_axis_propagates), cmocka_unit_test(test_key_stability),
        cmocka_unit_test(test_schema_errors), cmocka_unit_test(test_cycle),           cmocka_unit_test(test_sweep_64),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
