/* test_world.c - the built data world's invariants: splits, eval objects, choices, the heldout control, the
 * pretraining mix, prose items, chat format, determinism (its sources: test_world_sources.c; JSONL loaders and the
 * data stage: test_world_stage.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/base.h"
#include "stages/stage.h"
#include "world/world.h"
#include "test_util.h"

static world W;      /* the test world (test_params), built once */

/* The test world: larger than the tiny scale (120 facts per family, 250 Brown files), so every family has facts
 * in every split and the corpus checks see a good part of Brown; seed 0. */
static void test_params(world_params *p)
{
    *p = (world_params){.seed = 0, .n_facts = 120, .paraphrases = 8, .brown_files = 250, .cloze_files = 10,
                        .cloze_items = 160, .instruct_per_fact = 3, .bench_max = 0, .min_brown_freq = 3,
                        .frac_instruct = 0.3, .frac_eval = 0.2, .frac_heldout = 0.1, .third_party = ""};
}

static int setup(void **state)
{
    if (tu_tmpdir_setup(state)) return -1;
    world_params p;
    test_params(&p);
    if (world_build(&p, &W) < 0) {
        fprintf(stderr, "world_build: %s\n", hx_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    world_free(&W);
    return tu_tmpdir_teardown(state);
}

/* ---- the tiny world ---- */

static const world_fact *fact_by_id(const char *id)
{
    for (int i = 0; i < W.facts.n; i++)
        if (!strcmp(W.facts.f[i].id, id)) return &W.facts.f[i];
    return NULL;
}

static void test_splits_disjoint(void **state)
{
    (void)state;
    int n[WORLD_N_SPLIT] = {0};
    for (int i = 0; i < W.facts.n; i++) n[W.facts.f[i].split]++;
    for (int s = 0; s < WORLD_N_SPLIT; s++) assert_true(n[s] > 0);
    assert_int_equal(W.facts.n, 480); /* 120 per family */
    /* chat pairs only about instruct facts */
    size_t i;
    json_t *o;
    json_array_foreach(W.instruct, i, o) {
        const world_fact *f = fact_by_id(json_string_value(json_object_get(o, "fact_id")));
        assert_non_null(f);
        assert_int_equal(f->split, WORLD_SPLIT_INSTRUCT);
    }
    /* benchmarks only about eval facts, plus the heldout control, marked as such */
    for (int t = 0; t < W.n_tasks; t++) {
        json_array_foreach(W.tasks[t].items, i, o) {
            const char *fid = json_string_value(json_object_get(o, "fact_id"));
            if (!fid) continue;
            const world_fact *f = fact_by_id(fid);
            assert_non_null(f);
            assert_true(f->split == WORLD_SPLIT_EVAL || f->split == WORLD_SPLIT_HELDOUT);
            assert_string_equal(json_string_value(json_object_get(o, "split")), world_split_name(f->split));
        }
    }
    /* heldout facts: no prose mention, and none of their sentences in the corpus */
    for (int m = 0; m < W.n_mentions; m++) assert_int_not_equal(W.facts.f[W.mention_fact[m]].split, WORLD_SPLIT_HELDOUT);
    const world_relation *rels = world_relations(NULL);
    for (int k = 0; k < W.facts.n; k++) {
        const world_fact *f = &W.facts.f[k];
        if (f->split != WORLD_SPLIT_HELDOUT) continue;
        for (int t = 0; rels[f->rel].prose[t]; t++) {
            char *s = world_render(rels[f->rel].prose[t], f);
            if (strstr(W.corpus, s)) fail_msg("heldout fact %s in the corpus: %s", f->id, s);
            free(s);
        }
    }
}

static void test_eval_objects_in_corpus(void **state)
{
    (void)state;
    int n = 0;
    for (int k = 0; k < W.facts.n; k++) {
        const world_fact *f = &W.facts.f[k];
        if (f->split != WORLD_SPLIT_EVAL) continue;
        n++;
        if (!strstr(W.corpus, f->obj_text)) fail_msg("eval fact %s: '%s' not in the corpus", f->id, f->obj_text);
        int mentions = 0;
        for (int m = 0; m < W.n_mentions; m++) mentions += W.mention_fact[m] == k;
        assert_int_equal(mentions, W.p.paraphrases);
    }
    assert_true(n > 0);
}

static void test_letters_and_choices(void **state)
{
    (void)state;
    for (int t = 0; t < W.n_tasks; t++) {
        int letters[2][4] = {{0}};
        size_t i;
        json_t *o;
        assert_true(json_array_size(W.tasks[t].items) > 0);
        json_array_foreach(W.tasks[t].items, i, o) {
            json_t *ch = json_object_get(o, "choices");
            int a = (int)json_integer_value(json_object_get(o, "answer"));
            assert_int_equal(json_array_size(ch), 4);
            assert_true(a >= 0 && a < 4);
            assert_string_equal(json_string_value(json_array_get(ch, (size_t)a)),
                                json_string_value(json_object_get(o, "target")));
            for (size_t x = 0; x < 4; x++)
                for (size_t y = x + 1; y < 4; y++)
                    if (!strcasecmp(json_string_value(json_array_get(ch, x)), json_string_value(json_array_get(ch, y))))
                        fail_msg("%s: duplicate choices in %s", W.tasks[t].name,
                                 json_string_value(json_object_get(o, "doc_id")));
            int held = !strcmp(json_string_value(json_object_get(o, "split")), "heldout");
            letters[held][a]++;
        }
        for (int h = 0; h < 2; h++)
            for (int a = 1; a < 4; a++)
                if (letters[h][a] != letters[h][0]) fail_msg("%s: letters not balanced", W.tasks[t].name);
    }
}

/* Is `s` the object (as a question or as prose writes it) of a fact mentioned in the text? */
static int mentioned_object(const char *s)
{
    for (int k = 0; k < W.facts.n; k++) {
        const world_fact *f = &W.facts.f[k];
        if (f->split != WORLD_SPLIT_HELDOUT && (!strcasecmp(f->object, s) || !strcasecmp(f->obj_text, s))) return 1;
    }
    return 0;
}

/* The heldout control: no choice but the answer is the object of a mentioned fact, so a model that never saw
 * the fact has no familiar string to prefer; eval items keep their count (24 per knowledge task, 160 cloze). */
static void test_heldout_unseen_distractors(void **state)
{
    (void)state;
    int held = 0, eval_kn = 0;
    for (int t = 0; t < W.n_tasks; t++) {
        size_t i;
        json_t *o;
        int ev = 0;
        json_array_foreach(W.tasks[t].items, i, o) {
            if (strcmp(json_string_value(json_object_get(o, "split")), "heldout")) {
                ev++;
                continue;
            }
            held++;
            json_t *ch = json_object_get(o, "choices");
            size_t a = (size_t)json_integer_value(json_object_get(o, "answer"));
            for (size_t c = 0; c < 4; c++)
                if (c != a && mentioned_object(json_string_value(json_array_get(ch, c))))
                    fail_msg("%s: distractor '%s' is the object of a mentioned fact", json_string_value(json_object_get(o, "doc_id")),
                             json_string_value(json_array_get(ch, c)));
        }
        if (!strncmp(W.tasks[t].name, "kn_", 3)) {
            assert_int_equal(ev, 24);
            eval_kn += ev;
        } else {
            assert_int_equal(ev, 160);
        }
    }
    assert_int_equal(eval_kn, 12 * 24);
    assert_int_equal(held, 12 * 12 - 3 * 4); /* country: 8 heldout items (region, subregion have no unseen object) */
    /* stats.heldout accounts for every heldout fact */
    json_t *hs = json_object_get(W.stats, "heldout");
    int nh = 0;
    for (int k = 0; k < W.facts.n; k++) nh += W.facts.f[k].split == WORLD_SPLIT_HELDOUT;
    assert_int_equal(json_integer_value(json_object_get(hs, "facts")), nh);
    assert_int_equal(json_integer_value(json_object_get(hs, "asked")), held / 3);
    assert_true(json_integer_value(json_object_get(hs, "dropped_few_unseen")) > 0);
    assert_true(json_integer_value(json_object_get(hs, "asked")) + json_integer_value(json_object_get(hs, "dropped_few_unseen")) <= nh);
}

/* Does `word` occur in `text` as a whole word (case-insensitive, not inside a longer run of letters/digits)? */
static int has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    if (!n) return 0;
    for (const char *p = text; (p = strcasestr(p, word)); p++) {
        int before = p == text || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                                    (p[-1] >= '0' && p[-1] <= '9'));
        char c = p[n];
        int after = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
        if (before && after) return 1;
    }
    return 0;
}

