/* bench_knowledge.c - the knowledge benchmarks: MCQ, open and prose questions about eval and heldout facts. */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The prose question of a fact: the prefix of one of its relation's prose templates that end with the object,
 * preferring templates its corpus mentions did not use (`used`: bit t = prose template t), so the question
 * is a paraphrase where one is left; at paraphrases >= templates every template is used and any may come. */
static char *prose_question(hx_rng *r, const world_fact *f, uint32_t used)
{
    const char *const *prose = world_relations(NULL)[f->rel].prose;
    int elig[32], ne = 0, fresh[32], nf = 0;
    for (int t = 0; prose[t] && t < 32; t++) {
        char *q = world_render_prefix(prose[t], f);
        if (!q) continue;
        elig[ne++] = t;
        if (!(used >> t & 1)) fresh[nf++] = t;
        free(q);
    }
    if (!ne) BUG("relation %s has no prose template ending with its object", world_relations(NULL)[f->rel].name);
    int t = nf ? fresh[hx_rng_below(r, (uint64_t)nf)] : elig[hx_rng_below(r, (uint64_t)ne)];
    return world_render_prefix(prose[t], f);
}

/* The facts of one family and split that have three distractors from pools[rel] (then fallback[rel]), in
 * seeded order, asked three ways: items go to tasks task[0..2] (mcq, open, prose) when `emit`, else only the
 * random streams advance. kn_prose shares kn_open's answer positions; its choices are the objects as prose
 * writes them. asked[rel] / dropped[rel] (may be NULL) count facts with items / without three distractors. */
static void bench_split(world *w, const int task[3], int fam, int split, hx_rng *r, hx_rng *rq, const pool *pools,
                        const pool *fallback, const uint32_t *used, int emit, int *asked, int *dropped)
{
    const world_relation *rels = world_relations(NULL);
    int n = 0;
    int *idx = xmalloc(sizeof *idx * ((size_t)w->facts.n + 1));
    const char *(*dis)[3] = xmalloc(sizeof *dis * ((size_t)w->facts.n + 1));
    for (int i = 0; i < w->facts.n; i++) {
        const world_fact *f = &w->facts.f[i];
        if (f->split != split || rels[f->rel].family != fam) continue;
        if (w_pick_distractors(r, f, &pools[f->rel], &fallback[f->rel], dis[n]) < 0) {
            if (dropped) dropped[f->rel]++;
            continue;
        }
        idx[n++] = i;
    }
    int *perm = xmalloc(sizeof *perm * ((size_t)n + 1));
    for (int i = 0; i < n; i++) perm[i] = i;
    w_shuffle_int(r, perm, n);
    int take = w->p.bench_max && w->p.bench_max < n ? w->p.bench_max : n;
    take -= take % 4;
    int *pos_m = w_balanced_positions(r, take), *pos_o = w_balanced_positions(r, take);
    for (int k = 0; k < take; k++) {
        const world_fact *f = &w->facts.f[idx[perm[k]]];
        char *pq = prose_question(rq, f, used[idx[perm[k]]]);
        if (!emit) {
            free(pq);
            continue;
        }
        if (asked) asked[f->rel]++;
        const char *const *d = dis[perm[k]];
        const world_relation *rel = &rels[f->rel];
        char *q = world_render(rel->question[0], f);
        char *pd[3];
        for (int j = 0; j < 3; j++) pd[j] = world_object_text(f->rel, d[j]);
        for (int kind = 0; kind < 3; kind++) { /* mcq, open, prose */
            world_task *t = &w->tasks[task[kind]];
            int ans = kind ? pos_o[k] : pos_m[k];
            json_t *o = json_object();
            char id[64];
            snprintf(id, sizeof id, "%s-%05zu", t->name, json_array_size(t->items));
            json_object_set_new(o, "doc_id", json_string(id));
            json_object_set_new(o, "fact_id", json_string(f->id));
            json_object_set_new(o, "task", json_string(t->name));
            json_object_set_new(o, "relation", json_string(rel->name));
            json_object_set_new(o, "split", json_string(world_split_name(f->split)));
            json_object_set_new(o, "format", json_string(kind == 0 ? "mcq" : kind == 1 ? "open" : "prose"));
            json_object_set_new(o, "question", json_string(kind == 2 ? pq : q));
            if (kind == 2) json_object_set_new(o, "choices", w_choices_json(f->obj_text, (const char *const *)pd, ans));
            else json_object_set_new(o, "choices", w_choices_json(f->object, d, ans));
            json_object_set_new(o, "answer", json_integer(ans));
            json_object_set_new(o, "target", json_string(kind == 2 ? f->obj_text : f->object));
            if (kind) json_object_set_new(o, "aliases", w_str_array(f->aliases, f->n_aliases));
            json_array_append_new(t->items, o);
        }
        for (int j = 0; j < 3; j++) free(pd[j]);
        free(q);
        free(pq);
    }
    free(pos_m); free(pos_o); free(perm); free(idx); free(dis);
}

