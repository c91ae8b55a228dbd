/* test_stats.c - the statistics of the evaluation against hand-computed values: bootstrap means, percentile intervals,
 * bootstrap p-values, Holm, Kendall's tau-b (undefined cases), chance-normalised scores, letter distributions, item
 * pairing and the paired teacher-student comparison (Δ, did, retention, n/a). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"

#define REPS 2000

static void test_bootstrap_means(void **state)
{
    (void)state;
    /* one item: every resample is that item */
    double one[1] = {0.75}, two[1] = {-2};
    const double *x1[2] = {one, two};
    double out[6];
    ev_bootstrap_means(x1, 2, 1, 3, 9, out);
    for (int r = 0; r < 3; r++) assert_true(out[2 * r] == 0.75 && out[2 * r + 1] == -2);
    /* the same resample for every vector: b = 2 a gives exactly twice the mean, resample by resample */
    double a[40], b[40];
    for (int i = 0; i < 40; i++) a[i] = (i * 7) % 5, b[i] = 2 * a[i];
    const double *x2[2] = {a, b};
    double *m = xmalloc(2 * 500 * sizeof *m), *m2 = xmalloc(2 * 500 * sizeof *m2);
    ev_bootstrap_means(x2, 2, 40, 500, 3, m);
    ev_bootstrap_means(x2, 2, 40, 500, 3, m2);
    int varied = 0;
    for (int r = 0; r < 500; r++) {
        assert_true(m[2 * r + 1] == 2 * m[2 * r]);
        assert_true(m[2 * r] == m2[2 * r]); /* deterministic for a seed */
        varied |= m[2 * r] != m[0];
    }
    assert_true(varied);
    /* ev_bootstrap_paired is the percentile interval of the means of a - b on the same stream */
    double d[40], *md = xmalloc(500 * sizeof *md);
    for (int i = 0; i < 40; i++) d[i] = a[i] - b[i];
    const double *x3[1] = {d};
    ev_bootstrap_means(x3, 1, 40, 500, 3, md);
    ev_ci c = ev_percentile(md, 500, 0.95), p = ev_bootstrap_paired(a, b, 40, 500, 3, 0.95);
    assert_true(c.lo == p.lo && c.hi == p.hi);
    /* another seed, another stream; named streams differ by name and are stable */
    ev_ci q = ev_bootstrap_paired(a, b, 40, 500, 4, 0.95);
    assert_true(q.lo != p.lo || q.hi != p.hi);
    assert_true(ev_stream_seed(0, "eval", "t") == ev_stream_seed(0, "eval", "t"));
    assert_true(ev_stream_seed(0, "eval", "t") != ev_stream_seed(0, "eval", "u"));
    assert_true(ev_stream_seed(0, "ev", "alt") != ev_stream_seed(0, "eval", "t")); /* the '/' separates the parts */
    free(m);
    free(m2);
    free(md);
}

