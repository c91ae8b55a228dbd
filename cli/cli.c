/* cli.c - the one option parser (against the command table, commands.c), recipe/plan/store opening with the CLI's exit codes, cache states. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/canon.h"
#include "interp/exec.h"

#define HISTORY_RUNS 200 /* run records read to explain stale instances */

/* "a, b or c" of a choices string "a|b|c", xmalloc'd. */
static char *choices_text(const char *choices)
{
    char *out = xstrdup("");
    for (const char *p = choices; *p;) {
        size_t k = strcspn(p, "|");
        const char *sep = !*out ? "" : p[k] ? ", " : " or ";
        char *n = xstrfmt("%s%s%.*s", out, sep, (int)k, p);
        free(out);
        out = n;
        p += k + (p[k] == '|');
    }
    return out;
}

static int in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && !strncmp(p, v, n)) return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}

typedef struct opt_names {
    const char *names[128];
    char bufs[128][40];
    size_t n;
} opt_names;

static void collect_name(const hx_opt *o, void *ud)
{
    opt_names *on = ud;
    if (on->n >= 128) return;
    snprintf(on->bufs[on->n], sizeof on->bufs[0], "--%s", o->name);
    on->names[on->n] = on->bufs[on->n];
    on->n++;
}

static HX_NORETURN void unknown_option(const hx_cli *c, const char *a)
{
    opt_names on = {.n = 0};
    hx_cmd_each_opt(c->cmd, collect_name, &on);
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(a, "="), a);
    const char *s = hx_suggest(word, on.names, on.n);
    die(HX_EXIT_USAGE, "hx %s: unknown option '%s'%s%s%s; see 'hx %s --help'", c->name, a, s ? " (did you mean '" : "",
        s ? s : "", s ? "'?)" : "", c->name);
}

typedef struct short_find {
    char ch;
    const hx_opt *found;
} short_find;

static void match_short(const hx_opt *o, void *ud)
{
    short_find *f = ud;
    if (o->short_name && o->short_name == f->ch) f->found = o;
}

/* The value of an option checked against its row: choices and integer range. */
static void check_value(const hx_cli *c, const hx_opt *o, const char *v)
{
    if (o->choices && !in_choices(o->choices, v)) {
        char *t = choices_text(o->choices);
        die(HX_EXIT_USAGE, "hx %s: --%s %s: expected %s", c->name, o->name, v, t);
    }
    if (o->kind == HX_OPT_INT) {
        char *end;
        long x = strtol(v, &end, 10);
        if (!*v || *end || x < o->min || (o->max && x > o->max) || x > 1000000000L) {
            if (o->max)
                die(HX_EXIT_USAGE, "hx %s: --%s expects an integer from %d to %d, got '%s'", c->name, o->name, o->min,
                    o->max, v);
            die(HX_EXIT_USAGE, "hx %s: --%s expects an integer >= %d, got '%s'", c->name, o->name, o->min, v);
        }
    }
}

static const hx_opt *row_of(const hx_cli *c, const char *name)
{
    const hx_opt *o = hx_cmd_opt(c->cmd, name);
    if (!o) BUG("hx %s reads option '--%s', which is not in its row of the command table", c->name, name);
    return o;
}

const char *hx_cli_str(const hx_cli *c, const char *name)
{
    const hx_opt *o = row_of(c, name);
    for (int i = c->n_occ; i-- > 0;)
        if (c->occ[i].opt == o) return c->occ[i].val;
    return o->def;
}

int hx_cli_given(const hx_cli *c, const char *name)
{
    const hx_opt *o = row_of(c, name);
    for (int i = 0; i < c->n_occ; i++)
        if (c->occ[i].opt == o) return 1;
    return 0;
}

int hx_cli_int(const hx_cli *c, const char *name, int def)
{
    const char *v = hx_cli_str(c, name);
    return v ? (int)strtol(v, NULL, 10) : def;
}

const char **hx_cli_list(const hx_cli *c, const char *name, int *n)
{
    const hx_opt *o = row_of(c, name);
    const char **out = xcalloc((size_t)c->n_occ + 1, sizeof *out);
    *n = 0;
    for (int i = 0; i < c->n_occ; i++)
        if (c->occ[i].opt == o) out[(*n)++] = c->occ[i].val;
    return out;
}

