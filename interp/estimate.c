/* estimate.c - wall-time estimates of plan instances from the executions the store's manifests record (estimate.h). */
#include "interp/estimate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/canon.h"
#include "interp/exec.h"

/* `with` fields that change what is computed but not how much: left out of an instance's size. */
static const char *const not_size[] = {"seed", "lr", "min_lr", "warmup", "schedule", "decay_frac", "weight_decay",
                                       "grad_clip", "log_every", "ckpt_every", "temperature", "alpha", "text",
                                       "message", NULL};
/* The fields work scales linearly in, left out of an instance's shape (the first positive one is its work). */
static const char *const work_fields[] = {"tokens", "steps", NULL};

struct hx_estimator {
    json_t *manifests; /* {key: manifest} */
    json_t *shape_of;  /* {key: shape | null}: memo of store entries' shapes */
    json_t *by_size;   /* {size: {key, seconds, device, started}}: the newest execution of each size */
    json_t *by_shape;  /* {shape: {key, seconds, device, started, field, work}}: the newest with work > 0 */
    json_t *kinds;     /* {kind: true}: kinds executed at all */
};

/* The amount of work of WITH: its first positive work field (*field names it), or -1. */
static double work_of(const json_t *with, const char **field)
{
    for (int i = 0; work_fields[i]; i++) {
        double v = json_number_value(json_object_get(with, work_fields[i]));
        if (v > 0) {
            *field = work_fields[i];
            return v;
        }
    }
    *field = NULL;
    return -1;
}

/* sha256 of {kind, with less not_size (and the work fields for a SHAPE), external digests, inputs: {role: shape}};
 * xmalloc'd hex. */
static char *signature(const char *kind, const json_t *with, const json_t *external, const json_t *in_shapes, int shape)
{
    json_t *w = json_deep_copy(with), *ext = json_object();
    for (int i = 0; not_size[i]; i++) json_object_del(w, not_size[i]);
    for (int i = 0; shape && work_fields[i]; i++) json_object_del(w, work_fields[i]);
    const char *f;
    json_t *list;
    json_object_foreach((json_t *)external, f, list) { /* content, not the path: the same file on another machine */
        json_t *d = json_array(), *x;
        size_t j;
        json_array_foreach(list, j, x) json_array_append(d, json_object_get(x, "sha256"));
        json_object_set_new(ext, f, d);
    }
    json_t *doc = json_pack("{s:s,s:o,s:o,s:O}", "kind", kind, "with", w, "external", ext, "inputs", in_shapes);
    char *t = hx_canon_dump(doc), hex[65];
    json_decref(doc);
    if (!t) return xstrdup("?");
    hx_sha256_hex(t, strlen(t), hex);
    free(t);
    return xstrdup(hex);
}

/* The shapes of a manifest's inputs ({role: shape}), or NULL when one is unknown (not in the store). */
static json_t *input_shapes(hx_estimator *e, const json_t *m);

/* The shape of store entry KEY, memoised; NULL when its manifest or an input's is missing. */
static const char *entry_shape(hx_estimator *e, const char *key)
{
    json_t *v = json_object_get(e->shape_of, key);
    if (v) return json_string_value(v);
    json_object_set_new(e->shape_of, key, json_null()); /* (a cycle of keys cannot exist; this also ends one) */
    json_t *m = json_object_get(e->manifests, key), *ins = m ? input_shapes(e, m) : NULL;
    const char *kind = json_string_value(json_object_get(m, "kind"));
    if (ins && kind) {
        char *sh = signature(kind, json_object_get(m, "with"), json_object_get(m, "external"), ins, 1);
        json_object_set_new(e->shape_of, key, json_string(sh));
        free(sh);
    }
    json_decref(ins);
    return json_string_value(json_object_get(e->shape_of, key));
}

static json_t *input_shapes(hx_estimator *e, const json_t *m)
{
    json_t *out = json_object(), *k;
    const char *role;
    json_object_foreach(json_object_get(m, "inputs"), role, k) {
        const char *sh = json_string_value(k) ? entry_shape(e, json_string_value(k)) : NULL;
        if (!sh) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, role, json_string(sh));
    }
    return out;
}

