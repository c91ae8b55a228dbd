/* plan.c - builds the plan: stage graph, axis arms, then the instances (plan_instances.c) (docs/design.md sections 2-3). */
#include "interp/plan_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp/canon.h"
#include "interp/external.h"

/* ---- small helpers ---- */

int hx_plan_has_interp(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return strstr(json_string_value(v), "${") != NULL;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++)
            if (hx_plan_has_interp(json_array_get(v, i))) return 1;
        return 0;
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (hx_plan_has_interp(x)) return 1;
        return 0;
    }
    default: return 0;
    }
}

void hx_plan_label_value(char *buf, size_t n, const json_t *v)
{
    if (json_is_string(v)) snprintf(buf, n, "%s", json_string_value(v));
    else {
        char *t = hx_canon_dump(v);
        snprintf(buf, n, "%s", t ? t : "?");
        free(t);
    }
}

char *hx_plan_axes_label(const json_t *axes)
{
    char *out = xstrdup("");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)axes, k, v) {
        char val[256];
        hx_plan_label_value(val, sizeof val, v);
        char *n = xstrfmt("%s%s%s=%s", out, *out ? "," : "", k, val);
        free(out);
        out = n;
    }
    return out;
}

int hx_plan_list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && !strncmp(p, word, n)) return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}

static const char *const *kind_names(size_t *n)
{
    const hx_stage_kind *const *k = hx_stage_kinds();
    static _Thread_local const char *names[256];
    *n = 0;
    for (; *k && *n < 256; k++) names[(*n)++] = (*k)->name;
    return names;
}

/* ---- graph ---- */

static int find_stage(const builder *b, const char *name)
{
    for (int i = 0; i < b->ns; i++)
        if (!strcmp(b->st[i].name, name)) return i;
    return -1;
}

