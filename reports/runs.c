/* runs.c - the many-run table of `hx runs --metrics`: a row per report row (teacher and arms) of each run's headline
 * table, the parameters that differ between the rows shown, filters by recipe and by parameter or axis value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "reports/report.h"

/* The metrics columns, as `hx report` computes and prints them (render.c's cell: value and 95% interval). */
static const char *const metric_cols[] = {"ll_acc", "gen_acc", "delta_ll", "delta_gen", "did", NULL};
static const char *const metric_titles[] = {"LL acc", "Gen acc", "Δ LL", "Δ Gen", "did", NULL};


/* A value as the text a filter compares and a cell shows: strings as they are, numbers in their shortest form
 * (0.003, not 0.0030000000000000001), the rest as compact JSON. */
static char *value_text(const json_t *v)
{
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (json_is_real(v)) return xstrfmt("%.15g", json_real_value(v));
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return t ? t : xstrdup("?");
}

/* Adds every leaf of V under PREFIX to FLAT as "prefix.a.b": text. */
static void flatten(json_t *flat, const char *prefix, const json_t *v)
{
    if (json_is_object(v) && json_object_size(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            char *p = xstrfmt("%s.%s", prefix, k);
            flatten(flat, p, x);
            free(p);
        }
        return;
    }
    char *t = value_text(v);
    json_object_set_new(flat, prefix, json_string(t));
    free(t);
}

/*
 * The parameters of a run record: its recipe's `params` (recorded since this table exists) as params.*, and every
 * -S override that is not under params (stages.teacher.with.steps=4) by its path. A record made before `params` was
 * recorded shows only its overrides, params.* among them.
 */
static json_t *run_params(const json_t *run)
{
    json_t *flat = json_object();
    const json_t *params = json_object_get(run, "params");
    if (json_is_object(params)) flatten(flat, "params", params);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(run, "overrides"), i, o) {
        const char *s = json_string_value(o), *eq = s ? strchr(s, '=') : NULL;
        if (!eq || eq == s || s[0] == '~' || s[0] == '+') continue;
        char *k = xstrfmt("%.*s", (int)(eq - s), s);
        if (strncmp(k, "params.", 7) || !json_is_object(params)) json_object_set_new(flat, k, json_string(eq + 1));
        free(k);
    }
    return flat;
}

/* Does a compared value equal the filter's? As text, numbers by value (0.10 = 0.1). */
static int same_value(const char *have, const char *want)
{
    if (!strcmp(have, want)) return 1;
    char *e1, *e2;
    double a = strtod(have, &e1), b = strtod(want, &e2);
    return *have && *want && !*e1 && !*e2 && a == b;
}

/* The eval stage with the most instances (the arms; the first on a tie), for a run whose recipe names no tables. */
static json_t *default_spec(const json_t *run)
{
    json_t *count = json_object();
    const char *best = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(run, "stages"), i, r) {
        const char *st = hx_json_str(r, "stage"), *kind = hx_json_str(r, "kind");
        if (!st || !kind || strcmp(kind, "eval")) continue;
        json_int_t n = json_integer_value(json_object_get(count, st)) + 1;
        json_object_set_new(count, st, json_integer(n));
        if (!best || n > json_integer_value(json_object_get(count, best))) best = st;
    }
    json_t *spec = best ? json_pack("{s:s,s:s}", "name", best, "stage", best) : NULL;
    json_decref(count);
    return spec;
}

/* The report of RUN reduced to its headline table: the first of its `report.tables` over all tasks (else its first),
 * or default_spec's; built by rp_report_build, so its numbers are `hx report`'s. NULL + error() when there is none. */
static json_t *headline_report(const json_t *run, const rp_source *src)
{
    json_t *specs = json_object_get(json_object_get(run, "report"), "tables"), *pick = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(specs, i, t)
        if (!pick && !json_is_string(json_object_get(t, "task"))) pick = t;
    if (!pick) pick = json_array_get(specs, 0);
    pick = pick ? json_incref(pick) : default_spec(run);
    if (!pick) {
        error("no eval stage");
        return NULL;
    }
    json_t *copy = json_copy((json_t *)run);
    json_object_set_new(copy, "report", json_pack("{s:[o]}", "tables", pick));
    json_t *rep = rp_report_build(copy, src);
    json_decref(copy);
    return rep;
}

