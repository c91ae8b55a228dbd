/* findings.c - the pre-registered findings of docs/results.md (preconditions P1, P2; findings F1-F6) computed from a
 * run and its stored eval items, with a verdict each by the rule written before the run. The recipe's
 * `report.findings` names the stages, the arm axis, the baseline arm and the arms of each design axis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"
#include "reports/report_internal.h"

static double num(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

typedef struct fctx {
    const json_t *run, *spec;
    const char *stage, *teacher, *axis, *split, *control;
    rp_shared *sh; /* the items, loaded once, and the comparisons, shared with the report's tables */
} fctx;

/* The one instance of STAGE whose axis AXIS has the value VALUE (VALUE NULL: the stage's one instance). */
static const json_t *instance(const fctx *c, const char *stage, const char *value)
{
    const json_t *found = NULL;
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(c->run, "stages"), i, r) {
        if (!hx_json_str(r, "stage") || strcmp(hx_json_str(r, "stage"), stage)) continue;
        if (value) {
            const char *v = hx_json_str(json_object_get(r, "axes"), c->axis);
            if (!v || strcmp(v, value)) continue;
        }
        found = r, n++;
    }
    if (n == 1) return found;
    if (!n) error("report.findings: the run has no instance of stage '%s'%s%s%s%s", stage, value ? " with " : "",
                  value ? c->axis : "", value ? "=" : "", value ? value : "");
    else error("report.findings: stage '%s'%s%s%s%s has %d instances (several seeds?): findings take one each", stage,
               value ? " with " : "", value ? c->axis : "", value ? "=" : "", value ? value : "", n);
    return NULL;
}

static const json_t *items(fctx *c, const json_t *rec)
{
    const char *key = hx_json_str(rec, "key");
    if (!key) {
        error("report.findings: stage '%s' has no store key (did it complete?)", hx_json_str(rec, "stage"));
        return NULL;
    }
    return rp_shared_items(c->sh, key);
}

static json_t *ci_json(ev_ci ci) { return json_pack("[o,o]", hx_json_num(ci.lo), hx_json_num(ci.hi)); }

/* "reproduced" when the interval lies entirely on the finding's side (want > 0: above 0), "not reproduced" entirely
 * on the other, "inconclusive" otherwise. */
static const char *side_verdict(double lo, double hi, int want_above)
{
    if (want_above ? lo > 0 : hi < 0) return "reproduced";
    if (want_above ? hi < 0 : lo > 0) return "not reproduced";
    return "inconclusive";
}

/* "+1.2 pp [-0.3, +2.8]" of a difference and its interval (null ends: "n/a"). */
static char *pp(double v, const json_t *ci)
{
    json_t *lo = json_array_get(ci, 0), *hi = json_array_get(ci, 1);
    if (!json_is_number(lo) || !json_is_number(hi)) return xstrfmt("%+.1f pp [n/a]", 100 * v);
    return xstrfmt("%+.1f pp [%+.1f, %+.1f]", 100 * v, 100 * json_number_value(lo), 100 * json_number_value(hi));
}

static char *pct(double v, const json_t *ci)
{
    json_t *lo = json_array_get(ci, 0), *hi = json_array_get(ci, 1);
    if (!json_is_number(lo) || !json_is_number(hi)) return xstrfmt("%.1f%% [n/a]", 100 * v);
    return xstrfmt("%.1f%% [%.1f, %.1f]", 100 * v, 100 * json_number_value(lo), 100 * json_number_value(hi));
}

static void set_summary(json_t *f, char *text)
{
    json_object_set_new(f, "summary", json_string(text));
    free(text);
}

/* "62.0% [58.1, 65.7] of 816 (chance 25.0%)" of an acc_json object. */
static char *acc_text(const json_t *a)
{
    char *p = pct(num(a, "acc"), json_object_get(a, "ci"));
    char *t = xstrfmt("%s of %d (chance %.1f%%)", p, (int)json_integer_value(json_object_get(a, "n")), 100 * num(a, "chance"));
    free(p);
    return t;
}

/* ---- preconditions ---- */

