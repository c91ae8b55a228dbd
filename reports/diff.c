/* diff.c - `hx diff`: what differs between two runs (recipe, parameters, keys) or two evals, and whether their eval
 * metrics differ beyond chance (McNemar and the paired bootstrap on the paired items: Δ, did, retention), with the
 * flipped items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"

static json_t *or_null(json_t *v) { return v ? v : json_null(); }

/* "stage[axes]" with the axes in sorted canonical JSON: how instances of two runs are matched. xmalloc'd. */
static char *inst_id(const json_t *rec)
{
    json_t *ax = json_object_get(rec, "axes");
    if (!json_object_size(ax)) return xstrdup(hx_json_str(rec, "stage") ? hx_json_str(rec, "stage") : "?");
    char *s = xstrdup("");
    const char **keys = xcalloc(json_object_size(ax) + 1, sizeof *keys);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(ax, k, v) keys[n++] = k;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j], keys[j - 1]) < 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_object_get(ax, keys[i]);
        char *val = json_is_string(x) ? xstrdup(json_string_value(x)) : json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
        char *t = xstrfmt("%s%s%s=%s", s, i ? "," : "", keys[i], val);
        free(val);
        free(s);
        s = t;
    }
    char *id = xstrfmt("%s[%s]", hx_json_str(rec, "stage") ? hx_json_str(rec, "stage") : "?", s);
    free(s);
    free(keys);
    return id;
}

/* Every leaf of A and B that differs, as {instance, path, a, b} (absent sides are null). */
static void diff_values(json_t *out, const char *inst, const char *path, json_t *a, json_t *b)
{
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v) {
            char *p = xstrfmt("%s.%s", path, k);
            diff_values(out, inst, p, v, json_object_get(b, k));
            free(p);
        }
        json_object_foreach(b, k, v) {
            if (json_object_get(a, k)) continue;
            char *p = xstrfmt("%s.%s", path, k);
            diff_values(out, inst, p, NULL, v);
            free(p);
        }
        return;
    }
    if (a && b && json_equal(a, b)) return;
    json_array_append_new(out, json_pack("{s:s,s:s,s:O,s:O}", "instance", inst, "path", path, "a", or_null(a), "b", or_null(b)));
}

static json_t *run_head(const json_t *r)
{
    json_t *rec = json_object_get(r, "recipe"), *files = json_object_get(rec, "files");
    return json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "run_id", or_null(json_object_get(r, "run_id")), "recipe",
                     or_null(json_object_get(rec, "name")), "path", or_null(json_object_get(rec, "path")), "files",
                     or_null(files), "status", or_null(json_object_get(r, "status")), "started",
                     or_null(json_object_get(r, "started")), "overrides", or_null(json_object_get(r, "overrides")));
}

/* Paired comparison of one 0/1 outcome (xa: A's, xb: B's) over the n paired items. */
static json_t *paired(const double *xa, const double *xb, int n, uint64_t seed)
{
    int b10 = 0, b01 = 0;
    double sa = 0, sb = 0;
    for (int i = 0; i < n; i++) {
        sa += xa[i], sb += xb[i];
        b10 += xa[i] > xb[i];
        b01 += xb[i] > xa[i];
    }
    ev_ci ci = ev_bootstrap_paired(xb, xa, n, RP_BOOT_REPS, seed, 0.95);
    double p = ev_mcnemar_exact(b10, b01);
    return json_pack("{s:i,s:o,s:o,s:o,s:[o,o],s:i,s:i,s:o,s:b}", "n_paired", n, "a", hx_json_num(n ? sa / n : 0.0), "b",
                     hx_json_num(n ? sb / n : 0.0), "delta", hx_json_num(n ? (sb - sa) / n : 0.0), "delta_ci",
                     hx_json_num(ci.lo), hx_json_num(ci.hi), "a_only", b10, "b_only", b01, "mcnemar_p", hx_json_num(p),
                     "significant", p < 0.05);
}

