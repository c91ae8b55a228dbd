/* bench_cloze.c - the cloze_brown benchmark: a held-out Brown passage and four continuations, one of them true. */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cloze_brown: a held-out Brown passage and four continuations, the true next sentence among them */
typedef struct cand {
    int doc, para, k;
} cand;

void w_build_cloze(world *w, const world_brown *brown, const int *cloze_docs, int n_cloze)
{
    hx_rng r;
    w_rng_for(&r, w->p.seed, RNG_CLOZE);
    int ti = w_task_add(w, "cloze_brown");
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
    int *pos = w_balanced_positions(&r, np);
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
        json_object_set_new(o, "choices", w_choices_json(pa->sents[c.k], dis[i], pos[i]));
        json_object_set_new(o, "answer", json_integer(pos[i]));
        json_object_set_new(o, "target", json_string(pa->sents[c.k]));
        json_array_append_new(t->items, o);
        hx_sb_free(&ctx);
    }
    free(pos); free(picked); free(dis); free(perm); free(cs); free(sp);
}
