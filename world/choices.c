/* choices.c - multiple-choice material of instruction MCQs and benchmarks: object pools, distractors, letters. */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"
#include "base/sort.h"

#include <stdlib.h>
#include <string.h>

/* Distinct objects of one relation: among the selected facts, or all usable facts when too few. */
static void pool_build(pool *pl, const world_facts *fs, int rel)
{
    pl->s = xmalloc(sizeof *pl->s * ((size_t)fs->n + 1));
    pl->n = 0;
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].rel == rel) pl->s[pl->n++] = fs->f[i].object;
    qsort(pl->s, (size_t)pl->n, sizeof *pl->s, hx_cmp_str);
    int m = 0;
    for (int i = 0; i < pl->n; i++)
        if (!m || !w_strcaseeq(pl->s[i], pl->s[m - 1])) pl->s[m++] = pl->s[i];
    pl->n = m;
}

static int choice_ok(const world_fact *f, const char *c, const char **chosen, int nc)
{
    for (int i = 0; i < f->n_exclude; i++)
        if (w_strcaseeq(f->exclude[i], c)) return 0;
    for (int i = 0; i < f->n_aliases; i++)
        if (w_strcaseeq(f->aliases[i], c)) return 0;
    for (int i = 0; i < nc; i++)
        if (w_strcaseeq(chosen[i], c)) return 0;
    return 1;
}

/* Three distractors of the same relation; 0 or -1 when the pool has too few. */
int w_pick_distractors(hx_rng *r, const world_fact *f, const pool *sel, const pool *all, const char *out[3])
{
    const char *chosen[4] = {f->object};
    int nc = 1;
    const pool *pls[2] = {sel, all};
    for (int pi = 0; pi < 2 && nc < 4; pi++) {
        const pool *pl = pls[pi];
        for (int tries = 0; tries < 64 && nc < 4 && pl->n; tries++) {
            const char *c = pl->s[hx_rng_below(r, (uint64_t)pl->n)];
            if (choice_ok(f, c, chosen, nc)) chosen[nc++] = c;
        }
        if (nc < 4 && pl->n) { /* small pools: a seeded scan */
            int start = (int)hx_rng_below(r, (uint64_t)pl->n);
            for (int k = 0; k < pl->n && nc < 4; k++) {
                const char *c = pl->s[(start + k) % pl->n];
                if (choice_ok(f, c, chosen, nc)) chosen[nc++] = c;
            }
        }
    }
    if (nc < 4) return -1;
    for (int i = 0; i < 3; i++) out[i] = chosen[i + 1];
    return 0;
}

json_t *w_choices_json(const char *gold, const char *const d[3], int answer)
{
    json_t *a = json_array();
    for (int i = 0, k = 0; i < 4; i++) json_array_append_new(a, json_string(i == answer ? gold : d[k++]));
    return a;
}

json_t *w_str_array(char **s, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(s[i]));
    return a;
}

/* Objects of every mentioned fact, any relation, sorted for bsearch with hx_cmp_str_case. */
static char **mentioned_objects(const world *w, int *n)
{
    char **s = xmalloc(sizeof *s * ((size_t)w->facts.n + 1));
    *n = 0;
    for (int i = 0; i < w->facts.n; i++)
        if (w->facts.f[i].split != WORLD_SPLIT_HELDOUT) s[(*n)++] = w->facts.f[i].object;
    qsort(s, (size_t)*n, sizeof *s, hx_cmp_str_case);
    return s;
}

/* Objects of heldout facts that no mentioned fact has (seen: mentioned_objects), sorted for hx_cmp_str_case. */
static char **heldout_only_objects(const world *w, char *const *seen, int nseen, int *n)
{
    char **s = xmalloc(sizeof *s * ((size_t)w->facts.n + 1));
    *n = 0;
    for (int i = 0; i < w->facts.n; i++) {
        char *o = w->facts.f[i].object;
        if (w->facts.f[i].split == WORLD_SPLIT_HELDOUT &&
            !bsearch(&o, seen, (size_t)nseen, sizeof *seen, hx_cmp_str_case))
            s[(*n)++] = o;
    }
    qsort(s, (size_t)*n, sizeof *s, hx_cmp_str_case);
    return s;
}

/* dst: src without the strings of `drop` (sorted for hx_cmp_str_case); order kept. */
static void pool_without(pool *dst, const pool *src, char *const *drop, int ndrop)
{
    dst->s = xmalloc(sizeof *dst->s * ((size_t)src->n + 1));
    dst->n = 0;
    for (int i = 0; i < src->n; i++)
        if (!bsearch(&src->s[i], drop, (size_t)ndrop, sizeof *drop, hx_cmp_str_case)) dst->s[dst->n++] = src->s[i];
}

void w_pools_init(rel_pools *rp, const world *w)
{
    int nrel, nseen, nhidden;
    world_relations(&nrel);
    if (nrel > 32) BUG("too many relations");
    char **seen = mentioned_objects(w, &nseen);
    char **hidden = heldout_only_objects(w, seen, nseen, &nhidden);
    for (int r = 0; r < nrel; r++) {
        pool_build(&rp->sel[r], &w->facts, r);
        pool_build(&rp->all[r], &w->usable, r);
        pool_build(&rp->unseen[r], &w->usable, r);
        pool *u = &rp->unseen[r];
        int m = 0;
        for (int i = 0; i < u->n; i++)
            if (!bsearch(&u->s[i], seen, (size_t)nseen, sizeof *seen, hx_cmp_str_case)) u->s[m++] = u->s[i];
        u->n = m;
        rp->none[r] = (pool){NULL, 0};
        pool_without(&rp->sel_text[r], &rp->sel[r], hidden, nhidden);
        pool_without(&rp->all_text[r], &rp->all[r], hidden, nhidden);
    }
    free(seen);
    free(hidden);
}

void w_pools_free(rel_pools *rp)
{
    int nrel;
    world_relations(&nrel);
    for (int r = 0; r < nrel; r++) {
        free(rp->sel[r].s);
        free(rp->all[r].s);
        free(rp->unseen[r].s);
        free(rp->sel_text[r].s);
        free(rp->all_text[r].s);
    }
}

/* Balanced letters: n is a multiple of 4 and every position occurs n/4 times, in seeded order. */
int *w_balanced_positions(hx_rng *r, int n)
{
    int *pos = xmalloc(sizeof *pos * ((size_t)n + 1));
    for (int i = 0; i < n; i++) pos[i] = i % 4;
    w_shuffle_int(r, pos, n);
    return pos;
}
