/* instruct.c - instruction data: chat pairs about the instruct facts in three styles (direct, mcq, short). */
#include "world/world.h"
#include "world/world_internal.h"
#include "world/build_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- instruction data ---- */

static const char *const style_names[] = {"direct", "mcq", "short"};

/* Chat pairs about the facts of one split, `per_fact` each, in three styles taken in turn from a random first
 * one, appended to `arr` in fact order; by_style[3] counts them. MCQ distractors come from rp->sel_text /
 * rp->all_text: never a heldout-only object, so no heldout answer appears in instruct.jsonl, corpus/chat.txt or
 * the chat documents of corpus/pretrain.txt (mix_chat, mix_qa). */
static void chat_pairs(const world *w, const rel_pools *rp, int split, int per_fact, hx_rng *r, json_t *arr,
                       int by_style[3])
{
    const world_relation *rels = world_relations(NULL);
    for (int i = 0; i < w->facts.n; i++) {
        const world_fact *f = &w->facts.f[i];
        if (f->split != split) continue;
        const world_relation *rel = &rels[f->rel];
        int nq = 0, na = 0;
        while (rel->question[nq]) nq++;
        while (rel->answer[na]) na++;
        int style0 = (int)hx_rng_below(r, 3);
        for (int k = 0; k < per_fact; k++) {
            int style = (style0 + k) % 3;
            char *q = world_render(rel->question[hx_rng_below(r, (uint64_t)nq)], f);
            char *user = NULL, *assistant = NULL;
            const char *d[3];
            if (style == 1 && w_pick_distractors(r, f, &rp->sel_text[f->rel], &rp->all_text[f->rel], d) < 0) style = 2;
            if (style == 0) {
                user = xstrdup(q);
                assistant = world_render(rel->answer[hx_rng_below(r, (uint64_t)na)], f);
            } else if (style == 1) {
                int ans = (int)hx_rng_below(r, 4);
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
}

/* instruct.jsonl: chat pairs about the instruct facts, in scattered order with stable ids. */
int w_build_instruct(world *w, const rel_pools *rp)
{
    hx_rng r;
    w_rng_for(&r, w->p.seed, RNG_INSTRUCT);
    json_t *arr = json_array();
    int by_style[3] = {0, 0, 0};
    chat_pairs(w, rp, WORLD_SPLIT_INSTRUCT, w->p.instruct_per_fact, &r, arr, by_style);
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

/* The QA pairs of the pretraining mix (mix_qa): chat pairs about the pretrain facts, which instruct.jsonl does not
 * ask about, so that with mix_chat the teacher sees questions about most facts it reads, and learns to answer
 * questions from what it read (Allen-Zhu & Li, "Physics of Language Models 3.1": a model extracts a fact from a
 * question only if it trained on questions about facts of the same kind). Never an eval or heldout fact: their
 * questions are only ever asked by the benchmarks. Own random stream: instruct.jsonl does not move. */
void w_build_qa(world *w, const rel_pools *rp)
{
    hx_rng r;
    w_rng_for(&r, w->p.seed, RNG_QA);
    w->qa = json_array();
    int by_style[3] = {0, 0, 0};
    chat_pairs(w, rp, WORLD_SPLIT_PRETRAIN, w->p.mix_qa, &r, w->qa, by_style);
    json_t *st = json_object(), *bs = json_object();
    for (int s = 0; s < 3; s++) json_object_set_new(bs, style_names[s], json_integer(by_style[s]));
    json_object_set_new(st, "pairs", json_integer((json_int_t)json_array_size(w->qa)));
    json_object_set_new(st, "by_style", bs);
    json_object_set_new(w->stats, "qa", st);
}
