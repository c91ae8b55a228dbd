/* metrics.c - per-task and per-split accuracy by log-likelihood and by generation, chance-normalised, their gap,
 * intervals, agreement and letter distributions; the paired comparison of two models on the same items. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sort.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"

/* One outcome, checked once. */
typedef struct outcome {
    const char *task, *split, *doc_id;
    int n_choices, ll, gen, norm, em; /* norm/em: -1 when not applicable */
    int lettered, invalid;            /* lettered: generation answers by letter (mcq, cloze); invalid: no letter */
    int gold, ll_pred, gen_letter;    /* indices; -1 when absent (gen_letter: no letter given) */
    double ll_cn, gen_cn;             /* chance-normalised scores */
} outcome;

static int get_bool(const json_t *o, const char *k, int *v, int idx, int optional)
{
    json_t *x = json_object_get(o, k);
    if (optional && (!x || json_is_null(x))) {
        *v = -1;
        return 0;
    }
    if (!json_is_boolean(x)) return error("item outcome %d: \"%s\" must be true or false", idx, k);
    *v = json_is_true(x);
    return 0;
}

/* Lettered: the item's format says so (mcq, cloze); outcomes without a format: it has a gen_rule. */
static int is_lettered(const json_t *r)
{
    const char *f = json_string_value(json_object_get(r, "format"));
    if (f) return !strcmp(f, "mcq") || !strcmp(f, "cloze");
    return json_object_get(r, "gen_rule") != NULL;
}

int ev_chance(const json_t *r, double *ll, double *gen)
{
    json_t *nc = json_object_get(r, "n_choices");
    if (!json_is_integer(nc) || json_integer_value(nc) < 1) return error("item outcome: needs an integer \"n_choices\" >= 1");
    *ll = 1.0 / (double)json_integer_value(nc);
    *gen = is_lettered(r) ? *ll : 0;
    return 0;
}

/* (x - c) / (1 - c): 1 right, -c/(1-c) wrong, 0 on average at chance; an item with chance 1 measures nothing: 0. */
static double normalise(int x, double c) { return c < 1 ? (x - c) / (1 - c) : 0; }

static int index_of(const json_t *v, int n)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n) return -1;
    return (int)json_integer_value(v);
}

static int parse_outcome(const json_t *r, int i, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->task = json_string_value(json_object_get(r, "task"));
    o->split = json_string_value(json_object_get(r, "split"));
    o->doc_id = json_string_value(json_object_get(r, "doc_id"));
    json_t *nc = json_object_get(r, "n_choices");
    if (!json_is_object(r) || !o->task || !o->split || !json_is_integer(nc) || json_integer_value(nc) < 1 ||
        json_integer_value(nc) > 26)
        return error("item outcome %d: needs string \"task\" and \"split\" and an integer \"n_choices\" in 1..26", i);
    o->n_choices = (int)json_integer_value(nc);
    if (get_bool(r, "ll_correct", &o->ll, i, 0) || get_bool(r, "gen_correct", &o->gen, i, 0) ||
        get_bool(r, "ll_norm_correct", &o->norm, i, 1) || get_bool(r, "gen_em", &o->em, i, 1))
        return -1;
    o->lettered = is_lettered(r);
    o->gold = index_of(json_object_get(r, "answer"), o->n_choices);
    o->ll_pred = index_of(json_object_get(r, "ll_pred"), o->n_choices);
    o->gen_letter = -1;
    if (o->lettered) {
        const char *g = json_string_value(json_object_get(r, "gen_pred"));
        if (g && g[0] >= 'A' && g[0] < 'A' + o->n_choices && !g[1]) o->gen_letter = g[0] - 'A';
        o->invalid = o->gen_letter < 0;
    }
    double cl, cg;
    ev_chance(r, &cl, &cg);
    o->ll_cn = normalise(o->ll, cl);
    o->gen_cn = normalise(o->gen, cg);
    return 0;
}