void hx_cli_parse(hx_cli *c, const hx_cmd *cmd, const char *name, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->name = name;
    c->argc = argc;
    c->argv = argv;
    c->args = xcalloc((size_t)argc + 1, sizeof *c->args);
    c->occ = xcalloc((size_t)argc + 1, sizeof *c->occ);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const hx_opt *o = NULL;
        if (!strcmp(a, "--")) {
            while (++i < argc) c->args[c->n_args++] = argv[i];
            break;
        }
        if (a[0] != '-' || !a[1]) {
            c->args[c->n_args++] = a;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            hx_help_command(stdout, cmd, name);
            exit(HX_EXIT_OK);
        }
        if (a[1] == '-') {
            const char *eq = strchr(a, '=');
            char *long_name = xstrfmt("%.*s", (int)((eq ? (size_t)(eq - a) : strlen(a)) - 2), a + 2);
            o = hx_cmd_opt(cmd, long_name);
            free(long_name);
            if (eq) val = eq + 1;
        } else {
            short_find f = {.ch = a[1], .found = NULL};
            hx_cmd_each_opt(cmd, match_short, &f);
            o = f.found;
            if (o && a[2]) {
                if (o->kind == HX_OPT_FLAG) o = NULL; /* no bundled flags: -xy is an error, not -x -y */
                else val = a + 2;
            }
        }
        if (!o) unknown_option(c, a);
        if (o->kind == HX_OPT_FLAG && val) die(HX_EXIT_USAGE, "hx %s: --%s takes no value", name, o->name);
        if (o->kind != HX_OPT_FLAG && !val) {
            if (i + 1 >= argc) die(HX_EXIT_USAGE, "hx %s: %s needs a value (%s); see 'hx %s --help'", name, a,
                                   o->arg ? o->arg : "a value", name);
            val = argv[++i];
        }
        if (val) check_value(c, o, val);
        c->occ[c->n_occ++] = (hx_cli_occ){o, val};
    }
    int max = cmd->max_args < 0 ? argc : cmd->max_args;
    if (c->n_args < cmd->min_args || c->n_args > max) {
        char *usage = hx_help_usage(cmd, name);
        die(HX_EXIT_USAGE, "hx %s: %s%s\n%s\nsee 'hx %s --help'", name,
            c->n_args < cmd->min_args ? "expected more arguments" : "expected fewer arguments",
            c->n_args > max ? (max ? "" : " (it takes none)") : "", usage, name);
    }
    c->recipe = c->n_args ? c->args[0] : NULL;
    /* the shared options, for the commands that have them */
    if (hx_cmd_opt(cmd, "set")) c->sets = hx_cli_list(c, "set", &c->n_sets);
    if (hx_cmd_opt(cmd, "device")) c->device = hx_cli_str(c, "device");
    if (hx_cmd_opt(cmd, "json")) c->json = hx_cli_given(c, "json");
    if (hx_cmd_opt(cmd, "strict")) c->strict = hx_cli_given(c, "strict");
    if (hx_cmd_opt(cmd, "verify")) c->verify = hx_cli_given(c, "verify");
    if (hx_cmd_opt(cmd, "dry-run")) c->dry_run = hx_cli_given(c, "dry-run");
    if (hx_cmd_opt(cmd, "recompute")) c->recompute = hx_cli_given(c, "recompute");
    if (hx_cmd_opt(cmd, "repair")) c->repair = hx_cli_given(c, "repair");
    c->jobs = hx_cmd_opt(cmd, "jobs") ? hx_cli_int(c, "jobs", 1) : 1;
    c->jobs_given = hx_cmd_opt(cmd, "jobs") && hx_cli_given(c, "jobs");
    c->gpu_share = hx_cmd_opt(cmd, "gpu-share") ? hx_cli_int(c, "gpu-share", 1) : 1;
    c->threads = hx_cmd_opt(cmd, "threads") ? hx_cli_int(c, "threads", 0) : 0;
    c->keep = hx_cmd_opt(cmd, "keep") ? hx_cli_int(c, "keep", -1) : -1;
    if (c->json) hx_log_set_json(1);
    if (hx_cmd_opt(cmd, "store")) c->store_dir = hx_cli_str(c, "store");
    if (!c->store_dir) c->store_dir = getenv("HX_STORE") && *getenv("HX_STORE") ? getenv("HX_STORE") : ".hx";
}