static void test_percentile_p_holm(void **state)
{
    (void)state;
    /* 1..100 shuffled: nearest-rank 2.5% and 97.5% order statistics are the 3rd and the 98th value */
    double v[100];
    for (int i = 0; i < 100; i++) v[i] = (double)((i * 37) % 100 + 1);
    ev_ci c = ev_percentile(v, 100, 0.95);
    assert_true(c.lo == 3 && c.hi == 98);
    /* infinities sort to the ends: one -inf of 10 replicates is the 0th order statistic, the 5% end of a 90% interval */
    double w[10] = {3, -INFINITY, 1, 2, 5, 4, 6, 8, 7, 9};
    c = ev_percentile(w, 10, 0.90);
    assert_true(isinf(c.lo) && c.lo < 0 && c.hi == 9);
    c = ev_percentile(w, 0, 0.95);
    assert_true(c.lo == 0 && c.hi == 0);
    /* p = min(1, 2 min(1 + #{<= 0}, 1 + #{>= 0}) / (reps + 1)) */
    double p1[3] = {1, 2, 3}, p2[9] = {0}, p3[4] = {-1, 1, 2, 3}, p4[5] = {-3, -2, -1, 0, 1};
    assert_float_equal(ev_bootstrap_p(p1, 3), 2.0 * 1 / 4, 1e-15);
    assert_float_equal(ev_bootstrap_p(p2, 9), 1, 0); /* every replicate 0: no evidence */
    assert_float_equal(ev_bootstrap_p(p3, 4), 2.0 * 2 / 5, 1e-15);
    assert_float_equal(ev_bootstrap_p(p4, 5), 1, 0); /* 2 * min(5, 3) / 6 = 1 */
    double *pos = xmalloc(999 * sizeof *pos);
    for (int i = 0; i < 999; i++) pos[i] = 0.5;
    assert_float_equal(ev_bootstrap_p(pos, 999), 2.0 / 1000, 1e-15); /* the floor 2 / (reps + 1) */
    free(pos);
    /* Holm: sorted 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, but never below the previous: 0.06) */
    double h[3] = {0.01, 0.04, 0.03}, adj[3];
    ev_holm(h, 3, adj);
    assert_float_equal(adj[0], 0.03, 1e-15);
    assert_float_equal(adj[1], 0.06, 1e-15);
    assert_float_equal(adj[2], 0.06, 1e-15);
    double h2[2] = {0.5, 0.01}, h3[2] = {0.6, 0.7};
    ev_holm(h2, 2, adj);
    assert_float_equal(adj[0], 0.5, 1e-15);
    assert_float_equal(adj[1], 0.02, 1e-15);
    ev_holm(h3, 2, adj); /* capped at 1 */
    assert_true(adj[0] == 1 && adj[1] == 1);
    ev_holm(h, 1, adj); /* one test: unchanged */
    assert_float_equal(adj[0], 0.01, 1e-15);
}

/* The bootstrap as it was written first: one hx_rng_below per draw, every vector summed in draw order. */
static void bootstrap_reference(const double *const *x, int k, int n, int reps, uint64_t seed, double *out)
{
    hx_rng g;
    hx_rng_seed(&g, seed);
    for (int r = 0; r < reps; r++) {
        double s[8] = {0};
        for (int i = 0; i < n; i++) {
            uint64_t d = hx_rng_below(&g, (uint64_t)n);
            for (int j = 0; j < k; j++) s[j] += x[j][d];
        }
        for (int j = 0; j < k; j++) out[(size_t)r * k + j] = s[j] / n;
    }
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ev_bootstrap_means draws hx_rng_below's stream and sums in its order (bit for bit, any n and k, inexact values
 * such as -1/3 included), and ev_percentile's selection returns the order statistics a full sort gives (ties,
 * infinities, every level). These keep a report's numbers what they were before the bootstrap was made fast. */