static json_t *ci_json(ev_ci c) { return json_pack("[o,o]", hx_json_num(c.lo), hx_json_num(c.hi)); }

int ev_task_matches(const char *task, const char *want)
{
    if (!want) return 1;
    size_t n = strlen(want);
    if (n && want[n - 1] == '*') return !strncmp(task, want, n - 1);
    return !strcmp(task, want);
}

/* The family glob of a task: "kn_prose_country" -> "kn_prose_*"; NULL for a task without a family suffix. */
static char *task_family(const char *task)
{
    const char *u = strrchr(task, '_');
    if (!u || u == task || strncmp(task, "kn_", 3) || u - task <= 3) return NULL;
    return xstrfmt("%.*s_*", (int)(u - task), task);
}

static int selected(const outcome *o, const char *split, const char *task)
{
    return !strcmp(o->split, split) && ev_task_matches(o->task, task);
}

/* A distribution of letter counts as {"A": k, ...} over the first nl letters. */
static json_t *counts_json(const int *c, int nl)
{
    json_t *o = json_object();
    for (int l = 0; l < nl; l++) {
        char k[2] = {(char)('A' + l), 0};
        json_object_set_new(o, k, json_integer(c[l]));
    }
    return o;
}

/* The most frequent letter (ties: the earlier) or -1 when every count is 0. */
static int top_letter(const int *c, int nl)
{
    int t = -1;
    for (int l = 0; l < nl; l++)
        if (c[l] > 0 && (t < 0 || c[l] > c[t])) t = l;
    return t;
}

static json_t *letters_of(const outcome *o, int n, const char *split, const char *task)
{
    int gold[26] = {0}, ll[26] = {0}, gen[26] = {0}, m = 0, inv = 0, nl = 0;
    for (int i = 0; i < n; i++) {
        if (!o[i].lettered || !selected(&o[i], split, task) || o[i].gold < 0 || o[i].ll_pred < 0) continue;
        m++;
        if (o[i].n_choices > nl) nl = o[i].n_choices;
        gold[o[i].gold]++;
        ll[o[i].ll_pred]++;
        if (o[i].gen_letter >= 0) gen[o[i].gen_letter]++;
        else inv++;
    }
    if (!m) return NULL;
    double tv = inv, tvl = 0;
    for (int l = 0; l < nl; l++) tv += abs(gen[l] - gold[l]), tvl += abs(ll[l] - gold[l]);
    json_t *names = json_array();
    for (int l = 0; l < nl; l++) {
        char k[2] = {(char)('A' + l), 0};
        json_array_append_new(names, json_string(k));
    }
    int tg = top_letter(gen, nl), tl = top_letter(ll, nl);
    char sg[2] = {(char)('A' + tg), 0}, sl[2] = {(char)('A' + tl), 0};
    json_t *r = json_object();
    json_object_set_new(r, "n", json_integer(m));
    json_object_set_new(r, "letters", names);
    json_object_set_new(r, "gold", counts_json(gold, nl));
    json_object_set_new(r, "ll", counts_json(ll, nl));
    json_object_set_new(r, "gen", counts_json(gen, nl));
    json_object_set_new(r, "invalid", json_integer(inv));
    json_object_set_new(r, "invalid_share", hx_json_num((double)inv / m));
    json_object_set_new(r, "letter_tv", hx_json_num(tv / (2.0 * m)));
    json_object_set_new(r, "ll_letter_tv", hx_json_num(tvl / (2.0 * m)));
    json_object_set_new(r, "top", tg >= 0 ? json_string(sg) : json_null());
    json_object_set_new(r, "top_share", tg >= 0 ? hx_json_num((double)gen[tg] / m) : json_null());
    json_object_set_new(r, "ll_top", tl >= 0 ? json_string(sl) : json_null());
    json_object_set_new(r, "ll_top_share", tl >= 0 ? hx_json_num((double)ll[tl] / m) : json_null());
    return r;
}

