/* report.c - report tables of a run: rows per axis value, LL/generation accuracy, the paired deltas against the
 * teacher (Δ, did, retention), letter distributions; the tables' specs, their rows and the training curves. Rows over
 * seeds: report_seeds.c; rankings and reversals: report_rank.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"
#include "reports/report_internal.h"

/* The headline columns every table starts with, then the columns a table may add (`retention`: both retentions). */
static const char *const headline_cols[] = {"ll_acc", "delta_ll", "gen_acc", "delta_gen", "did", "did_p", NULL};
static const char *const extra_cols[] = {"gap", "retention", "ll_retention", "gen_retention", "ll_cn", "gen_cn",
                                         "gap_raw", "delta_ll_raw", "delta_gen_raw", "ll_acc_norm", "gen_em",
                                         "gen_invalid", "chance", "gen_chance", "n", "n_paired", "mcnemar_p", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], s)) return 1;
    return 0;
}

int rp_column_known(const char *col) { return in_list(headline_cols, col) || in_list(extra_cols, col); }

/* The columns shown: the headline, then the spec's others in its order (`retention` as ll_retention, gen_retention),
 * each once. NULL + error() naming an unknown column. */
static json_t *table_columns(const json_t *spec_cols, const char *where)
{
    json_t *cols = json_array(), *want = spec_cols ? json_incref((json_t *)spec_cols) : json_pack("[s]", "retention");
    for (int i = 0; headline_cols[i]; i++) json_array_append_new(cols, json_string(headline_cols[i]));
    size_t i;
    json_t *c;
    json_array_foreach(want, i, c) {
        const char *s = json_string_value(c);
        if (!s || !rp_column_known(s)) {
            hx_sbuf b = {0};
            for (int k = 0; headline_cols[k]; k++) hx_sb_printf(&b, "%s, ", headline_cols[k]);
            for (int k = 0; extra_cols[k]; k++) hx_sb_printf(&b, "%s%s", extra_cols[k], extra_cols[k + 1] ? ", " : "");
            error("%s: unknown column %s; known: %s", where, s ? s : "(not a string)", b.s);
            hx_sb_free(&b);
            json_decref(cols);
            json_decref(want);
            return NULL;
        }
        const char *add[2] = {s, NULL};
        if (!strcmp(s, "retention")) add[0] = "ll_retention", add[1] = "gen_retention";
        for (int k = 0; k < 2 && add[k]; k++) {
            int dup = 0;
            json_t *x;
            size_t j;
            json_array_foreach(cols, j, x) dup |= !strcmp(json_string_value(x), add[k]);
            if (!dup) json_array_append_new(cols, json_string(add[k]));
        }
    }
    json_decref(want);
    return cols;
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


/* "x=1,y=b" of an axes object, in the object's order ("" when shared). xmalloc'd. */
char *rp_axes_label(const json_t *axes)
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
        if (key && hx_json_str(r, "key") && !strcmp(hx_json_str(r, "key"), key)) return r;
    return NULL;
}

static const char *input_key(const json_t *rec, const char *role) { return hx_json_str(json_object_get(rec, "inputs"), role); }

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
    const char *own = hx_json_str(row, "stage");
    json_array_foreach(stages, i, r) {
        const char *kind = hx_json_str(r, "kind");
        if (baseline) {
            if (strcmp(hx_json_str(r, "stage") ? hx_json_str(r, "stage") : "", baseline)) continue;
        } else {
            if (!kind || strcmp(kind, "eval") || (own && hx_json_str(r, "stage") && !strcmp(hx_json_str(r, "stage"), own))) continue;
            json_t *m = by_key(stages, input_key(r, "model"));
            if (!m || !hx_json_str(m, "kind") || strcmp(hx_json_str(m, "kind"), "pretrain")) continue;
        }
        const char *d1 = input_key(r, "data"), *d2 = row ? input_key(row, "data") : NULL;
        if (!best || (d1 && d2 && !strcmp(d1, d2))) best = r;
        if (d1 && d2 && !strcmp(d1, d2)) break;
    }
    return best;
}

double rp_num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* The items.jsonl of a store entry (loaded once per report), noted once per table; NULL (and a note) when it cannot
 * be read. */