static void test_bootstrap_exact(void **state)
{
    (void)state;
    static const int ns[] = {1, 2, 3, 7, 164, 1000, 3408, 65537, 1000003};
    hx_rng g;
    hx_rng_seed(&g, 11);
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        int n = ns[t], reps = n > 5000 ? 3 : 40;
        for (int k = 1; k <= 6; k += (k < 4 ? 1 : 2)) {
            double *x[6], *out = xmalloc((size_t)reps * k * sizeof *out), *ref = xmalloc((size_t)reps * k * sizeof *ref);
            for (int j = 0; j < k; j++) {
                x[j] = xmalloc((size_t)n * sizeof *x[j]);
                for (int i = 0; i < n; i++) x[j][i] = (hx_rng_below(&g, 3) == 0) ? 1 : -1.0 / 3 + j;
            }
            uint64_t seed = ev_stream_seed(t, "exact", "k");
            ev_bootstrap_means((const double *const *)x, k, n, reps, seed + (uint64_t)k, out);
            bootstrap_reference((const double *const *)x, k, n, reps, seed + (uint64_t)k, ref);
            assert_memory_equal(out, ref, (size_t)reps * k * sizeof *out);
            for (int j = 0; j < k; j++) free(x[j]);
            free(out);
            free(ref);
        }
    }
    /* percentiles: replicates of a few values (ties), with infinities, at several sizes and levels */
    static const double levels[] = {0.95, 0.90, 0.5, 0.99, 1.0, 0.0};
    for (int reps = 1; reps <= 10001; reps = reps * 3 + 1)
        for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
            double *v = xmalloc((size_t)reps * sizeof *v), *w = xmalloc((size_t)reps * sizeof *w);
            for (int i = 0; i < reps; i++) {
                uint64_t u = hx_rng_below(&g, 20);
                v[i] = u == 0 ? INFINITY : u == 1 ? -INFINITY : (double)(u % 7) / 3 - 1;
            }
            memcpy(w, v, (size_t)reps * sizeof *v);
            qsort(w, (size_t)reps, sizeof *w, cmp_dbl);
            int lo = (int)floor((1 - levels[l]) / 2 * reps), hi = (int)ceil((1 + levels[l]) / 2 * reps) - 1;
            if (lo < 0) lo = 0;
            if (hi >= reps) hi = reps - 1;
            if (hi < lo) hi = lo;
            ev_ci c = ev_percentile(v, reps, levels[l]);
            assert_memory_equal(&c.lo, &w[lo], sizeof c.lo);
            assert_memory_equal(&c.hi, &w[hi], sizeof c.hi);
            free(v);
            free(w);
        }
    /* a -0 among the zeros: the rank's zero is the one the sort puts there, sign included */
    double z[5] = {0.0, -0.0, 1, -1, 0.0}, zs[5];
    memcpy(zs, z, sizeof z);
    qsort(zs, 5, sizeof *zs, cmp_dbl);
    int lo = (int)floor((1 - 0.2) / 2 * 5), hi = (int)ceil((1 + 0.2) / 2 * 5) - 1;
    ev_ci c = ev_percentile(z, 5, 0.2);
    assert_true(lo == 2 && (hi == 2 || hi == 3));
    assert_memory_equal(&c.lo, &zs[lo], sizeof c.lo);
    assert_memory_equal(&c.hi, &zs[hi], sizeof c.hi);
}

static void test_kendall_undefined(void **state)
{
    (void)state;
    double x[] = {1, 2, 3}, tied[] = {0.5, 0.5, 0.5}, tau = 42;
    /* undefined: n < 2, or either side all tied; tau is left alone (callers write null, never 0) */
    assert_int_equal(ev_kendall_tau(x, x, 1, &tau), 0);
    assert_int_equal(ev_kendall_tau(x, tied, 3, &tau), 0);
    assert_int_equal(ev_kendall_tau(tied, x, 3, &tau), 0);
    assert_true(tau == 42);
    /* two arms that agree / disagree */
    double y[] = {0.2, 0.1};
    assert_true(ev_kendall_tau(x, y, 2, &tau) && tau == -1);
    assert_true(ev_kendall_tau(x, x, 3, &tau) && tau == 1);
}

/* An item outcome: format, n_choices, LL and generation correctness (letters derived for lettered formats). */
static json_t *item(const char *task, int doc, const char *format, int nc, int ll, int gen)
{
    char id[32];
    snprintf(id, sizeof id, "%s-%03d", task, doc);
    int lettered = !strcmp(format, "mcq") || !strcmp(format, "cloze");
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:b,s:b}", "task", task, "doc_id", id, "split", "eval", "format",
                          format, "n_choices", nc, "answer", 1, "ll_pred", ll ? 1 : 0, "ll_correct", ll, "gen_correct", gen);
    if (lettered) {
        json_object_set_new(o, "gen_pred", gen ? json_string("B") : json_string("A"));
        json_object_set_new(o, "gen_rule", json_string("leading"));
    } else {
        json_object_set_new(o, "gen_pred", json_string(gen ? "paris" : "lyon"));
        json_object_set_new(o, "gen_em", json_boolean(gen));
    }
    return o;
}