static int check_graph(builder *b)
{
    const hx_recipe *r = b->r;
    json_t *stages = json_object_get(r->doc, "stages");
    json_t *names = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(stages, k, v) json_array_append_new(names, json_string(k));
    for (int s = 0; s < b->ns; s++) {
        stage_info *si = &b->st[s];
        char *sp = hx_path_key("stages", si->name), *kp = hx_path_key(sp, "kind");
        const char *kname = json_string_value(json_object_get(si->entry, "kind"));
        si->kind = hx_stage_kind_find(kname);
        int bad = 0;
        if (!si->kind) {
            size_t nk;
            const char *const *kn = kind_names(&nk);
            const char *sug = hx_suggest(kname, kn, nk);
            bad = hx_recipe_error_at(r, kp, "stage '%s': unknown kind '%s'%s%s%s", si->name, kname,
                                     sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
        }
        json_t *in = json_object_get(si->entry, "inputs");
        si->n_in = in ? (int)json_object_size(in) : 0;
        si->roles = xcalloc((size_t)si->n_in + 1, sizeof *si->roles);
        si->deps = xcalloc((size_t)si->n_in + 1, sizeof *si->deps);
        int i = 0;
        if (!bad && in) json_object_foreach(in, k, v) {
            char *ip = xstrfmt("%s.inputs.%s", sp, k);
            const hx_role *role = NULL;
            for (const hx_role *ro = si->kind->roles; ro && ro->name; ro++)
                if (!strcmp(ro->name, k)) role = ro;
            if (!role) {
                json_t *rn = json_array();
                for (const hx_role *ro = si->kind->roles; ro && ro->name; ro++) json_array_append_new(rn, json_string(ro->name));
                char *all = xstrdup("");
                for (size_t j = 0; j < json_array_size(rn); j++) {
                    char *n2 = xstrfmt("%s%s%s", all, j ? ", " : "", json_string_value(json_array_get(rn, j)));
                    free(all);
                    all = n2;
                }
                bad = hx_recipe_error_at(r, ip, "stage '%s': kind %s has no input role '%s'%s; its roles: %s", si->name,
                                         kname, k, hx_suggest_hint(k, rn), *all ? all : "(none)");
                free(all);
                json_decref(rn);
            } else if (!json_is_string(v)) {
                bad = hx_recipe_error_at(r, ip, "stage '%s': inputs.%s: expected the name of a stage", si->name, k);
            } else {
                int d = find_stage(b, json_string_value(v));
                if (d < 0)
                    bad = hx_recipe_error_at(r, ip, "stage '%s': inputs.%s: no stage '%s'%s", si->name, k,
                                             json_string_value(v), hx_suggest_hint(json_string_value(v), names));
                else if (d == s)
                    bad = hx_recipe_error_at(r, ip, "stage '%s': inputs.%s: a stage cannot be its own input", si->name, k);
                else {
                    const char *dk = json_string_value(json_object_get(b->st[d].entry, "kind"));
                    if (role->accepts && !hx_plan_list_has(role->accepts, dk))
                        bad = hx_recipe_error_at(r, ip, "stage '%s': inputs.%s: stage '%s' is of kind %s, but role '%s' "
                                                 "takes %s", si->name, k, b->st[d].name, dk, k, role->accepts);
                    si->roles[i] = k;
                    si->deps[i] = d;
                    i++;
                }
            }
            free(ip);
            if (bad) break;
        }
        if (!bad)
            for (const hx_role *ro = si->kind->roles; ro && ro->name; ro++)
                if (!ro->optional && !(in && json_object_get(in, ro->name))) {
                    char *at = in ? xstrfmt("%s.inputs", sp) : xstrdup(sp);
                    bad = hx_recipe_error_at(r, at, "stage '%s': kind %s needs input role '%s'%s%s", si->name, kname,
                                             ro->name, ro->doc ? ": " : "", ro->doc ? ro->doc : "");
                    free(at);
                    break;
                }
        free(sp);
        free(kp);
        if (bad) {
            json_decref(names);
            return -1;
        }
    }
    json_decref(names);
    return 0;
}

/* Depth-first topological order; a cycle is reported with its path. */
static int topo_visit(builder *b, int s, int *color, int *order, int *n, int *path, int depth)
{
    if (color[s] == 2) return 0;
    path[depth] = s;
    if (color[s] == 1) {
        int start = 0;
        while (path[start] != s) start++;
        char *chain = xstrdup("");
        for (int i = start; i <= depth; i++) {
            char *c = xstrfmt("%s%s%s", chain, i > start ? " -> " : "", b->st[path[i]].name);
            free(chain);
            chain = c;
        }
        char *ip = xstrfmt("stages.%s.inputs", b->st[s].name);
        hx_recipe_error_at(b->r, ip, "stages form a cycle through their inputs: %s", chain);
        free(ip);
        free(chain);
        return -1;
    }
    color[s] = 1;
    for (int i = 0; i < b->st[s].n_in; i++)
        if (topo_visit(b, b->st[s].deps[i], color, order, n, path, depth + 1) < 0) return -1;
    color[s] = 2;
    order[(*n)++] = s;
    return 0;
}

/* ---- axes ---- */

static int build_arms(builder *b)
{
    const hx_recipe *r = b->r;
    hx_plan *p = b->p;
    json_t *axes = json_object_get(r->doc, "axes"), *zip = json_object_get(r->doc, "zip");
    b->n_axes = axes ? (int)json_object_size(axes) : 0;
    if (b->n_axes > MAX_AXES) return hx_recipe_error_at(r, "axes", "more than %d axes", MAX_AXES);
    b->axis_names = xcalloc((size_t)b->n_axes + 1, sizeof *b->axis_names);
    b->axis_vals = xcalloc((size_t)b->n_axes + 1, sizeof *b->axis_vals);
    p->axes = json_object();
    const char *k;
    json_t *v;
    int a = 0;
    if (axes) json_object_foreach(axes, k, v) {
        char *ap = hx_path_key("axes", k);
        json_t *vals = hx_recipe_resolve(r, v, ap, NULL, NULL);
        free(ap);
        if (!vals) return -1;
        if (!json_is_array(vals) || !json_array_size(vals)) {
            json_decref(vals);
            return hx_recipe_error_at(r, "axes", "axis '%s': expected a non-empty list", k);
        }
        b->axis_names[a] = k;
        b->axis_vals[a] = vals;
        json_object_set(p->axes, k, vals);
        a++;
    }
    /* Groups: a zip group moves together; every other axis is a group of its own. */
    int *group = xmalloc(((size_t)b->n_axes + 1) * sizeof *group);
    for (a = 0; a < b->n_axes; a++) group[a] = -1;
    int ng = 0;
    for (a = 0; a < b->n_axes; a++) {
        if (group[a] >= 0) continue;
        group[a] = ng;
        for (size_t z = 0; zip && z < json_array_size(zip); z++) {
            json_t *g = json_array_get(zip, z);
            int in = 0;
            for (size_t j = 0; j < json_array_size(g); j++)
                if (!strcmp(json_string_value(json_array_get(g, j)), b->axis_names[a])) in = 1;
            if (!in) continue;
            for (size_t j = 0; j < json_array_size(g); j++)
                for (int c = 0; c < b->n_axes; c++)
                    if (!strcmp(json_string_value(json_array_get(g, j)), b->axis_names[c])) group[c] = ng;
        }
        ng++;
    }
    size_t *glen = xcalloc((size_t)ng + 1, sizeof *glen);
    for (a = 0; a < b->n_axes; a++) {
        size_t len = json_array_size(b->axis_vals[a]);
        if (glen[group[a]] && glen[group[a]] != len) {
            free(group);
            free(glen);
            return hx_recipe_error_at(r, "zip", "zipped axes resolve to lists of different lengths");
        }
        glen[group[a]] = len;
    }
    double total = 1;
    for (int g = 0; g < ng; g++) total *= (double)glen[g];
    if (total > MAX_ARMS) {
        free(group);
        free(glen);
        return hx_recipe_error_at(r, "axes", "the axes multiply to %.0f arms; at most %d (use zip: for axes that "
                                  "move together)", total, MAX_ARMS);
    }
    p->n_arms = (int)total;
    b->arm_idx = xcalloc((size_t)p->n_arms * (size_t)(b->n_axes ? b->n_axes : 1), sizeof *b->arm_idx);
    /* Arm m: group digits in mixed radix, the first group varying slowest. */
    for (int m = 0; m < p->n_arms; m++) {
        int rem = m;
        for (int g = ng - 1; g >= 0; g--) {
            int d = rem % (int)glen[g];
            rem /= (int)glen[g];
            for (a = 0; a < b->n_axes; a++)
                if (group[a] == g) b->arm_idx[m * b->n_axes + a] = d;
        }
    }
    b->group = group;
    free(glen);
    return 0;
}

json_t *hx_plan_arm_json(const builder *b, int m)
{
    json_t *o = json_object();
    for (int a = 0; a < b->n_axes; a++)
        json_object_set(o, b->axis_names[a], json_array_get(b->axis_vals[a], (size_t)b->arm_idx[m * b->n_axes + a]));
    return o;
}

static char *recipe_dir(const hx_recipe *r)
{
    char *real = r->path ? realpath(r->path, NULL) : NULL;
    if (!real) return getcwd(NULL, 0) ?: xstrdup(".");
    char *slash = strrchr(real, '/');
    if (slash == real) slash[1] = 0;
    else *slash = 0;
    return real;
}

int hx_plan_build(hx_plan *p, const hx_recipe *r, const char *binary_digest)
{
    return hx_plan_build_cached(p, r, binary_digest, NULL);
}

int hx_plan_build_cached(hx_plan *p, const hx_recipe *r, const char *binary_digest, const char *digest_cache)
{
    memset(p, 0, sizeof *p);
    p->recipe = r;
    p->binary_digest = binary_digest ? xstrdup(binary_digest) : NULL;
    builder b = {.p = p, .r = r, .recipe_dir = recipe_dir(r), .digest_cache = digest_cache};
    json_t *stages = json_object_get(r->doc, "stages");
    b.ns = (int)json_object_size(stages);
    b.st = xcalloc((size_t)b.ns + 1, sizeof *b.st);
    p->n_stages = b.ns;
    p->stage_names = xcalloc((size_t)b.ns + 1, sizeof *p->stage_names);
    const char *k;
    json_t *v;
    int i = 0, rc = -1;
    json_object_foreach(stages, k, v) {
        b.st[i].name = k;
        b.st[i].entry = v;
        p->stage_names[i] = k;
        i++;
    }
    int *color = xcalloc((size_t)b.ns + 1, sizeof *color), *order = xcalloc((size_t)b.ns + 1, sizeof *order);
    int *path = xcalloc((size_t)b.ns + 2, sizeof *path), no = 0;
    if (check_graph(&b) < 0) goto out;
    for (int s = 0; s < b.ns; s++)
        if (topo_visit(&b, s, color, order, &no, path, 0) < 0) goto out;
    if (build_arms(&b) < 0) goto out;
    for (int j = 0; j < no; j++)
        if (hx_plan_expand_stage(&b, order[j], binary_digest) < 0) goto out;
    if (hx_plan_check_collapse(&b) < 0) goto out;
    rc = 0;
out:
    for (int s = 0; s < b.ns; s++) {
        free(b.st[s].roles);
        free(b.st[s].deps);
        free(b.st[s].inst_of);
    }
    free(b.st);
    for (int a = 0; a < b.n_axes; a++) json_decref(b.axis_vals[a]);
    free(b.axis_vals);
    free(b.axis_names);
    free(b.arm_idx);
    free(b.group);
    free(color);
    free(order);
    free(path);
    free(b.recipe_dir);
    if (rc < 0) hx_plan_release(p);
    return rc;
}

void hx_plan_release(hx_plan *p)
{
    for (int i = 0; i < p->n; i++) {
        json_decref(p->inst[i].axes);
        json_decref(p->inst[i].with);
        json_decref(p->inst[i].inputs);
        json_decref(p->inst[i].external);
        json_decref(p->inst[i].run_with);
        free(p->inst[i].roles);
        free(p->inst[i].input_inst);
    }
    free(p->inst);
    free(p->stage_names);
    free(p->binary_digest);
    json_decref(p->axes);
    memset(p, 0, sizeof *p);
}

int *hx_plan_stage_instances(const hx_plan *p, const char *name)
{
    int found = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (!strcmp(p->stage_names[s], name)) found = 1;
    if (!found) return NULL;
    int *out = xmalloc(((size_t)p->n + 1) * sizeof *out), n = 0;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->inst[i].stage_name, name)) out[n++] = i;
    out[n] = -1;
    return out;
}
