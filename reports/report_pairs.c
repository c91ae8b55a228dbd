/* report_pairs.c - what a report's tables and findings share: each eval's items loaded once, and each paired
 * comparison (ev_compare on its own bootstrap stream) computed once, many of them in parallel. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "evalsuite/metrics.h"
#include "reports/report.h"
#include "reports/report_internal.h"

void rp_shared_init(rp_shared *sh, const rp_source *src)
{
    sh->src = src;
    sh->items = json_object();
    sh->cmps = json_object();
}

void rp_shared_release(rp_shared *sh)
{
    json_decref(sh->items);
    json_decref(sh->cmps);
    memset(sh, 0, sizeof *sh);
}

json_t *rp_shared_items(rp_shared *sh, const char *key)
{
    if (!sh->src) {
        error("no source of store entries");
        return NULL;
    }
    json_t *v = json_object_get(sh->items, key);
    if (v) {
        if (json_is_string(v)) error("%s", json_string_value(v));
        return json_is_array(v) ? v : NULL;
    }
    v = sh->src->load(sh->src->ud, key, "items.jsonl");
    json_object_set_new(sh->items, key, v ? v : json_string(hx_last_error()));
    return v;
}

/* The cache key of a comparison: the two entries, the split and the task (NULL apart from ""). xmalloc'd. */
static char *cmp_key(const char *ka, const char *kb, const char *split, const char *task)
{
    return xstrfmt("%s\x1f%s\x1f%s\x1f%s%s", ka, kb, split, task ? "=" : "", task ? task : "");
}

static json_t *cmp_entry(json_t *cmp, const ev_pairs *p)
{
    return json_pack("{s:o,s:i,s:i}", "cmp", cmp, "only_a", p->only_a, "only_b", p->only_b);
}

json_t *rp_compare(rp_shared *sh, const char *ka, const char *kb, const char *split, const char *task, const json_t *ia,
                   const json_t *ib, int *only_a, int *only_b)
{
    char *k = cmp_key(ka, kb, split, task);
    json_t *e = json_object_get(sh->cmps, k);
    if (!e) {
        ev_pairs p = {0};
        if (ev_pair_items(ia, ib, split, task, &p)) {
            free(k);
            return NULL;
        }
        e = cmp_entry(ev_compare(&p, RP_BOOT_REPS, rp_pair_seed(0, ka, kb, split, task)), &p);
        json_object_set_new(sh->cmps, k, e);
        ev_pairs_release(&p);
    }
    free(k);
    if (only_a) *only_a = (int)json_integer_value(json_object_get(e, "only_a"));
    if (only_b) *only_b = (int)json_integer_value(json_object_get(e, "only_b"));
    return json_deep_copy(json_object_get(e, "cmp"));
}

void rp_compare_prefetch(rp_shared *sh, const char *const *ka, const char *const *kb, int m, const char *split,
                         const char *task)
{
    const json_t **ia = xcalloc((size_t)m + 1, sizeof *ia), **ib = xcalloc((size_t)m + 1, sizeof *ib);
    char **key = xcalloc((size_t)m + 1, sizeof *key);
    uint64_t *seed = xcalloc((size_t)m + 1, sizeof *seed);
    json_t **out = xcalloc((size_t)m + 1, sizeof *out);
    ev_pairs *p = xcalloc((size_t)m + 1, sizeof *p);
    int n = 0;
    /* the loads (and the JSON they fill) in order; a pair whose items are missing is left to rp_compare */
    for (int i = 0; i < m; i++) {
        if (!ka[i] || !kb[i]) continue;
        char *k = cmp_key(ka[i], kb[i], split, task);
        int dup = json_object_get(sh->cmps, k) != NULL;
        for (int j = 0; j < n && !dup; j++) dup = !strcmp(key[j], k);
        ia[n] = dup ? NULL : rp_shared_items(sh, ka[i]);
        ib[n] = ia[n] ? rp_shared_items(sh, kb[i]) : NULL;
        if (!ib[n]) {
            free(k);
            continue;
        }
        seed[n] = rp_pair_seed(0, ka[i], kb[i], split, task);
        key[n++] = k;
    }
    /* pairing and bootstrap per comparison, each on its own stream: the order they run in changes nothing. Only
     * reads of the shared items; a pairing that fails (its error is the thread's) is left to rp_compare too. */
#pragma omp parallel for schedule(dynamic, 1)
    for (int j = 0; j < n; j++)
        if (!ev_pair_items(ia[j], ib[j], split, task, &p[j])) out[j] = ev_compare(&p[j], RP_BOOT_REPS, seed[j]);
    for (int j = 0; j < n; j++) {
        if (out[j]) json_object_set_new(sh->cmps, key[j], cmp_entry(out[j], &p[j]));
        ev_pairs_release(&p[j]);
        free(key[j]);
    }
    free(ia);
    free(ib);
    free(key);
    free(seed);
    free(out);
    free(p);
}