static void test_chance(void **state)
{
    (void)state;
    double l, g;
    json_t *m = item("t", 0, "mcq", 4, 1, 1), *o = item("t", 1, "open", 4, 1, 1), *p = item("t", 2, "prose", 5, 1, 1);
    json_t *c = item("t", 3, "cloze", 2, 1, 1), *legacy = json_pack("{s:i,s:s}", "n_choices", 4, "gen_rule", "none");
    assert_int_equal(ev_chance(m, &l, &g), 0);
    assert_true(l == 0.25 && g == 0.25);
    ev_chance(o, &l, &g);
    assert_true(l == 0.25 && g == 0);
    ev_chance(p, &l, &g);
    assert_true(l == 0.2 && g == 0);
    ev_chance(c, &l, &g);
    assert_true(l == 0.5 && g == 0.5);
    ev_chance(legacy, &l, &g); /* no format: lettered when it has a gen_rule */
    assert_true(l == 0.25 && g == 0.25);
    json_object_set_new(legacy, "n_choices", json_integer(0));
    assert_int_equal(ev_chance(legacy, &l, &g), -1);
    json_decref(m); json_decref(o); json_decref(p); json_decref(c); json_decref(legacy);
}

/* The chance-normalised numbers of metrics.json: mcq (chance 1/4 both ways) and open items (LL 1/4, gen 0). */
static void test_metrics_normalised(void **state)
{
    (void)state;
    json_t *r = json_array();
    /* 4 mcq: LL right 3, gen right 2 (one invalid reply); 4 open: LL right 1, gen right 1 */
    int mll[] = {1, 1, 1, 0}, mgen[] = {1, 1, 0, 0}, oll[] = {1, 0, 0, 0}, ogen[] = {0, 1, 0, 0};
    for (int i = 0; i < 4; i++) json_array_append_new(r, item("kn_mcq_x", i, "mcq", 4, mll[i], mgen[i]));
    json_object_set_new(json_array_get(r, 3), "gen_pred", json_null());
    for (int i = 0; i < 4; i++) json_array_append_new(r, item("kn_open_x", i, "open", 4, oll[i], ogen[i]));
    json_t *m = ev_metrics(r, 100, 0);
    assert_non_null(m);
    json_t *mcq = json_object_get(json_object_get(json_object_get(m, "eval"), "tasks"), "kn_mcq_x");
    json_t *open = json_object_get(json_object_get(json_object_get(m, "eval"), "tasks"), "kn_open_x");
    json_t *all = json_object_get(json_object_get(m, "eval"), "all");
    /* mcq: LL (0.75 - 0.25) / 0.75 = 2/3; gen (0.5 - 0.25) / 0.75 = 1/3 */
    assert_float_equal(json_real_value(json_object_get(mcq, "ll_cn")), 2.0 / 3, 1e-12);
    assert_float_equal(json_real_value(json_object_get(mcq, "gen_cn")), 1.0 / 3, 1e-12);
    assert_float_equal(json_real_value(json_object_get(mcq, "gap_cn")), 1.0 / 3, 1e-12);
    assert_float_equal(json_real_value(json_object_get(mcq, "gen_invalid")), 0.25, 1e-12);
    /* open: LL (0.25 - 0.25) / 0.75 = 0, gen 0.25 (chance 0): the raw gap 0 hid a 25 pp generation advantage */
    assert_float_equal(json_real_value(json_object_get(open, "ll_cn")), 0, 1e-12);
    assert_float_equal(json_real_value(json_object_get(open, "gen_cn")), 0.25, 1e-12);
    assert_float_equal(json_real_value(json_object_get(open, "gap")), 0, 1e-12);
    assert_float_equal(json_real_value(json_object_get(open, "gap_cn")), -0.25, 1e-12);
    assert_float_equal(json_real_value(json_object_get(open, "gen_chance")), 0, 1e-12);
    assert_null(json_object_get(open, "letters"));
    /* pooled: the mean of the per-item scores */
    assert_float_equal(json_real_value(json_object_get(all, "ll_cn")), (2.0 / 3 + 0) / 2, 1e-12);
    assert_float_equal(json_real_value(json_object_get(all, "gen_chance")), 0.125, 1e-12);
    json_t *ci = json_object_get(all, "gap_cn_ci");
    double g = json_real_value(json_object_get(all, "gap_cn"));
    assert_true(json_real_value(json_array_get(ci, 0)) <= g && g <= json_real_value(json_array_get(ci, 1)));
    /* letters of the mcq items: gold all B; LL B B B A; gen B B A + one invalid */
    json_t *lt = json_object_get(mcq, "letters");
    assert_non_null(lt);
    assert_int_equal(json_integer_value(json_object_get(lt, "n")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lt, "gold"), "B")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lt, "ll"), "A")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lt, "gen"), "A")), 1);
    assert_int_equal(json_integer_value(json_object_get(lt, "invalid")), 1);
    /* TV: 1/2 (|A 1 - 0| + |B 2 - 4| + invalid 1) / 4 = 0.5; LL: 1/2 (1 + 1) / 4 = 0.25 */
    assert_float_equal(json_real_value(json_object_get(lt, "letter_tv")), 0.5, 1e-12);
    assert_float_equal(json_real_value(json_object_get(lt, "ll_letter_tv")), 0.25, 1e-12);
    assert_string_equal(json_string_value(json_object_get(lt, "top")), "B");
    assert_float_equal(json_real_value(json_object_get(lt, "top_share")), 0.5, 1e-12);
    assert_float_equal(json_real_value(json_object_get(lt, "invalid_share")), 0.25, 1e-12);
    assert_int_equal(json_array_size(json_object_get(lt, "letters")), 4);
    json_decref(m);
    json_decref(r);
}