void hx_cli_release(hx_cli *c)
{
    free(c->args);
    free(c->sets);
    free(c->occ);
}

void hx_cli_open_store(const hx_cli *c, hx_store *s)
{
    if (hx_store_open(s, c->store_dir) < 0) die(HX_EXIT_STORE, "%s", hx_last_error());
}

char *hx_cli_binary_digest(void)
{
    char hex[65];
    if (hx_sha256_file_hex("/proc/self/exe", hex) < 0) die(HX_EXIT_STORE, "--strict: %s", hx_last_error());
    return xstrdup(hex);
}

void hx_cli_load(const hx_cli *c, hx_recipe *r, hx_plan *p)
{
    if (hx_recipe_load(r, c->recipe, c->sets, c->n_sets) < 0) die(HX_EXIT_USAGE, "%s", hx_last_error());
    char *digest = c->strict ? hx_cli_binary_digest() : NULL;
    char *cache = xstrfmt("%s/cache/external", c->store_dir);
    int rc = hx_plan_build_cached(p, r, digest, cache);
    free(cache);
    free(digest);
    if (rc < 0) die(HX_EXIT_USAGE, "%s", hx_last_error());
}

void hx_cli_plan_open(const hx_cli *c, hx_cli_planned *v)
{
    hx_cli_load(c, &v->r, &v->p);
    hx_cli_open_store(c, &v->s);
    v->states = hx_cli_plan_states(&v->p, &v->s);
}

void hx_cli_plan_close(hx_cli_planned *v)
{
    json_decref(v->states);
    hx_plan_release(&v->p);
    hx_recipe_release(&v->r);
    hx_store_release(&v->s);
}

static char *short_json(const json_t *v)
{
    if (!v) return xstrdup("(absent)");
    char *t = hx_canon_dump(v);
    if (!t) return xstrdup("?");
    if (strlen(t) > 80) strcpy(t + 72, "...");
    return t;
}

void hx_cli_print_external(const hx_instance *in, int indent)
{
    const char *field;
    json_t *list;
    json_object_foreach(in->external, field, list) {
        size_t j;
        json_t *x;
        json_array_foreach(list, j, x) {
            const char *d = json_string_value(json_object_get(x, "sha256"));
            printf("%*sexternal %s: %s %s%.12s%s\n", indent, "", field, json_string_value(json_object_get(x, "path")),
                   d ? "sha256 " : "(missing: the stage will fail)", d ? d : "", d ? "..." : "");
        }
    }
}

/* "a, b" of the digests of one external field's list ({path, sha256}), for a diff line (xmalloc'd). */
static char *digests_of(const json_t *list)
{
    char *out = xstrdup("");
    size_t j;
    json_t *x;
    json_array_foreach(list, j, x) {
        const char *d = json_string_value(json_object_get(x, "sha256"));
        char *n = xstrfmt("%s%s%.12s", out, j ? ", " : "", d ? d : "missing");
        free(out);
        out = n;
    }
    return out;
}