/* No heldout answer leaks through instruction data: an object of a heldout fact that no mentioned fact has
 * never occurs as a whole word in instruct.jsonl / corpus/chat.txt (the chat pairs) nor in the chat documents
 * mix_chat adds to corpus/pretrain.txt. */
static void test_heldout_objects_not_in_text(void **state)
{
    (void)state;
    int checked = 0;
    for (int k = 0; k < W.facts.n; k++) {
        const world_fact *f = &W.facts.f[k];
        if (f->split != WORLD_SPLIT_HELDOUT || mentioned_object(f->object)) continue;
        checked++;
        size_t i;
        json_t *o;
        json_array_foreach(W.instruct, i, o) {
            const char *pc[2] = {json_string_value(json_object_get(o, "prompt")),
                                 json_string_value(json_object_get(o, "completion"))};
            for (int j = 0; j < 2; j++)
                if (has_word(pc[j], f->object))
                    fail_msg("heldout-only object '%s' (%s) in chat pair %s", f->object, f->id,
                             json_string_value(json_object_get(o, "id")));
        }
    }
    assert_true(checked > 0);
    /* corpus/pretrain.txt with mix_chat = 1: the prose of the mix_chat = 0 world, then chat documents that name
     * no heldout-only object (the prose itself never states a heldout fact, test_splits_disjoint; objects are
     * Brown words by construction, so Brown text and other facts' subjects and glosses may use the word) */
    world_params p;
    test_params(&p);
    p.mix_chat = 1;
    world w2;
    assert_int_equal(world_build(&p, &w2), 0);
    assert_true(w2.corpus_len > W.corpus_len && !strncmp(w2.corpus, W.corpus, W.corpus_len));
    for (int k = 0; k < W.facts.n; k++) {
        const world_fact *f = &W.facts.f[k];
        if (f->split == WORLD_SPLIT_HELDOUT && !mentioned_object(f->object) && has_word(w2.corpus + W.corpus_len, f->object))
            fail_msg("heldout-only object '%s' (%s) in the chat documents of corpus/pretrain.txt", f->object, f->id);
    }
    world_free(&w2);
}

