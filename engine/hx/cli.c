/* cli.c - shared option parsing, recipe/plan/store opening with the CLI's exit codes, cache states. */
#include "engine/hx/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hx/canon.h"
#include "engine/hx/exec.h"

#define HISTORY_RUNS 200 /* run records read to explain stale instances */

static int allowed_has(const char *allowed, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = allowed; *p;) {
        while (*p == ' ') p++;
        size_t k = strcspn(p, " ");
        if (k == n && !strncmp(p, name, n)) return 1;
        p += k;
    }
    return 0;
}

static int parse_int(const char *cmd, const char *opt, const char *v, int lo)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > 1000000) die(HX_EXIT_USAGE, "hx %s: %s expects an integer >= %d, got '%s'", cmd, opt, lo, v);
    return (int)x;
}

int hx_cli_threads(const char *cmd, const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 1 || x > HX_MAX_THREADS)
        die(HX_EXIT_USAGE, "hx %s: --threads expects an integer from 1 to %d, got '%s'", cmd, HX_MAX_THREADS, v);
    return (int)x;
}

void hx_cli_parse(hx_cli *c, int argc, char **argv, const char *allowed, int min_pos, int max_pos)
{
    const char *cmd = argv[0];
    memset(c, 0, sizeof *c);
    c->args = xcalloc((size_t)argc + 1, sizeof *c->args);
    c->sets = xcalloc((size_t)argc + 1, sizeof *c->sets);
    c->jobs = 1;
    c->gpu_share = 1;
    c->keep = -1;
    c->device = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[32] = "";
        if (!strcmp(a, "--")) {
            while (++i < argc) c->args[c->n_args++] = argv[i];
            break;
        }
        if (a[0] != '-' || !a[1]) {
            c->args[c->n_args++] = a;
            continue;
        }
        if (!strncmp(a, "-S", 2)) {
            snprintf(name, sizeof name, "S");
            val = a[2] ? a + 2 : NULL;
        } else if (!strcmp(a, "-j")) {
            snprintf(name, sizeof name, "jobs");
        } else if (!strncmp(a, "--", 2)) {
            const char *eq = strchr(a, '=');
            snprintf(name, sizeof name, "%.*s", (int)((eq ? (size_t)(eq - a) : strlen(a)) - 2), a + 2);
            if (!strcmp(name, "set")) snprintf(name, sizeof name, "S");
            if (eq) val = eq + 1;
        }
        if (!*name || !allowed_has(allowed, name))
            die(HX_EXIT_USAGE, "hx %s: unknown option '%s'; see 'hx %s --help'", cmd, a, cmd);
        int takes = strcmp(name, "json") && strcmp(name, "strict") && strcmp(name, "verify") && strcmp(name, "dry-run") &&
                    strcmp(name, "recompute") && strcmp(name, "repair");
        if (takes && !val) {
            if (i + 1 >= argc) die(HX_EXIT_USAGE, "hx %s: %s needs a value", cmd, a);
            val = argv[++i];
        } else if (!takes && val) {
            die(HX_EXIT_USAGE, "hx %s: %s takes no value", cmd, a);
        }
        if (!strcmp(name, "S")) c->sets[c->n_sets++] = val;
        else if (!strcmp(name, "store")) c->store_dir = val;
        else if (!strcmp(name, "device")) c->device = val;
        else if (!strcmp(name, "json")) c->json = 1;
        else if (!strcmp(name, "strict")) c->strict = 1;
        else if (!strcmp(name, "verify")) c->verify = 1;
        else if (!strcmp(name, "dry-run")) c->dry_run = 1;
        else if (!strcmp(name, "recompute")) c->recompute = 1;
        else if (!strcmp(name, "repair")) c->repair = 1;
        else if (!strcmp(name, "jobs")) c->jobs = parse_int(cmd, "--jobs", val, 1), c->jobs_given = 1;
        else if (!strcmp(name, "gpu-share")) c->gpu_share = parse_int(cmd, "--gpu-share", val, 1);
        else if (!strcmp(name, "threads")) c->threads = hx_cli_threads(cmd, val);
        else if (!strcmp(name, "keep")) c->keep = parse_int(cmd, "--keep", val, 0);
    }
    if (c->n_args < min_pos || c->n_args > max_pos) {
        die(HX_EXIT_USAGE, "hx %s: expected %s; see 'hx %s --help'", cmd,
            c->n_args < min_pos ? "more arguments" : "fewer arguments", cmd);
    }
    c->recipe = c->n_args ? c->args[0] : NULL;
    if (c->json) hx_log_set_json(1);
    if (!c->store_dir) c->store_dir = getenv("HX_STORE") && *getenv("HX_STORE") ? getenv("HX_STORE") : ".hx";
}

void hx_cli_release(hx_cli *c)
{
    free(c->args);
    free(c->sets);
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