json_t *rp_items_of(rp_tab *c, const char *key, const char *label)
{
    if (!key || !c->src) return NULL;
    json_t *v = json_object_get(c->items, key);
    if (v) return json_is_array(v) ? v : NULL;
    v = rp_shared_items(c->sh, key);
    if (!v) {
        char *msg = xstrfmt("%s: no items (%s): Δ, did, retention and letters are n/a", label, hx_last_error());
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
    }
    json_object_set(c->items, key, v ? v : json_null());
    return v;
}

uint64_t rp_pair_seed(unsigned long long seed, const char *ka, const char *kb, const char *split, const char *task)
{
    char *a = xstrfmt("%s/%s", ka ? ka : "", kb ? kb : ""), *b = xstrfmt("%s/%s", split, task ? task : "");
    uint64_t s = ev_stream_seed(seed, a, b);
    free(a);
    free(b);
    return s;
}

/* Copies g[from] to row[to] (absent: null). */
static void take(json_t *row, const char *to, const json_t *g, const char *from)
{
    json_t *v = g ? json_object_get(g, from) : NULL;
    json_object_set_new(row, to, v ? json_copy(v) : json_null());
}

void rp_set_na(json_t *row, const char *field, const char *why)
{
    json_t *na = json_object_get(row, "na");
    if (!json_object_get(na, field)) json_object_set_new(na, field, json_string(why));
}

static const char *const paired_fields[] = {"delta_ll", "delta_gen", "did", "ll_retention", "gen_retention", NULL};

/*
 * One row: the model's own metrics (its eval's metrics.json group of the table's split and task), its letter
 * distributions, and the paired statistics against the teacher's eval TREC (none when NULL or the row is the teacher).
 */
json_t *rp_make_row(rp_tab *c, json_t *rec, json_t *trec, int teacher, const json_t *label_axes)
{
    const char *key = hx_json_str(rec, "key");
    char *label = rp_axes_label(label_axes ? label_axes : json_object_get(rec, "axes"));
    if (teacher) {
        char *t = xstrfmt("teacher (%s%s%s)", hx_json_str(rec, "stage"), *label ? " " : "", label);
        free(label);
        label = t;
    } else if (!*label) {
        free(label);
        label = xstrdup(hx_json_str(rec, "stage"));
    }
    json_t *row = json_pack("{s:s,s:s,s:O,s:s,s:s,s:b,s:o}", "label", label, "stage", hx_json_str(rec, "stage") ? hx_json_str(rec, "stage") : "",
                            "axes", json_object_get(rec, "axes"), "key", key ? key : "", "state", hx_json_str(rec, "state") ? hx_json_str(rec, "state") : "?", "teacher", teacher,
                            "na", json_object());
    json_t *metrics = key && c->src ? c->src->load(c->src->ud, key, "metrics.json") : NULL;
    json_t *g = metrics ? metric_group(metrics, c->split, c->task) : NULL;
    if (!metrics) {
        char *msg = xstrfmt("%s: no metrics (%s)", label, hx_last_error());
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
    } else if (!g) {
        char *msg = xstrfmt("%s: its metrics.json has no split '%s'%s%s", label, c->split, c->task ? " task " : "",
                            c->task ? c->task : "");
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
    }
    static const char *const own[][2] = {
        {"n", "n"}, {"ll_acc", "ll_acc"}, {"ll_acc_ci", "ll_ci"}, {"gen_acc", "gen_acc"}, {"gen_acc_ci", "gen_ci"},
        {"ll_cn", "ll_cn"}, {"gen_cn", "gen_cn"}, {"gap", "gap_cn"}, {"gap_ci", "gap_cn_ci"}, {"gap_raw", "gap"},
        {"ll_acc_norm", "ll_acc_norm"}, {"ll_acc_norm_ci", "ll_norm_ci"}, {"gen_em", "gen_em"},
        {"gen_invalid", "gen_invalid"}, {"chance", "chance"}, {"gen_chance", "gen_chance"}, {"mcnemar_p", "mcnemar_p"}};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) take(row, own[i][0], g, own[i][1]);
    if (g && !json_object_get(g, "gap_cn"))
        rp_set_na(row, "gap", "its metrics.json (version 1) has no chance-normalised gap: run the eval again with this hx");
    json_t *items = rp_items_of(c, key, label);
    json_t *letters = NULL;
    if (items && ev_letters(items, c->split, c->task, &letters)) {
        char *msg = xstrfmt("%s: letters: %s", label, hx_last_error());
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
    }
    json_object_set_new(row, "letters", letters ? letters : json_null());

    /* paired with the teacher on the same items */
    json_t *cmp = NULL;
    const char *why = teacher ? "the baseline" : !trec ? "no teacher eval" : NULL;
    json_t *titems = why ? NULL : rp_items_of(c, hx_json_str(trec, "key"), "the teacher");
    if (!why && (!items || !titems)) why = "no items to pair";
    int only_a = 0, only_b = 0;
    if (!why && !(cmp = rp_compare(c->sh, hx_json_str(trec, "key"), key, c->split, c->task, titems, items, &only_a, &only_b))) {
        char *msg = xstrfmt("%s: not paired with the teacher: %s", label, hx_last_error());
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
        why = "the item sets cannot be paired (see the notes)";
    }
    if (!why) {
        int n = (int)json_integer_value(json_object_get(cmp, "n"));
        if (only_a || only_b) {
            char *msg = xstrfmt("%s: %d items paired with the teacher's; %d only in this row's eval, %d only in the "
                                "teacher's: Δ, did and retention are over the paired items", label, n, only_b, only_a);
            json_array_append_new(c->notes, json_string(msg));
            free(msg);
        }
        json_object_set_new(row, "n_paired", json_integer(n));
        json_object_set_new(row, "only_row", json_integer(only_b));
        json_object_set_new(row, "only_teacher", json_integer(only_a));
    } else {
        json_object_set_new(row, "n_paired", json_null());
    }
    for (int i = 0; paired_fields[i]; i++) {
        char *ci = xstrfmt("%s_ci", paired_fields[i]);
        take(row, paired_fields[i], cmp, paired_fields[i]);
        take(row, ci, cmp, ci);
        if (why) rp_set_na(row, paired_fields[i], why);
        free(ci);
    }
    take(row, "did_p", cmp, "did_p");
    take(row, "delta_ll_raw", cmp, "delta_ll_raw");
    take(row, "delta_gen_raw", cmp, "delta_gen_raw");
    if (why) rp_set_na(row, "did_p", why);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(cmp, "na"), k, v) rp_set_na(row, k, json_string_value(v));
    json_decref(cmp);
    json_decref(metrics);
    free(label);
    return row;
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