static void test_letters_collapse(void **state)
{
    (void)state;
    /* "stuck on A": 8 items, gold A B C D twice; every reply A; LL right everywhere */
    json_t *r = json_array();
    for (int i = 0; i < 8; i++) {
        json_t *o = item("kn_mcq_y", i, "mcq", 4, 1, i % 4 == 0);
        json_object_set_new(o, "answer", json_integer(i % 4));
        json_object_set_new(o, "ll_pred", json_integer(i % 4));
        json_object_set_new(o, "gen_pred", json_string("A"));
        json_array_append_new(r, o);
    }
    json_array_append_new(r, item("kn_open_y", 0, "open", 4, 1, 1)); /* not lettered: not counted */
    json_t *lt;
    assert_int_equal(ev_letters(r, "eval", NULL, &lt), 0);
    assert_non_null(lt);
    assert_int_equal(json_integer_value(json_object_get(lt, "n")), 8);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lt, "gen"), "A")), 8);
    /* 1/2 (|8 - 2| + 2 + 2 + 2) / 8 = 0.75 */
    assert_float_equal(json_real_value(json_object_get(lt, "letter_tv")), 0.75, 1e-12);
    assert_float_equal(json_real_value(json_object_get(lt, "ll_letter_tv")), 0, 1e-12);
    assert_string_equal(json_string_value(json_object_get(lt, "top")), "A");
    assert_float_equal(json_real_value(json_object_get(lt, "top_share")), 1, 1e-12);
    json_decref(lt);
    /* no lettered item of the selection: no distributions; a malformed outcome: an error naming it */
    assert_int_equal(ev_letters(r, "eval", "kn_open_*", &lt), 0);
    assert_null(lt);
    json_object_del(json_array_get(r, 2), "ll_correct");
    assert_int_equal(ev_letters(r, "eval", NULL, &lt), -1);
    assert_null(lt);
    assert_non_null(strstr(hx_last_error(), "item outcome 2"));
    json_decref(r);
}