/* A flipped item, condensed: what each run answered. */
static json_t *flip_entry(json_t *f, int gen)
{
    json_t *a = json_object_get(f, "a"), *b = json_object_get(f, "b");
    json_t *o = json_pack("{s:O,s:O}", "task", json_object_get(f, "task"), "doc_id", json_object_get(f, "doc_id"));
    if (gen) {
        json_object_set(o, "a_pred", or_null(json_object_get(a, "gen_pred")));
        json_object_set(o, "b_pred", or_null(json_object_get(b, "gen_pred")));
        json_object_set(o, "a_text", or_null(json_object_get(a, "gen_text")));
        json_object_set(o, "b_text", or_null(json_object_get(b, "gen_text")));
    } else {
        json_object_set(o, "a_pred", or_null(json_object_get(a, "ll_pred")));
        json_object_set(o, "b_pred", or_null(json_object_get(b, "ll_pred")));
    }
    json_object_set(o, "answer", or_null(json_object_get(a, "answer")));
    return o;
}

/* The items right in A only and right in B only, on the 0/1 outcome xa/xb of the pairs. */
static json_t *flips_json(const ev_pairs *p, const double *xa, const double *xb, int gen)
{
    json_t *A = json_array(), *B = json_array();
    for (int i = 0; i < p->n; i++) {
        if (xa[i] == xb[i]) continue;
        json_t *f = json_pack("{s:O,s:O,s:O,s:O}", "task", json_object_get(p->a[i], "task"), "doc_id",
                              json_object_get(p->a[i], "doc_id"), "a", p->a[i], "b", p->b[i]);
        json_array_append_new(xa[i] > xb[i] ? A : B, flip_entry(f, gen));
        json_decref(f);
    }
    return json_pack("{s:o,s:o}", "a_only", A, "b_only", B);
}

/* The splits (and per split the tasks) of the items of both sides: {split: {task: true}}. */
static void add_splits(json_t *seen, const json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *sp = hx_json_str(it, "split"), *task = hx_json_str(it, "task");
        if (!sp || !task) continue;
        json_t *s = json_object_get(seen, sp);
        if (!s) json_object_set_new(seen, sp, s = json_object());
        json_object_set_new(s, task, json_true());
    }
}

json_t *rp_diff_evals(const char *id, const json_t *ra, const json_t *rb, const rp_source *src, unsigned long long seed)
{
    const char *ka = hx_json_str(ra, "key"), *kb = hx_json_str(rb, "key");
    json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "instance", id, "key_a", ka ? ka : "", "key_b", kb ? kb : "", "same_key",
                          ka && kb && !strcmp(ka, kb));
    json_t *ia = src && ka ? src->load(src->ud, ka, "items.jsonl") : NULL;
    json_t *ib = ia && kb ? src->load(src->ud, kb, "items.jsonl") : NULL;
    if (!ia || !ib) {
        json_object_set_new(o, "error", json_string(src ? hx_last_error() : "no store"));
        json_decref(ia);
        json_decref(ib);
        return o;
    }
    json_t *splits = json_object(), *seen = json_object();
    add_splits(seen, ia);
    add_splits(seen, ib);
    const char *sp;
    json_t *tasks;
    json_object_foreach(seen, sp, tasks) {
        ev_pairs p;
        if (ev_pair_items(ia, ib, sp, NULL, &p)) {
            json_object_set_new(o, "error", json_string(hx_last_error()));
            break;
        }
        uint64_t s0 = ev_stream_seed(seed, sp, "");
        json_t *ll = paired(p.ll_a, p.ll_b, p.n, s0), *gen = paired(p.gen_a, p.gen_b, p.n, s0 + 1);
        json_t *gap = json_pack("{s:o,s:o}", "a", hx_json_num(json_real_value(json_object_get(ll, "a")) - json_real_value(json_object_get(gen, "a"))),
                                "b", hx_json_num(json_real_value(json_object_get(ll, "b")) - json_real_value(json_object_get(gen, "b"))));
        json_object_set_new(gap, "delta", hx_json_num(json_real_value(json_object_get(gap, "b")) - json_real_value(json_object_get(gap, "a"))));
        json_t *per = json_object();
        const char *task;
        json_t *dummy;
        json_object_foreach(tasks, task, dummy) {
            ev_pairs q;
            if (ev_pair_items(ia, ib, sp, task, &q)) continue; /* the split's pairing succeeded: cannot fail */
            uint64_t st = ev_stream_seed(seed, sp, task);
            json_object_set_new(per, task, json_pack("{s:o,s:o,s:o}", "ll", paired(q.ll_a, q.ll_b, q.n, st), "gen",
                                                     paired(q.gen_a, q.gen_b, q.n, st + 1), "paired",
                                                     ev_compare(&q, RP_BOOT_REPS, rp_pair_seed(seed, ka, kb, sp, task))));
            ev_pairs_release(&q);
        }
        json_object_set_new(splits, sp, json_pack("{s:o,s:o,s:o,s:o,s:i,s:i,s:o,s:{s:o,s:o}}", "ll_acc", ll, "gen_acc", gen,
                                                  "gap", gap, "paired", ev_compare(&p, RP_BOOT_REPS, rp_pair_seed(seed, ka, kb, sp, NULL)), "only_a",
                                                  p.only_a, "only_b", p.only_b, "tasks", per, "flips", "gen",
                                                  flips_json(&p, p.gen_a, p.gen_b, 1), "ll", flips_json(&p, p.ll_a, p.ll_b, 0)));
        ev_pairs_release(&p);
    }
    json_object_set_new(o, "splits", splits);
    json_decref(seen);
    json_decref(ia);
    json_decref(ib);
    return o;
}