/* kn_mcq_<family>, kn_open_<family> and kn_prose_<family>: eval items, then heldout items.
 * Eval distractors are objects of selected facts of the relation (all usable facts when too few). Heldout
 * items are a chance-level control: their distractors are only objects that no mentioned fact has
 * (rp->unseen), else the model would prefer the familiar distractors to the never-seen answer and score
 * below chance; a heldout fact whose relation has fewer than three such objects gets no items
 * (stats.heldout). The heldout draw has its own streams; the shared streams first replay the data kind's
 * version-3 heldout draw, so eval items keep their bytes. */
void w_build_knowledge(world *w, const rel_pools *rp)
{
    int nrel;
    const world_relation *rels = world_relations(&nrel);
    hx_rng r, rq, rh, rhq;
    w_rng_for(&r, w->p.seed, RNG_BENCH);
    w_rng_for(&rq, w->p.seed, RNG_PROSE);
    w_rng_for(&rh, w->p.seed, RNG_HELDOUT);
    w_rng_for(&rhq, w->p.seed, RNG_HELDOUT_PROSE);
    uint32_t *used = xcalloc((size_t)w->facts.n + 1, sizeof *used);
    for (int m = 0; m < w->n_mentions; m++) used[w->mention_fact[m]] |= 1u << (w->mention_tpl[m] & 31);
    int asked[32] = {0}, dropped[32] = {0};
    for (int fam = 0; fam < WORLD_N_FAM; fam++) {
        char name[48];
        int task[3];
        snprintf(name, sizeof name, "kn_mcq_%s", world_family_name(fam));
        task[0] = w_task_add(w, name);
        snprintf(name, sizeof name, "kn_open_%s", world_family_name(fam));
        task[1] = w_task_add(w, name);
        snprintf(name, sizeof name, "kn_prose_%s", world_family_name(fam));
        task[2] = w_task_add(w, name);
        bench_split(w, task, fam, WORLD_SPLIT_EVAL, &r, &rq, rp->sel, rp->all, used, 1, NULL, NULL);
        bench_split(w, task, fam, WORLD_SPLIT_HELDOUT, &r, &rq, rp->sel, rp->all, used, 0, NULL, NULL);
        bench_split(w, task, fam, WORLD_SPLIT_HELDOUT, &rh, &rhq, rp->unseen, rp->none, used, 1, asked, dropped);
    }
    free(used);
    json_t *hs = json_object(), *br = json_object();
    int n_asked = 0, n_dropped = 0, n_facts = 0;
    for (int i = 0; i < w->facts.n; i++) n_facts += w->facts.f[i].split == WORLD_SPLIT_HELDOUT;
    for (int rel = 0; rel < nrel; rel++) {
        int nf = 0;
        for (int i = 0; i < w->facts.n; i++)
            nf += w->facts.f[i].split == WORLD_SPLIT_HELDOUT && w->facts.f[i].rel == rel;
        if (!nf) continue;
        json_object_set_new(br, rels[rel].name, json_pack("{s:i,s:i,s:i,s:i}", "facts", nf, "asked", asked[rel],
                                                          "dropped_few_unseen", dropped[rel], "unseen_objects",
                                                          rp->unseen[rel].n));
        n_asked += asked[rel];
        n_dropped += dropped[rel];
    }
    json_object_set_new(hs, "facts", json_integer(n_facts));
    json_object_set_new(hs, "asked", json_integer(n_asked));
    json_object_set_new(hs, "dropped_few_unseen", json_integer(n_dropped));
    json_object_set_new(hs, "by_relation", br);
    json_object_set_new(w->stats, "heldout", hs);
}
