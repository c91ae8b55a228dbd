/* test_recipe_limits.c - the recipe loader against hostile YAML: depth enforced while parsing, the include budget,
 * one document per file, anchors and aliases (values and positions), and files outside the recipe's folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/recipe.h"
#include "test_util.h"

static int load(hx_recipe *r, const char *name)
{
    char *p = tu_path(name);
    int rc = hx_recipe_load(r, p, NULL, 0);
    free(p);
    return rc;
}

/* "hx: 1\nx: " + N '[' + N ']': a flow sequence N deep. */
static char *deep_flow(size_t n, size_t *len)
{
    const char *head = "hx: 1\nx: ";
    size_t h = strlen(head);
    char *t = xmalloc(h + 2 * n + 2);
    memcpy(t, head, h);
    memset(t + h, '[', n);
    memset(t + h + n, ']', n);
    t[h + 2 * n] = '\n';
    t[h + 2 * n + 1] = 0;
    *len = h + 2 * n + 1;
    return t;
}

/* A 100k-deep flow sequence took 53 s and a 2 MB one never ended: libyaml's loader built the whole
 * document before the depth check. Now the parse stops at the 129th level, at once. */
static void test_deep_flow(void **state)
{
    (void)state;
    size_t sizes[] = {100000, 1000000};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *t = deep_flow(sizes[i], &len);
        tu_write("deep.yaml", t, len);
        free(t);
        hx_recipe r;
        double t0 = hx_now();
        assert_int_equal(load(&r, "deep.yaml"), -1);
        double dt = hx_now() - t0;
        /* "x: " then '[' number k at column 3 + k, depth k: the first one deeper than 128 is at column 132 */
        tu_assert_error_at("deep.yaml", 2, 132, "nested too deeply");
        if (dt > 2.0) fail_msg("%zu-deep flow sequence took %.1f s to refuse", sizes[i], dt);
    }
    /* 128 levels are fine (params is level 1, its x level 2, the innermost list level 128); 129 are not */
    hx_recipe r;
    for (int n = 127; n <= 128; n++) {
        char *open = xmalloc((size_t)n + 1), *close = xmalloc((size_t)n + 1);
        memset(open, '[', (size_t)n);
        memset(close, ']', (size_t)n);
        open[n] = close[n] = 0;
        char *full = xstrfmt("hx: 1\nstages: {s: {kind: k}}\nparams: {x: %s%s}\n", open, close);
        tu_puts("limit.yaml", full);
        assert_int_equal(load(&r, "limit.yaml"), n == 127 ? 0 : -1);
        if (n == 127) hx_recipe_release(&r);
        else tu_assert_error_at("limit.yaml", 3, 140, "nested too deeply");
        free(full);
        free(open);
        free(close);
    }
    /* An alias cannot nest deeper than its anchor's node could: a 100-deep anchor used 40 levels down */
    hx_sbuf b = {0};
    hx_sb_puts(&b, "hx: 1\na: &a ");
    for (int k = 0; k < 100; k++) hx_sb_putc(&b, '[');
    for (int k = 0; k < 100; k++) hx_sb_putc(&b, ']');
    hx_sb_puts(&b, "\nb: ");
    for (int k = 0; k < 40; k++) hx_sb_putc(&b, '[');
    hx_sb_puts(&b, "*a");
    for (int k = 0; k < 40; k++) hx_sb_putc(&b, ']');
    hx_sb_puts(&b, "\nstages: {s: {kind: k}}\n");
    tu_write("alias_deep.yaml", b.s, b.len);
    hx_sb_free(&b);
    assert_int_equal(load(&r, "alias_deep.yaml"), -1);
    tu_assert_error_at("alias_deep.yaml", 3, 44, "nested too deeply");
}