/* Does ROW's flat map satisfy every KEY=VALUE of WHERE? */
static int row_matches(const json_t *flat, const char *const *where, int n_where)
{
    for (int w = 0; w < n_where; w++) {
        const char *eq = strchr(where[w], '=');
        char *k = xstrfmt("%.*s", (int)(eq - where[w]), where[w]);
        const char *have = hx_json_str(flat, k);
        free(k);
        if (!have || !same_value(have, eq + 1)) return 0;
    }
    return 1;
}

json_t *rp_runs_table(const json_t *runs, const rp_runs_filter *f, const rp_source *src)
{
    for (int w = 0; w < f->n_where; w++) {
        const char *eq = strchr(f->where[w], '=');
        if (!eq || eq == f->where[w]) {
            error("--where %s: expected KEY=VALUE, e.g. params.scale=tiny or axes.masking=completion_only", f->where[w]);
            return NULL;
        }
    }
    json_t *rows = json_array(), *keys_seen = json_object(), *skipped = json_array();
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run) {
        const char *recipe = hx_json_str(json_object_get(run, "recipe"), "name");
        if (f->recipe && (!recipe || strcmp(recipe, f->recipe))) continue;
        json_t *rep = headline_report(run, src);
        const json_t *tab = json_array_get(json_object_get(rep, "tables"), 0);
        if (!tab) {
            json_array_append_new(skipped, json_pack("{s:s?,s:s}", "run_id", hx_json_str(run, "run_id"), "why", hx_last_error()));
            json_decref(rep);
            continue;
        }
        json_t *params = run_params(run);
        size_t j;
        json_t *r;
        json_array_foreach(json_object_get(tab, "rows"), j, r) {
            json_t *flat = json_deep_copy(params);
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(r, "axes"), k, v) {
                char *p = xstrfmt("axes.%s", k), *t = value_text(v);
                json_object_set_new(flat, p, json_string(t));
                free(p);
                free(t);
            }
            json_object_foreach(flat, k, v) json_object_set_new(keys_seen, k, json_true());
            if (!row_matches(flat, f->where, f->n_where)) {
                json_decref(flat);
                continue;
            }
            json_t *o = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:O,s:O,s:O,s:o}", "run_id", hx_json_str(run, "run_id"), "recipe",
                                  recipe, "started", hx_json_str(run, "started"), "status", hx_json_str(run, "status"), "table",
                                  hx_json_str(tab, "name"), "label", json_object_get(r, "label"), "teacher",
                                  json_object_get(r, "teacher"), "axes", json_object_get(r, "axes"), "params", flat);
            json_object_set(o, "key", json_object_get(r, "key"));
            for (int c = 0; metric_cols[c]; c++) {
                char *ci = xstrfmt("%s_ci", metric_cols[c]);
                json_t *x = json_object_get(r, metric_cols[c]), *y = json_object_get(r, ci);
                json_object_set_new(o, metric_cols[c], x ? json_copy(x) : json_null());
                json_object_set_new(o, ci, y ? json_deep_copy(y) : json_null());
                free(ci);
            }
            static const char *const more[] = {"did_p", "n", "n_paired", "na", NULL};
            for (int c = 0; more[c]; c++) {
                json_t *x = json_object_get(r, more[c]);
                json_object_set_new(o, more[c], x ? json_deep_copy(x) : json_null());
            }
            json_array_append_new(rows, o);
        }
        json_decref(params);
        json_decref(rep);
    }
    for (int w = 0; w < f->n_where; w++) { /* a key no row has is a typo, not an empty result */
        const char *eq = strchr(f->where[w], '=');
        char *k = xstrfmt("%.*s", (int)(eq - f->where[w]), f->where[w]);
        int known = json_object_get(keys_seen, k) != NULL;
        if (!known && json_object_size(keys_seen)) {
            hx_sbuf b = {0};
            const char *x;
            json_t *v;
            json_object_foreach(keys_seen, x, v) hx_sb_printf(&b, "%s%s", b.len ? ", " : "", x);
            error("--where %s: no run has '%s'; the runs have: %s", f->where[w], k, b.s);
            hx_sb_free(&b);
        }
        free(k);
        if (!known && json_object_size(keys_seen)) {
            json_decref(rows);
            json_decref(keys_seen);
            json_decref(skipped);
            return NULL;
        }
    }
    /* the parameter columns: every key whose value (absent counts) is not the same in every row shown */
    json_t *differ = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(keys_seen, k, v) {
        const char *first = NULL;
        int varies = 0;
        json_array_foreach(rows, i, run) {
            const char *x = hx_json_str(json_object_get(run, "params"), k);
            if (!i) first = x;
            else if (!first != !x || (x && strcmp(first, x))) varies = 1;
        }
        if (varies) json_array_append_new(differ, json_string(k));
    }
    json_decref(keys_seen);
    return json_pack("{s:o,s:o,s:o}", "columns", differ, "rows", rows, "skipped", skipped);
}