json_t *rp_diff(const json_t *run_a, const json_t *run_b, const rp_source *src, unsigned long long seed)
{
    json_t *sa = json_object_get(run_a, "stages"), *sb = json_object_get(run_b, "stages");
    if (!json_is_array(sa) || !json_is_array(sb)) {
        error("run record: expected an object with a \"stages\" list");
        return NULL;
    }
    json_t *d = json_pack("{s:o,s:o}", "a", run_head(run_a), "b", run_head(run_b));
    json_t *fa = json_object_get(json_object_get(run_a, "recipe"), "files");
    json_t *fb = json_object_get(json_object_get(run_b, "recipe"), "files");
    json_object_set_new(d, "same_recipe_files", json_boolean(fa && fb && json_equal(fa, fb)));
    json_t *params = json_array(), *stages = json_array(), *evals = json_array();
    diff_values(params, "(run)", "overrides", json_object_get(run_a, "overrides"), json_object_get(run_b, "overrides"));
    diff_values(params, "(run)", "axes", json_object_get(run_a, "axes"), json_object_get(run_b, "axes"));
    json_t *idx_b = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(sb, i, r) {
        char *id = inst_id(r);
        json_object_set(idx_b, id, r);
        free(id);
    }
    json_t *matched = json_object();
    json_array_foreach(sa, i, r) {
        char *id = inst_id(r);
        json_t *rb = json_object_get(idx_b, id);
        const char *ka = hx_json_str(r, "key"), *kb = rb ? hx_json_str(rb, "key") : NULL;
        const char *st = !rb ? "only_a" : ka && kb && !strcmp(ka, kb) ? "same" : "differs";
        json_array_append_new(stages, json_pack("{s:s,s:s,s:s?,s:s?,s:O}", "instance", id, "status", st, "key_a", ka,
                                                "key_b", kb, "kind", or_null(json_object_get(r, "kind"))));
        if (rb) {
            json_object_set_new(matched, id, json_true());
            diff_values(params, id, "kind", json_object_get(r, "kind"), json_object_get(rb, "kind"));
            diff_values(params, id, "kind_version", json_object_get(r, "kind_version"), json_object_get(rb, "kind_version"));
            diff_values(params, id, "with", json_object_get(r, "with"), json_object_get(rb, "with"));
            const char *kind = hx_json_str(r, "kind");
            if (kind && !strcmp(kind, "eval")) json_array_append_new(evals, rp_diff_evals(id, r, rb, src, seed));
        }
        free(id);
    }
    json_array_foreach(sb, i, r) {
        char *id = inst_id(r);
        if (!json_object_get(matched, id))
            json_array_append_new(stages, json_pack("{s:s,s:s,s:s?,s:O}", "instance", id, "status", "only_b", "key_b",
                                                    hx_json_str(r, "key"), "kind", or_null(json_object_get(r, "kind"))));
        free(id);
    }
    json_decref(matched);
    json_decref(idx_b);
    json_object_set_new(d, "params", params);
    json_object_set_new(d, "stages", stages);
    json_object_set_new(d, "evals", evals);
    return d;
}