/* The pretraining mix (mix_chat, mix_qa): corpus/pretrain.txt is the prose of the world without the mix, then one
 * chat document per mixed pair: every instruct pair mix_chat times, and mix_qa pairs about every pretrain fact, each
 * once; stats.corpus counts them and mix_share is their share of the corpus bytes. No eval or heldout fact is asked
 * about in any training text: no benchmark question (kn_mcq / kn_open, the same question text) occurs in the mixed
 * corpus, corpus/chat.txt or instruct.jsonl, and every mixed pair is about a pretrain or instruct fact. */
static int count_doc(char **docs, int n, const char *doc)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += !strcmp(docs[i], doc);
    return c;
}

static void test_pretraining_mix(void **state)
{
    (void)state;
    world_params p;
    test_params(&p);
    p.mix_chat = 2;
    p.mix_qa = 3;
    world w2;
    assert_int_equal(world_build(&p, &w2), 0);
    assert_true(w2.corpus_len > W.corpus_len && !strncmp(w2.corpus, W.corpus, W.corpus_len));
    /* the mixed documents, split at the boundaries */
    int cap = 1 << 14, n = 0;
    char **docs = xmalloc(sizeof *docs * (size_t)cap);
    const char *end = w2.corpus + w2.corpus_len;
    for (const char *q = w2.corpus + W.corpus_len; q < end;) {
        const char *e = strstr(q, WORLD_DOC_BOUNDARY "\n");
        assert_non_null(e);
        if (n == cap) docs = xrealloc(docs, sizeof *docs * (size_t)(cap *= 2));
        docs[n++] = xstrfmt("%.*s", (int)(e - q), q);
        q = e + strlen(WORLD_DOC_BOUNDARY "\n");
    }
    int n_ins = (int)json_array_size(w2.instruct), n_qa = (int)json_array_size(w2.qa), n_pre = 0;
    for (int i = 0; i < w2.facts.n; i++) n_pre += w2.facts.f[i].split == WORLD_SPLIT_PRETRAIN;
    assert_true(n_pre > 0 && n_ins > 0);
    assert_int_equal(n_qa, 3 * n_pre);
    assert_int_equal(n, 2 * n_ins + n_qa);
    json_t *cs = json_object_get(w2.stats, "corpus");
    assert_int_equal(json_integer_value(json_object_get(cs, "chat_documents")), 2 * n_ins);
    assert_int_equal(json_integer_value(json_object_get(cs, "qa_documents")), n_qa);
    double share = (double)(w2.corpus_len - W.corpus_len) / (double)w2.corpus_len;
    assert_true(fabs(json_number_value(json_object_get(cs, "mix_share")) - share) < 1e-12);
    assert_true(share > 0.05 && share < 0.6);
    /* each instruct pair twice, each qa pair once (pairs are distinct texts) */
    const json_t *sets[2] = {w2.instruct, w2.qa};
    for (int k = 0; k < 2; k++) {
        size_t i;
        json_t *o;
        json_array_foreach(sets[k], i, o) {
            char *doc = xstrfmt("%s%s", json_string_value(json_object_get(o, "prompt")),
                                json_string_value(json_object_get(o, "completion")));
            assert_int_equal(count_doc(docs, n, doc), k == 0 ? 2 : 1);
            free(doc);
            const char *fid = json_string_value(json_object_get(o, "fact_id"));
            for (int f = 0; f < w2.facts.n; f++)
                if (!strcmp(w2.facts.f[f].id, fid))
                    assert_int_equal(w2.facts.f[f].split, k == 0 ? WORLD_SPLIT_INSTRUCT : WORLD_SPLIT_PRETRAIN);
        }
    }
    for (int i = 0; i < n; i++) free(docs[i]);
    free(docs);
    /* no leakage: a benchmark question about an eval or heldout fact is never in the training text */
    int checked = 0;
    for (int t = 0; t < w2.n_tasks; t++) {
        if (strncmp(w2.tasks[t].name, "kn_mcq_", 7) && strncmp(w2.tasks[t].name, "kn_open_", 8)) continue;
        size_t i;
        json_t *it;
        json_array_foreach(w2.tasks[t].items, i, it) {
            const char *q = json_string_value(json_object_get(it, "question"));
            if (strstr(w2.corpus, q)) fail_msg("benchmark question '%s' in corpus/pretrain.txt", q);
            size_t k;
            json_t *o;
            json_array_foreach(w2.instruct, k, o)
                if (strstr(json_string_value(json_object_get(o, "prompt")), q))
                    fail_msg("benchmark question '%s' in instruct.jsonl", q);
            checked++;
        }
    }
    assert_true(checked > 100);
    /* the same question of a pretrain fact is in the mix: the check above can fail */
    int found = 0;
    for (size_t i = 0; i < json_array_size(w2.qa) && !found; i++) {
        const char *fid = json_string_value(json_object_get(json_array_get(w2.qa, i), "fact_id"));
        for (int f = 0; f < w2.facts.n && !found; f++) {
            if (strcmp(w2.facts.f[f].id, fid)) continue;
            char *q = world_render(world_relations(NULL)[w2.facts.f[f].rel].question[0], &w2.facts.f[f]);
            found = strstr(w2.corpus + W.corpus_len, q) != NULL;
            free(q);
        }
    }
    assert_true(found);
    world_free(&w2);
    /* negative sizes are refused */
    test_params(&p);
    p.mix_qa = -1;
    tu_expect_error(world_build(&p, &w2), "mix_qa must be >= 0");
}

