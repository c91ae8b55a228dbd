/* test_slurm.c - the Slurm executor's pure parts: resources per stage (kind defaults, recipe overrides, errors
 * with positions) and the sbatch command line built from them. The real scheduler: tests/e2e/slurm.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/plan.h"
#include "interp/slurm.h"

static int run_nothing(hx_stage_ctx *c) { (void)c; return 0; }

static const hx_field fields[] = {{"seed", HX_T_INT, "0", NULL, "seed"}, {0}};
static const hx_role no_roles[] = {{0}};
static const hx_role in_roles[] = {{"in", NULL, 0, "input"}, {0}};
static const hx_stage_kind k_cpu = {"s_cpu", 1, "a CPU kind", fields, no_roles, 0, run_nothing};
static const hx_stage_kind k_gpu = {"s_gpu", 1, "a GPU kind", fields, in_roles, 1, run_nothing};
static const hx_stage_kind *const kinds[] = {&k_cpu, &k_gpu, NULL};

typedef struct built {
    hx_recipe r;
    hx_plan p;
} built;

static int build(built *b, const char *text)
{
    if (hx_recipe_load_mem(&b->r, "s.yaml", text, strlen(text), NULL, NULL, 0) < 0) return -1;
    if (hx_plan_build(&b->p, &b->r, NULL) < 0) {
        hx_recipe_release(&b->r);
        return -1;
    }
    return 0;
}

static void release(built *b)
{
    hx_plan_release(&b->p);
    hx_recipe_release(&b->r);
}

static const hx_instance *inst(const built *b, const char *stage, int seed)
{
    for (int i = 0; i < b->p.n; i++)
        if (!strcmp(b->p.inst[i].stage_name, stage) &&
            json_integer_value(json_object_get(b->p.inst[i].with, "seed")) == seed)
            return &b->p.inst[i];
    fail_msg("no instance of %s with seed %d", stage, seed);
    return NULL;
}

static void test_defaults_by_kind(void **state)
{
    (void)state;
    built b;
    assert_int_equal(build(&b, "hx: 1\nstages:\n  a: {kind: s_cpu}\n  g: {kind: s_gpu, inputs: {in: a}}\n"), 0);
    hx_resources r;
    assert_int_equal(hx_resources_of(&b.r, inst(&b, "a", 0), 1, &r), 0);
    assert_int_equal(r.cpus, 1);
    assert_int_equal(r.gpus, 0);
    assert_int_equal(r.mem_mb, 2048);
    assert_string_equal(r.time, "");
    assert_int_equal(hx_resources_of(&b.r, inst(&b, "g", 0), 1, &r), 0);
    assert_int_equal(r.gpus, 1);
    assert_int_equal(r.cpus, 2);
    assert_int_equal(r.mem_mb, 16384);
    /* --device cpu: a GPU kind asks for no GPU */
    assert_int_equal(hx_resources_of(&b.r, inst(&b, "g", 0), 0, &r), 0);
    assert_int_equal(r.gpus, 0);
    release(&b);
}

static void test_recipe_overrides(void **state)
{
    (void)state;
    built b;
    const char *text = "hx: 1\nparams: {c: 6}\naxes: {seed: [1, 2]}\nstages:\n"
                       "  a: {kind: s_cpu, with: {seed: \"${axes.seed}\"}, resources: {cpus: \"${params.c}\", mem: 3G, "
                       "time: \"1-02:00:00\"}}\n"
                       "  g: {kind: s_gpu, inputs: {in: a}, resources: {gpus: 2, mem: 1500, time: 90}}\n";
    assert_int_equal(build(&b, text), 0);
    hx_resources r;
    assert_int_equal(hx_resources_of(&b.r, inst(&b, "a", 2), 1, &r), 0);
    assert_int_equal(r.cpus, 6);
    assert_int_equal(r.mem_mb, 3072);
    assert_string_equal(r.time, "1-02:00:00");
    assert_int_equal(r.gpus, 0);
    assert_int_equal(hx_resources_of(&b.r, inst(&b, "g", 0), 1, &r), 0);
    assert_int_equal(r.gpus, 2);
    assert_int_equal(r.cpus, 2); /* the kind's default where the recipe says nothing */
    assert_int_equal(r.mem_mb, 1500);
    assert_string_equal(r.time, "90");
    /* resources are not part of the key: the same stage without them has the same key */
    built c;
    const char *plain = "hx: 1\nparams: {c: 6}\naxes: {seed: [1, 2]}\nstages:\n"
                        "  a: {kind: s_cpu, with: {seed: \"${axes.seed}\"}}\n  g: {kind: s_gpu, inputs: {in: a}}\n";
    assert_int_equal(build(&c, plain), 0);
    assert_string_equal(inst(&b, "a", 2)->key, inst(&c, "a", 2)->key);
    release(&c);
    release(&b);
}