static void test_pair_items(void **state)
{
    (void)state;
    json_t *a = json_array(), *b = json_array();
    for (int i = 0; i < 5; i++) json_array_append_new(a, item("kn_mcq_x", i, "mcq", 4, 1, 0));
    for (int i = 4; i >= 1; i--) json_array_append_new(b, item("kn_mcq_x", i, "mcq", 4, 0, 1)); /* 1..4, reversed */
    json_array_append_new(b, item("kn_mcq_x", 9, "mcq", 4, 0, 1));
    json_array_append_new(b, item("kn_open_x", 0, "open", 4, 0, 1));
    ev_pairs p;
    assert_int_equal(ev_pair_items(a, b, "eval", "kn_mcq_*", &p), 0);
    assert_int_equal(p.n, 4); /* docs 1..4 in A's order */
    assert_int_equal(p.only_a, 1);
    assert_int_equal(p.only_b, 1); /* doc 9; the open item is outside the selection */
    assert_string_equal(json_string_value(json_object_get(p.a[0], "doc_id")), "kn_mcq_x-001");
    assert_string_equal(json_string_value(json_object_get(p.b[0], "doc_id")), "kn_mcq_x-001");
    assert_true(p.ll_a[0] == 1 && p.ll_b[0] == 0 && p.gen_b[0] == 1);
    assert_float_equal(p.lcn_b[0], -1.0 / 3, 1e-15); /* wrong at chance 1/4: -c / (1 - c) */
    ev_pairs_release(&p);
    /* a doc_id twice on one side is refused, not paired twice */
    json_array_append_new(b, item("kn_mcq_x", 2, "mcq", 4, 0, 1));
    assert_int_equal(ev_pair_items(a, b, "eval", NULL, &p), -1);
    assert_non_null(strstr(hx_last_error(), "kn_mcq_x-002 occurs twice"));
    json_array_remove(b, json_array_size(b) - 1);
    /* the same doc id naming another item (another answer) is refused */
    json_object_set_new(json_array_get(b, 0), "answer", json_integer(2));
    assert_int_equal(ev_pair_items(a, b, "eval", NULL, &p), -1);
    assert_non_null(strstr(hx_last_error(), "is not the same item"));
    json_object_set_new(json_array_get(b, 0), "answer", json_integer(1));
    json_object_del(json_array_get(a, 0), "doc_id");
    assert_int_equal(ev_pair_items(a, b, "eval", NULL, &p), -1);
    assert_non_null(strstr(hx_last_error(), "no \"doc_id\""));
    json_decref(a);
    json_decref(b);
}

/* Teacher and student on 4 open items, each 10 times (doc ids differ): teacher LL 1 1 1 0, gen 1 1 0 0;
 * student LL 1 1 0 0, gen 0 0 0 0. LL chance 1/4 (right 1, wrong -1/3), generation chance 0. */
static void ts_items(json_t **t, json_t **s, int copies)
{
    int tl[] = {1, 1, 1, 0}, tg[] = {1, 1, 0, 0}, sl[] = {1, 1, 0, 0}, sg[] = {0, 0, 0, 0};
    *t = json_array();
    *s = json_array();
    for (int c = 0; c < copies; c++)
        for (int i = 0; i < 4; i++) {
            json_array_append_new(*t, item("kn_open_x", 4 * c + i, "open", 4, tl[i], tg[i]));
            json_array_append_new(*s, item("kn_open_x", 4 * c + i, "open", 4, sl[i], sg[i]));
        }
}