/* The text of an axis value as `axis=value` writes it: a string as is, anything else as compact JSON. xmalloc'd. */
static char *value_text(const json_t *v)
{
    return json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Whether REC's axes have every "k=v" of the comma-separated list SEL (len bytes). */
static int axes_match(const json_t *rec, const char *sel, size_t len)
{
    json_t *ax = json_object_get(rec, "axes");
    for (size_t pos = 0; pos < len;) {
        const char *c = memchr(sel + pos, ',', len - pos);
        size_t n = c ? (size_t)(c - (sel + pos)) : len - pos;
        const char *eq = memchr(sel + pos, '=', n);
        if (!eq) return -1;
        char *k = xstrfmt("%.*s", (int)(eq - (sel + pos)), sel + pos);
        char *want = xstrfmt("%.*s", (int)(n - (size_t)(eq - (sel + pos)) - 1), eq + 1);
        json_t *v = json_object_get(ax, k);
        char *have = v ? value_text(v) : NULL;
        int ok = have && !strcmp(have, want);
        free(k);
        free(want);
        free(have);
        if (!ok) return 0;
        pos += n + 1;
    }
    return 1;
}

json_t *rp_find_instance(const json_t *run, const char *ref)
{
    const char *br = strchr(ref, '[');
    size_t sl = br ? (size_t)(br - ref) : strlen(ref), rl = strlen(ref);
    if (!sl || (br && (rl < sl + 2 || ref[rl - 1] != ']'))) {
        error("'%s': expected STAGE or STAGE[axis=value,...]", ref);
        return NULL;
    }
    const char *sel = br ? br + 1 : "";
    size_t selen = br ? rl - sl - 2 : 0;
    json_t *hit = NULL, *cands = json_array();
    int nhit = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(run, "stages"), i, r) {
        const char *st = hx_json_str(r, "stage");
        if (!st || strlen(st) != sl || strncmp(st, ref, sl)) continue;
        char *id = inst_id(r);
        json_array_append_new(cands, json_string(id));
        free(id);
        int m = axes_match(r, sel, selen);
        if (m < 0) {
            error("'%s': expected STAGE[axis=value,...], each selector `axis=value`", ref);
            json_decref(cands);
            return NULL;
        }
        if (m) hit = r, nhit++;
    }
    if (nhit == 1) {
        json_decref(cands);
        return hit;
    }
    hx_sbuf b = {0};
    for (i = 0; i < json_array_size(cands); i++)
        hx_sb_printf(&b, "%s%s", i ? ", " : "", json_string_value(json_array_get(cands, i)));
    if (!json_array_size(cands)) {
        json_t *names = json_object();
        json_array_foreach(json_object_get(run, "stages"), i, r)
            if (hx_json_str(r, "kind") && !strcmp(hx_json_str(r, "kind"), "eval") && hx_json_str(r, "stage") && !json_object_get(names, hx_json_str(r, "stage"))) {
                json_object_set_new(names, hx_json_str(r, "stage"), json_true());
                hx_sb_printf(&b, "%s%s", b.len ? ", " : "", hx_json_str(r, "stage"));
            }
        json_decref(names);
        error("run %s has no stage '%.*s' (its eval stages: %s)", hx_json_str(run, "run_id") ? hx_json_str(run, "run_id") : "?", (int)sl,
              ref, b.s ? b.s : "none");
    } else if (!nhit) {
        error("run %s has no instance %s (instances: %s)", hx_json_str(run, "run_id") ? hx_json_str(run, "run_id") : "?", ref, b.s);
    } else {
        error("'%s' names %d instances of run %s (%s): give the axes, STAGE[axis=value,...]", ref, nhit,
              hx_json_str(run, "run_id") ? hx_json_str(run, "run_id") : "?", b.s);
    }
    hx_sb_free(&b);
    json_decref(cands);
    return NULL;
}

json_t *rp_diff_instances(const json_t *run_a, const json_t *rec_a, const json_t *run_b, const json_t *rec_b,
                          const rp_source *src, unsigned long long seed)
{
    const json_t *rec[2] = {rec_a, rec_b};
    for (int k = 0; k < 2; k++)
        if (!hx_json_str(rec[k], "kind") || strcmp(hx_json_str(rec[k], "kind"), "eval")) {
            char *id = inst_id(rec[k]);
            error("%s is a %s stage, not an eval: hx diff RUN:STAGE compares evaluations", id,
                  hx_json_str(rec[k], "kind") ? hx_json_str(rec[k], "kind") : "?");
            free(id);
            return NULL;
        }
    char *ia = inst_id(rec_a), *ib = inst_id(rec_b), *pair = xstrfmt("%s vs %s", ia, ib);
    json_t *ha = run_head(run_a), *hb = run_head(run_b);
    json_object_set_new(ha, "instance", json_string(ia));
    json_object_set_new(hb, "instance", json_string(ib));
    json_t *d = json_pack("{s:o,s:o}", "a", ha, "b", hb), *params = json_array();
    diff_values(params, pair, "with", json_object_get(rec_a, "with"), json_object_get(rec_b, "with"));
    diff_values(params, pair, "inputs", json_object_get(rec_a, "inputs"), json_object_get(rec_b, "inputs"));
    json_object_set_new(d, "params", params);
    json_object_set_new(d, "evals", json_pack("[o]", rp_diff_evals(pair, rec_a, rec_b, src, seed)));
    free(ia);
    free(ib);
    free(pair);
    return d;
}