static json_t *build_table(const json_t *run, const json_t *spec, int ti, const rp_source *src, rp_shared *sh)
{
    const json_t *stages = json_object_get(run, "stages");
    const char *name = hx_json_str(spec, "name"), *stage = hx_json_str(spec, "stage"), *rows = hx_json_str(spec, "rows");
    const char *split = hx_json_str(spec, "split") ? hx_json_str(spec, "split") : "eval", *task = hx_json_str(spec, "task");
    const char *baseline = hx_json_str(spec, "baseline");
    static const char *fields[] = {"name", "stage", "rows", "arms", "columns", "split", "task", "baseline", NULL};
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
            error("report.tables[%d]: unknown field '%s'; allowed: name, stage, rows, arms, columns, split, task, baseline", ti, k);
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
    char *where = xstrfmt("report.tables[%d] %s", ti, name ? name : stage);
    json_t *cols = table_columns(json_object_get(spec, "columns"), where);
    free(where);
    if (!cols) return NULL;
    size_t i;
    /* the table's instances, ordered by the row axis' value order, then as in the plan */
    size_t ns = json_array_size(stages);
    json_t **recs = xcalloc(ns + 1, sizeof *recs);
    int n = 0;
    json_t *r;
    json_t *arms = json_object_get(spec, "arms");
    if (arms && (!axis || !json_is_array(arms))) {
        error("report.tables[%d] %s: `arms` is a list of values of the rows axis (needs rows: axes.NAME)", ti,
              name ? name : stage);
        free(recs);
        json_decref(cols);
        return NULL;
    }
    json_array_foreach(stages, i, r) {
        if (!hx_json_str(r, "stage") || strcmp(hx_json_str(r, "stage"), stage)) continue;
        if (arms) {
            json_t *v = json_object_get(json_object_get(r, "axes"), axis), *x;
            size_t j;
            int in = 0;
            json_array_foreach(arms, j, x) in |= v && json_equal(x, v);
            if (!in) continue;
        }
        recs[n++] = r;
    }
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
    rp_tab ctx = {src, split, task, json_object(), notes, sh};
    json_t *base = find_baseline(stages, recs[0], baseline);
    if (base) {
        json_t *m = by_key(stages, input_key(base, "model"));
        json_object_set_new(tab, "baseline", json_pack("{s:s,s:s,s:O}", "stage", hx_json_str(base, "stage"), "key",
                                                       hx_json_str(base, "key"), "axes", json_object_get(base, "axes")));
        char *msg = xstrfmt("teacher = stage '%s'%s%s%s; Δ = row - teacher on the same items, did = ΔGen - ΔLL, "
                            "retention = row / teacher, all on chance-normalised accuracy (docs/eval.md)",
                            hx_json_str(base, "stage"), baseline ? " (table baseline)" : " (an eval of the pretrain stage '",
                            baseline ? "" : (m && hx_json_str(m, "stage") ? hx_json_str(m, "stage") : "?"), baseline ? "" : "')");
        json_array_append_new(notes, json_string(msg));
        free(msg);
        int in_table = 0;
        for (int a = 0; a < n; a++) in_table |= recs[a] == base;
        if (!in_table) json_array_append_new(out_rows, rp_make_row(&ctx, base, NULL, 1, NULL));
    } else {
        json_object_set_new(tab, "baseline", json_null());
        json_array_append_new(notes, json_string(baseline ? "Δ, did, retention: the baseline stage is not in this run"
                                                          : "Δ, did, retention: no teacher eval in this run (another eval "
                                                            "stage whose model is a pretrain stage), or name one with "
                                                            "`baseline: STAGE`"));
    }
    /* every row's comparison with its teacher, computed together */
    const char **ka = xcalloc((size_t)n + 1, sizeof *ka), **kb = xcalloc((size_t)n + 1, sizeof *kb);
    for (int a = 0; a < n; a++) {
        json_t *trec = recs[a] == base ? NULL : find_baseline(stages, recs[a], baseline);
        ka[a] = trec ? hx_json_str(trec, "key") : NULL;
        kb[a] = hx_json_str(recs[a], "key");
    }
    if (src) rp_compare_prefetch(sh, ka, kb, n, split, task);
    free(ka);
    free(kb);
    /* rows: one per instance, or, when the run has a `seed` axis that is not the rows, one per arm over its seeds */
    int by_seed = json_object_get(json_object_get(run, "axes"), "seed") && !(axis && !strcmp(axis, "seed")), nseeded = 0;
    char *used = xcalloc((size_t)n + 1, 1);
    json_t **grp = xcalloc((size_t)n + 1, sizeof *grp), **grp_t = xcalloc((size_t)n + 1, sizeof *grp_t);
    for (int a = 0; a < n; a++) {
        if (used[a]) continue;
        json_t *trec = find_baseline(stages, recs[a], baseline);
        if (!by_seed || recs[a] == base) {
            json_array_append_new(out_rows, rp_make_row(&ctx, recs[a], trec, recs[a] == base, NULL));
            continue;
        }
        json_t *arm = json_deep_copy(json_object_get(recs[a], "axes"));
        json_object_del(arm, "seed");
        int k = 0;
        for (int b = a; b < n; b++) {
            json_t *other = json_deep_copy(json_object_get(recs[b], "axes"));
            json_object_del(other, "seed");
            if (!used[b] && recs[b] != base && json_equal(arm, other))
                grp_t[k] = find_baseline(stages, recs[b], baseline), grp[k++] = recs[b], used[b] = 1;
            json_decref(other);
        }
        json_t *row = k > 1 ? rp_seed_row(&ctx, grp, grp_t, k, arm) : rp_make_row(&ctx, recs[a], trec, 0, arm);
        if (k == 1) {
            json_object_set_new(row, "seeds", json_pack("[O]", json_object_get(json_object_get(recs[a], "axes"), "seed")));
            json_object_set_new(row, "seed_keys", json_pack("[s]", hx_json_str(recs[a], "key") ? hx_json_str(recs[a], "key") : ""));
        }
        nseeded += k > 1;
        json_array_append_new(out_rows, row);
        json_decref(arm);
    }
    free(used);
    free(grp);
    free(grp_t);
    if (nseeded)
        json_array_append_new(notes, json_string("rows over seeds (seeds=k): every column the mean of the k seeds' rows; "
                                                 "LL acc, Gen acc, Δ and did with 95% intervals that include seed variance, "
                                                 "did_p from the same (docs/eval.md \"Seeds\"); other columns without an interval"));
    rp_rankings(&ctx, out_rows, tab);
    json_object_set_new(tab, "rows", out_rows);
    json_object_set_new(tab, "notes", notes);
    json_decref(ctx.items);
    json_decref(cols);
    free(recs);
    return tab;
}

