/* report_seeds.c - report rows over seeds (docs/eval.md "Seeds"): one row per arm averaged over its seeds, with
 * intervals that include seed variance, and the interaction of two arms over their common seeds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"
#include "reports/report_internal.h"

/* The statistics aggregated over seeds with ev_seed_mean, and the per-item value each takes (seed_values). */
static const char *const seed_fields[] = {"ll_acc", "gen_acc", "delta_ll", "delta_gen", "did", NULL};

/* An item's pairing key across seeds: task and doc_id. xmalloc'd. */
static char *item_id(const json_t *o)
{
    json_t *d = json_object_get(o, "doc_id");
    char *doc = json_is_string(d) ? xstrdup(json_string_value(d)) : json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
    char *id = xstrfmt("%s\x1f%s", hx_json_str(o, "task") ? hx_json_str(o, "task") : "", doc ? doc : "");
    free(doc);
    return id;
}

/*
 * The per-item values of k paired comparisons, B_s (kb[s]) against A_s (ka[s]), on the items that every seed pairs
 * (by task and doc_id): v[f][s * n + i] for the seed_fields f: B's LL and generation correctness, and B - A in
 * chance-normalised LL, generation and their difference (did). Returns n (v xmalloc'd), or -1 with a note.
 */
static int seed_values(rp_tab *c, const char *const *ka, const char *const *kb, int k, const char *label, double *v[5])
{
    ev_pairs *p = xcalloc((size_t)k, sizeof *p);
    int ok = 1, n = 0;
    for (int s = 0; s < k && ok; s++) {
        json_t *ia = rp_items_of(c, ka[s], label), *ib = rp_items_of(c, kb[s], label);
        ok = ia && ib && !ev_pair_items(ia, ib, c->split, c->task, &p[s]);
    }
    json_t *where = json_object(); /* item id -> [its index under each seed] */
    if (ok) {
        for (int s = 0; s < k; s++)
            for (int i = 0; i < p[s].n; i++) {
                char *id = item_id(p[s].b[i]);
                json_t *at = json_object_get(where, id);
                if (!at && !s) json_object_set_new(where, id, at = json_array());
                if (at && (int)json_array_size(at) == s) json_array_append_new(at, json_integer(i));
                free(id);
            }
        const char *id;
        json_t *at;
        json_object_foreach(where, id, at) n += (int)json_array_size(at) == k;
    }
    if (!ok || n < 2) {
        char *msg = xstrfmt("%s: no interval over seeds (%s)", label,
                            ok ? "fewer than 2 items paired under every seed" : "the items of a seed cannot be paired");
        json_array_append_new(c->notes, json_string(msg));
        free(msg);
        n = -1;
    } else {
        for (int f = 0; f < 5; f++) v[f] = xmalloc((size_t)k * n * sizeof *v[f]);
        int i = 0;
        const char *id;
        json_t *at;
        json_object_foreach(where, id, at) {
            if ((int)json_array_size(at) != k) continue;
            for (int s = 0; s < k; s++) {
                int j = (int)json_integer_value(json_array_get(at, (size_t)s));
                size_t o = (size_t)s * n + i;
                v[0][o] = p[s].ll_b[j];
                v[1][o] = p[s].gen_b[j];
                v[2][o] = p[s].lcn_b[j] - p[s].lcn_a[j];
                v[3][o] = p[s].gcn_b[j] - p[s].gcn_a[j];
                v[4][o] = v[3][o] - v[2][o];
            }
            i++;
        }
    }
    json_decref(where);
    for (int s = 0; s < k; s++) ev_pairs_release(&p[s]);
    free(p);
    return n;
}

/* ROW's seeds and their store keys (set by group_rows) as arrays; k. */
int rp_row_seeds(const json_t *row, const json_t **seeds, const json_t **keys)
{
    *seeds = json_object_get(row, "seeds");
    *keys = json_object_get(row, "seed_keys");
    return (int)json_array_size(*keys);
}

/*
 * A row over k >= 2 seeds of one arm (RECS, the same axes but `seed`; TRECS[s] the teacher eval of seed s, as
 * find_baseline picks it): every column the mean of the seeds' rows (`per_seed`); ll_acc, gen_acc, Δ and did with
 * intervals that include seed variance and did_p (ev_seed_mean, on the items every seed shares with its teacher);
 * letters over all seeds' answers.
 */