/* Teacher accuracy (LL or generation) on SPLIT items of FORMAT (NULL: all): k, n, the mean chance. */
static void acc_of(const json_t *its, const char *split, const char *format, int gen, int *k, int *n, double *chance)
{
    *k = *n = 0;
    double ch = 0;
    size_t i;
    json_t *o;
    json_array_foreach(its, i, o) {
        if (!hx_json_str(o, "split") || strcmp(hx_json_str(o, "split"), split)) continue;
        if (format && (!hx_json_str(o, "format") || strcmp(hx_json_str(o, "format"), format))) continue;
        double cl = 0, cg = 0;
        if (ev_chance(o, &cl, &cg)) continue;
        ch += gen ? cg : cl;
        *k += json_is_true(json_object_get(o, gen ? "gen_correct" : "ll_correct"));
        (*n)++;
    }
    *chance = *n ? ch / *n : 0;
}

static json_t *acc_json(int k, int n, double chance)
{
    ev_ci ci = ev_wilson(k, n, EV_Z95);
    return json_pack("{s:i,s:i,s:o,s:o,s:o}", "k", k, "n", n, "acc", hx_json_num(n ? (double)k / n : NAN), "ci",
                     ci_json(ci), "chance", hx_json_num(chance));
}

/* P1: teacher Gen accuracy on the eval split >= 50% on mcq and on open items, its interval's lower end above chance. */
static json_t *p1(const fctx *c, const json_t *tit)
{
    static const char *fmts[] = {"mcq", "open"};
    int ok = 1;
    json_t *by = json_object();
    for (int f = 0; f < 2; f++) {
        int k, n;
        double ch;
        acc_of(tit, c->split, fmts[f], 1, &k, &n, &ch);
        ev_ci ci = ev_wilson(k, n, EV_Z95);
        ok &= n > 0 && (double)k / n >= 0.5 && ci.lo > ch;
        json_object_set_new(by, fmts[f], acc_json(k, n, ch));
    }
    json_t *r = json_pack("{s:s,s:s,s:b,s:o}", "id", "P1", "test",
                          "teacher Gen acc (eval split) >= 50% on mcq and on open, interval above chance", "passed", ok,
                          "gen", by);
    char *m = acc_text(json_object_get(by, "mcq")), *o = acc_text(json_object_get(by, "open"));
    set_summary(r, xstrfmt("teacher Gen: mcq %s; open %s", m, o));
    free(m), free(o);
    return r;
}

/* P2: on the control split the teacher's LL interval contains LL chance and its open-item Gen accuracy is below 5%. */
static json_t *p2(const fctx *c, const json_t *tit)
{
    int k, n, ko, no;
    double ch, cho;
    acc_of(tit, c->control, NULL, 0, &k, &n, &ch);
    acc_of(tit, c->control, "open", 1, &ko, &no, &cho);
    ev_ci ci = ev_wilson(k, n, EV_Z95);
    int ok = n > 0 && ci.lo <= ch && ch <= ci.hi && no > 0 && (double)ko / no < 0.05;
    json_t *r = json_pack("{s:s,s:s,s:b,s:o,s:o}", "id", "P2", "test",
                          "control split: teacher LL interval contains chance; open Gen acc < 5%", "passed", ok, "ll",
                          acc_json(k, n, ch), "gen_open", acc_json(ko, no, cho));
    char *l = acc_text(json_object_get(r, "ll")), *o = acc_text(json_object_get(r, "gen_open"));
    set_summary(r, xstrfmt("%s: teacher LL %s; open Gen %s", c->control, l, o));
    free(l), free(o);
    return r;
}

/* ---- findings ---- */

/* ev_compare of arm VALUE's eval against the teacher's (the report's seed: the same numbers as its tables). */
static json_t *vs_teacher(fctx *c, const json_t *trec, const char *value)
{
    const json_t *rec = instance(c, c->stage, value);
    const json_t *ti = items(c, trec), *ai = rec ? items(c, rec) : NULL;
    if (!ti || !ai) return NULL;
    return rp_compare(c->sh, hx_json_str(trec, "key"), hx_json_str(rec, "key"), c->split, NULL, ti, ai, NULL, NULL);
}

