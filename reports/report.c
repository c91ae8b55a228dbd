/* report.c - report tables of a run: rows per axis value, LL/generation accuracy, gap, retention vs the teacher,
 * ranking reversals between arms (with McNemar tests on the paired items). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/stats.h"
#include "reports/report.h"

static const char *const known_cols[] = {"ll_acc", "gen_acc", "gap", "retention", "ll_retention", "gen_retention",
                                          "ll_acc_norm", "gen_em", "gen_invalid", "chance", "n", "mcnemar_p", NULL};

int rp_column_known(const char *col)
{
    for (int i = 0; known_cols[i]; i++)
        if (!strcmp(known_cols[i], col)) return 1;
    return 0;
}

char *rp_resolve_run(const json_t *ids, const char *ref)
{
    const char *hit = NULL;
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        if (!id) continue;
        if (!strcmp(id, ref)) return xstrdup(id);
        if (!strncmp(id, ref, strlen(ref))) hit = id, n++;
    }
    if (n == 1) return xstrdup(hit);
    if (!n) error("no run '%s' (see 'hx runs')", ref);
    else error("run prefix '%s' is ambiguous: %d runs match (see 'hx runs')", ref, n);
    return NULL;
}

static const char *sget(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* "x=1,y=b" of an axes object, in the object's order ("" when shared). xmalloc'd. */
static char *axes_label(const json_t *axes)
{
    char *s = xstrdup("");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)axes, k, v) {
        char *val = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *t = xstrfmt("%s%s%s=%s", s, *s ? "," : "", k, val);
        free(val);
        free(s);
        s = t;
    }
    return s;
}

/* A table's `task`: NULL (all), a task name, or a family glob "kn_prose_*". */
static int task_is(const char *t, const char *task)
{
    if (!task) return 1;
    size_t n = strlen(task);
    return n && task[n - 1] == '*' ? !strncmp(t, task, n - 1) : !strcmp(t, task);
}

void rp_pair(const json_t *items_a, const json_t *items_b, const char *split, const char *task, const char *field,
             int *n, int *b10, int *b01, json_t *flips_a, json_t *flips_b, double **xa, double **xb)
{
    json_t *idx = json_object();
    size_t i;
    json_t *o;
    json_array_foreach(items_b, i, o) {
        const char *t = sget(o, "task"), *d = sget(o, "doc_id"), *sp = sget(o, "split");
        if (!t || !d || !sp || strcmp(sp, split) || !task_is(t, task)) continue;
        char *k = xstrfmt("%s\t%s", t, d);
        json_object_set(idx, k, o);
        free(k);
    }
    size_t cap = json_array_size(items_a) + 1;
    double *va = xa ? xmalloc(cap * sizeof *va) : NULL, *vb = xb ? xmalloc(cap * sizeof *vb) : NULL;
    int m = 0, r10 = 0, r01 = 0;
    json_array_foreach(items_a, i, o) {
        const char *t = sget(o, "task"), *d = sget(o, "doc_id"), *sp = sget(o, "split");
        if (!t || !d || !sp || strcmp(sp, split) || !task_is(t, task)) continue;
        char *k = xstrfmt("%s\t%s", t, d);
        json_t *ob = json_object_get(idx, k);
        free(k);
        if (!ob) continue;
        int a = json_is_true(json_object_get(o, field)), b = json_is_true(json_object_get(ob, field));
        if (va) va[m] = a;
        if (vb) vb[m] = b;
        m++;
        if (a && !b) {
            r10++;
            if (flips_a) json_array_append_new(flips_a, json_pack("{s:s,s:s,s:O,s:O}", "task", t, "doc_id", d, "a", o, "b", ob));
        } else if (b && !a) {
            r01++;
            if (flips_b) json_array_append_new(flips_b, json_pack("{s:s,s:s,s:O,s:O}", "task", t, "doc_id", d, "a", o, "b", ob));
        }
    }
    json_decref(idx);
    *n = m;
    *b10 = r10;
    *b01 = r01;
    if (xa) *xa = va;
    if (xb) *xb = vb;
}

/* The metrics group of an eval's metrics.json: split/all, split/tasks/TASK, or split/families/GLOB for a
 * family glob such as "kn_prose_*"; NULL when absent. */
