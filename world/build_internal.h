/* build_internal.h - what the phases of the world build share (world_build in build.c calls them in order). */
#ifndef HX_WORLD_BUILD_INTERNAL_H
#define HX_WORLD_BUILD_INTERNAL_H

#include "world/world.h"
#include "world/world_internal.h"

/* Independent random streams per purpose, so e.g. changing `paraphrases` does not move the splits. */
enum {
    RNG_SELECT = 1, RNG_SPLIT, RNG_BROWN, RNG_MENTION, RNG_CORPUS, RNG_INSTRUCT, RNG_BENCH, RNG_CLOZE, RNG_CHATMIX,
    RNG_PROSE, RNG_HELDOUT, RNG_HELDOUT_PROSE, RNG_QA
};
void w_rng_for(hx_rng *r, uint64_t seed, int purpose);

/* build.c: adds a benchmark task; returns its index (w->tasks moves when it grows). */
int w_task_add(world *w, const char *name);

/* corpus.c: the pretraining corpus (prose mentions of the facts among Brown text), the generic corpus (Brown prose
 * without the facts, for the dataset ablation) and the chat documents mixed into the pretraining text (w->instruct
 * mix_chat times, then w->qa). */
int w_build_corpus(world *w, const world_brown *brown, const int *corpus_docs, int n_corpus_docs);
void w_build_generic(world *w, const world_brown *brown, const int *unseen, int n_unseen, const int *seen, int n_seen);
void w_mix_chat(world *w);

/* choices.c: the objects multiple-choice distractors are drawn from, per relation. */
typedef struct pool {
    char **s;
    int n;
} pool;

/* sel: objects of selected facts; all: of usable facts; unseen: of usable facts that are not the object of any
 * fact mentioned in the text (pretrain/instruct/eval), the only distractors of heldout items; none: empty.
 * sel_text, all_text: sel and all without the heldout-only objects (of a heldout fact and of no mentioned
 * fact), the distractors of text the model trains on (instruct MCQ pairs), so no heldout answer leaks. */
typedef struct rel_pools {
    pool sel[32], all[32], unseen[32], none[32], sel_text[32], all_text[32];
} rel_pools;

void w_pools_init(rel_pools *rp, const world *w);
void w_pools_free(rel_pools *rp);
int w_pick_distractors(hx_rng *r, const world_fact *f, const pool *sel, const pool *all, const char *out[3]);
json_t *w_choices_json(const char *gold, const char *const d[3], int answer);
json_t *w_str_array(char **s, int n);
int *w_balanced_positions(hx_rng *r, int n);

/* instruct.c: chat pairs about the instruct facts (instruct.jsonl), and about the pretrain facts (w->qa, mix_qa per
 * fact), which only the pretraining mix (w_mix_chat) reads. */
int w_build_instruct(world *w, const rel_pools *rp);
void w_build_qa(world *w, const rel_pools *rp);

/* bench_knowledge.c: the knowledge benchmarks (kn_mcq_*, kn_open_*, kn_prose_*) over eval and heldout facts. */
void w_build_knowledge(world *w, const rel_pools *rp);

/* bench_cloze.c: cloze_brown, continuations of held-out Brown passages. */
void w_build_cloze(world *w, const world_brown *brown, const int *cloze_docs, int n_cloze);

#endif