/* Metrics M of the outcomes of SPLIT and TASK (NULL: every task; a name; a family glob). */
static json_t *group(const outcome *o, int n, const char *split, const char *task, int reps, uint64_t seed)
{
    int m = 0, ll = 0, gen = 0, nn = 0, norm = 0, no = 0, em = 0, nl = 0, inv = 0, q[4] = {0};
    double chance = 0, gchance = 0, lcn = 0, gcn = 0;
    size_t cap = (size_t)(n ? n : 1);
    double *d = xmalloc(cap * sizeof *d), *dcn = xmalloc(cap * sizeof *dcn);
    for (int i = 0; i < n; i++) {
        if (!selected(&o[i], split, task)) continue;
        d[m] = o[i].ll - o[i].gen;
        dcn[m] = o[i].ll_cn - o[i].gen_cn;
        m++;
        ll += o[i].ll;
        gen += o[i].gen;
        lcn += o[i].ll_cn;
        gcn += o[i].gen_cn;
        chance += 1.0 / o[i].n_choices;
        gchance += o[i].lettered ? 1.0 / o[i].n_choices : 0;
        q[(!o[i].ll) * 2 + !o[i].gen]++;
        if (o[i].norm >= 0) nn++, norm += o[i].norm;
        if (o[i].em >= 0) no++, em += o[i].em;
        if (o[i].lettered) nl++, inv += o[i].invalid;
    }
    /* one resampling for both gaps: the raw one's stream is the one metrics.json version 1 used */
    double *bm = xmalloc((size_t)(reps > 0 ? reps : 1) * 2 * sizeof *bm);
    const double *x[2] = {d, dcn};
    ev_bootstrap_means(x, 2, m, reps, ev_stream_seed(seed, split, task ? task : ""), bm);
    double *g0 = xmalloc((size_t)(reps > 0 ? reps : 1) * sizeof *g0), *g1 = xmalloc((size_t)(reps > 0 ? reps : 1) * sizeof *g1);
    for (int r = 0; r < reps && m; r++) g0[r] = bm[2 * r], g1[r] = bm[2 * r + 1];
    ev_ci gap_ci = m ? ev_percentile(g0, reps, 0.95) : (ev_ci){0, 0}, gap_cn_ci = m ? ev_percentile(g1, reps, 0.95) : (ev_ci){0, 0};
    json_t *r = json_object();
    json_object_set_new(r, "n", json_integer(m));
    json_object_set_new(r, "chance", hx_json_num(m ? chance / m : 0));
    json_object_set_new(r, "gen_chance", hx_json_num(m ? gchance / m : 0));
    json_object_set_new(r, "ll_acc", hx_json_num(m ? (double)ll / m : 0));
    json_object_set_new(r, "ll_ci", ci_json(ev_wilson(ll, m, EV_Z95)));
    json_object_set_new(r, "gen_acc", hx_json_num(m ? (double)gen / m : 0));
    json_object_set_new(r, "gen_ci", ci_json(ev_wilson(gen, m, EV_Z95)));
    json_object_set_new(r, "ll_cn", hx_json_num(m ? lcn / m : 0));
    json_object_set_new(r, "gen_cn", hx_json_num(m ? gcn / m : 0));
    json_object_set_new(r, "gap", hx_json_num(m ? (double)(ll - gen) / m : 0));
    json_object_set_new(r, "gap_ci", ci_json(gap_ci));
    json_object_set_new(r, "gap_cn", hx_json_num(m ? (lcn - gcn) / m : 0));
    json_object_set_new(r, "gap_cn_ci", ci_json(gap_cn_ci));
    json_object_set_new(r, "mcnemar_p", hx_json_num(ev_mcnemar_exact(q[1], q[2])));
    json_object_set_new(r, "both", json_integer(q[0]));
    json_object_set_new(r, "ll_only", json_integer(q[1]));
    json_object_set_new(r, "gen_only", json_integer(q[2]));
    json_object_set_new(r, "neither", json_integer(q[3]));
    if (nn) {
        json_object_set_new(r, "ll_acc_norm", hx_json_num((double)norm / nn));
        json_object_set_new(r, "ll_norm_ci", ci_json(ev_wilson(norm, nn, EV_Z95)));
        json_object_set_new(r, "n_norm", json_integer(nn));
    }
    if (no) {
        json_object_set_new(r, "gen_em", hx_json_num((double)em / no));
        json_object_set_new(r, "n_open", json_integer(no));
    }
    if (nl) {
        json_object_set_new(r, "gen_invalid", hx_json_num((double)inv / nl));
        json_object_set_new(r, "n_letter", json_integer(nl));
        json_t *lt = letters_of(o, n, split, task);
        if (lt) json_object_set_new(r, "letters", lt);
    }
    free(d);
    free(dcn);
    free(bm);
    free(g0);
    free(g1);
    return r;
}