static double jnum(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void assert_ci_holds(const json_t *r, const char *k)
{
    char *ck = xstrfmt("%s_ci", k);
    json_t *ci = json_object_get(r, ck);
    free(ck);
    assert_int_equal(json_array_size(ci), 2);
    double v = jnum(r, k);
    assert_true(json_number_value(json_array_get(ci, 0)) <= v + 1e-12 && v - 1e-12 <= json_number_value(json_array_get(ci, 1)));
}

static void test_compare(void **state)
{
    (void)state;
    json_t *t, *s;
    ts_items(&t, &s, 10);
    ev_pairs p;
    assert_int_equal(ev_pair_items(t, s, "eval", NULL, &p), 0);
    assert_int_equal(p.n, 40);
    json_t *r = ev_compare(&p, REPS, 5);
    /* teacher LL (3 - 1/3) / 4 = 2/3, student (2 - 2/3) / 4 = 1/3: ΔLL = -1/3 (raw: 0.5 - 0.75 = -0.25);
     * generation (chance 0): 0.5 -> 0: ΔGen = -0.5; did = -0.5 + 1/3 = -1/6; retention LL 1/2, Gen 0 */
    assert_float_equal(jnum(r, "delta_ll"), -1.0 / 3, 1e-12);
    assert_float_equal(jnum(r, "delta_gen"), -0.5, 1e-12);
    assert_float_equal(jnum(r, "did"), -1.0 / 6, 1e-12);
    assert_float_equal(jnum(r, "ll_retention"), 0.5, 1e-12);
    assert_float_equal(jnum(r, "gen_retention"), 0, 1e-12);
    assert_float_equal(jnum(r, "delta_ll_raw"), -0.25, 1e-12);
    assert_float_equal(jnum(r, "delta_gen_raw"), -0.5, 1e-12);
    assert_float_equal(jnum(r, "a_ll_cn"), 2.0 / 3, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(r, "n")), 40);
    const char *ks[] = {"delta_ll", "delta_gen", "did", "ll_retention", "gen_retention"};
    for (int i = 0; i < 5; i++) assert_ci_holds(r, ks[i]);
    /* every resample's ΔGen is below 0 (the student never generates right, the teacher does on 20 of 40) */
    assert_true(json_number_value(json_array_get(json_object_get(r, "delta_gen_ci"), 1)) < 0);
    double pd = jnum(r, "did_p");
    assert_true(pd > 0 && pd <= 1);
    assert_int_equal(json_object_size(json_object_get(r, "na")), 0);
    /* deterministic for a seed */
    json_t *r2 = ev_compare(&p, REPS, 5);
    assert_true(json_equal(r, r2));
    json_decref(r2);
    json_decref(r);
    ev_pairs_release(&p);

    /* the student as the baseline on 4 items: its LL accuracy 2/4 has the Wilson interval [0.15, 0.85], which holds
     * chance 1/4, and its generation 0/4 is at chance 0: both retentions n/a, with the reason; the deltas stay */
    json_decref(t);
    json_decref(s);
    ts_items(&t, &s, 1);
    ev_pair_items(s, t, "eval", NULL, &p);
    r = ev_compare(&p, REPS, 5);
    assert_true(json_is_null(json_object_get(r, "ll_retention")) && json_is_null(json_object_get(r, "ll_retention_ci")));
    assert_true(json_is_null(json_object_get(r, "gen_retention")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "na"), "ll_retention")),
                        "the baseline's LL accuracy 50.0% [15.0, 85.0] is not above chance (25.0%)");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "na"), "gen_retention")),
                        "the baseline's generation accuracy 0.0% [0.0, 49.0] is not above chance (0.0%)");
    assert_float_equal(jnum(r, "did"), 1.0 / 6, 1e-12);
    json_decref(r);
    ev_pairs_release(&p);
    json_decref(s);

    /* identical models: every replicate 0, p = 1, retention exactly 1 */
    json_decref(t);
    ts_items(&t, &s, 10);
    json_decref(s);
    ev_pair_items(t, t, "eval", NULL, &p);
    r = ev_compare(&p, REPS, 5);
    assert_true(jnum(r, "did") == 0 && jnum(r, "did_p") == 1);
    json_t *dci = json_object_get(r, "did_ci");
    assert_true(json_number_value(json_array_get(dci, 0)) == 0 && json_number_value(json_array_get(dci, 1)) == 0);
    assert_float_equal(jnum(r, "ll_retention"), 1, 1e-12);
    json_decref(r);
    ev_pairs_release(&p);

    /* no paired items: every statistic null, with the reason */
    ev_pair_items(t, t, "heldout", NULL, &p);
    r = ev_compare(&p, REPS, 5);
    assert_true(json_is_null(json_object_get(r, "did")) && json_is_null(json_object_get(r, "did_p")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "na"), "delta_ll")), "no paired items");
    json_decref(r);
    ev_pairs_release(&p);
    json_decref(t);
}