static json_t *finding(const char *id, const char *text, const char *verdict)
{
    return json_pack("{s:s,s:s,s:s}", "id", id, "finding", text, "verdict", verdict);
}

/* The arms of the run's axis, in the recipe's order. */
static json_t *arms_of(const fctx *c) { return json_object_get(json_object_get(c->run, "axes"), c->axis); }

/* Per-arm generation correctness on the teacher's items, in the teacher's order: every arm must pair every item. */
static double **gen_vectors(fctx *c, const json_t *trec, const json_t *names, int *n_out)
{
    size_t na = json_array_size(names);
    double **g = xcalloc(na + 1, sizeof *g);
    int n = -1;
    for (size_t a = 0; a < na; a++) {
        const json_t *rec = instance(c, c->stage, json_string_value(json_array_get(names, a)));
        const json_t *ti = items(c, trec), *ai = rec ? items(c, rec) : NULL;
        ev_pairs p = {0};
        if (!ti || !ai || ev_pair_items(ti, ai, c->split, NULL, &p)) goto fail;
        if ((n >= 0 && p.n != n) || p.only_a) {
            error("report.findings: arm '%s' does not answer every item the teacher answers (%d paired, %d missing)",
                  json_string_value(json_array_get(names, a)), p.n, p.only_a);
            ev_pairs_release(&p);
            goto fail;
        }
        n = p.n;
        g[a] = xmalloc((size_t)(n ? n : 1) * sizeof **g);
        memcpy(g[a], p.gen_b, (size_t)n * sizeof **g);
        ev_pairs_release(&p);
    }
    *n_out = n < 0 ? 0 : n;
    return g;
fail:
    for (size_t a = 0; a < na; a++) free(g[a]);
    free(g);
    return NULL;
}

static double mean(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}

/* F3/F4: arm A helps generation over arm B: the paired Gen accuracy difference A - B, its interval above 0. */
static json_t *helps(fctx *c, const json_t *trec, const char *id, const char *text, const char *a, const char *b)
{
    json_t *names = json_pack("[s,s]", a, b);
    int n;
    double **g = gen_vectors(c, trec, names, &n);
    json_decref(names);
    if (!g) return NULL;
    ev_ci ci = ev_bootstrap_paired(g[0], g[1], n, RP_BOOT_REPS, ev_stream_seed(0, a, b), 0.95);
    double d = mean(g[0], n) - mean(g[1], n);
    json_t *f = finding(id, text, side_verdict(ci.lo, ci.hi, 1));
    json_object_set_new(f, "numbers", json_pack("{s:s,s:s,s:i,s:o,s:o,s:o,s:o}", "a", a, "b", b, "n", n, "gen_a",
                                                hx_json_num(mean(g[0], n)), "gen_b", hx_json_num(mean(g[1], n)),
                                                "delta_gen", hx_json_num(d), "delta_gen_ci", ci_json(ci)));
    json_t *cij = ci_json(ci);
    char *t = pp(d, cij);
    set_summary(f, xstrfmt("Gen %s − %s: %s (n %d)", a, b, t, n));
    free(t);
    json_decref(cij);
    free(g[0]), free(g[1]), free(g);
    return f;
}

/* The largest absolute paired Gen difference among the arms (indices into the axis' vectors): *i, *j, the value. */
static double largest_pair(double *const *g, const int *idx, int m, int n, int *bi, int *bj)
{
    double best = -1;
    *bi = *bj = -1;
    for (int x = 0; x < m; x++)
        for (int y = x + 1; y < m; y++) {
            double d = fabs(mean(g[idx[x]], n) - mean(g[idx[y]], n));
            if (d > best) best = d, *bi = idx[x], *bj = idx[y];
        }
    return best;
}

/* F5: the named design axis has the largest effect on generation: its largest paired Gen difference between two of
 * its arms minus the runner-up axis' largest, bootstrapped over the same items (one resample for all arms). */