static json_t *metric_group(json_t *metrics, const char *split, const char *task)
{
    json_t *s = json_object_get(metrics, split);
    if (!task) return json_object_get(s, "all");
    if (task[0] && task[strlen(task) - 1] == '*') return json_object_get(json_object_get(s, "families"), task);
    return json_object_get(json_object_get(s, "tasks"), task);
}

/* The record of the stage instance with key KEY. */
static json_t *by_key(const json_t *stages, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(stages, i, r)
        if (key && sget(r, "key") && !strcmp(sget(r, "key"), key)) return r;
    return NULL;
}

static const char *input_key(const json_t *rec, const char *role) { return sget(json_object_get(rec, "inputs"), role); }

/*
 * The teacher's eval for row record ROW: the table's `baseline` stage if given, else an eval instance of
 * another stage than the table's whose `model` input is a `pretrain` stage. Among several, the one reading
 * the same data artifact wins.
 */
static json_t *find_baseline(const json_t *stages, const json_t *row, const char *baseline)
{
    json_t *best = NULL;
    size_t i;
    json_t *r;
    const char *own = sget(row, "stage");
    json_array_foreach(stages, i, r) {
        const char *kind = sget(r, "kind");
        if (baseline) {
            if (strcmp(sget(r, "stage") ? sget(r, "stage") : "", baseline)) continue;
        } else {
            if (!kind || strcmp(kind, "eval") || (own && sget(r, "stage") && !strcmp(sget(r, "stage"), own))) continue;
            json_t *m = by_key(stages, input_key(r, "model"));
            if (!m || !sget(m, "kind") || strcmp(sget(m, "kind"), "pretrain")) continue;
        }
        const char *d1 = input_key(r, "data"), *d2 = row ? input_key(row, "data") : NULL;
        if (!best || (d1 && d2 && !strcmp(d1, d2))) best = r;
        if (d1 && d2 && !strcmp(d1, d2)) break;
    }
    return best;
}

static void set_ci(json_t *ci, const char *col, json_t *g, const char *field)
{
    json_t *v = json_object_get(g, field);
    if (json_is_array(v)) json_object_set(ci, col, v);
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* One row: values of every column from the instance's metrics (and its baseline's for retention). */
static json_t *make_row(const rp_source *src, json_t *rec, json_t *base_metrics, json_t *cols, const char *split,
                        const char *task, int teacher, json_t *notes)
{
    const char *key = sget(rec, "key");
    json_t *row = json_object(), *vals = json_object(), *ci = json_object();
    char *label = axes_label(json_object_get(rec, "axes"));
    if (teacher) {
        char *t = xstrfmt("teacher (%s%s%s)", sget(rec, "stage"), *label ? " " : "", label);
        free(label);
        label = t;
    } else if (!*label) {
        free(label);
        label = xstrdup(sget(rec, "stage"));
    }
    json_object_set_new(row, "label", json_string(label));
    json_object_set(row, "axes", json_object_get(rec, "axes"));
    json_object_set_new(row, "key", json_string(key ? key : ""));
    json_object_set_new(row, "state", json_string(sget(rec, "state") ? sget(rec, "state") : "?"));
    json_object_set_new(row, "teacher", json_boolean(teacher));
    json_t *metrics = key && src ? src->load(src->ud, key, "metrics.json") : NULL;
    json_t *g = metrics ? metric_group(metrics, split, task) : NULL;
    if (!metrics) {
        char *msg = xstrfmt("%s: no metrics (%s)", label, hx_last_error());
        json_array_append_new(notes, json_string(msg));
        free(msg);
    } else if (!g) {
        char *msg = xstrfmt("%s: its metrics.json has no split '%s'%s%s", label, split, task ? " task " : "", task ? task : "");
        json_array_append_new(notes, json_string(msg));
        free(msg);
    }
    json_t *bg = base_metrics ? metric_group(base_metrics, split, task) : NULL;
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c) {
        const char *col = json_string_value(c);
        json_t *v = json_null();
        if (g) {
            if (!strcmp(col, "retention") || !strcmp(col, "gen_retention") || !strcmp(col, "ll_retention")) {
                const char *f = !strcmp(col, "ll_retention") ? "ll_acc" : "gen_acc";
                double den = bg ? num(bg, f) : 0;
                if (bg && den > 0) v = hx_json_num(num(g, f) / den);
            } else if (json_object_get(g, col)) {
                v = json_copy(json_object_get(g, col));
            }
            if (!strcmp(col, "ll_acc")) set_ci(ci, col, g, "ll_ci");
            if (!strcmp(col, "gen_acc")) set_ci(ci, col, g, "gen_ci");
            if (!strcmp(col, "gap")) set_ci(ci, col, g, "gap_ci");
            if (!strcmp(col, "ll_acc_norm")) set_ci(ci, col, g, "ll_norm_ci");
        }
        json_object_set_new(vals, col, v);
    }
    /* ll_acc and gen_acc are always carried for rankings, even when not shown */
    if (g) {
        json_object_set_new(row, "ll_acc", json_copy(json_object_get(g, "ll_acc")));
        json_object_set_new(row, "gen_acc", json_copy(json_object_get(g, "gen_acc")));
    }
    json_object_set_new(row, "values", vals);
    json_object_set_new(row, "ci", ci);
    json_decref(metrics);
    free(label);
    return row;
}