/* A file included 10 times by each of 5 levels loaded 10^5 files; the budget stops it at 256 loads. */
static void test_include_budget(void **state)
{
    (void)state;
    tu_puts("inc/l5.yaml", "params: {x: 1}\n");
    for (int lvl = 4; lvl >= 1; lvl--) {
        char *name = xstrfmt("inc/l%d.yaml", lvl);
        char *text = xstrfmt("include: [l%d.yaml, l%d.yaml, l%d.yaml, l%d.yaml, l%d.yaml, l%d.yaml, l%d.yaml, "
                             "l%d.yaml, l%d.yaml, l%d.yaml]\n",
                             lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1, lvl + 1);
        tu_puts(name, text);
        free(name);
        free(text);
    }
    tu_puts("inc/top.yaml", "hx: 1\ninclude: [l1.yaml, l1.yaml, l1.yaml, l1.yaml, l1.yaml, l1.yaml, l1.yaml, "
                              "l1.yaml, l1.yaml, l1.yaml]\nstages: {s: {kind: k}}\n");
    hx_recipe r;
    double t0 = hx_now();
    assert_int_equal(load(&r, "inc/top.yaml"), -1);
    if (hx_now() - t0 > 2.0) fail_msg("the include budget took %.1f s", hx_now() - t0);
    if (!strstr(hx_last_error(), "more than 256 recipe files loaded in all"))
        fail_msg("error was: %s", hx_last_error());
    /* within the budget (1 + 10 + 100 = 111 loads), repeated includes still merge as before */
    tu_puts("inc/top3.yaml", "hx: 1\ninclude: [l4.yaml, l4.yaml, l4.yaml, l4.yaml, l4.yaml, l4.yaml, l4.yaml, "
                               "l4.yaml, l4.yaml, l4.yaml]\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "inc/top3.yaml"), 0);
    assert_int_equal(json_integer_value(hx_recipe_get(&r, "params.x")), 1);
    assert_int_equal(json_array_size(r.files), 111);
    hx_recipe_release(&r);
}

/* A second document was silently ignored; now it is an error at its start. */
static void test_one_document(void **state)
{
    (void)state;
    hx_recipe r;
    tu_puts("two.yaml", "hx: 1\nstages: {s: {kind: k}}\n---\nstages: {t: {kind: k}}\n");
    assert_int_equal(load(&r, "two.yaml"), -1);
    tu_assert_error_at("two.yaml", 3, 1, "a second YAML document");
    tu_puts("two_end.yaml", "hx: 1\nstages: {s: {kind: k}}\n...\n--- {a: 1}\n");
    assert_int_equal(load(&r, "two_end.yaml"), -1);
    tu_assert_error_at("two_end.yaml", 4, 1, "a second YAML document");
    /* one explicit document, with its markers, is fine; an empty file is an empty recipe */
    tu_puts("one.yaml", "%YAML 1.1\n---\nhx: 1\nstages: {s: {kind: k}}\n...\n");
    assert_int_equal(load(&r, "one.yaml"), 0);
    hx_recipe_release(&r);
    tu_puts("empty.yaml", "# nothing\n");
    assert_int_equal(load(&r, "empty.yaml"), -1);
    tu_assert_error_at("empty.yaml", 1, 1, "empty recipe");
}

/* Anchors and aliases: an alias is an independent copy, positioned where its anchor was written. */
static void test_anchors(void **state)
{
    (void)state;
    hx_recipe r;
    tu_puts("anchor.yaml", "hx: 1\n"
                             "params:\n"
                             "  base: &b {lr: 0.1, sizes: [1, 2]}\n"
                             "  other: *b\n"
                             "  &k key: v\n"
                             "  copy: *k\n"
                             "stages: {s: {kind: k}}\n");
    const char *sets[] = {"params.other.lr=0.5"};
    char *p = tu_path("anchor.yaml");
    assert_int_equal(hx_recipe_load(&r, p, sets, 1), 0);
    free(p);
    assert_true(json_is_real(hx_recipe_get(&r, "params.base.lr")));
    assert_true(json_real_value(hx_recipe_get(&r, "params.base.lr")) == 0.1);
    assert_true(json_real_value(hx_recipe_get(&r, "params.other.lr")) == 0.5);
    assert_int_equal(json_integer_value(hx_recipe_get(&r, "params.other.sizes[1]")), 2);
    assert_string_equal(json_string_value(hx_recipe_get(&r, "params.copy")), "key");
    assert_string_equal(json_string_value(hx_recipe_get(&r, "params.key")), "v");
    char *want = xstrfmt("%s/anchor.yaml:3:33", tmpdir); /* the anchor's `2`, reached through the alias */
    assert_string_equal(hx_recipe_where(&r, "params.other.sizes[1]"), want);
    free(want);
    want = xstrfmt("%s/anchor.yaml:4:3", tmpdir); /* an aliased value's own key */
    assert_string_equal(hx_recipe_where(&r, "params.other"), want);
    free(want);
    hx_recipe_release(&r);
    tu_puts("dup_alias_key.yaml", "hx: 1\nparams: {&k key: v, *k : w}\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "dup_alias_key.yaml"), -1);
    tu_assert_error_at("dup_alias_key.yaml", 2, 21, "duplicate key 'key'");
    tu_puts("undefined.yaml", "hx: 1\nparams: {a: *nope}\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "undefined.yaml"), -1);
    /* libyaml's own check (the parser reports aliases to anchors it never saw) or ours */
    if (!strstr(hx_last_error(), "undefined.yaml:2:")) fail_msg("error was: %s", hx_last_error());
    tu_puts("self.yaml", "hx: 1\nparams: &a {b: *a}\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "self.yaml"), -1);
    tu_assert_error_at("self.yaml", 2, 16, "unknown alias");
}

/* A file outside the recipe's folder may be included, but no error quotes its text. */
static void test_outside_tree(void **state)
{
    (void)state;
    hx_recipe r;
    tu_puts("secret.yaml", "root: hunter2\n");
    tu_puts("dup.yaml", "stages: {s: {kind: k}}\nhunter2: 1\nhunter2: 2\n");
    tu_puts("big.yaml", "params: {n: 99999999999999999999999}\n");
    tu_puts("incl.yaml", "include: hunter2.yaml\n");
    tu_puts("fine.yaml", "params: {shared: 1}\n");
    const char *cases[][4] = {
        /* included file, line, col, what the error says */
        {"secret.yaml", "1", "1", "unknown top-level key (not shown"},
        {"dup.yaml", "3", "1", "duplicate key"},
        {"big.yaml", "1", "13", "integer out of range"},
        {"incl.yaml", "1", "1", "cannot load the file named here (not shown"},
    };
    for (int i = 0; i < 4; i++) {
        char *top = xstrfmt("hx: 1\ninclude: ../%s\nstages: {s: {kind: k}}\n", cases[i][0]);
        tu_puts("tree/r.yaml", top);
        free(top);
        assert_int_equal(load(&r, "tree/r.yaml"), -1);
        char *where = xstrfmt("tree/../%s", cases[i][0]);
        tu_assert_error_at(where, atoi(cases[i][1]), atoi(cases[i][2]), cases[i][3]);
        free(where);
        if (strstr(hx_last_error(), "hunter2") || strstr(hx_last_error(), "9999")) fail_msg("quoted: %s", hx_last_error());
    }
    /* a file outside the folder that is fine loads as before */
    tu_puts("tree/r.yaml", "hx: 1\ninclude: ../fine.yaml\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "tree/r.yaml"), 0);
    assert_int_equal(json_integer_value(hx_recipe_get(&r, "params.shared")), 1);
    hx_recipe_release(&r);
    /* inside the folder, errors still quote (did-you-mean needs the key) */
    tu_puts("tree/in.yaml", "root: hunter2\n");
    tu_puts("tree/r.yaml", "hx: 1\ninclude: in.yaml\nstages: {s: {kind: k}}\n");
    assert_int_equal(load(&r, "tree/r.yaml"), -1);
    if (!strstr(hx_last_error(), "unknown top-level key 'root'")) fail_msg("error was: %s", hx_last_error());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_flow),   cmocka_unit_test(test_include_budget), cmocka_unit_test(test_one_document),
        cmocka_unit_test(test_anchors),     cmocka_unit_test(test_outside_tree),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
