/* recipe_check.c - the top-level checks of a merged recipe (stage schemas are checked by the planner). */
#include "interp/recipe_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

const char *const hx_recipe_top_keys[10] = {"hx", "name", "description", "include", "params", "axes",
                                            "zip", "scales", "stages", "report"};
const char *const hx_recipe_stage_keys[5] = {"kind", "inputs", "with", "description", "resources"};
const char *const hx_recipe_resource_keys[4] = {"cpus", "gpus", "mem", "time"};

/* ---- top-level checks (stage schemas are checked by the planner) ---- */

static int is_name(const char *s)
{
    if (!*s || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == strlen(s);
}

static int check_map(const hx_recipe *r, const char *path, const json_t *v)
{
    if (!json_is_object(v)) return hx_recipe_error_at(r, path, "%s: expected a map", path);
    return 0;
}

int hx_recipe_check_top(hx_recipe *r)
{
    const json_t *d = r->doc;
    const char *k;
    json_t *v;
    size_t ntop = HX_NAMES_N(hx_recipe_top_keys);
    json_object_foreach((json_t *)d, k, v) {
        size_t i = 0;
        while (i < ntop && strcmp(hx_recipe_top_keys[i], k)) i++;
        if (i == ntop)
            return hx_recipe_error_at(r, k, "unknown top-level key '%s'%s; allowed: hx, name, description, include, "
                                      "params, axes, zip, scales, stages, report", k, hx_suggest_hint_names(k, hx_recipe_top_keys, ntop));
    }
    json_t *hx = json_object_get(d, "hx");
    if (!hx) return hx_recipe_error_at(r, "", "missing 'hx: 1' (the recipe language version)");
    if (!json_is_integer(hx) || json_integer_value(hx) != 1)
        return hx_recipe_error_at(r, "hx", "this hx reads recipe language version 1; write 'hx: 1'");
    if ((v = json_object_get(d, "name")) && !json_is_string(v)) return hx_recipe_error_at(r, "name", "name: expected a string");
    if ((v = json_object_get(d, "description")) && !json_is_string(v))
        return hx_recipe_error_at(r, "description", "description: expected a string");
    if ((v = json_object_get(d, "params")) && check_map(r, "params", v) < 0) return -1;
    if ((v = json_object_get(d, "scales")) && check_map(r, "scales", v) < 0) return -1;
    json_t *axes = json_object_get(d, "axes");
    if (axes) {
        if (check_map(r, "axes", axes) < 0) return -1;
        json_object_foreach(axes, k, v) {
            char *p = hx_path_key("axes", k);
            int bad = !is_name(k) ? hx_recipe_error_at(r, p, "axis name '%s': use letters, digits, '_' and '-'", k)
                      : !json_is_array(v) || !json_array_size(v)
                          ? hx_recipe_error_at(r, p, "axis '%s': expected a non-empty list of values", k)
                          : 0;
            free(p);
            if (bad) return -1;
        }
    }
    json_t *zip = json_object_get(d, "zip");
    if (zip) {
        if (!json_is_array(zip)) return hx_recipe_error_at(r, "zip", "zip: expected a list of lists of axis names");
        json_t *seen = json_object();
        for (size_t i = 0; i < json_array_size(zip); i++) {
            json_t *g = json_array_get(zip, i);
            char *gp = hx_path_index("zip", i);
            if (!json_is_array(g) || json_array_size(g) < 2) {
                hx_recipe_error_at(r, gp, "zip: each group is a list of at least two axis names");
                free(gp);
                json_decref(seen);
                return -1;
            }
            size_t len0 = 0;
            for (size_t j = 0; j < json_array_size(g); j++) {
                json_t *a = json_array_get(g, j);
                char *ap = hx_path_index(gp, j);
                json_t *ax = json_is_string(a) && axes ? json_object_get(axes, json_string_value(a)) : NULL;
                int bad = 0;
                if (!json_is_string(a)) bad = hx_recipe_error_at(r, ap, "zip: expected an axis name");
                else if (!ax)
                    bad = hx_recipe_error_at(r, ap, "zip: no axis '%s'%s", json_string_value(a),
                                             hx_suggest_hint(json_string_value(a), axes));
                else if (json_object_get(seen, json_string_value(a)))
                    bad = hx_recipe_error_at(r, ap, "zip: axis '%s' is in two groups", json_string_value(a));
                else if (j > 0 && json_array_size(ax) != len0)
                    bad = hx_recipe_error_at(r, ap, "zip: axis '%s' has %zu values but '%s' has %zu; zipped axes move "
                                             "together and need the same length", json_string_value(a),
                                             json_array_size(ax), json_string_value(json_array_get(g, 0)), len0);
                if (!bad) {
                    json_object_set_new(seen, json_string_value(a), json_true());
                    if (j == 0) len0 = json_array_size(ax);
                }
                free(ap);
                if (bad) {
                    free(gp);
                    json_decref(seen);
                    return -1;
                }
            }
            free(gp);
        }
        json_decref(seen);
    }
    json_t *stages = json_object_get(d, "stages");
    if (!stages) return hx_recipe_error_at(r, "", "no 'stages:' map: a recipe needs at least one stage");
    if (check_map(r, "stages", stages) < 0) return -1;
    if (!json_object_size(stages)) return hx_recipe_error_at(r, "stages", "stages: the map is empty");
    json_object_foreach(stages, k, v) {
        char *p = hx_path_key("stages", k);
        int bad = 0;
        if (!is_name(k)) bad = hx_recipe_error_at(r, p, "stage name '%s': use letters, digits, '_' and '-'", k);
        else if (!json_is_object(v)) bad = hx_recipe_error_at(r, p, "stage '%s': expected a map with kind, inputs, with", k);
        else {
            const char *sk;
            json_t *sv;
            size_t n = HX_NAMES_N(hx_recipe_stage_keys);
            json_object_foreach(v, sk, sv) {
                size_t i = 0;
                while (i < n && strcmp(hx_recipe_stage_keys[i], sk)) i++;
                if (i == n) {
                    char *kp = hx_path_key(p, sk);
                    bad = hx_recipe_error_at(r, kp, "stage '%s': unknown key '%s'%s; allowed: kind, inputs, with, "
                                             "description, resources", k, sk, hx_suggest_hint_names(sk, hx_recipe_stage_keys, n));
                    free(kp);
                    break;
                }
            }
            json_t *kind = json_object_get(v, "kind");
            char *kp = hx_path_key(p, "kind");
            if (!bad && !kind) bad = hx_recipe_error_at(r, p, "stage '%s': missing 'kind'", k);
            else if (!bad && !json_is_string(kind)) bad = hx_recipe_error_at(r, kp, "stage '%s': kind: expected a name", k);
            free(kp);
            json_t *in = json_object_get(v, "inputs");
            kp = hx_path_key(p, "inputs");
            if (!bad && in && !json_is_object(in))
                bad = hx_recipe_error_at(r, kp, "stage '%s': inputs: expected a map {role: stage}", k);
            free(kp);
            json_t *with = json_object_get(v, "with");
            kp = hx_path_key(p, "with");
            if (!bad && with && !json_is_object(with) && !json_is_null(with))
                bad = hx_recipe_error_at(r, kp, "stage '%s': with: expected a map of parameters", k);
            free(kp);
            json_t *res = json_object_get(v, "resources");
            kp = hx_path_key(p, "resources");
            if (!bad && res && !json_is_object(res))
                bad = hx_recipe_error_at(r, kp, "stage '%s': resources: expected a map {cpus, gpus, mem, time}", k);
            size_t nr = HX_NAMES_N(hx_recipe_resource_keys);
            json_object_foreach(bad ? NULL : res, sk, sv) {
                size_t i = 0;
                while (i < nr && strcmp(hx_recipe_resource_keys[i], sk)) i++;
                char *rp = hx_path_key(kp, sk);
                if (i == nr)
                    bad = hx_recipe_error_at(r, rp, "stage '%s': resources: unknown key '%s'%s; allowed: cpus, gpus, mem, "
                                             "time", k, sk, hx_suggest_hint_names(sk, hx_recipe_resource_keys, nr));
                else if (!json_is_string(sv) && !json_is_integer(sv))
                    bad = hx_recipe_error_at(r, rp, "stage '%s': resources.%s: expected a number or a string", k, sk);
                free(rp);
                if (bad) break;
            }
            free(kp);
        }
        free(p);
        if (bad) return -1;
    }
    json_t *rep = json_object_get(d, "report");
    if (rep) {
        if (check_map(r, "report", rep) < 0) return -1;
        json_t *t = json_object_get(rep, "tables");
        if (t) {
            if (!json_is_array(t)) return hx_recipe_error_at(r, "report.tables", "report.tables: expected a list of maps");
            for (size_t i = 0; i < json_array_size(t); i++)
                if (!json_is_object(json_array_get(t, i))) {
                    char *tp = hx_path_index("report.tables", i);
                    hx_recipe_error_at(r, tp, "report.tables: each table is a map (name, rows, stage, columns)");
                    free(tp);
                    return -1;
                }
        }
    }
    return 0;
}