/* Ranking of the arm rows by LL and by generation; every pair the two orders disagree on. */
static void rankings(const rp_source *src, json_t *rows, json_t *tab, const char *split, const char *task)
{
    int n = 0;
    size_t cap = json_array_size(rows);
    json_t **r = xcalloc(cap + 1, sizeof *r);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o)
        if (!json_is_true(json_object_get(o, "teacher")) && json_is_number(json_object_get(o, "ll_acc"))) r[n++] = o;
    json_t *rev = json_array();
    if (n >= 2) {
        double *x = xmalloc((size_t)n * sizeof *x), *y = xmalloc((size_t)n * sizeof *y);
        int *ox = xmalloc((size_t)n * sizeof *ox), *oy = xmalloc((size_t)n * sizeof *oy);
        for (int k = 0; k < n; k++) {
            x[k] = num(r[k], "ll_acc");
            y[k] = num(r[k], "gen_acc");
            ox[k] = oy[k] = k;
        }
        /* stable descending insertion sorts (ties keep the table's order) */
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && x[ox[b]] > x[ox[b - 1]]; b--) ox[b] ^= ox[b - 1], ox[b - 1] ^= ox[b], ox[b] ^= ox[b - 1];
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && y[oy[b]] > y[oy[b - 1]]; b--) oy[b] ^= oy[b - 1], oy[b - 1] ^= oy[b], oy[b] ^= oy[b - 1];
        /* rankings as groups of tied arms, best first: [["a"], ["b", "c"]] */
        json_t *ll = json_array(), *gen = json_array();
        for (int k = 0; k < n; k++) {
            if (!k || x[ox[k]] != x[ox[k - 1]]) json_array_append_new(ll, json_array());
            if (!k || y[oy[k]] != y[oy[k - 1]]) json_array_append_new(gen, json_array());
            json_array_append(json_array_get(ll, json_array_size(ll) - 1), json_object_get(r[ox[k]], "label"));
            json_array_append(json_array_get(gen, json_array_size(gen) - 1), json_object_get(r[oy[k]], "label"));
        }
        json_object_set_new(tab, "ranking", json_pack("{s:o,s:o,s:o}", "ll", ll, "gen", gen, "kendall_tau", hx_json_num(ev_kendall_tau(x, y, n))));
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                double dl = x[a] - x[b], dg = y[a] - y[b];
                if (!(dl * dg < 0)) continue;
                json_t *ia = src ? src->load(src->ud, sget(r[a], "key"), "items.jsonl") : NULL;
                json_t *ib = ia ? src->load(src->ud, sget(r[b], "key"), "items.jsonl") : NULL;
                json_t *e = json_pack("{s:O,s:O,s:[o,o],s:[o,o]}", "a", json_object_get(r[a], "label"), "b",
                                      json_object_get(r[b], "label"), "ll", hx_json_num(x[a]), hx_json_num(x[b]), "gen",
                                      hx_json_num(y[a]), hx_json_num(y[b]));
                if (ia && ib) {
                    int m, b10, b01;
                    rp_pair(ia, ib, split, task, "ll_correct", &m, &b10, &b01, NULL, NULL, NULL, NULL);
                    json_object_set_new(e, "ll_p", hx_json_num(ev_mcnemar_exact(b10, b01)));
                    rp_pair(ia, ib, split, task, "gen_correct", &m, &b10, &b01, NULL, NULL, NULL, NULL);
                    json_object_set_new(e, "gen_p", hx_json_num(ev_mcnemar_exact(b10, b01)));
                    json_object_set_new(e, "n_paired", json_integer(m));
                } else {
                    json_object_set_new(e, "ll_p", json_null());
                    json_object_set_new(e, "gen_p", json_null());
                }
                json_decref(ia);
                json_decref(ib);
                json_array_append_new(rev, e);
            }
        free(x); free(y); free(ox); free(oy);
    } else {
        json_object_set_new(tab, "ranking", json_null());
    }
    json_object_set_new(tab, "reversals", rev);
    free(r);
}