static const world_task *task_named(const world *w, const char *name)
{
    for (int t = 0; t < w->n_tasks; t++)
        if (!strcmp(w->tasks[t].name, name)) return &w->tasks[t];
    fail_msg("no task %s", name);
    return NULL;
}

/* The prose template of a kn_prose question (-1 if none renders it). */
static int prose_template(const world_fact *f, const char *question)
{
    const char *const *prose = world_relations(NULL)[f->rel].prose;
    for (int t = 0; prose[t]; t++) {
        char *q = world_render_prefix(prose[t], f);
        int hit = q && !strcmp(q, question);
        free(q);
        if (hit) return t;
    }
    return -1;
}

/* kn_prose_<family>: kn_open's facts, answer positions and distractors (as prose writes them); the question
 * is a rendered prose sentence of the fact up to its object. Letters and duplicates: test_letters_and_choices. */
static void check_prose(const world *w)
{
    for (int fam = 0; fam < WORLD_N_FAM; fam++) {
        char name[48];
        snprintf(name, sizeof name, "kn_prose_%s", world_family_name(fam));
        const world_task *pt = task_named(w, name);
        snprintf(name, sizeof name, "kn_open_%s", world_family_name(fam));
        const world_task *ot = task_named(w, name);
        assert_true(json_array_size(pt->items) >= 8);
        assert_int_equal(json_array_size(pt->items), json_array_size(ot->items));
        size_t i;
        json_t *o;
        json_array_foreach(pt->items, i, o) {
            json_t *op = json_array_get(ot->items, i);
            const char *fid = json_string_value(json_object_get(o, "fact_id"));
            assert_string_equal(fid, json_string_value(json_object_get(op, "fact_id")));
            assert_string_equal(json_string_value(json_object_get(o, "format")), "prose");
            assert_int_equal(json_integer_value(json_object_get(o, "answer")), json_integer_value(json_object_get(op, "answer")));
            assert_true(json_equal(json_object_get(o, "aliases"), json_object_get(op, "aliases")));
            const world_fact *f = NULL;
            for (int k = 0; k < w->facts.n && !f; k++)
                if (!strcmp(w->facts.f[k].id, fid)) f = &w->facts.f[k];
            assert_non_null(f);
            for (size_t c = 0; c < 4; c++) {
                char *want = world_object_text(f->rel, json_string_value(json_array_get(json_object_get(op, "choices"), c)));
                assert_string_equal(json_string_value(json_array_get(json_object_get(o, "choices"), c)), want);
                free(want);
            }
            /* question + " " + target + "." is one of the fact's prose sentences */
            const char *q = json_string_value(json_object_get(o, "question"));
            char *sent = xstrfmt("%s %s.", q, json_string_value(json_object_get(o, "target")));
            const char *const *prose = world_relations(NULL)[f->rel].prose;
            int found = 0;
            for (int t = 0; prose[t] && !found; t++) {
                char *r = world_render(prose[t], f);
                found = !strcmp(r, sent);
                free(r);
            }
            if (!found) fail_msg("%s: '%s' is no prose sentence of %s", name, sent, fid);
            free(sent);
            assert_true(prose_template(f, q) >= 0);
        }
    }
}