/* ---- text ---- */

static char *short_json(json_t *v)
{
    if (!v || json_is_null(v)) return xstrdup("(absent)");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void print_measure(FILE *f, const char *name, json_t *m)
{
    fprintf(f, "    %-8s %5.1f -> %5.1f  %+5.1f pp  95%% CI [%+.1f, %+.1f]  McNemar p = %.3g (%lld vs %lld discordant of %lld)  %s\n",
            name, 100 * json_real_value(json_object_get(m, "a")), 100 * json_real_value(json_object_get(m, "b")),
            100 * json_real_value(json_object_get(m, "delta")),
            100 * json_real_value(json_array_get(json_object_get(m, "delta_ci"), 0)),
            100 * json_real_value(json_array_get(json_object_get(m, "delta_ci"), 1)),
            json_real_value(json_object_get(m, "mcnemar_p")), (long long)json_integer_value(json_object_get(m, "a_only")),
            (long long)json_integer_value(json_object_get(m, "b_only")),
            (long long)json_integer_value(json_object_get(m, "n_paired")),
            json_is_true(json_object_get(m, "significant")) ? "significant at 0.05" : "not significant at 0.05");
}

static void print_flips(FILE *f, const char *what, json_t *fl, int max)
{
    json_t *A = json_object_get(fl, "a_only"), *B = json_object_get(fl, "b_only");
    fprintf(f, "    flipped (%s): %zu right only in A, %zu right only in B\n", what, json_array_size(A), json_array_size(B));
    for (int side = 0; side < 2; side++) {
        json_t *L = side ? B : A;
        for (size_t i = 0; i < json_array_size(L) && (int)i < max; i++) {
            json_t *e = json_array_get(L, i);
            char *pa = short_json(json_object_get(e, "a_pred")), *pb = short_json(json_object_get(e, "b_pred"));
            fprintf(f, "      %s-only  %-28s A: %-12s B: %s\n", side ? "B" : "A", hx_json_str(e, "doc_id"), pa, pb);
            free(pa);
            free(pb);
        }
        if ((int)json_array_size(L) > max) fprintf(f, "      ... %zu more (--json lists all)\n", json_array_size(L) - (size_t)max);
    }
}

/* "+1.2 [-3.4, +5.6]" of a value in pp with its interval, or "n/a (reason)". xmalloc'd. */
static char *pp_ci(const json_t *cmp, const char *field, int percent)
{
    json_t *v = json_object_get(cmp, field);
    char *cik = xstrfmt("%s_ci", field);
    json_t *ci = json_object_get(cmp, cik);
    free(cik);
    if (!json_is_number(v)) {
        const char *why = json_string_value(json_object_get(json_object_get(cmp, "na"), field));
        return xstrfmt("n/a (%s)", why ? why : "undefined");
    }
    const char *f = percent ? "%.1f%%" : "%+.1f";
    char lo[32] = "-inf", hi[32] = "+inf", val[32];
    snprintf(val, sizeof val, f, 100 * json_number_value(v));
    if (json_is_number(json_array_get(ci, 0))) snprintf(lo, sizeof lo, f, 100 * json_number_value(json_array_get(ci, 0)));
    if (json_is_number(json_array_get(ci, 1))) snprintf(hi, sizeof hi, f, 100 * json_number_value(json_array_get(ci, 1)));
    return xstrfmt("%s [%s, %s]", val, lo, hi);
}

static void print_paired(FILE *f, const json_t *cmp)
{
    char *dl = pp_ci(cmp, "delta_ll", 0), *dg = pp_ci(cmp, "delta_gen", 0), *did = pp_ci(cmp, "did", 0);
    char *rl = pp_ci(cmp, "ll_retention", 1), *rg = pp_ci(cmp, "gen_retention", 1);
    fprintf(f, "    chance-normalised, B - A: ΔLL %s pp, ΔGen %s pp\n", dl, dg);
    fprintf(f, "    did = ΔGen - ΔLL %s pp", did);
    if (json_is_number(json_object_get(cmp, "did_p")))
        fprintf(f, ", bootstrap p = %.3g", json_number_value(json_object_get(cmp, "did_p")));
    fprintf(f, "\n    retention B / A: LL %s; Gen %s\n", rl, rg);
    free(dl); free(dg); free(did); free(rl); free(rg);
}

char *rp_diff_text(const json_t *d, int max_flips)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return xstrdup("out of memory\n");
    for (int k = 0; k < 2; k++) {
        json_t *h = json_object_get(d, k ? "b" : "a");
        fprintf(f, "%s: run %s  %s  (%s)%s%s\n", k ? "B" : "A", hx_json_str(h, "run_id") ? hx_json_str(h, "run_id") : "?",
                hx_json_str(h, "recipe") ? hx_json_str(h, "recipe") : "?", hx_json_str(h, "status") ? hx_json_str(h, "status") : "?",
                hx_json_str(h, "instance") ? "  " : "", hx_json_str(h, "instance") ? hx_json_str(h, "instance") : "");
    }
    if (json_object_get(d, "same_recipe_files"))
        fprintf(f, "recipe files: %s\n", json_is_true(json_object_get(d, "same_recipe_files")) ? "identical" : "differ");
    json_t *params = json_object_get(d, "params");
    fprintf(f, "\nparameters that differ: %s\n", json_array_size(params) ? "" : "none");
    for (size_t i = 0; i < json_array_size(params); i++) {
        json_t *p = json_array_get(params, i);
        char *va = short_json(json_object_get(p, "a")), *vb = short_json(json_object_get(p, "b"));
        fprintf(f, "  %-32s %-24s %s -> %s\n", hx_json_str(p, "instance"), hx_json_str(p, "path"), va, vb);
        free(va);
        free(vb);
    }
    json_t *st = json_object_get(d, "stages");
    if (st) fprintf(f, "\nstage keys:\n");
    for (size_t i = 0; i < json_array_size(st); i++) {
        json_t *s = json_array_get(st, i);
        const char *ka = hx_json_str(s, "key_a"), *kb = hx_json_str(s, "key_b"), *status = hx_json_str(s, "status");
        fprintf(f, "  %-8s %-32s %.12s%s%.12s\n", status, hx_json_str(s, "instance"), ka ? ka : "", !strcmp(status, "differs") ? " -> " : "",
                !strcmp(status, "differs") || !strcmp(status, "only_b") ? (kb ? kb : "") : "");
    }
    json_t *ev = json_object_get(d, "evals");
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        fprintf(f, "\nmetrics of %s (B - A)%s:\n", hx_json_str(e, "instance"),
                json_is_true(json_object_get(e, "same_key")) ? ", same key: the same artifact, equal by construction" : "");
        if (hx_json_str(e, "error")) {
            fprintf(f, "  not compared: %s\n", hx_json_str(e, "error"));
            continue;
        }
        const char *sp;
        json_t *m;
        json_object_foreach(json_object_get(e, "splits"), sp, m) {
            json_t *gap = json_object_get(m, "gap");
            fprintf(f, "  split %s: %lld paired items (%lld only in A, %lld only in B)\n", sp,
                    (long long)json_integer_value(json_object_get(json_object_get(m, "ll_acc"), "n_paired")),
                    (long long)json_integer_value(json_object_get(m, "only_a")),
                    (long long)json_integer_value(json_object_get(m, "only_b")));
            print_measure(f, "ll_acc", json_object_get(m, "ll_acc"));
            print_measure(f, "gen_acc", json_object_get(m, "gen_acc"));
            fprintf(f, "    %-8s %+5.1f -> %+5.1f  %+5.1f pp\n", "gap", 100 * json_real_value(json_object_get(gap, "a")),
                    100 * json_real_value(json_object_get(gap, "b")), 100 * json_real_value(json_object_get(gap, "delta")));
            print_paired(f, json_object_get(m, "paired"));
            print_flips(f, "generation", json_object_get(json_object_get(m, "flips"), "gen"), max_flips);
            print_flips(f, "log-likelihood", json_object_get(json_object_get(m, "flips"), "ll"), max_flips);
        }
    }
    if (!json_array_size(ev)) fprintf(f, "\nno eval instance in both runs: no metrics to compare\n");
    fclose(f);
    return buf;
}
