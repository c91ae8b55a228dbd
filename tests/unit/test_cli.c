/* test_cli.c - the one option parser (cli/cli.c) against a command-table row: forms, order, defaults, shared
 * options, positionals after "--", and the table's real rows (every option has help, sorted names, no duplicates). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/commands.h"

static const hx_opt opts[] = {
    HX_OPT_SET_ROW,
    HX_OPT_JSON_ROW,
    {"format", 0, HX_OPT_STR, NULL, "a format", "dot", "dot|svg", NULL, 0, 0},
    {"output", 'o', HX_OPT_STR, "FILE", "where", NULL, NULL, "file", 0, 0},
    {"jobs", 'j', HX_OPT_INT, "N", "jobs", "1", NULL, NULL, 1, 0},
    {"prompt", 'p', HX_OPT_LIST, "P", "a prompt", NULL, NULL, NULL, 0, 0},
    {"file", 0, HX_OPT_LIST, "F", "a file", NULL, NULL, NULL, 0, 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, 0},
};
static const hx_cmd cmd = {"t", NULL, HX_CMD_STORE, "A [B...]", 1, -1, NULL, "a test row", opts, NULL, NULL};

static void parse(hx_cli *c, char **argv)
{
    int argc = 0;
    while (argv[argc]) argc++;
    hx_cli_parse(c, &cmd, "t", argc, argv);
}

static void test_forms(void **state)
{
    (void)state;
    char *argv[] = {"t", "a", "-Sx=1", "--set", "y=2", "--set=z=3", "--format=svg", "-ofile.txt", "-j", "4",
                    "--json", "--store", "/s", "b", "--", "--not-an-option", "-", NULL};
    hx_cli c;
    parse(&c, argv);
    assert_int_equal(c.n_args, 4);
    assert_string_equal(c.args[0], "a");
    assert_string_equal(c.args[1], "b");
    assert_string_equal(c.args[2], "--not-an-option");
    assert_string_equal(c.args[3], "-");
    assert_string_equal(c.recipe, "a");
    assert_int_equal(c.n_sets, 3);
    assert_string_equal(c.sets[0], "x=1");
    assert_string_equal(c.sets[1], "y=2");
    assert_string_equal(c.sets[2], "z=3");
    assert_string_equal(hx_cli_str(&c, "format"), "svg");
    assert_string_equal(hx_cli_str(&c, "output"), "file.txt");
    assert_int_equal(c.jobs, 4);
    assert_int_equal(hx_cli_int(&c, "jobs", 1), 4);
    assert_int_equal(c.json, 1);
    assert_string_equal(c.store_dir, "/s");
    hx_log_set_json(0);
    hx_cli_release(&c);
}

static void test_defaults_and_order(void **state)
{
    (void)state;
    setenv("HX_STORE", "/env-store", 1);
    char *argv[] = {"t", "-p", "one", "--file", "f1", "--prompt", "two", "-ptwo-b", "--file", "f2", "a", NULL};
    hx_cli c;
    parse(&c, argv);
    assert_string_equal(hx_cli_str(&c, "format"), "dot"); /* the row's default */
    assert_null(hx_cli_str(&c, "output"));
    assert_int_equal(hx_cli_given(&c, "format"), 0);
    assert_int_equal(c.jobs, 1);
    assert_int_equal(c.json, 0);
    assert_string_equal(c.store_dir, "/env-store");
    int n;
    const char **p = hx_cli_list(&c, "prompt", &n);
    assert_int_equal(n, 3);
    assert_string_equal(p[0], "one");
    assert_string_equal(p[1], "two");
    assert_string_equal(p[2], "two-b");
    assert_null(p[3]);
    free(p);
    /* the order across options, as given: -p one, --file f1, -p two, -p two-b, --file f2 */
    const char *want[][2] = {{"prompt", "one"}, {"file", "f1"}, {"prompt", "two"}, {"prompt", "two-b"}, {"file", "f2"}};
    assert_int_equal(c.n_occ, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(c.occ[i].opt->name, want[i][0]);
        assert_string_equal(c.occ[i].val, want[i][1]);
    }
    hx_cli_release(&c);
    unsetenv("HX_STORE");
}

/* The real table: sorted names, one-line summaries, every option with help, no name or short name twice in a row,
 * and the shared --store exactly on HX_CMD_STORE commands. */
static void check_row(const hx_cmd *c)
{
    assert_non_null(c->summary);
    assert_null(strchr(c->summary, '\n'));
    assert_true(c->fn != NULL || c->subs != NULL);
    assert_true(c->max_args < 0 || c->max_args >= c->min_args);
    for (const hx_opt *o = c->opts; o && o->name; o++) {
        if (!o->help || !*o->help) fail_msg("hx %s --%s has no help", c->name, o->name);
        if ((o->kind == HX_OPT_FLAG) != (o->arg == NULL && o->choices == NULL && o->complete == NULL))
            fail_msg("hx %s --%s: a flag has no argument name, an option one (or choices)", c->name, o->name);
        for (const hx_opt *p = o + 1; p->name; p++) {
            if (!strcmp(o->name, p->name)) fail_msg("hx %s: --%s twice", c->name, o->name);
            if (o->short_name && o->short_name == p->short_name) fail_msg("hx %s: -%c twice", c->name, o->short_name);
        }
        if (!strcmp(o->name, "store")) fail_msg("hx %s: --store comes from HX_CMD_STORE, not a row", c->name);
    }
    assert_int_equal(hx_cmd_opt(c, "store") != NULL, (c->flags & HX_CMD_STORE) != 0);
    for (const hx_cmd *s = c->subs; s && s->name; s++) {
        if (s[1].name && strcmp(s->name, s[1].name) >= 0) fail_msg("hx %s: subcommands not sorted at %s", c->name, s->name);
        check_row(s);
    }
}

static void test_table(void **state)
{
    (void)state;
    int n = 0;
    for (const hx_cmd *c = hx_cmd_table(); c->name; c++, n++) {
        if (c[1].name && strcmp(c->name, c[1].name) >= 0) fail_msg("commands not sorted at %s", c->name);
        assert_ptr_equal(hx_cmd_find(c->name), c);
        check_row(c);
    }
    assert_true(n >= 20);
    assert_null(hx_cmd_find("nope"));
    /* the commands that compute are the ones re-executed for OpenMP */
    assert_true(hx_cmd_find("run")->flags & HX_CMD_COMPUTE);
    assert_false(hx_cmd_find("plan")->flags & HX_CMD_COMPUTE);
    assert_non_null(hx_cmd_find_sub(hx_cmd_find("bench"), "kda"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_defaults_and_order),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
