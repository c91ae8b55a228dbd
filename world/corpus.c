/* corpus.c - the world's text: the pretraining corpus with the fact mentions, the generic corpus, mixed-in chat. */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the generic corpus: Brown prose carrying none of the facts ----
 * Up to the size of corpus/pretrain.txt, one document per file: first the Brown files outside the pretraining corpus
 * and the cloze files, in permutation order (text the teacher never saw); when those run out (at `small` every file
 * but the cloze files is in the corpus), the corpus's own Brown files without the fact mentions (text the teacher
 * saw, facts removed). Never a cloze file. The "dataset selection" ablation distils on it instead of the teacher's
 * own text, so it is non-empty at every scale. */
static int add_generic_files(hx_sbuf *out, size_t cap, const world_brown *brown, const int *docs, int n_docs)
{
    int used = 0;
    for (int d = 0; d < n_docs && out->len < cap; d++, used++) {
        const world_brown_doc *doc = &brown->docs[docs[d]];
        for (int k = 0; k < doc->n_paras; k++) {
            char *t = world_para_text(&doc->paras[k]);
            hx_sb_puts(out, t);
            hx_sb_putc(out, '\n');
            free(t);
        }
        hx_sb_puts(out, WORLD_DOC_BOUNDARY "\n");
    }
    return used;
}

void w_build_generic(world *w, const world_brown *brown, const int *unseen, int n_unseen, const int *seen, int n_seen)
{
    hx_sbuf out = {0};
    int n_u = add_generic_files(&out, w->corpus_len, brown, unseen, n_unseen);
    int n_s = add_generic_files(&out, w->corpus_len, brown, seen, n_seen);
    w->generic_len = out.len;
    w->generic = out.len ? hx_sb_take(&out) : xstrdup("");
    json_t *gs = json_object();
    json_object_set_new(gs, "brown_files", json_integer(n_u + n_s));
    json_object_set_new(gs, "unseen_files", json_integer(n_u));
    json_object_set_new(gs, "seen_files", json_integer(n_s));
    json_object_set_new(gs, "words", json_integer(w_count_words(w->generic)));
    json_object_set_new(gs, "bytes", json_integer((json_int_t)w->generic_len));
    json_object_set_new(w->stats, "generic", gs);
}

/* ---- chat pairs in the pretraining text ----
 * Modern pretraining mixes instruction data into the corpus; without it a small model stores facts it cannot
 * retrieve from a question (Allen-Zhu & Li, "Physics of Language Models 3.1", 2023: a model learns to extract
 * facts from questions only when questions about facts of the same kind are in its pretraining). mix_chat copies
 * of every instruct pair and the mix_qa pairs about every pretrain fact (w->qa) become documents of
 * corpus/pretrain.txt, after the prose, in seeded order. Never an eval or heldout fact: the eval facts are in the
 * prose only, so the benchmarks test extraction of facts the teacher read but was never asked about.
 * stats.corpus.mix_share is the chat documents' share of the corpus bytes. */
void w_mix_chat(world *w)
{
    int n = (int)json_array_size(w->instruct), nq = (int)json_array_size(w->qa);
    int n_chat = n * w->p.mix_chat, total = n_chat + nq;
    json_t *cs = json_object_get(w->stats, "corpus");
    json_object_set_new(cs, "chat_documents", json_integer(n_chat));
    json_object_set_new(cs, "qa_documents", json_integer(nq));
    json_object_set_new(cs, "mix_share", hx_json_num(0.0));
    if (total <= 0) return;
    /* order[i] < n_chat: instruct pair order[i] % n; else qa pair order[i] - n_chat */
    int *order = xmalloc(sizeof *order * (size_t)total);
    for (int i = 0; i < total; i++) order[i] = i < n_chat ? i % n : i;
    hx_rng r;
    w_rng_for(&r, w->p.seed, RNG_CHATMIX);
    w_shuffle_int(&r, order, total);
    hx_sbuf out = {0};
    hx_sb_puts(&out, w->corpus);
    size_t prose_len = out.len;
    for (int i = 0; i < total; i++) {
        json_t *pair = order[i] < n_chat ? json_array_get(w->instruct, (size_t)order[i])
                                         : json_array_get(w->qa, (size_t)(order[i] - n_chat));
        hx_sb_puts(&out, json_string_value(json_object_get(pair, "prompt")));
        hx_sb_puts(&out, json_string_value(json_object_get(pair, "completion")));
        hx_sb_puts(&out, WORLD_DOC_BOUNDARY "\n");
    }
    free(w->corpus);
    w->corpus_len = out.len;
    w->corpus = hx_sb_take(&out);
    json_object_set_new(cs, "documents", json_integer(json_integer_value(json_object_get(cs, "documents")) + total));
    json_object_set_new(cs, "bytes", json_integer((json_int_t)w->corpus_len));
    json_object_set_new(cs, "mix_bytes", json_integer((json_int_t)(w->corpus_len - prose_len)));
    json_object_set_new(cs, "mix_share", hx_json_num((double)(w->corpus_len - prose_len) / (double)w->corpus_len));
    free(order);
}

/* ---- the pretraining corpus ---- */

typedef struct mention {
    int fact, tpl;
} mention;

int w_build_corpus(world *w, const world_brown *brown, const int *corpus_docs, int n_corpus_docs)
{
    const world_params *p = &w->p;
    const world_relation *rels = world_relations(NULL);
    hx_rng rm, rc;
    w_rng_for(&rm, p->seed, RNG_MENTION);
    w_rng_for(&rc, p->seed, RNG_CORPUS);

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