json_t *hx_cli_diff(const hx_plan *p, int i, const json_t *prev)
{
    const hx_instance *in = &p->inst[i];
    json_t *lines = json_array();
    const char *pk = json_string_value(json_object_get(prev, "kind"));
    if (pk && strcmp(pk, in->kind->name))
        json_array_append_new(lines, json_sprintf("kind: %s -> %s", pk, in->kind->name));
    json_int_t pv = json_integer_value(json_object_get(prev, "kind_version"));
    if (pv != in->kind->version)
        json_array_append_new(lines, json_sprintf("kind_version: %lld -> %d (the kind's semantics changed)", (long long)pv,
                                                  in->kind->version));
    json_t *pw = json_object_get(prev, "with"), *x;
    const char *k;
    json_object_foreach(in->with, k, x) {
        json_t *old = json_object_get(pw, k);
        char *a = short_json(old), *b = short_json(x);
        if (!old || strcmp(a, b)) json_array_append_new(lines, json_sprintf("with.%s: %s -> %s", k, a, b));
        free(a);
        free(b);
    }
    json_object_foreach(pw, k, x) if (!json_object_get(in->with, k)) {
        char *a = short_json(x);
        json_array_append_new(lines, json_sprintf("with.%s: %s -> (no longer a parameter)", k, a));
        free(a);
    }
    json_t *pext = json_object_get(prev, "external"), *list;
    json_object_foreach(in->external, k, list) {
        char *a = digests_of(json_object_get(pext, k)), *b = digests_of(list);
        if (strcmp(a, b))
            json_array_append_new(lines, json_sprintf("external.%s: content %s -> %s (a file outside the store changed)", k,
                                                      *a ? a : "(none)", b));
        free(a);
        free(b);
    }
    json_t *pin = json_object_get(prev, "inputs");
    for (int j = 0; j < in->n_inputs; j++) {
        const char *old = json_string_value(json_object_get(pin, in->roles[j]));
        const hx_instance *src = &p->inst[in->input_inst[j]];
        if (!old) json_array_append_new(lines, json_sprintf("inputs.%s: new input (stage %s)", in->roles[j], src->stage_name));
        else if (strcmp(old, src->key))
            json_array_append_new(lines, json_sprintf("inputs.%s: %.12s -> %.12s (stage %s changed)", in->roles[j], old,
                                                      src->key, src->stage_name));
    }
    json_object_foreach(pin, k, x) {
        int found = 0;
        for (int j = 0; j < in->n_inputs; j++) found |= !strcmp(in->roles[j], k);
        if (!found) json_array_append_new(lines, json_sprintf("inputs.%s: removed", k));
    }
    if (!json_array_size(lines) && strcmp(json_string_value(json_object_get(prev, "key")) ?: "", in->key))
        json_array_append_new(lines, json_sprintf("hx_binary: the key differs only in what --strict adds (the binary)"));
    return lines;
}

json_t *hx_cli_plan_states(const hx_plan *p, const hx_store *s)
{
    json_t *hist = hx_store_history(s, p->recipe->name, HISTORY_RUNS), *out = json_array();
    for (int i = 0; i < p->n; i++) {
        const hx_instance *in = &p->inst[i];
        char *axes = hx_canon_dump(in->axes);
        char *hk = xstrfmt("%s|%s", in->stage_name, axes);
        json_t *prev = json_object_get(hist, hk);
        free(hk);
        free(axes);
        json_t *st = json_object();
        char *stale = hx_store_has(s, in->key) ? hx_exec_stale_input(p, s, i) : NULL;
        if (stale) {
            json_object_set_new(st, "state", json_string("stale"));
            json_object_set_new(st, "reason", json_string(stale));
            free(stale);
        } else if (hx_store_has(s, in->key)) {
            json_object_set_new(st, "state", json_string("cached"));
            json_object_set_new(st, "reason", json_string("in the store"));
        } else if (!prev) {
            json_object_set_new(st, "state", json_string("new"));
            json_object_set_new(st, "reason", json_string("never executed"));
        } else if (!strcmp(json_string_value(json_object_get(prev, "key")) ?: "", in->key)) {
            json_object_set_new(st, "state", json_string("new"));
            json_object_set_new(st, "reason", json_sprintf("ran in %s but its store entry is gone",
                                                           json_string_value(json_object_get(prev, "run_id"))));
        } else {
            json_t *d = hx_cli_diff(p, i, prev);
            char *why = xstrdup("");
            for (size_t j = 0; j < json_array_size(d); j++) {
                char *n = xstrfmt("%s%s%s", why, j ? "; " : "", json_string_value(json_array_get(d, j)));
                free(why);
                why = n;
            }
            json_object_set_new(st, "state", json_string("stale"));
            json_object_set_new(st, "reason", json_string(why));
            free(why);
            json_decref(d);
        }
        if (prev) json_object_set(st, "previous", prev);
        json_array_append_new(out, st);
    }
    json_decref(hist);
    return out;
}