/* Column widths are in characters: UTF-8 continuation bytes (Δ, —) take no column. */
static int text_width(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void put_cell(hx_sbuf *b, const char *s, int w, int last)
{
    hx_sb_puts(b, s);
    if (!last)
        for (int k = text_width(s); k < w + 2; k++) hx_sb_putc(b, ' ');
}

char *rp_runs_text(const json_t *table)
{
    const json_t *cols = json_object_get(table, "columns"), *rows = json_object_get(table, "rows");
    int np = (int)json_array_size(cols), nm = 0;
    while (metric_cols[nm]) nm++;
    int nc = 2 + np + nm; /* run, model, the params that differ, the metrics */
    size_t nr = json_array_size(rows);
    char **cells = xcalloc((nr + 1) * (size_t)nc, sizeof *cells);
    cells[0] = xstrdup("run");
    cells[1] = xstrdup("model");
    for (int c = 0; c < np; c++) cells[2 + c] = xstrdup(json_string_value(json_array_get(cols, (size_t)c)));
    for (int c = 0; c < nm; c++) cells[2 + np + c] = xstrdup(metric_titles[c]);
    for (size_t r = 0; r < nr; r++) {
        const json_t *row = json_array_get(rows, r);
        char **line = cells + (r + 1) * (size_t)nc;
        line[0] = xstrdup(hx_json_str(row, "run_id") ? hx_json_str(row, "run_id") : "?");
        line[1] = xstrdup(hx_json_str(row, "label") ? hx_json_str(row, "label") : "?");
        for (int c = 0; c < np; c++) {
            const char *v = hx_json_str(json_object_get(row, "params"), json_string_value(json_array_get(cols, (size_t)c)));
            line[2 + c] = xstrdup(v ? v : "-");
        }
        for (int c = 0; c < nm; c++) line[2 + np + c] = rp_cell(row, metric_cols[c]);
    }
    int *w = xcalloc((size_t)nc, sizeof *w);
    for (size_t r = 0; r <= nr; r++)
        for (int c = 0; c < nc; c++) {
            int x = text_width(cells[r * (size_t)nc + (size_t)c]);
            if (x > w[c]) w[c] = x;
        }
    hx_sbuf b = {0};
    for (size_t r = 0; nr && r <= nr; r++) { /* no rows: no header either */
        for (int c = 0; c < nc; c++) put_cell(&b, cells[r * (size_t)nc + (size_t)c], w[c], c == nc - 1);
        hx_sb_putc(&b, '\n');
    }
    if (nr)
        hx_sb_puts(&b, "(LL and Gen acc in %; Δ and did in percentage points of chance-normalised accuracy vs the run's "
                       "teacher; 95% intervals; as `hx report RUN` computes them)\n");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(table, "skipped"), i, s)
        hx_sb_printf(&b, "%s: not shown (%s)\n", hx_json_str(s, "run_id") ? hx_json_str(s, "run_id") : "?", hx_json_str(s, "why"));
    for (size_t k = 0; k < (nr + 1) * (size_t)nc; k++) free(cells[k]);
    free(cells);
    free(w);
    return hx_sb_take(&b);
}