/* Position of the instance's value of AXIS in the run's list of values (unknown values last). */
static int axis_pos(const json_t *run, const char *axis, const json_t *rec)
{
    json_t *vals = json_object_get(json_object_get(run, "axes"), axis), *v = json_object_get(json_object_get(rec, "axes"), axis);
    if (!v) return -1;
    size_t i;
    json_t *x;
    json_array_foreach(vals, i, x)
        if (json_equal(x, v)) return (int)i;
    return (int)json_array_size(vals);
}

static json_t *build_table(const json_t *run, const json_t *spec, int ti, const rp_source *src)
{
    const json_t *stages = json_object_get(run, "stages");
    const char *name = sget(spec, "name"), *stage = sget(spec, "stage"), *rows = sget(spec, "rows");
    const char *split = sget(spec, "split") ? sget(spec, "split") : "eval", *task = sget(spec, "task");
    const char *baseline = sget(spec, "baseline");
    static const char *fields[] = {"name", "stage", "rows", "columns", "split", "task", "baseline", NULL};
    const char *k;
    json_t *v;
    if (!json_is_object(spec)) {
        error("report.tables[%d]: a table is a map {name, stage, rows, columns}", ti);
        return NULL;
    }
    json_object_foreach((json_t *)spec, k, v) {
        int ok = 0;
        for (int i = 0; fields[i]; i++) ok |= !strcmp(fields[i], k);
        if (!ok) {
            error("report.tables[%d]: unknown field '%s'; allowed: name, stage, rows, columns, split, task, baseline", ti, k);
            return NULL;
        }
    }
    if (!stage) {
        error("report.tables[%d]%s%s: needs `stage: NAME` (the eval stage whose instances are the rows)", ti,
              name ? " " : "", name ? name : "");
        return NULL;
    }
    if (rows && strncmp(rows, "axes.", 5)) {
        error("report.tables[%d] %s: rows must be `axes.NAME`, got '%s'", ti, name ? name : stage, rows);
        return NULL;
    }
    const char *axis = rows ? rows + 5 : NULL;
    if (axis && !json_object_get(json_object_get(run, "axes"), axis)) {
        error("report.tables[%d] %s: the run has no axis '%s'", ti, name ? name : stage, axis);
        return NULL;
    }
    json_t *cols = json_object_get(spec, "columns");
    cols = cols ? json_incref(cols) : json_pack("[s,s,s,s]", "ll_acc", "gen_acc", "gap", "retention");
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c) {
        if (!json_is_string(c) || !rp_column_known(json_string_value(c))) {
            error("report.tables[%d] %s: unknown column %s; known: ll_acc, gen_acc, gap, retention, ll_retention, "
                  "gen_retention, ll_acc_norm, gen_em, gen_invalid, chance, n, mcnemar_p",
                  ti, name ? name : stage, json_is_string(c) ? json_string_value(c) : "(not a string)");
            json_decref(cols);
            return NULL;
        }
    }
    /* the table's instances, ordered by the row axis' value order, then as in the plan */
    size_t ns = json_array_size(stages);
    json_t **recs = xcalloc(ns + 1, sizeof *recs);
    int n = 0;
    json_t *r;
    json_array_foreach(stages, i, r)
        if (sget(r, "stage") && !strcmp(sget(r, "stage"), stage)) recs[n++] = r;
    if (!n) {
        error("report.tables[%d] %s: the run has no stage '%s'", ti, name ? name : stage, stage);
        free(recs);
        json_decref(cols);
        return NULL;
    }
    if (axis)
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && axis_pos(run, axis, recs[b]) < axis_pos(run, axis, recs[b - 1]); b--) {
                json_t *t = recs[b];
                recs[b] = recs[b - 1];
                recs[b - 1] = t;
            }
    json_t *tab = json_pack("{s:s,s:s,s:s?,s:s,s:s?,s:O}", "name", name ? name : stage, "stage", stage, "rows_axis", axis,
                            "split", split, "task", task, "columns", cols);
    json_t *out_rows = json_array(), *notes = json_array();
    json_t *base = find_baseline(stages, recs[0], baseline);
    json_t *base_metrics = NULL;
    if (base) {
        base_metrics = src ? src->load(src->ud, sget(base, "key"), "metrics.json") : NULL;
        json_t *m = by_key(stages, input_key(base, "model"));
        json_object_set_new(tab, "baseline", json_pack("{s:s,s:s,s:O}", "stage", sget(base, "stage"), "key",
                                                       sget(base, "key"), "axes", json_object_get(base, "axes")));
        char *msg = xstrfmt("retention = accuracy / the teacher's accuracy (retention: generation); teacher = stage '%s'%s%s%s",
                            sget(base, "stage"), baseline ? " (table baseline)" : " (an eval of the pretrain stage '",
                            baseline ? "" : (m && sget(m, "stage") ? sget(m, "stage") : "?"), baseline ? "" : "')");
        json_array_append_new(notes, json_string(msg));
        free(msg);
        int in_table = 0;
        for (int a = 0; a < n; a++) in_table |= recs[a] == base;
        if (!in_table) json_array_append_new(out_rows, make_row(src, base, base_metrics, cols, split, task, 1, notes));
    } else {
        json_object_set_new(tab, "baseline", json_null());
        json_array_append_new(notes, json_string(baseline ? "retention: the baseline stage is not in this run"
                                                          : "retention: no teacher eval in this run (another eval stage whose "
                                                            "model is a pretrain stage), or name one with `baseline: STAGE`"));
    }
    for (int a = 0; a < n; a++) {
        json_t *bm = base_metrics;
        json_t *b2 = find_baseline(stages, recs[a], baseline);
        int other = b2 && b2 != base;
        if (other) bm = src ? src->load(src->ud, sget(b2, "key"), "metrics.json") : NULL;
        json_array_append_new(out_rows, make_row(src, recs[a], bm, cols, split, task, recs[a] == base, notes));
        if (other) json_decref(bm);
    }
    rankings(src, out_rows, tab, split, task);
    json_object_set_new(tab, "rows", out_rows);
    json_object_set_new(tab, "notes", notes);
    json_decref(base_metrics);
    json_decref(cols);
    free(recs);
    return tab;
}

