/* report_rank.c - a report table's rankings by LL and by generation accuracy, Kendall's tau, the pairwise
 * interactions with Holm's correction and the significance-gated ranking reversals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "evalsuite/stats.h"
#include "reports/report.h"
#include "reports/report_internal.h"

/*
 * Rankings of the arm rows by LL and by generation accuracy, Kendall's tau-b between them (null when undefined),
 * and for every pair of arms the interaction did_b - did_a = Δgen(b-a) - ΔLL(b-a) on their paired items
 * (chance-normalised, paired bootstrap) with Holm's correction over the pairs. A reversal (the two measures order
 * the pair differently) is reported only when its interaction is significant after Holm.
 */
void rp_rankings(rp_tab *c, json_t *rows, json_t *tab)
{
    int n = 0;
    size_t cap = json_array_size(rows);
    json_t **r = xcalloc(cap + 1, sizeof *r);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o)
        if (!json_is_true(json_object_get(o, "teacher")) && json_is_number(json_object_get(o, "ll_acc"))) r[n++] = o;
    json_t *inter = json_array(), *rev = json_array(), *largest = json_null();
    if (n >= 2) {
        double *x = xmalloc((size_t)n * sizeof *x), *y = xmalloc((size_t)n * sizeof *y);
        int *ox = xmalloc((size_t)n * sizeof *ox), *oy = xmalloc((size_t)n * sizeof *oy);
        for (int k = 0; k < n; k++) {
            x[k] = rp_num(r[k], "ll_acc");
            y[k] = rp_num(r[k], "gen_acc");
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
        double tau;
        int has_tau = ev_kendall_tau(x, y, n, &tau);
        json_object_set_new(tab, "ranking", json_pack("{s:o,s:o,s:o}", "ll", ll, "gen", gen, "kendall_tau",
                                                      has_tau ? hx_json_num(tau) : json_null()));
        /* the interaction of every pair; p-values for Holm */
        int np = n * (n - 1) / 2, m = 0;
        double *pv = xmalloc((size_t)np * sizeof *pv), *adj = xmalloc((size_t)np * sizeof *adj);
        json_t **ent = xcalloc((size_t)np, sizeof *ent);
        const char **pa = xcalloc((size_t)np + 1, sizeof *pa), **pb = xcalloc((size_t)np + 1, sizeof *pb);
        const json_t *s0, *k0;
        for (int a = 0, q = 0; a < n; a++)
            for (int b = a + 1; b < n; b++, q++)
                if (rp_row_seeds(r[a], &s0, &k0) <= 1 && rp_row_seeds(r[b], &s0, &k0) <= 1)
                    pa[q] = hx_json_str(r[a], "key"), pb[q] = hx_json_str(r[b], "key");
        if (c->src) rp_compare_prefetch(c->sh, pa, pb, np, c->split, c->task);
        free(pa);
        free(pb);
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                const char *ka = hx_json_str(r[a], "key"), *kb = hx_json_str(r[b], "key");
                json_t *ia = rp_items_of(c, ka, hx_json_str(r[a], "label")), *ib = rp_items_of(c, kb, hx_json_str(r[b], "label"));
                json_t *e = json_pack("{s:O,s:O,s:[o,o],s:[o,o],s:b}", "a", json_object_get(r[a], "label"), "b",
                                      json_object_get(r[b], "label"), "ll", hx_json_num(x[a]), hx_json_num(x[b]), "gen",
                                      hx_json_num(y[a]), hx_json_num(y[b]), "reversed",
                                      (x[a] - x[b]) * (y[a] - y[b]) < 0);
                json_t *cmp = rp_row_seeds(r[a], &s0, &k0) > 1 || rp_row_seeds(r[b], &s0, &k0) > 1 ? rp_seed_interaction(c, r[a], r[b]) : NULL;
                if (!cmp && ia && ib) cmp = rp_compare(c->sh, ka, kb, c->split, c->task, ia, ib, NULL, NULL);
                json_object_set_new(e, "n_paired", cmp ? json_copy(json_object_get(cmp, "n")) : json_null());
                json_object_set_new(e, "did_diff", cmp ? json_copy(json_object_get(cmp, "did")) : json_null());
                json_object_set_new(e, "did_diff_ci", cmp ? json_copy(json_object_get(cmp, "did_ci")) : json_null());
                json_object_set_new(e, "p", cmp ? json_copy(json_object_get(cmp, "did_p")) : json_null());
                if (json_is_number(json_object_get(e, "p"))) pv[m] = rp_num(e, "p"), ent[m++] = e;
                json_decref(cmp);
                json_array_append_new(inter, e);
            }
        ev_holm(pv, m, adj);
        for (int k = 0; k < m; k++) json_object_set_new(ent[k], "p_holm", hx_json_num(adj[k]));
        double best = -1;
        json_array_foreach(inter, i, o) {
            int sig = json_is_number(json_object_get(o, "p_holm")) && rp_num(o, "p_holm") < 0.05;
            if (!json_object_get(o, "p_holm")) json_object_set_new(o, "p_holm", json_null());
            json_object_set_new(o, "significant", json_boolean(sig));
            if (!json_is_true(json_object_get(o, "reversed"))) continue;
            if (sig) {
                json_array_append(rev, o);
            } else if (fabs(rp_num(o, "did_diff")) > best) {
                best = fabs(rp_num(o, "did_diff"));
                json_decref(largest);
                largest = json_incref(o);
            }
        }
        json_object_set_new(tab, "n_pairs", json_integer(m));
        free(pv); free(adj); free(ent);
        free(x); free(y); free(ox); free(oy);
    } else {
        json_object_set_new(tab, "ranking", json_null());
    }
    json_object_set_new(tab, "interactions", inter);
    json_object_set_new(tab, "reversals", rev);
    json_object_set_new(tab, "largest_nonsignificant_reversal", largest);
    free(r);
}