/* Sorted distinct values of a string field. */
static const char **distinct(const outcome *o, int n, int field_split, const char *split, int *count)
{
    const char **v = xcalloc((size_t)n + 1, sizeof *v);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (split && strcmp(o[i].split, split)) continue;
        const char *s = field_split ? o[i].split : o[i].task;
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(v[j], s);
        if (!seen) v[k++] = s;
    }
    qsort(v, (size_t)k, sizeof *v, hx_cmp_str);
    *count = k;
    return v;
}

/* Every outcome of a list, parsed; NULL + error() on the first malformed one. */
static outcome *parse_all(const json_t *results, int *n)
{
    if (!json_is_array(results)) {
        error("item outcomes must be a list");
        return NULL;
    }
    *n = (int)json_array_size(results);
    outcome *o = xcalloc((size_t)(*n ? *n : 1), sizeof *o);
    for (int i = 0; i < *n; i++)
        if (parse_outcome(json_array_get(results, (size_t)i), i, &o[i])) {
            free(o);
            return NULL;
        }
    return o;
}

json_t *ev_metrics(const json_t *results, int reps, uint64_t seed)
{
    int n;
    outcome *o = parse_all(results, &n);
    if (!o) return NULL;
    json_t *m = json_pack("{s:i,s:o,s:i}", "version", 2, "confidence", hx_json_num(0.95), "bootstrap", reps);
    int ns;
    const char **splits = distinct(o, n, 1, NULL, &ns);
    for (int s = 0; s < ns; s++) {
        int nt;
        const char **tasks = distinct(o, n, 0, splits[s], &nt);
        json_t *sp = json_object(), *tj = json_object();
        json_object_set_new(sp, "all", group(o, n, splits[s], NULL, reps, seed));
        double mll = 0, mgen = 0;
        for (int t = 0; t < nt; t++) {
            json_t *g = group(o, n, splits[s], tasks[t], reps, seed);
            mll += json_real_value(json_object_get(g, "ll_acc"));
            mgen += json_real_value(json_object_get(g, "gen_acc"));
            json_object_set_new(tj, tasks[t], g);
        }
        json_object_set_new(sp, "macro", json_pack("{s:o,s:o,s:o,s:i}", "ll_acc", hx_json_num(nt ? mll / nt : 0), "gen_acc",
                                                   hx_json_num(nt ? mgen / nt : 0), "gap", hx_json_num(nt ? (mll - mgen) / nt : 0), "tasks", nt));
        json_object_set_new(sp, "tasks", tj);
        /* families: the relation families of one format pooled, e.g. kn_prose_* over its four families */
        json_t *fj = json_object();
        for (int t = 0; t < nt; t++) {
            char *fam = task_family(tasks[t]);
            if (fam && !json_object_get(fj, fam)) json_object_set_new(fj, fam, group(o, n, splits[s], fam, reps, seed));
            free(fam);
        }
        json_object_set_new(sp, "families", fj);
        json_object_set_new(m, splits[s], sp);
        free(tasks);
    }
    free(splits);
    json_t *head = json_object_get(json_object_get(m, "eval"), "all");
    json_object_set_new(m, "n", json_integer(head ? json_integer_value(json_object_get(head, "n")) : 0));
    static const char *keys[] = {"ll_acc", "gen_acc", "gap"};
    for (int k = 0; k < 3; k++)
        json_object_set_new(m, keys[k], head ? json_copy(json_object_get(head, keys[k])) : json_null());
    free(o);
    return m;
}