static json_t *largest(fctx *c, const json_t *trec, const char *target)
{
    json_t *axes = json_object_get(c->spec, "axes"), *all = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(axes, k, v) {
        size_t i;
        json_t *a;
        json_array_foreach(v, i, a) {
            int seen = 0;
            for (size_t j = 0; j < json_array_size(all); j++) seen |= json_equal(json_array_get(all, j), a);
            if (!seen) json_array_append(all, a);
        }
    }
    int n;
    double **g = gen_vectors(c, trec, all, &n);
    if (!g) {
        json_decref(all);
        return NULL;
    }
    int na = (int)json_array_size(all), *idx = xmalloc((size_t)na * sizeof *idx);
    json_t *per = json_object();
    int ti = -1, tj = -1, ri = -1, rj = -1;
    double tbest = -1, rbest = -1;
    const char *runner = NULL;
    json_object_foreach(axes, k, v) {
        int m = 0;
        size_t i;
        json_t *a;
        json_array_foreach(v, i, a)
            for (int x = 0; x < na; x++)
                if (json_equal(json_array_get(all, x), a)) idx[m++] = x;
        int bi, bj;
        double d = largest_pair(g, idx, m, n, &bi, &bj);
        json_object_set_new(per, k, bi < 0 ? json_null()
                                          : json_pack("{s:O,s:O,s:o}", "a", json_array_get(all, bi), "b",
                                                      json_array_get(all, bj), "abs_delta_gen", hx_json_num(d)));
        if (!strcmp(k, target)) tbest = d, ti = bi, tj = bj;
        else if (d > rbest) rbest = d, ri = bi, rj = bj, runner = k;
    }
    json_t *f;
    char *text = xstrfmt("the %s axis has the largest effect on generation", target);
    if (ti < 0 || ri < 0) {
        f = finding("F5", text, "inconclusive");
        set_summary(f, xstrdup(ti < 0 ? "the axis has fewer than two arms" : "no other axis has two arms"));
    } else {
        /* the statistic per resample: |mean(t_i) - mean(t_j)| - |mean(r_i) - mean(r_j)|, pairs fixed on the sample */
        const double *x[4] = {g[ti], g[tj], g[ri], g[rj]};
        double *rep = xmalloc((size_t)RP_BOOT_REPS * 4 * sizeof *rep), *st = xmalloc((size_t)RP_BOOT_REPS * sizeof *st);
        ev_bootstrap_means(x, 4, n, RP_BOOT_REPS, ev_stream_seed(0, "findings", target), rep);
        for (int r = 0; r < RP_BOOT_REPS; r++)
            st[r] = fabs(rep[r * 4] - rep[r * 4 + 1]) - fabs(rep[r * 4 + 2] - rep[r * 4 + 3]);
        ev_ci ci = ev_percentile(st, RP_BOOT_REPS, 0.95);
        f = finding("F5", text, side_verdict(ci.lo, ci.hi, 1));
        json_object_set_new(f, "numbers", json_pack("{s:s,s:s,s:i,s:o,s:o,s:o,s:o}", "axis", target, "runner_up",
                                                    runner, "n", n, "axes", json_incref(per), "difference",
                                                    hx_json_num(tbest - rbest), "difference_ci", ci_json(ci),
                                                    "note", json_string("|largest Gen difference of the axis| − "
                                                                        "|the runner-up axis'|, paired bootstrap")));
        json_t *cij = ci_json(ci);
        char *t = pp(tbest - rbest, cij);
        set_summary(f, xstrfmt("largest |ΔGen| within %s %.1f pp, within %s (runner-up) %.1f pp: difference %s", target,
                               100 * tbest, runner, 100 * rbest, t));
        free(t);
        json_decref(cij);
        free(rep);
        free(st);
    }
    free(text);
    json_decref(per);
    for (int a = 0; a < na; a++) free(g[a]);
    free(g);
    free(idx);
    json_decref(all);
    return f;
}

