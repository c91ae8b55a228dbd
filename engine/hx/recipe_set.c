/* recipe_set.c - -S overrides: set, add (+) or delete (~) one field of a loaded recipe. */
#include "engine/hx/recipe_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* ---- -S overrides ---- */

int hx_recipe_apply_set(hx_recipe *r, const char *arg)
{
    json_t *utf8 = json_string(arg); /* jansson refuses (and frees values under) keys that are not UTF-8 */
    if (!utf8) return error("-S: the argument is not valid UTF-8");
    json_decref(utf8);
    int del = arg[0] == '~';
    const char *eq = del ? NULL : strchr(arg, '=');
    if (!del && !eq) return error("-S %s: expected key=value, or ~key to delete a key", arg);
    char *key = del ? xstrdup(arg + 1) : xstrfmt("%.*s", (int)(eq - arg), arg);
    char *where = xstrfmt("<-S %s>", arg);
    int rc = -1;
    json_t *cur = r->doc;
    char *cp = xstrdup("");
    const char *p = key;
    if (!*key) {
        error("%s:1:1: empty key", where);
        goto out;
    }
    while (*p) {
        size_t k = strcspn(p, ".");
        char *seg = xstrfmt("%.*s", (int)k, p);
        const char *next = p + k + (p[k] == '.');
        int last = p[k] == 0;
        if (!*seg || (p[k] == '.' && !*next)) {
            error("%s:1:%d: empty field name in '%s'", where, (int)(p - key) + 1 + del, key);
            free(seg);
            goto out;
        }
        if (!json_is_object(cur)) {
            error("%s:1:%d: '%s' is not a map, cannot set '%s' in it", where, (int)(p - key) + 1 + del, cp, seg);
            free(seg);
            goto out;
        }
        char *np = hx_path_key(cp, seg);
        free(cp);
        cp = np;
        if (last) {
            if (del) {
                if (!json_object_get(cur, seg)) {
                    error("%s:1:2: nothing to delete: no field '%s'%s", where, cp, hx_suggest_hint(seg, cur));
                    free(seg);
                    goto out;
                }
                json_object_del(cur, seg);
                hx_recipe_pos_drop(r->pos, cp);
            } else {
                json_t *vpos = json_object();
                const char *val = eq + 1;
                json_t *v = hx_yaml_to_json(where, val, strlen(val), vpos, cp, (int)(val - arg), 1);
                if (!v) {
                    json_decref(vpos);
                    free(seg);
                    goto out;
                }
                json_object_set_new(cur, seg, v);
                hx_recipe_pos_drop(r->pos, cp);
                hx_recipe_pos_copy(r->pos, vpos, cp);
                json_decref(vpos);
            }
        } else {
            json_t *n = json_object_get(cur, seg);
            if (!n) {
                if (del) {
                    error("%s:1:2: nothing to delete: no field '%s'%s", where, cp, hx_suggest_hint(seg, cur));
                    free(seg);
                    goto out;
                }
                n = json_object();
                json_object_set_new(cur, seg, n);
                json_object_set_new(r->pos, cp, json_sprintf("%s:1:1", where));
            }
            cur = n;
        }
        free(seg);
        p = next;
    }
    rc = 0;
out:
    free(cp);
    free(key);
    free(where);
    return rc;
}