/* Keeps REC under SIG in INDEX if it is the newest there. */
static void keep_newest(json_t *index, const char *sig, json_t *rec)
{
    json_t *old = json_object_get(index, sig);
    const char *a = json_string_value(json_object_get(old, "started")), *b = json_string_value(json_object_get(rec, "started"));
    if (!old || (a && b && strcmp(b, a) > 0)) json_object_set(index, sig, rec);
}

hx_estimator *hx_estimator_new(const hx_store *s)
{
    hx_estimator *e = xcalloc(1, sizeof *e);
    e->manifests = json_object();
    e->shape_of = json_object();
    e->by_size = json_object();
    e->by_shape = json_object();
    e->kinds = json_object();
    char *sdir = xstrfmt("%s/store", s->root);
    DIR *d = opendir(sdir);
    struct dirent *x;
    while (d && (x = readdir(d))) { /* store/<k[0:2]>/<k>/manifest.json (store.h) */
        if (strlen(x->d_name) != 2) continue;
        char *shard = hx_path_join(sdir, x->d_name);
        DIR *d2 = opendir(shard);
        struct dirent *y;
        while (d2 && (y = readdir(d2))) {
            if (strlen(y->d_name) != 64 || strspn(y->d_name, "0123456789abcdef") != 64) continue;
            json_t *m = hx_store_manifest(s, y->d_name);
            if (m) json_object_set_new(e->manifests, y->d_name, m);
        }
        if (d2) closedir(d2);
        free(shard);
    }
    if (d) closedir(d);
    free(sdir);
    hx_clear_error();
    const char *key;
    json_t *m;
    json_object_foreach(e->manifests, key, m) {
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *secs = json_object_get(m, "seconds");
        if (!kind || !json_is_number(secs)) continue;
        json_object_set_new(e->kinds, kind, json_true());
        json_t *ins = input_shapes(e, m);
        const char *shape = entry_shape(e, key);
        if (!ins || !shape) {
            json_decref(ins);
            continue;
        }
        const char *field;
        double work = work_of(json_object_get(m, "with"), &field);
        json_t *rec = json_pack("{s:s,s:O,s:s,s:s}", "key", key, "seconds", secs, "device",
                                json_string_value(json_object_get(m, "device")) ? json_string_value(json_object_get(m, "device")) : "?",
                                "started", json_string_value(json_object_get(m, "started")) ? json_string_value(json_object_get(m, "started")) : "");
        char *size = signature(kind, json_object_get(m, "with"), json_object_get(m, "external"), ins, 0);
        keep_newest(e->by_size, size, rec);
        if (work > 0) {
            json_object_set_new(rec, "field", json_string(field));
            json_object_set_new(rec, "work", hx_json_num(work));
            keep_newest(e->by_shape, shape, rec);
        }
        free(size);
        json_decref(rec);
        json_decref(ins);
    }
    return e;
}

void hx_estimator_free(hx_estimator *e)
{
    if (!e) return;
    json_decref(e->manifests);
    json_decref(e->shape_of);
    json_decref(e->by_size);
    json_decref(e->by_shape);
    json_decref(e->kinds);
    free(e);
}