static void test_prose_items(void **state)
{
    (void)state;
    check_prose(&W);
    /* world_object_text is how every usable fact writes its object */
    for (int k = 0; k < W.usable.n; k++) {
        char *t = world_object_text(W.usable.f[k].rel, W.usable.f[k].object);
        assert_string_equal(t, W.usable.f[k].obj_text);
        free(t);
    }
    /* only templates that end with the object give a prefix */
    world_fact f = {.subj_text = "Laos", .obj_text = "Vientiane"};
    char *q = world_render_prefix("The capital of {s} is {o}.", &f);
    assert_string_equal(q, "The capital of Laos is");
    free(q);
    assert_null(world_render_prefix("{O} is the capital of {s}.", &f));
    assert_null(world_render_prefix("Broadly speaking, {as} is {ao}.", &f));
    assert_null(world_render_prefix("{S} and {o} are opposites.", &f));
    /* with one mention per fact most templates stay unused: a question never takes a template of its fact's
     * mentions while an unused one ends with the object */
    world_params p;
    test_params(&p);
    p.n_facts = 40;
    p.paraphrases = 1;
    p.brown_files = 4;
    world w;
    assert_int_equal(world_build(&p, &w), 0);
    check_prose(&w);
    int checked = 0;
    for (int t = 0; t < w.n_tasks; t++) {
        if (strncmp(w.tasks[t].name, "kn_prose_", 9)) continue;
        size_t i;
        json_t *o;
        json_array_foreach(w.tasks[t].items, i, o) {
            const char *fid = json_string_value(json_object_get(o, "fact_id"));
            int fi = -1;
            for (int k = 0; k < w.facts.n && fi < 0; k++)
                if (!strcmp(w.facts.f[k].id, fid)) fi = k;
            const world_fact *f = &w.facts.f[fi];
            const char *const *prose = world_relations(NULL)[f->rel].prose;
            unsigned used = 0;
            for (int m = 0; m < w.n_mentions; m++)
                if (w.mention_fact[m] == fi) used |= 1u << w.mention_tpl[m];
            int fresh = 0;
            for (int k = 0; prose[k]; k++) {
                char *x = world_render_prefix(prose[k], f);
                fresh += x && !(used >> k & 1);
                free(x);
            }
            int tq = prose_template(f, json_string_value(json_object_get(o, "question")));
            if (fresh) {
                if (used >> tq & 1) fail_msg("%s: question of %s reuses a template of its mention", w.tasks[t].name, fid);
                checked++;
            }
        }
    }
    assert_true(checked >= 40); /* 47 of 48: a definition has one template ending with its object */
    world_free(&w);
}