static void assert_load_error(const char *text, const char *where, const char *what)
{
    built b;
    assert_int_equal(build(&b, text), -1);
    const char *e = hx_last_error();
    if (strncmp(e, where, strlen(where)) || !strstr(e, what)) fail_msg("error was: %s\nwanted:    %s ... %s", e, where, what);
}

static void assert_resources_error(const char *text, const char *where, const char *what)
{
    built b;
    assert_int_equal(build(&b, text), 0);
    hx_resources r;
    assert_int_equal(hx_resources_of(&b.r, &b.p.inst[0], 1, &r), -1);
    const char *e = hx_last_error();
    if (strncmp(e, where, strlen(where)) || !strstr(e, what)) fail_msg("error was: %s\nwanted:    %s ... %s", e, where, what);
    release(&b);
}

static void test_errors(void **state)
{
    (void)state;
    /* at load time: unknown keys (with a hint), wrong shapes */
    assert_load_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: {cpu: 2}}\n", "s.yaml:3:", "unknown key 'cpu' (did you mean 'cpus'?)");
    assert_load_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: 4}\n", "s.yaml:3:", "resources: expected a map");
    assert_load_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: {mem: [1]}}\n", "s.yaml:3:",
                      "resources.mem: expected a number or a string");
    assert_load_error("hx: 1\nstages:\n  a: {kind: s_cpu, resourses: {}}\n", "s.yaml:3:", "did you mean 'resources'?");
    /* at submission: values */
    assert_resources_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: {cpus: 0}}\n", "s.yaml:3:",
                           "resources.cpus: expected an integer >= 1");
    assert_resources_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: {mem: 12X}}\n", "s.yaml:3:",
                           "resources.mem: expected MiB or a size");
    assert_resources_error("hx: 1\nstages:\n  a: {kind: s_cpu, resources: {time: \"1h\"}}\n", "s.yaml:3:",
                           "resources.time: expected minutes or D-HH:MM:SS");
    assert_resources_error("hx: 1\nparams: {}\nstages:\n  a: {kind: s_cpu, resources: {cpus: \"${params.n}\"}}\n",
                           "s.yaml:4:", "no field 'n'");
}

static void test_sbatch_argv(void **state)
{
    (void)state;
    const char *opts[] = {"qos=high", "exclusive"};
    hx_slurm_opts so = {.partition = "gpu", .account = "proj1", .opts = opts, .n_opts = 2, .gpus = 1};
    hx_resources res = {.cpus = 4, .gpus = 1, .mem_mb = 16384, .time = "2:00:00"};
    char **a = hx_slurm_sbatch_argv(&so, &res, "hx:train:0123456789ab", "/s/runs/r/slurm/k", "afterok:11:12", "/s/k.sh");
    const char *want[] = {"sbatch", "--parsable", "--job-name=hx:train:0123456789ab", "--output=/s/runs/r/slurm/k.out",
                          "--error=/s/runs/r/slurm/k.err", "--chdir=/s/runs/r/slurm", "--nodes=1", "--ntasks=1", "--cpus-per-task=4",
                          "--mem=16384M", "--gres=gpu:1", "--time=2:00:00", "--partition=gpu", "--account=proj1",
                          "--dependency=afterok:11:12", "--kill-on-invalid-dep=yes", "--qos=high", "--exclusive",
                          "/s/k.sh", NULL};
    for (int i = 0; want[i] || a[i]; i++) {
        if (!want[i] || !a[i]) fail_msg("argument %d: got %s, want %s", i, a[i] ? a[i] : "(end)", want[i] ? want[i] : "(end)");
        assert_string_equal(a[i], want[i]);
    }
    hx_slurm_argv_free(a);
    /* no GPU, no time, no partition, no dependency: none of their options */
    hx_slurm_opts plain = {0};
    hx_resources cpu = {.cpus = 1, .mem_mb = 2048};
    a = hx_slurm_sbatch_argv(&plain, &cpu, "n", "/l", NULL, "/x.sh");
    int n = 0;
    while (a[n]) {
        assert_null(strstr(a[n], "--gres"));
        assert_null(strstr(a[n], "--time"));
        assert_null(strstr(a[n], "--dependency"));
        assert_null(strstr(a[n], "--partition"));
        n++;
    }
    assert_int_equal(n, 10); /* no --chdir either: "/l" has no directory */
    assert_string_equal(a[9], "/x.sh");
    hx_slurm_argv_free(a);
}

int main(void)
{
    hx_stage_kinds_add(kinds);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_by_kind),
        cmocka_unit_test(test_recipe_overrides),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sbatch_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