static int check_spec(const json_t *spec)
{
    static const char *fields[] = {"stage", "teacher", "axis", "baseline", "split", "control", "axes", "helps",
                                   "largest", "retention", NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec, k, v) {
        int ok = 0;
        for (int i = 0; fields[i]; i++) ok |= !strcmp(fields[i], k);
        if (!ok)
            return error("report.findings: unknown field '%s'; allowed: stage, teacher, axis, baseline, split, "
                         "control, axes, helps, largest, retention", k);
    }
    if (!hx_json_str(spec, "stage") || !hx_json_str(spec, "teacher") || !hx_json_str(spec, "axis") || !hx_json_str(spec, "baseline"))
        return error("report.findings: needs stage, teacher, axis and baseline (docs/results.md)");
    json_t *h = json_object_get(spec, "helps");
    size_t i;
    json_t *o;
    if (h && !json_is_array(h)) return error("report.findings.helps: a list of {id, finding, a, b}");
    json_array_foreach(h, i, o)
        if (!hx_json_str(o, "id") || !hx_json_str(o, "a") || !hx_json_str(o, "b"))
            return error("report.findings.helps[%zu]: needs id, a and b (arm a helps generation over arm b)", i);
    json_t *ax = json_object_get(spec, "axes");
    if (ax && !json_is_object(ax)) return error("report.findings.axes: a map {design axis: [arms]}");
    json_object_foreach(ax, k, v)
        if (!json_is_array(v)) return error("report.findings.axes.%s: a list of arms", k);
    json_t *r = json_object_get(spec, "retention");
    if (r && !(json_is_array(r) && json_array_size(r) == 2 && json_is_number(json_array_get(r, 0)) &&
               json_is_number(json_array_get(r, 1))))
        return error("report.findings.retention: [low, high], e.g. [0.86, 0.90]");
    if (hx_json_str(spec, "largest") && !json_object_get(ax, hx_json_str(spec, "largest")))
        return error("report.findings.largest: '%s' is not one of report.findings.axes", hx_json_str(spec, "largest"));
    return 0;
}

/* F2 from the report's axis tables (named as report.findings.axes' keys): significant reversals of any. */
static json_t *reversals(const fctx *c, const json_t *tables)
{
    json_t *found = json_array(), *largest = json_null(), *missing = json_array();
    double best = -1;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(c->spec, "axes"), k, v) {
        const json_t *t = NULL;
        for (size_t i = 0; i < json_array_size(tables); i++)
            if (hx_json_str(json_array_get(tables, i), "name") && !strcmp(hx_json_str(json_array_get(tables, i), "name"), k))
                t = json_array_get(tables, i);
        if (!t) {
            json_array_append_new(missing, json_string(k));
            continue;
        }
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(t, "reversals"), i, o) {
            json_t *e = json_deep_copy(o);
            json_object_set_new(e, "table", json_string(k));
            json_array_append_new(found, e);
        }
        json_t *l = json_object_get(t, "largest_nonsignificant_reversal");
        if (json_is_object(l) && fabs(num(l, "did_diff")) > best) {
            best = fabs(num(l, "did_diff"));
            json_decref(largest);
            largest = json_deep_copy(l);
            json_object_set_new(largest, "table", json_string(k));
        }
    }
    const char *verdict = json_array_size(found) ? "reproduced" : json_array_size(missing) ? "inconclusive" : "not reproduced";
    json_t *f = finding("F2", "LL can reverse the ranking of design choices", verdict);
    if (json_array_size(found))
        set_summary(f, xstrfmt("%zu significant reversal(s) (Holm within each axis table)", json_array_size(found)));
    else if (json_is_object(largest))
        set_summary(f, xstrfmt("no significant reversal; largest non-significant: %s vs %s (%s), did difference "
                               "%+.1f pp, p_holm %.3g", hx_json_str(largest, "a") ? hx_json_str(largest, "a") : "?",
                               hx_json_str(largest, "b") ? hx_json_str(largest, "b") : "?", hx_json_str(largest, "table"),
                               100 * num(largest, "did_diff"), num(largest, "p_holm")));
    else
        set_summary(f, xstrfmt("no reversal on any axis table%s", json_array_size(missing) ? " (some tables missing)" : ""));
    json_object_set_new(f, "numbers", json_pack("{s:o,s:o,s:o}", "significant_reversals", found,
                                                "largest_nonsignificant", largest, "tables_missing", missing));
    return f;
}