json_t *rp_report_build(const json_t *run, const rp_source *src)
{
    json_t *stages = json_object_get(run, "stages");
    if (!json_is_object(run) || !json_is_array(stages)) {
        error("run record: expected an object with a \"stages\" list");
        return NULL;
    }
    json_t *specs = json_object_get(json_object_get(run, "report"), "tables");
    if (specs && !json_is_array(specs)) {
        error("run record: report.tables must be a list of tables");
        return NULL;
    }
    json_t *own = NULL;
    if (!json_array_size(specs)) { /* default: one table per eval stage */
        own = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(stages, i, r) {
            const char *st = sget(r, "stage"), *kind = sget(r, "kind");
            if (!st || !kind || strcmp(kind, "eval")) continue;
            int seen = 0;
            for (size_t j = 0; j < json_array_size(own); j++) seen |= !strcmp(sget(json_array_get(own, j), "stage"), st);
            if (!seen) json_array_append_new(own, json_pack("{s:s,s:s}", "name", st, "stage", st));
        }
        specs = own;
    }
    json_t *rep = json_pack("{s:O,s:O,s:O,s:O}", "run_id", json_object_get(run, "run_id") ? json_object_get(run, "run_id") : json_null(),
                            "recipe", json_object_get(json_object_get(run, "recipe"), "name")
                                ? json_object_get(json_object_get(run, "recipe"), "name") : json_null(),
                            "status", json_object_get(run, "status") ? json_object_get(run, "status") : json_null(),
                            "started", json_object_get(run, "started") ? json_object_get(run, "started") : json_null());
    json_t *tabs = json_array();
    for (size_t i = 0; i < json_array_size(specs); i++) {
        json_t *t = build_table(run, json_array_get(specs, i), (int)i, src);
        if (!t) {
            json_decref(tabs);
            json_decref(rep);
            json_decref(own);
            return NULL;
        }
        json_array_append_new(tabs, t);
    }
    json_object_set_new(rep, "tables", tabs);
    json_decref(own);
    return rep;
}