/* The seed aggregate (docs/eval.md "Seeds") against values computed by hand from its formulas. */
static void test_seed_mean(void **state)
{
    (void)state;
    /* t quantiles: the table, and the expansion above df 30 (exact: t(40) = 2.021075, t(120) = 1.979930) */
    assert_float_equal(ev_t95(1), 12.7062047, 1e-7);
    assert_float_equal(ev_t95(2), 4.30265273, 1e-7);
    assert_float_equal(ev_t95(40), 2.021075, 1e-4);
    assert_float_equal(ev_t95(120), 1.979930, 1e-4);
    /* 2 seeds x 4 items: theta = 0.75, 0.5 -> mean 0.625, sd_seed = 0.125 sqrt(2);
     * vbar = 1, 0, 0.5, 1: sum of squares about 0.625 = 0.6875, se_item = sqrt(0.6875 / 3 / 4);
     * se = sqrt((12.7062047 / 1.959964)^2 * 0.03125 / 2 + 0.6875 / 12) = 0.844970 */
    double v[] = {1, 0, 1, 1, /* seed 0 */ 1, 0, 0, 1 /* seed 1 */};
    ev_seedstat r = ev_seed_mean(v, 2, 4);
    assert_float_equal(r.mean, 0.625, 1e-12);
    assert_float_equal(r.sd_seed, 0.125 * sqrt(2), 1e-12);
    assert_float_equal(r.se_item, sqrt(0.6875 / 12), 1e-12);
    assert_float_equal(r.se, 0.8449700068, 1e-8);
    assert_float_equal(r.lo, -1.0311107814, 1e-8);
    assert_float_equal(r.hi, 2.2811107814, 1e-8);
    assert_float_equal(r.p, 0.4594995122, 1e-8);
    /* 3 identical seeds: no seed variance; the interval is the item one, mean -+ 1.96 sqrt(1/12), p = 2(1 - Phi(sqrt 3)) */
    double w[] = {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    r = ev_seed_mean(w, 3, 4);
    assert_float_equal(r.sd_seed, 0, 1e-12);
    assert_float_equal(r.hi - r.mean, EV_Z95 * sqrt(1.0 / 12), 1e-12);
    assert_float_equal(r.p, 0.0832645167, 1e-8);
    /* every value equal: se = 0, p = 0 (mean not 0) */
    double u[] = {1, 1, 1, 1};
    r = ev_seed_mean(u, 2, 2);
    assert_float_equal(r.se, 0, 0);
    assert_float_equal(r.p, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_means), cmocka_unit_test(test_bootstrap_exact),
        cmocka_unit_test(test_percentile_p_holm),
        cmocka_unit_test(test_kendall_undefined), cmocka_unit_test(test_chance),
        cmocka_unit_test(test_metrics_normalised), cmocka_unit_test(test_letters_collapse),
        cmocka_unit_test(test_pair_items), cmocka_unit_test(test_compare), cmocka_unit_test(test_seed_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