json_t *rp_seed_row(rp_tab *c, json_t **recs, json_t **trecs, int k, const json_t *label_axes)
{
    json_t *per = json_array(), *seeds = json_array(), *keys = json_array();
    for (int s = 0; s < k; s++) {
        json_array_append_new(per, rp_make_row(c, recs[s], trecs[s], 0, NULL));
        json_array_append(seeds, json_object_get(json_object_get(recs[s], "axes"), "seed"));
        json_array_append_new(keys, json_string(hx_json_str(recs[s], "key") ? hx_json_str(recs[s], "key") : ""));
    }
    char *al = rp_axes_label(label_axes), *label = xstrfmt("%s%sseeds=%d", al, *al ? "," : "", k);
    free(al);
    json_t *first = json_array_get(per, 0);
    json_t *row = json_pack("{s:s,s:s,s:O,s:n,s:O,s:b,s:o,s:o,s:o}", "label", label, "stage", hx_json_str(first, "stage"), "axes",
                            label_axes, "key", "state", json_object_get(first, "state"), "teacher", 0, "na", json_object(),
                            "seeds", seeds, "seed_keys", keys);
    /* every numeric column: the mean over seeds (null when a seed has none; its reason kept) */
    const char *f;
    json_t *v;
    json_object_foreach(first, f, v) {
        size_t fl = strlen(f);
        if (json_object_get(row, f) || (fl > 3 && !strcmp(f + fl - 3, "_ci")) || !strcmp(f, "letters")) continue;
        double sum = 0;
        int all = 1;
        for (int s = 0; s < k; s++) {
            json_t *x = json_object_get(json_array_get(per, (size_t)s), f);
            all &= json_is_number(x);
            sum += json_number_value(x);
        }
        json_object_set_new(row, f, all ? hx_json_num(sum / k) : json_null());
        const char *why = hx_json_str(json_object_get(first, "na"), f);
        if (!all) rp_set_na(row, f, why ? why : "not every seed has it");
    }
    /* the seed statistics: each seed against its teacher, or (no teacher) against itself for the accuracies */
    const char **ka = xcalloc((size_t)k, sizeof *ka), **kb = xcalloc((size_t)k, sizeof *kb);
    int teacher = 1;
    for (int s = 0; s < k; s++) {
        kb[s] = json_string_value(json_array_get(keys, (size_t)s));
        teacher &= trecs[s] && hx_json_str(trecs[s], "key");
    }
    for (int s = 0; s < k; s++) ka[s] = teacher ? hx_json_str(trecs[s], "key") : kb[s];
    double *vals[5] = {0};
    int n = seed_values(c, ka, kb, k, label, vals);
    json_t *seed_sd = json_object(); /* sd over seeds of each seed statistic */
    json_object_set_new(row, "seed_sd", seed_sd);
    for (int i = 0; seed_fields[i]; i++) {
        char *ci = xstrfmt("%s_ci", seed_fields[i]);
        int paired = i >= 2;
        if (n > 0 && (!paired || teacher) && json_is_number(json_object_get(row, seed_fields[i]))) {
            ev_seedstat r = ev_seed_mean(vals[i], k, n);
            if (!paired) r.lo = fmax(r.lo, 0), r.hi = fmin(r.hi, 1); /* an accuracy stays in [0, 1] */
            json_object_set_new(row, seed_fields[i], hx_json_num(r.mean));
            json_object_set_new(row, ci, json_pack("[o,o]", hx_json_num(r.lo), hx_json_num(r.hi)));
            if (!strcmp(seed_fields[i], "did")) json_object_set_new(row, "did_p", hx_json_num(r.p));
            json_object_set_new(seed_sd, seed_fields[i], hx_json_num(r.sd_seed));
            if (paired) json_object_set_new(row, "n_paired", json_integer(n));
        } else {
            json_object_set_new(row, ci, json_null());
        }
        free(ci);
    }
    for (int i = 0; i < 5; i++) free(vals[i]);
    free(ka);
    free(kb);
    /* letters over every seed's answers */
    json_t *all = json_array(), *letters = NULL;
    for (int s = 0; s < k; s++) {
        json_t *it = rp_items_of(c, json_string_value(json_array_get(keys, (size_t)s)), label);
        if (it) json_array_extend(all, it);
    }
    if (json_array_size(all) && ev_letters(all, c->split, c->task, &letters)) letters = NULL;
    json_object_set_new(row, "letters", letters ? letters : json_null());
    json_decref(all);
    json_object_set_new(row, "per_seed", per);
    free(label);
    return row;
}

/* The interaction of two arms over their common seeds (>= 2), as ev_compare's {n, did, did_ci, did_p}; NULL when
 * they share fewer than two seeds. */
json_t *rp_seed_interaction(rp_tab *c, const json_t *ra, const json_t *rb)
{
    const json_t *sa, *ka, *sb, *kb;
    int na = rp_row_seeds(ra, &sa, &ka), nb = rp_row_seeds(rb, &sb, &kb), k = 0;
    const char **xa = xcalloc((size_t)na + 1, sizeof *xa), **xb = xcalloc((size_t)na + 1, sizeof *xb);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (json_equal(json_array_get(sa, (size_t)i), json_array_get(sb, (size_t)j))) {
                xa[k] = json_string_value(json_array_get(ka, (size_t)i));
                xb[k++] = json_string_value(json_array_get(kb, (size_t)j));
            }
    json_t *out = NULL;
    double *vals[5] = {0};
    char *label = xstrfmt("%s vs %s", hx_json_str(ra, "label"), hx_json_str(rb, "label"));
    int n = k >= 2 ? seed_values(c, xa, xb, k, label, vals) : -1;
    if (n > 0) {
        ev_seedstat r = ev_seed_mean(vals[4], k, n);
        out = json_pack("{s:i,s:o,s:[o,o],s:o}", "n", n, "did", hx_json_num(r.mean), "did_ci", hx_json_num(r.lo),
                        hx_json_num(r.hi), "did_p", hx_json_num(r.p));
    }
    for (int i = 0; i < 5; i++) free(vals[i]);
    free(label);
    free(xa);
    free(xb);
    return out;
}