/* Tags of the Brown tag set that must not survive detokenisation ("word/tag"). */
static void test_no_tags(void **state)
{
    (void)state;
    static const char *const tags[] = {"at", "nn", "nns", "np", "in", "vb", "vbd", "vbn", "vbz", "jj", "cc", "cs",
                                       "rb", "dt", "pps", "ppo", "to", "md", "be", "bez", "hv", "cd", ".", ",", NULL};
    const char *p = W.corpus;
    int words = 0;
    while (*p) {
        while (*p == ' ' || *p == '\n') p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\n') e++;
        /* "word/tag": letters, one slash, a tag (Brown's own "/r/" phoneme notation is text) */
        const char *sl = NULL;
        int letters = 1;
        for (const char *q = p; q < e && !sl; q++)
            if (*q == '/') sl = q;
            else letters &= (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z');
        if (sl && sl > p && letters)
            for (const char *const *t = tags; *t; t++)
                if ((size_t)(e - sl - 1) == strlen(*t) && !strncmp(sl + 1, *t, strlen(*t)))
                    fail_msg("tag left in the corpus: %.*s", (int)(e - p), p);
        words++;
        p = e;
    }
    assert_true(words > 100000);
    assert_null(strstr(W.corpus, "``"));
    assert_null(strstr(W.corpus, "''"));
}

static void test_chat_format(void **state)
{
    (void)state;
    int styles[3] = {0};
    size_t i;
    json_t *o;
    json_array_foreach(W.instruct, i, o) {
        const char *prompt = json_string_value(json_object_get(o, "prompt"));
        const char *completion = json_string_value(json_object_get(o, "completion"));
        json_t *m = json_object_get(o, "messages");
        const char *user = json_string_value(json_object_get(json_array_get(m, 0), "content"));
        const char *asst = json_string_value(json_object_get(json_array_get(m, 1), "content"));
        char *want_p = xstrfmt("<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
        char *want_c = xstrfmt("%s<|im_end|>\n", asst);
        assert_string_equal(prompt, want_p);
        assert_string_equal(completion, want_c);
        free(want_p);
        free(want_c);
        const char *st = json_string_value(json_object_get(o, "style"));
        styles[!strcmp(st, "mcq") ? 1 : !strcmp(st, "short") ? 2 : 0]++;
        if (!strcmp(st, "mcq")) assert_true(strlen(asst) == 1 && asst[0] >= 'A' && asst[0] <= 'D');
    }
    for (int s = 0; s < 3; s++) assert_true(styles[s] > 0);
}

static void test_determinism_and_artifact(void **state)
{
    (void)state;
    world_params p;
    test_params(&p);
    world w2;
    assert_int_equal(world_build(&p, &w2), 0);
    char *a = tu_path("a"), *b = tu_path("b");
    assert_int_equal(world_write(&W, a), 0);
    assert_int_equal(world_write(&w2, b), 0);
    static const char *const files[] = {"facts.jsonl", "corpus/pretrain.txt", "instruct.jsonl", "stats.json",
                                        "README.md", "bench/kn_mcq_country.jsonl", "bench/kn_open_lexical.jsonl",
                                        "bench/cloze_brown.jsonl", NULL};
    for (const char *const *f = files; *f; f++) {
        char *x = tu_slurp(a, *f), *y = tu_slurp(b, *f);
        if (strcmp(x, y)) fail_msg("%s differs between two builds with the same parameters", *f);
        free(x);
        free(y);
    }
    /* another seed: another world */
    world_free(&w2);
    p.seed = 1;
    assert_int_equal(world_build(&p, &w2), 0);
    assert_true(w2.corpus_len != W.corpus_len || strcmp(w2.corpus, W.corpus));
    world_free(&w2);
    /* documents end with the boundary line; stats count them */
    char *c = tu_slurp(a, "corpus/pretrain.txt");
    int docs = 0;
    for (const char *q = c; (q = strstr(q, "\n" WORLD_DOC_BOUNDARY "\n")); q++) docs++;
    json_t *corpus = json_object_get(W.stats, "corpus");
    assert_int_equal(docs, (int)json_integer_value(json_object_get(corpus, "documents")));
    free(c);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits_disjoint),
        cmocka_unit_test(test_eval_objects_in_corpus),
        cmocka_unit_test(test_letters_and_choices),
        cmocka_unit_test(test_heldout_unseen_distractors),
        cmocka_unit_test(test_heldout_objects_not_in_text),
        cmocka_unit_test(test_pretraining_mix),
        cmocka_unit_test(test_prose_items),
        cmocka_unit_test(test_no_tags),
        cmocka_unit_test(test_chat_format),
        cmocka_unit_test(test_determinism_and_artifact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