/* A train_log.jsonl (array of line objects) as columns {step: [..], loss: [..], ..}: every numeric field of any
 * line, null where a line lacks it. */
static json_t *log_columns(const json_t *lines)
{
    json_t *cols = json_object();
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)l, k, v)
            if (json_is_number(v) && !json_object_get(cols, k)) json_object_set_new(cols, k, json_array());
    }
    json_array_foreach(lines, i, l) {
        const char *k;
        json_t *col;
        json_object_foreach(cols, k, col) {
            json_t *v = json_object_get(l, k);
            json_array_append_new(col, json_is_number(v) ? json_copy(v) : json_null());
        }
    }
    return cols;
}

/* The training curves of a run: per stage (in plan order) the instances whose entry holds a train_log.jsonl. */
static json_t *training_curves(const json_t *stages, const rp_source *src)
{
    json_t *out = json_array(), *by_stage = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(stages, i, r) {
        const char *st = hx_json_str(r, "stage"), *kind = hx_json_str(r, "kind"), *key = hx_json_str(r, "key");
        if (!st || !key || !src || (kind && !strcmp(kind, "eval"))) continue;
        json_t *lines = src->load(src->ud, key, "train_log.jsonl");
        if (!json_array_size(lines)) {
            json_decref(lines);
            continue;
        }
        json_t *entry = json_object_get(by_stage, st);
        if (!entry) {
            entry = json_pack("{s:s,s:s?,s:[]}", "stage", st, "kind", kind, "instances");
            json_object_set(by_stage, st, entry);
            json_array_append_new(out, entry);
        }
        char *label = rp_axes_label(json_object_get(r, "axes"));
        json_array_append_new(json_object_get(entry, "instances"),
                              json_pack("{s:s,s:s,s:o,s:o}", "label", *label ? label : st, "key", key, "axes",
                                        json_object_get(r, "axes") ? json_deep_copy(json_object_get(r, "axes")) : json_object(),
                                        "log", log_columns(lines)));
        free(label);
        json_decref(lines);
    }
    json_decref(by_stage);
    hx_clear_error();
    return out;
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
            const char *st = hx_json_str(r, "stage"), *kind = hx_json_str(r, "kind");
            if (!st || !kind || strcmp(kind, "eval")) continue;
            int seen = 0;
            for (size_t j = 0; j < json_array_size(own); j++) seen |= !strcmp(hx_json_str(json_array_get(own, j), "stage"), st);
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
    rp_shared sh;
    rp_shared_init(&sh, src);
    for (size_t i = 0; i < json_array_size(specs); i++) {
        json_t *t = build_table(run, json_array_get(specs, i), (int)i, src, &sh);
        if (!t) {
            rp_shared_release(&sh);
            json_decref(tabs);
            json_decref(rep);
            json_decref(own);
            return NULL;
        }
        json_array_append_new(tabs, t);
    }
    json_t *fspec = json_object_get(json_object_get(run, "report"), "findings");
    if (fspec) {
        json_t *f = rp_findings_shared(run, fspec, tabs, &sh);
        json_object_set_new(rep, "findings", f ? f : json_pack("{s:s}", "error", hx_last_error()));
    }
    json_object_set_new(rep, "tables", tabs);
    json_object_set_new(rep, "training", training_curves(stages, src));
    rp_shared_release(&sh);
    json_decref(own);
    return rep;
}
