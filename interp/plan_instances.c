/* plan_instances.c - the plan's instances: each stage's `with` per arm type-checked and defaulted, external inputs
 * digested, one instance per distinct projection of the arms, keys; arms that collapse are refused. */
#include "interp/plan_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp/canon.h"
#include "interp/external.h"

/* ---- parameters ---- */

static const char *type_name(hx_type t)
{
    static const char *n[] = {"an integer", "a number", "true or false", "a string", "a list", "a list of strings",
                              "a map", "a value", "a path (string)", "a list of paths"};
    return (unsigned)t < sizeof n / sizeof *n ? n[t] : "?";
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a map";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Unknown keys are checked on the raw map, so the position is where the key was written. */
static int check_with_keys(builder *b, const stage_info *si)
{
    json_t *with = json_object_get(si->entry, "with");
    if (!json_is_object(with)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach(with, k, v) {
        const hx_field *f = si->kind->fields;
        while (f && f->name && strcmp(f->name, k)) f++;
        if (f && f->name) continue;
        json_t *names = json_array();
        char *all = xstrdup("");
        for (f = si->kind->fields; f && f->name; f++) {
            json_array_append_new(names, json_string(f->name));
            char *n = xstrfmt("%s%s%s", all, *all ? ", " : "", f->name);
            free(all);
            all = n;
        }
        char *p = xstrfmt("stages.%s.with.%s", si->name, k);
        hx_recipe_error_at(b->r, p, "stage '%s': kind %s has no parameter '%s'%s; its parameters: %s", si->name,
                           si->kind->name, k, hx_suggest_hint(k, names), *all ? all : "(none)");
        free(p);
        free(all);
        json_decref(names);
        return -1;
    }
    return 0;
}

/* Type-check RES (resolved) against the schema, fill defaults, normalise numbers. New reference or NULL. */
static json_t *check_with(builder *b, const stage_info *si, const json_t *res, const char *arm_label)
{
    const hx_recipe *r = b->r;
    json_t *out = json_object();
    const char *in_arm = *arm_label ? " (arm " : "", *in_arm_end = *arm_label ? ")" : "";
    for (const hx_field *f = si->kind->fields; f && f->name; f++) {
        char *p = xstrfmt("stages.%s.with.%s", si->name, f->name);
        json_t *v = json_object_get(res, f->name);
        int bad = 0;
        if (!v) {
            if (!f->default_json) {
                char *wp = xstrfmt("stages.%s.with", si->name);
                bad = hx_recipe_error_at(r, wp, "stage '%s': missing parameter '%s' (%s)%s%s%s", si->name, f->name,
                                         f->doc ? f->doc : type_name(f->type), in_arm, arm_label, in_arm_end);
                free(wp);
            } else {
                json_error_t je;
                json_t *d = json_loads(f->default_json, JSON_DECODE_ANY, &je);
                if (!d) BUG("kind %s: default of '%s' is not JSON: %s", si->kind->name, f->name, f->default_json);
                json_object_set_new(out, f->name, d);
            }
        } else {
            json_t *val = NULL;
            switch (f->type) {
            case HX_T_INT:
                if (json_is_integer(v)) val = json_incref(v);
                else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                         fabs(json_real_value(v)) < 9.2e18)
                    val = json_integer((json_int_t)json_real_value(v));
                break;
            case HX_T_NUM: if (json_is_number(v)) val = json_incref(v); break;
            case HX_T_BOOL: if (json_is_boolean(v)) val = json_incref(v); break;
            case HX_T_STR:
            case HX_T_PATH: if (json_is_string(v)) val = json_incref(v); break;
            case HX_T_LIST: if (json_is_array(v)) val = json_incref(v); break;
            case HX_T_PATHLIST:
            case HX_T_STRLIST:
                if (json_is_array(v)) {
                    val = json_incref(v);
                    for (size_t i = 0; i < json_array_size(v); i++)
                        if (!json_is_string(json_array_get(v, i))) {
                            json_decref(val);
                            val = NULL;
                            break;
                        }
                }
                break;
            case HX_T_MAP: if (json_is_object(v)) val = json_incref(v); break;
            case HX_T_ANY: if (!json_is_null(v)) val = json_incref(v); break;
            }
            if (!val) {
                char shown[128];
                hx_plan_label_value(shown, sizeof shown, v);
                bad = hx_recipe_error_at(r, p, "stage '%s': %s must be %s, got %s '%s'%s%s%s", si->name, f->name,
                                         type_name(f->type), json_type_name(v), shown, in_arm, arm_label, in_arm_end);
            } else if (f->allowed && (f->type == HX_T_STR || f->type == HX_T_STRLIST)) {
                size_t n = json_is_array(val) ? json_array_size(val) : 1;
                for (size_t i = 0; i < n && !bad; i++) {
                    json_t *s = json_is_array(val) ? json_array_get(val, i) : val;
                    if (hx_plan_list_has(f->allowed, json_string_value(s))) continue;
                    char *choices = xstrdup(f->allowed);
                    for (char *c = choices; *c; c++)
                        if (*c == '|') *c = ',';
                    json_t *opts = json_array();
                    for (char *tok = strtok(choices, ","); tok; tok = strtok(NULL, ",")) json_array_append_new(opts, json_string(tok));
                    free(choices);
                    bad = hx_recipe_error_at(r, p, "stage '%s': %s: '%s' is not one of %s%s%s%s%s", si->name, f->name,
                                             json_string_value(s), f->allowed,
                                             hx_suggest_hint(json_string_value(s), opts), in_arm, arm_label, in_arm_end);
                    json_decref(opts);
                }
            }
            if (val && !bad) json_object_set_new(out, f->name, val);
            else json_decref(val);
        }
        free(p);
        if (bad) {
            json_decref(out);
            return NULL;
        }
    }
    if (si->kind->canon) si->kind->canon(out);
    json_t *norm = hx_canon_normalize(out);
    json_decref(out);
    return norm;
}

/* ---- external inputs ---- */

/* For every path parameter of instance IN: resolve it against the recipe's folder, digest its content
 * (in->external: {field: [{path, sha256}]}, sha256 null when it does not exist: the stage will say so),
 * and give the stage the absolute paths (in->run_with). */
static int resolve_external(builder *b, const stage_info *si, hx_instance *in)
{
    for (const hx_field *f = si->kind->fields; f && f->name; f++) {
        if (f->type != HX_T_PATH && f->type != HX_T_PATHLIST) continue;
        json_t *v = json_object_get(in->with, f->name);
        json_t *vals = f->type == HX_T_PATH ? json_pack("[O]", v) : json_incref(v), *resolved = json_array();
        json_t *list = json_array(), *x;
        size_t i;
        json_array_foreach(vals, i, x) {
            const char *sv = json_string_value(x);
            if (!*sv || hx_plan_list_has(f->allowed, sv)) { /* no path, or a name the kind knows */
                json_array_append(resolved, x);
                continue;
            }
            char *abs = sv[0] == '/' ? xstrdup(sv) : hx_path_join(b->recipe_dir, sv), hex[65];
            int rc = hx_external_digest(b->digest_cache, abs, hex);
            if (rc < 0) {
                char *p = xstrfmt("stages.%s.with.%s", si->name, f->name);
                hx_recipe_error_at(b->r, p, "stage '%s': %s: %s", si->name, f->name, hx_last_error());
                free(p);
                free(abs);
                json_decref(vals);
                json_decref(resolved);
                json_decref(list);
                return -1;
            }
            json_array_append_new(list, json_pack("{s:s,s:o}", "path", abs, "sha256", rc ? json_null() : json_string(hex)));
            json_array_append_new(resolved, json_string(abs));
            free(abs);
        }
        if (json_array_size(list)) {
            if (!in->external) in->external = json_object();
            json_object_set(in->external, f->name, list);
            if (!in->run_with) in->run_with = json_deep_copy(in->with);
            json_object_set(in->run_with, f->name, f->type == HX_T_PATH ? json_array_get(resolved, 0) : resolved);
        }
        json_decref(vals);
        json_decref(resolved);
        json_decref(list);
    }
    return 0;
}

/* ---- instances ---- */

static int add_instance(builder *b, int s, int arm, const json_t *res, uint64_t mask)
{
    hx_plan *p = b->p;
    stage_info *si = &b->st[s];
    json_t *axes = json_object();
    for (int a = 0; a < b->n_axes; a++)
        if (mask >> a & 1)
            json_object_set(axes, b->axis_names[a], json_array_get(b->axis_vals[a], (size_t)b->arm_idx[arm * b->n_axes + a]));
    char *label = hx_plan_axes_label(axes);
    json_t *with = check_with(b, si, res, label);
    free(label);
    if (!with) {
        json_decref(axes);
        return -1;
    }
    if (p->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        p->inst = xrealloc(p->inst, (size_t)b->cap * sizeof *p->inst);
    }
    hx_instance *in = &p->inst[p->n];
    memset(in, 0, sizeof *in);
    in->stage = s;
    in->stage_name = si->name;
    in->kind = si->kind;
    in->axes = axes;
    in->with = with;
    in->inputs = json_object();
    in->n_inputs = si->n_in;
    in->roles = xcalloc((size_t)si->n_in + 1, sizeof *in->roles);
    in->input_inst = xcalloc((size_t)si->n_in + 1, sizeof *in->input_inst);
    for (int i = 0; i < si->n_in; i++) {
        int j = b->st[si->deps[i]].inst_of[arm];
        in->roles[i] = si->roles[i];
        in->input_inst[i] = j;
        json_object_set_new(in->inputs, si->roles[i], json_string(p->inst[j].key));
    }
    p->n++;
    return resolve_external(b, si, in);
}

int hx_plan_expand_stage(builder *b, int s, const char *binary_digest)
{
    hx_plan *p = b->p;
    stage_info *si = &b->st[s];
    const hx_recipe *r = b->r;
    if (check_with_keys(b, si) < 0) return -1;
    json_t *raw = json_object_get(si->entry, "with");
    json_t *empty = json_object();
    if (!json_is_object(raw)) raw = empty;
    char *wp = xstrfmt("stages.%s.with", si->name);
    int interp = hx_plan_has_interp(raw), n_arms = p->n_arms, rc = -1;
    json_t **res = xcalloc((size_t)n_arms, sizeof *res);
    uint64_t mask = 0;
    for (int m = 0; m < n_arms; m++) {
        if (!interp && m > 0) {
            res[m] = json_incref(res[0]);
            continue;
        }
        json_t *arm = hx_plan_arm_json(b, m), *used = json_object();
        res[m] = hx_recipe_resolve(r, raw, wp, arm, used);
        json_decref(arm);
        const char *k;
        json_t *v;
        json_object_foreach(used, k, v) for (int a = 0; a < b->n_axes; a++) if (!strcmp(b->axis_names[a], k)) mask |= 1ull << a;
        json_decref(used);
        if (!res[m]) goto out;
    }
    si->direct = mask;
    for (int i = 0; i < si->n_in; i++) mask |= b->st[si->deps[i]].mask;
    si->mask = mask;
    si->inst_of = xmalloc((size_t)n_arms * sizeof *si->inst_of);
    /* One instance per distinct projection of the arms onto this stage's axes. */
    json_t *seen = json_object();
    for (int m = 0; m < n_arms; m++) {
        char proj[8 * MAX_AXES + 8];
        size_t o = 0;
        for (int a = 0; a < b->n_axes; a++)
            if (mask >> a & 1) o += (size_t)snprintf(proj + o, sizeof proj - o, "%d,", b->arm_idx[m * b->n_axes + a]);
        proj[o] = 0;
        json_t *hit = json_object_get(seen, proj);
        if (hit) {
            si->inst_of[m] = (int)json_integer_value(hit);
            continue;
        }
        int idx = p->n;
        if (add_instance(b, s, m, res[m], mask) < 0) {
            json_decref(seen);
            goto out;
        }
        hx_instance *in = &p->inst[idx];
        if (hx_canon_key_ext(in->kind->name, in->kind->version, in->with, in->inputs, in->external, binary_digest,
                             in->key) < 0) {
            json_decref(seen);
            goto out;
        }
        json_object_set_new(seen, proj, json_integer(idx));
        si->inst_of[m] = idx;
    }
    json_decref(seen);
    rc = 0;
out:
    for (int m = 0; m < n_arms; m++) json_decref(res[m]);
    free(res);
    free(wp);
    json_decref(empty);
    return rc;
}

/*
 * An axis that changes nothing is a bug in the recipe. For every axis group G (an axis, or a zip group) and every two
 * arms that differ only in G's values: at least one stage whose own `with` references an axis of G must get
 * different keys in the two arms. Otherwise the values name the same runs (a typo'd interpolation, a parameter
 * the kind ignores: `steps` when `tokens` is set, hx_stage_kind.canon), and the plan is refused naming the axis,
 * the two values and the stages.
 */
int hx_plan_check_collapse(builder *b)
{
    hx_plan *p = b->p;
    int rc = 0;
    for (int a = 0; a < b->n_axes && !rc; a++) {
        int g = b->group[a], first = 1;
        for (int c = 0; c < a; c++)
            if (b->group[c] == g) first = 0;
        if (!first) continue; /* one check per group */
        uint64_t gmask = 0;
        for (int c = 0; c < b->n_axes; c++)
            if (b->group[c] == g) gmask |= 1ull << c;
        int nd = 0, *ds = xcalloc((size_t)b->ns + 1, sizeof *ds);
        for (int s = 0; s < b->ns; s++)
            if (b->st[s].direct & gmask) ds[nd++] = s;
        /* arms keyed by the other groups' values; within one, the stages' keys must tell G's values apart */
        json_t *seen = json_object();
        for (int m = 0; m < p->n_arms && nd && !rc; m++) {
            hx_sbuf k = {0};
            for (int c = 0; c < b->n_axes; c++)
                if (!(gmask >> c & 1)) hx_sb_printf(&k, "%d,", b->arm_idx[m * b->n_axes + c]);
            hx_sb_putc(&k, '|');
            for (int i = 0; i < nd; i++) hx_sb_puts(&k, p->inst[b->st[ds[i]].inst_of[m]].key);
            char *ks = hx_sb_take(&k);
            json_t *hit = json_object_get(seen, ks);
            int n0 = hit ? (int)json_integer_value(hit) : -1;
            if (n0 >= 0 && b->arm_idx[n0 * b->n_axes + a] != b->arm_idx[m * b->n_axes + a]) {
                char v0[128], v1[128];
                hx_plan_label_value(v0, sizeof v0, json_array_get(b->axis_vals[a], (size_t)b->arm_idx[n0 * b->n_axes + a]));
                hx_plan_label_value(v1, sizeof v1, json_array_get(b->axis_vals[a], (size_t)b->arm_idx[m * b->n_axes + a]));
                hx_sbuf names = {0};
                for (int i = 0; i < nd; i++) hx_sb_printf(&names, "%s%s", i ? ", " : "", b->st[ds[i]].name);
                char *ap = hx_path_key("axes", b->axis_names[a]), *nm = hx_sb_take(&names);
                rc = hx_recipe_error_at(b->r, ap, "axis '%s' changes nothing between '%s' and '%s': every stage that "
                                        "references it (%s) gets the same key for both (a parameter the stage ignores, "
                                        "e.g. steps when tokens > 0, or values that resolve alike); make the values "
                                        "differ where they are used", b->axis_names[a], v0, v1, nm);
                free(ap);
                free(nm);
            } else if (n0 < 0) {
                json_object_set_new(seen, ks, json_integer(m));
            }
            free(ks);
        }
        json_decref(seen);
        free(ds);
    }
    return rc;
}

/* The folder of the recipe's top file (the working directory for a recipe loaded from memory). */
