/* recipe_set.c - -S overrides: set (KEY=VALUE), add (+KEY=VALUE) or delete (~KEY) one field of a loaded recipe. */
#include "interp/recipe_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "stages/stage.h"

/*
 * Hydra's rule, so that a typo is an error and not a new field: KEY=VALUE overrides a field that exists, +KEY=VALUE
 * adds one that does not, ~KEY deletes one that exists. A field exists if the merged recipe has it, or if the
 * recipe language defines it where it would go (names_at): a top-level key, a stage's kind, inputs, with,
 * description and resources, a resource, an input role or a parameter of the stage's kind (overriding a parameter
 * the recipe left out overrides its default). Everything else (params, scales, axes, stage names, report) exists
 * only if the recipe wrote it.
 */

/* The names the language defines under PATH (segments SEG[0..depth-1]) in DOC: a NULL-terminated list in OUT
 * (at most 64), or 0 names when nothing is defined there (or the stage's kind is unknown: the plan says so). */
static size_t names_at(const json_t *doc, char *const *seg, int depth, const char **out)
{
    size_t n = 0;
    if (depth == 0) {
        for (size_t i = 0; i < HX_NAMES_N(hx_recipe_top_keys); i++) out[n++] = hx_recipe_top_keys[i];
    } else if (depth == 2 && !strcmp(seg[0], "stages")) {
        for (size_t i = 0; i < HX_NAMES_N(hx_recipe_stage_keys); i++) out[n++] = hx_recipe_stage_keys[i];
    } else if (depth == 3 && !strcmp(seg[0], "stages")) {
        const json_t *stage = json_object_get(json_object_get(doc, "stages"), seg[1]);
        const char *kname = json_string_value(json_object_get(stage, "kind"));
        const hx_stage_kind *k = kname ? hx_stage_kind_find(kname) : NULL;
        if (!strcmp(seg[2], "resources"))
            for (size_t i = 0; i < HX_NAMES_N(hx_recipe_resource_keys); i++) out[n++] = hx_recipe_resource_keys[i];
        else if (k && !strcmp(seg[2], "with"))
            for (const hx_field *f = k->fields; f->name && n < 63; f++) out[n++] = f->name;
        else if (k && !strcmp(seg[2], "inputs"))
            for (const hx_role *ro = k->roles; ro->name && n < 63; ro++) out[n++] = ro->name;
    }
    out[n] = NULL;
    return n;
}

static int is_defined(const char *const *names, const char *s)
{
    for (; *names; names++)
        if (!strcmp(*names, s)) return 1;
    return 0;
}

/* " (did you mean 'x'?)" from the keys of CUR and the defined NAMES, or "". */
static const char *hint_for(const char *word, const json_t *cur, const char *const *names, size_t n_names)
{
    size_t n = (cur ? json_object_size(cur) : 0) + n_names, i = 0;
    const char **c = xmalloc((n ? n : 1) * sizeof *c);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)cur, k, v) c[i++] = k;
    for (size_t j = 0; j < n_names; j++) c[i++] = names[j];
    const char *h = hx_suggest_hint_names(word, c, i);
    free(c);
    return h;
}

int hx_recipe_apply_set(hx_recipe *r, const char *arg)
{
    json_t *utf8 = json_string(arg); /* jansson refuses (and frees values under) keys that are not UTF-8 */
    if (!utf8) return error("-S: the argument is not valid UTF-8");
    json_decref(utf8);
    int del = arg[0] == '~', add = arg[0] == '+', skip = del || add; /* skip: the prefix's width */
    const char *eq = del ? NULL : strchr(arg, '=');
    if (!del && !eq) return error("-S %s: expected key=value, +key=value to add a key, or ~key to delete one", arg);
    char *key = del ? xstrdup(arg + 1) : xstrfmt("%.*s", (int)(eq - arg - skip), arg + skip);
    char *where = xstrfmt("<-S %s>", arg);
    int rc = -1, depth = 0;
    json_t *cur = r->doc;
    char *cp = xstrdup("");
    char *segs[64];
    const char *p = key;
    if (!*key) {
        error("%s:1:%d: empty key", where, 1 + skip);
        goto out;
    }
    while (*p) {
        size_t k = strcspn(p, ".");
        char *seg = xstrfmt("%.*s", (int)k, p);
        const char *next = p + k + (p[k] == '.');
        int last = p[k] == 0, col = (int)(p - key) + 1 + skip;
        if (!*seg || (p[k] == '.' && !*next)) {
            error("%s:1:%d: empty field name in '%s'", where, col, key);
            free(seg);
            goto out;
        }
        if (depth == (int)(sizeof segs / sizeof *segs)) {
            error("%s:1:%d: more than %d levels", where, col, depth);
            free(seg);
            goto out;
        }
        if (!json_is_object(cur)) {
            error("%s:1:%d: '%s' is not a map, cannot set '%s' in it", where, col, cp, seg);
            free(seg);
            goto out;
        }
        const char *names[64];
        size_t n_names = names_at(r->doc, segs, depth, names);
        segs[depth++] = seg;
        char *np = hx_path_key(cp, seg);
        free(cp);
        cp = np;
        json_t *have = json_object_get(cur, seg);
        if (!have && !add && !(del ? 0 : is_defined(names, seg))) {
            if (depth == 2 && !strcmp(segs[0], "stages"))
                error("%s:1:%d: no stage '%s'%s; -S +%s.kind=KIND ... adds one", where, col, seg,
                      hint_for(seg, cur, NULL, 0), cp);
            else if (depth == 4 && !strcmp(segs[0], "stages") && !strcmp(segs[2], "with"))
                error("%s:1:%d: stage '%s': no parameter '%s'%s", where, col, segs[1], seg,
                      hint_for(seg, cur, names, n_names));
            else if (del)
                error("%s:1:%d: nothing to delete: no field '%s'%s", where, col, cp, hint_for(seg, cur, NULL, 0));
            else if (n_names) /* a field the language defines: adding another would not be valid either */
                error("%s:1:%d: no field '%s'%s", where, col, cp, hint_for(seg, cur, names, n_names));
            else
                error("%s:1:%d: no field '%s' to override%s; -S +%s adds it", where, col, cp,
                      hint_for(seg, cur, names, n_names), arg);
            goto out;
        }
        if (last) {
            if (del) {
                json_object_del(cur, seg);
                hx_recipe_pos_drop(r->pos, cp);
            } else if (add && have) {
                error("%s:1:1: '%s' exists: -S %s=%s overrides it (without '+')", where, cp, cp, eq + 1);
                goto out;
            } else {
                json_t *vpos = json_object();
                const char *val = eq + 1;
                json_t *v = hx_yaml_to_json(where, val, strlen(val), vpos, cp, (int)(val - arg), 1);
                if (!v) {
                    json_decref(vpos);
                    goto out;
                }
                json_object_set_new(cur, seg, v);
                hx_recipe_pos_drop(r->pos, cp);
                hx_recipe_pos_copy(r->pos, vpos, cp);
                json_decref(vpos);
            }
        } else {
            if (!have) {
                have = json_object();
                json_object_set_new(cur, seg, have);
                json_object_set_new(r->pos, cp, json_sprintf("%s:1:1", where));
            }
            cur = have;
        }
        p = next;
    }
    rc = 0;
out:
    for (int i = 0; i < depth; i++) free(segs[i]);
    free(cp);
    free(key);
    free(where);
    return rc;
}