void hx_estimate_plan(hx_estimator *e, const hx_plan *p, const hx_store *s, hx_estimate *est)
{
    char **shape = xcalloc((size_t)p->n + 1, sizeof *shape);
    for (int i = 0; i < p->n; i++) { /* topological order: an instance's inputs have their shapes */
        const hx_instance *in = &p->inst[i];
        json_t *ins = json_object();
        for (int j = 0; j < in->n_inputs; j++) json_object_set_new(ins, in->roles[j], json_string(shape[in->input_inst[j]]));
        shape[i] = signature(in->kind->name, in->with, in->external, ins, 1);
        char *size = signature(in->kind->name, in->with, in->external, ins, 0);
        json_decref(ins);
        hx_estimate *x = &est[i];
        const json_t *same = json_object_get(e->by_size, size), *like = json_object_get(e->by_shape, shape[i]);
        const char *field;
        double work = work_of(in->with, &field);
        const char *lf = json_string_value(json_object_get(like, "field"));
        char *stale = hx_store_has(s, in->key) ? hx_exec_stale_input(p, s, i) : NULL; /* executed again */
        int have = hx_store_has(s, in->key) && !stale;
        free(stale);
        if (have) {
            x->seconds = 0;
            snprintf(x->how, sizeof x->how, "in the store");
        } else if (same) {
            x->seconds = json_number_value(json_object_get(same, "seconds"));
            snprintf(x->how, sizeof x->how, "as %.12s on %s", json_string_value(json_object_get(same, "key")),
                     json_string_value(json_object_get(same, "device")));
        } else if (like && work > 0 && lf && !strcmp(lf, field)) {
            double was = json_number_value(json_object_get(like, "work")), t = json_number_value(json_object_get(like, "seconds"));
            x->seconds = t * work / was;
            snprintf(x->how, sizeof x->how, "%.15g -> %.15g %s from %.12s on %s (%.2fs)", was, work, field,
                     json_string_value(json_object_get(like, "key")), json_string_value(json_object_get(like, "device")), t);
        } else {
            x->seconds = -1;
            snprintf(x->how, sizeof x->how, json_object_get(e->kinds, in->kind->name)
                     ? "no earlier execution of %s at this size" : "no earlier execution of kind %s", in->kind->name);
        }
        free(size);
    }
    for (int i = 0; i < p->n; i++) free(shape[i]);
    free(shape);
}

void hx_estimate_totals(const hx_plan *p, const double *secs, int jobs, double *serial, double *wall, int *unknown)
{
    int n = p->n;
    double *end = xmalloc(((size_t)n + 1) * sizeof *end); /* finish time; < 0: not started */
    *serial = 0;
    *unknown = 0;
    for (int i = 0; i < n; i++) {
        end[i] = -1;
        *unknown += secs[i] < 0;
        *serial += secs[i] > 0 ? secs[i] : 0;
    }
    if (jobs < 1) jobs = 1;
    /* list scheduling in plan order: at time t every free worker takes the first pending instance whose inputs
     * have finished; then t moves to the next finish */
    double t = 0;
    int started = 0;
    while (started < n) {
        int busy = 0, took = 0;
        for (int i = 0; i < n; i++) busy += end[i] > t;
        for (int i = 0; i < n && busy < jobs; i++) {
            if (end[i] >= 0) continue;
            int ready = 1;
            for (int j = 0; j < p->inst[i].n_inputs; j++) {
                double e = end[p->inst[i].input_inst[j]];
                ready &= e >= 0 && e <= t;
            }
            if (!ready) continue;
            end[i] = t + (secs[i] > 0 ? secs[i] : 0);
            started++;
            took++;
            busy += end[i] > t;
        }
        double next = -1;
        for (int i = 0; i < n; i++)
            if (end[i] > t && (next < 0 || end[i] < next)) next = end[i];
        if (next >= 0) t = next;
        else if (!took && started < n) BUG("estimate: the plan is not in topological order");
    }
    *wall = 0;
    for (int i = 0; i < n; i++)
        if (end[i] > *wall) *wall = end[i];
    free(end);
}

double hx_estimate_left(const hx_plan *p, const hx_estimate *est, const int *state, const double *live, int jobs,
                        int *unknown)
{
    double *secs = xcalloc((size_t)p->n + 1, sizeof *secs), serial, wall;
    for (int i = 0; i < p->n; i++) {
        if (state[i] == HX_ST_RUNNING && live[i] >= 0) secs[i] = live[i];
        else if (state[i] == HX_ST_RUNNING || state[i] == HX_ST_PENDING) secs[i] = est[i].seconds;
        else secs[i] = 0;
    }
    hx_estimate_totals(p, secs, jobs, &serial, &wall, unknown);
    free(secs);
    return wall;
}