int ev_letters(const json_t *items, const char *split, const char *task, json_t **out)
{
    int n;
    *out = NULL;
    outcome *o = parse_all(items, &n);
    if (!o) return -1;
    *out = letters_of(o, n, split, task);
    free(o);
    return 0;
}

/* ---- paired comparison ---- */

void ev_pairs_release(ev_pairs *p)
{
    free(p->ll_a); free(p->ll_b); free(p->gen_a); free(p->gen_b);
    free(p->lcn_a); free(p->lcn_b); free(p->gcn_a); free(p->gcn_b);
    free(p->lch); free(p->gch);
    free(p->a); free(p->b);
    memset(p, 0, sizeof *p);
}

int ev_pair_items(const json_t *items_a, const json_t *items_b, const char *split, const char *task, ev_pairs *p)
{
    memset(p, 0, sizeof *p);
    int na, nb;
    outcome *oa = parse_all(items_a, &na), *ob = oa ? parse_all(items_b, &nb) : NULL;
    if (!oa || !ob) {
        error_prefix("%s item set", oa ? "second" : "first");
        free(oa);
        return -1;
    }
    /* B's selected items by "task\tdoc_id" -> index + 1 */
    json_t *idx = json_object(), *seen_a = json_object();
    int rc = 0;
    for (int i = 0; i < nb && !rc; i++) {
        if (!selected(&ob[i], split, task)) continue;
        if (!ob[i].doc_id) rc = error("second item set: item outcome %d has no \"doc_id\" to pair on", i);
        char *k = rc ? NULL : xstrfmt("%s\t%s", ob[i].task, ob[i].doc_id);
        if (k && json_object_get(idx, k)) rc = error("second item set: item %s/%s occurs twice", ob[i].task, ob[i].doc_id);
        if (k && !rc) json_object_set_new(idx, k, json_integer(i + 1));
        free(k);
    }
    size_t cap = (size_t)(na ? na : 1);
    p->ll_a = xmalloc(cap * sizeof(double)); p->ll_b = xmalloc(cap * sizeof(double));
    p->gen_a = xmalloc(cap * sizeof(double)); p->gen_b = xmalloc(cap * sizeof(double));
    p->lcn_a = xmalloc(cap * sizeof(double)); p->lcn_b = xmalloc(cap * sizeof(double));
    p->gcn_a = xmalloc(cap * sizeof(double)); p->gcn_b = xmalloc(cap * sizeof(double));
    p->lch = xmalloc(cap * sizeof(double)); p->gch = xmalloc(cap * sizeof(double));
    p->a = xmalloc(cap * sizeof *p->a); p->b = xmalloc(cap * sizeof *p->b);
    int nsel_b = (int)json_object_size(idx);
    for (int i = 0; i < na && !rc; i++) {
        if (!selected(&oa[i], split, task)) continue;
        if (!oa[i].doc_id) {
            rc = error("first item set: item outcome %d has no \"doc_id\" to pair on", i);
            break;
        }
        char *k = xstrfmt("%s\t%s", oa[i].task, oa[i].doc_id);
        if (json_object_get(seen_a, k)) rc = error("first item set: item %s/%s occurs twice", oa[i].task, oa[i].doc_id);
        json_object_set_new(seen_a, k, json_true());
        json_t *j = json_object_get(idx, k);
        free(k);
        if (rc) break;
        if (!j) {
            p->only_a++;
            continue;
        }
        const outcome *b = &ob[json_integer_value(j) - 1];
        if (b->n_choices != oa[i].n_choices || b->gold != oa[i].gold || b->lettered != oa[i].lettered) {
            rc = error("item %s/%s is not the same item in the two sets (choices %d vs %d, answer %d vs %d): "
                       "their doc ids collide", oa[i].task, oa[i].doc_id, oa[i].n_choices, b->n_choices, oa[i].gold, b->gold);
            break;
        }
        int m = p->n++;
        p->ll_a[m] = oa[i].ll, p->ll_b[m] = b->ll, p->gen_a[m] = oa[i].gen, p->gen_b[m] = b->gen;
        p->lcn_a[m] = oa[i].ll_cn, p->lcn_b[m] = b->ll_cn, p->gcn_a[m] = oa[i].gen_cn, p->gcn_b[m] = b->gen_cn;
        ev_chance(json_array_get(items_a, (size_t)i), &p->lch[m], &p->gch[m]);
        p->a[m] = json_array_get(items_a, (size_t)i);
        p->b[m] = json_array_get(items_b, (size_t)json_integer_value(j) - 1);
    }
    p->only_b = nsel_b - p->n;
    json_decref(idx);
    json_decref(seen_a);
    free(oa);
    free(ob);
    if (rc) ev_pairs_release(p);
    return rc;
}