json_t *rp_findings(const json_t *run, const json_t *spec, const json_t *tables, const rp_source *src)
{
    rp_shared sh;
    rp_shared_init(&sh, src);
    json_t *f = rp_findings_shared(run, spec, tables, &sh);
    rp_shared_release(&sh);
    return f;
}

json_t *rp_findings_shared(const json_t *run, const json_t *spec, const json_t *tables, rp_shared *sh)
{
    if (!json_is_object(spec)) {
        error("report.findings: a map (stage, teacher, axis, baseline, axes, ...; docs/results.md)");
        return NULL;
    }
    if (check_spec(spec)) return NULL;
    fctx c = {run, spec, hx_json_str(spec, "stage"), hx_json_str(spec, "teacher"), hx_json_str(spec, "axis"),
              hx_json_str(spec, "split") ? hx_json_str(spec, "split") : "eval", hx_json_str(spec, "control") ? hx_json_str(spec, "control") : "heldout",
              sh};
    const char *base = hx_json_str(spec, "baseline");
    json_t *out = NULL, *pre = json_array(), *fs = json_array(), *cmp = NULL, *arms_did = json_array();
    const json_t *trec = instance(&c, c.teacher, NULL), *tit = trec ? items(&c, trec) : NULL;
    if (!tit) goto done;
    json_array_append_new(pre, p1(&c, tit));
    json_array_append_new(pre, p2(&c, tit));
    /* F1: the baseline arm's did, below 0 */
    if (!(cmp = vs_teacher(&c, trec, base))) goto done;
    json_t *dci = json_object_get(cmp, "did_ci");
    int bounded = json_is_number(json_array_get(dci, 0)) && json_is_number(json_array_get(dci, 1));
    json_t *f = finding("F1", "LL underestimates the teacher-student gap",
                        bounded ? side_verdict(json_number_value(json_array_get(dci, 0)),
                                               json_number_value(json_array_get(dci, 1)), 0)
                                : "inconclusive");
    json_object_set_new(f, "numbers", json_pack("{s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "arm", base, "n",
                                                json_object_get(cmp, "n"), "delta_ll", json_object_get(cmp, "delta_ll"),
                                                "delta_ll_ci", json_object_get(cmp, "delta_ll_ci"), "delta_gen",
                                                json_object_get(cmp, "delta_gen"), "delta_gen_ci",
                                                json_object_get(cmp, "delta_gen_ci"), "did", json_object_get(cmp, "did"),
                                                "did_ci", dci));
    {
        char *d = pp(num(cmp, "did"), dci), *l = pp(num(cmp, "delta_ll"), json_object_get(cmp, "delta_ll_ci"));
        char *g = pp(num(cmp, "delta_gen"), json_object_get(cmp, "delta_gen_ci"));
        set_summary(f, xstrfmt("%s: did %s (ΔLL %s, ΔGen %s; n %d)", base, d, l, g,
                               (int)json_integer_value(json_object_get(cmp, "n"))));
        free(d), free(l), free(g);
    }
    json_array_append_new(fs, f);
    /* F1b: the sign of did over every arm */
    int neg = 0, pos_sig = 0, na = 0;
    size_t i;
    json_t *a;
    json_array_foreach(arms_of(&c), i, a) {
        /* the baseline arm's comparison is F1's: the same items and seed, computed once */
        json_t *ca = !strcmp(json_string_value(a), base) ? json_incref(cmp) : vs_teacher(&c, trec, json_string_value(a));
        if (!ca) goto done;
        json_t *ci = json_object_get(ca, "did_ci");
        neg += num(ca, "did") < 0;
        pos_sig += json_is_number(json_array_get(ci, 0)) && json_number_value(json_array_get(ci, 0)) > 0;
        na++;
        json_array_append_new(arms_did, json_pack("{s:O,s:O,s:O}", "arm", a, "did", json_object_get(ca, "did"), "did_ci", ci));
        json_decref(ca);
    }
    const char *v1b = na && 4 * neg >= 3 * na && !pos_sig ? "reproduced" : 2 * neg < na ? "not reproduced" : "inconclusive";
    f = finding("F1b", "... consistently, across design choices", v1b);
    json_object_set_new(f, "numbers", json_pack("{s:i,s:i,s:i,s:o}", "arms", na, "did_negative", neg,
                                                "did_ci_above_0", pos_sig, "per_arm", arms_did));
    arms_did = NULL;
    set_summary(f, xstrfmt("did < 0 in %d of %d arms; did interval above 0 in %d", neg, na, pos_sig));
    json_array_append_new(fs, f);
    /* F2 */
    if (json_object_get(spec, "axes")) json_array_append_new(fs, reversals(&c, tables));
    /* F3, F4 */
    json_array_foreach(json_object_get(spec, "helps"), i, a) {
        json_t *h = helps(&c, trec, hx_json_str(a, "id"), hx_json_str(a, "finding") ? hx_json_str(a, "finding") : "", hx_json_str(a, "a"), hx_json_str(a, "b"));
        if (!h) goto done;
        json_array_append_new(fs, h);
    }
    /* F5 */
    if (hx_json_str(spec, "largest")) {
        json_t *l = largest(&c, trec, hx_json_str(spec, "largest"));
        if (!l) goto done;
        json_array_append_new(fs, l);
    }
    /* F6: descriptive */
    json_t *rr = json_object_get(spec, "retention");
    if (rr) {
        double lo = json_number_value(json_array_get(rr, 0)), hi = json_number_value(json_array_get(rr, 1));
        json_t *gci = json_object_get(cmp, "gen_retention_ci");
        const char *v6 = "n/a";
        if (json_is_number(json_array_get(gci, 0)) && json_is_number(json_array_get(gci, 1)))
            v6 = json_number_value(json_array_get(gci, 0)) <= hi && json_number_value(json_array_get(gci, 1)) >= lo
                     ? "in the paper's range" : "outside the paper's range";
        f = finding("F6", "the best student retains 86-90% of the teacher's accuracy", v6);
        json_object_set_new(f, "numbers", json_pack("{s:s,s:O,s:O,s:O,s:O,s:[o,o]}", "arm", base, "gen_retention",
                                                    json_object_get(cmp, "gen_retention"), "gen_retention_ci", gci,
                                                    "ll_retention", json_object_get(cmp, "ll_retention"),
                                                    "ll_retention_ci", json_object_get(cmp, "ll_retention_ci"),
                                                    "paper_range", hx_json_num(lo), hx_json_num(hi)));
        char *g = json_is_number(json_object_get(cmp, "gen_retention")) ? pct(num(cmp, "gen_retention"), gci) : xstrdup("n/a");
        char *l = json_is_number(json_object_get(cmp, "ll_retention"))
                      ? pct(num(cmp, "ll_retention"), json_object_get(cmp, "ll_retention_ci")) : xstrdup("n/a");
        set_summary(f, xstrfmt("%s: Gen retention %s, LL retention %s (paper: %.0f-%.0f%%)", base, g, l, 100 * lo, 100 * hi));
        free(g), free(l);
        json_array_append_new(fs, f);
    }
    /* a failed precondition makes every finding inconclusive (docs/results.md) */
    int pre_ok = 1;
    json_array_foreach(pre, i, a) pre_ok &= json_is_true(json_object_get(a, "passed"));
    json_array_foreach(fs, i, a) {
        json_object_set(a, "verdict_by_rule", json_object_get(a, "verdict"));
        if (!pre_ok) json_object_set_new(a, "verdict", json_string("inconclusive (a precondition failed)"));
    }
    out = json_pack("{s:O,s:O,s:b}", "preconditions", pre, "findings", fs, "preconditions_passed", pre_ok);
done:
    json_decref(pre);
    json_decref(fs);
    json_decref(cmp);
    json_decref(arms_did);
    return out;
}