static double mean(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}

/* Sums of normalised scores are inexact (-1/3 per wrong item at chance 1/4): a mean this close to 0 is at chance. */
#define EV_CHANCE_EPS 1e-9

/* A ratio replicate: a denominator at or below 0 (A not above chance in this resample) is unbounded. */
static double ratio(double num, double den)
{
    return den > EV_CHANCE_EPS ? num / den : num > 0 ? INFINITY : -INFINITY;
}

static json_t *num_or_null(double v) { return isfinite(v) ? hx_json_num(v) : json_null(); }
static json_t *ci_or_null(ev_ci c) { return json_pack("[o,o]", num_or_null(c.lo), num_or_null(c.hi)); }

json_t *ev_compare(const ev_pairs *p, int reps, uint64_t seed)
{
    static const char *const stats[] = {"delta_ll", "delta_gen", "did", "ll_retention", "gen_retention"};
    json_t *r = json_object(), *na = json_object();
    int n = p->n;
    json_object_set_new(r, "n", json_integer(n));
    if (!n || reps < 1) {
        const char *why = !n ? "no paired items" : "no bootstrap resamples";
        for (int s = 0; s < 5; s++) {
            char *ci = xstrfmt("%s_ci", stats[s]);
            json_object_set_new(r, stats[s], json_null());
            json_object_set_new(r, ci, json_null());
            json_object_set_new(na, stats[s], json_string(why));
            free(ci);
        }
        json_object_set_new(r, "did_p", json_null());
        json_object_set_new(r, "na", na);
        return r;
    }
    /* point estimates */
    double la = mean(p->lcn_a, n), lb = mean(p->lcn_b, n), ga = mean(p->gcn_a, n), gb = mean(p->gcn_b, n);
    double point[5] = {lb - la, gb - ga, (gb - ga) - (lb - la), ratio(lb, la), ratio(gb, ga)};
    /* replicates: one paired resampling for every statistic */
    const double *x[4] = {p->lcn_a, p->lcn_b, p->gcn_a, p->gcn_b};
    double *bm = xmalloc((size_t)reps * 4 * sizeof *bm), *v = xmalloc((size_t)reps * 7 * sizeof *v);
    ev_bootstrap_means(x, 4, n, reps, seed, bm);
    for (int k = 0; k < reps; k++) {
        const double *m = bm + 4 * k;
        v[0 * reps + k] = m[1] - m[0];
        v[1 * reps + k] = m[3] - m[2];
        v[2 * reps + k] = (m[3] - m[2]) - (m[1] - m[0]);
        v[3 * reps + k] = ratio(m[1], m[0]);
        v[4 * reps + k] = ratio(m[3], m[2]);
        v[5 * reps + k] = m[0];
        v[6 * reps + k] = m[2];
    }
    double did_p = ev_bootstrap_p(v + 2 * reps, reps);
    ev_ci ci[7];
    for (int s = 0; s < 7; s++) ci[s] = ev_percentile(v + (size_t)s * reps, reps, 0.95);
    /* retention is a ratio to A's accuracy above chance: only where A's Wilson 95% interval lies above chance */
    static const char *const what[2] = {"LL", "generation"};
    double acc_a[2] = {mean(p->ll_a, n), mean(p->gen_a, n)}, chance[2] = {mean(p->lch, n), mean(p->gch, n)};
    for (int s = 0; s < 5; s++) {
        char *cik = xstrfmt("%s_ci", stats[s]);
        int w = s - 3;
        ev_ci wa = w >= 0 ? ev_wilson((int)lround(acc_a[w] * n), n, EV_Z95) : (ev_ci){0, 0};
        if (w >= 0 && !(wa.lo > chance[w])) {
            char *why = xstrfmt("the baseline's %s accuracy %.1f%% [%.1f, %.1f] is not above chance (%.1f%%)", what[w],
                                100 * acc_a[w], 100 * wa.lo, 100 * wa.hi, 100 * chance[w]);
            json_object_set_new(na, stats[s], json_string(why));
            free(why);
            json_object_set_new(r, stats[s], json_null());
            json_object_set_new(r, cik, json_null());
        } else {
            json_object_set_new(r, stats[s], num_or_null(point[s]));
            json_object_set_new(r, cik, ci_or_null(ci[s]));
        }
        free(cik);
        if (s == 2) json_object_set_new(r, "did_p", hx_json_num(did_p));
    }
    json_object_set_new(r, "delta_ll_raw", hx_json_num(mean(p->ll_b, n) - mean(p->ll_a, n)));
    json_object_set_new(r, "delta_gen_raw", hx_json_num(mean(p->gen_b, n) - mean(p->gen_a, n)));
    json_object_set_new(r, "a_ll_cn", hx_json_num(la));
    json_object_set_new(r, "a_ll_cn_ci", ci_json(ci[5]));
    json_object_set_new(r, "a_gen_cn", hx_json_num(ga));
    json_object_set_new(r, "a_gen_cn_ci", ci_json(ci[6]));
    json_object_set_new(r, "b_ll_cn", hx_json_num(lb));
    json_object_set_new(r, "b_gen_cn", hx_json_num(gb));
    json_object_set_new(r, "na", na);
    free(bm);
    free(v);
    return r;
}

/* ---- JSONL ---- */

int ev_parse_jsonl(const char *name, const char *data, size_t len, json_t **out)
{
    json_t *a = json_array();
    size_t pos = 0;
    for (int line = 1; pos < len; line++) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        size_t k = 0;
        while (k < n && (data[pos + k] == ' ' || data[pos + k] == '\t' || data[pos + k] == '\r')) k++;
        if (k < n) {
            json_error_t je;
            json_t *v = json_loadb(data + pos, n, 0, &je);
            if (!v || !json_is_object(v)) {
                json_decref(v);
                json_decref(a);
                return error("%s:%d:%d: %s", name, line, v ? 1 : je.column, v ? "expected a JSON object" : je.text);
            }
            json_array_append_new(a, v);
        }
        pos += n + 1;
    }
    *out = a;
    return 0;
}

int ev_read_jsonl(const char *path, json_t **out)
{
    char *data;
    size_t len;
    if (hx_read_file(path, &data, &len)) return -1;
    int r = ev_parse_jsonl(path, data, len, out);
    free(data);
    return r;
}
