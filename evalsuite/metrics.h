/* metrics.h - from per-item outcomes (items.jsonl) to metrics.json (accuracies, chance-normalised accuracies, gap,
 * intervals, letter distributions, per task and split), and the paired comparison of two models on the same items. */
#ifndef EV_METRICS_H
#define EV_METRICS_H

#include <stdint.h>
#include <jansson.h>

/*
 * results: array of item outcomes as written to items.jsonl (docs/eval.md), each with at least
 * task, split, n_choices, ll_correct (bool) and gen_correct (bool); optional format ("mcq"|"cloze"|"open"|"prose";
 * absent: lettered when gen_rule is present), doc_id, answer, ll_pred, gen_pred, ll_norm_correct (bool|null),
 * gen_em (bool|null), gen_rule (string). Returns the metrics.json object:
 *   {"version": 2, "confidence": 0.95, "bootstrap": reps,
 *    "<split>": {"all": M, "macro": {ll_acc, gen_acc, gap, tasks}, "tasks": {task: M}, "families": {glob: M}}
 *    for each split present, "n", "ll_acc", "gen_acc", "gap": the headline numbers (split "eval", all tasks)}
 *   M = {n, chance, gen_chance, ll_acc, ll_ci, gen_acc, gen_ci, ll_cn, gen_cn, gap, gap_ci, gap_cn, gap_cn_ci,
 *        mcnemar_p, both, ll_only, gen_only, neither [, ll_acc_norm, ll_norm_ci, n_norm] [, gen_em, n_open]
 *        [, gen_invalid, n_letter, letters]}
 * ll_ci/gen_ci: Wilson 95%; gap_ci, gap_cn_ci: paired percentile bootstrap (reps resamples, seeded by split and task);
 * *_cn: chance-normalised accuracy (ev_chance); letters: ev_letters' object.
 * NULL + error() naming the item index on a malformed outcome.
 */
json_t *ev_metrics(const json_t *results, int reps, uint64_t seed);

/* Chance of an outcome object: LL 1/n_choices; generation 1/n_choices for lettered formats (mcq, cloze), 0 for
 * open and prose answers. 0, or error() when the outcome has no n_choices >= 1. */
int ev_chance(const json_t *outcome, double *ll, double *gen);

/* Whether TASK is selected by WANT: NULL (every task), a task name, or a family glob "kn_prose_*" (a prefix). */
int ev_task_matches(const char *task, const char *want);

/*
 * *out = the letter distributions of the lettered items (mcq, cloze) of SPLIT and TASK (ev_task_matches) that carry answer
 * and ll_pred: {n, letters: ["A".."D"], gold: {A: k, ..}, ll: {..}, gen: {..} (letters given; the rest is invalid),
 * invalid, invalid_share, letter_tv, ll_letter_tv, top, top_share, ll_top, ll_top_share}.
 * letter_tv = 1/2 (sum_L |gen_L - gold_L| + invalid) / n, ll_letter_tv = 1/2 sum_L |ll_L - gold_L| / n;
 * top: the most frequent generated letter (ties: the earlier letter; null when none was given), top_share its count / n.
 * *out = NULL when no item qualifies. 0, or error() on a malformed outcome.
 */
int ev_letters(const json_t *items, const char *split, const char *task, json_t **out);

/*
 * Two item sets paired on (task, doc_id) within SPLIT and TASK: A is the baseline (the teacher), B the model
 * compared with it. Per paired item, 0/1 outcomes and chance-normalised scores (x - chance) / (1 - chance)
 * (an item with chance 1 scores 0). The item objects are borrowed from the arrays.
 */
typedef struct ev_pairs {
    int n;              /* paired items */
    int only_a, only_b; /* items of the split/task without a partner on the other side */
    double *ll_a, *ll_b, *gen_a, *gen_b;   /* 0/1 correctness */
    double *lcn_a, *lcn_b, *gcn_a, *gcn_b; /* chance-normalised */
    double *lch, *gch;                     /* the item's chance under LL and generation (ev_chance of A's outcome) */
    const json_t **a, **b;                 /* the paired outcomes, in A's order */
} ev_pairs;

/* 0, or error() on a malformed outcome, a (task, doc_id) that occurs twice on one side, or a pair whose two sides
 * are not the same item (n_choices, answer or lettered format differ). */
int ev_pair_items(const json_t *items_a, const json_t *items_b, const char *split, const char *task, ev_pairs *p);
void ev_pairs_release(ev_pairs *p);

/*
 * The paired statistics of B against A (docs/eval.md "Statistics"), all on chance-normalised scores:
 *   delta_ll = mean(lcn_b - lcn_a), delta_gen = mean(gcn_b - gcn_a), did = delta_gen - delta_ll,
 *   ll_retention = mean(lcn_b) / mean(lcn_a), gen_retention = mean(gcn_b) / mean(gcn_a),
 * each with its 95% percentile interval from `reps` paired bootstrap resamples (seeded), did_p the two-sided
 * bootstrap p-value of did (ev_bootstrap_p). Also n, delta_ll_raw, delta_gen_raw (plain accuracy differences),
 * a_ll_cn, a_ll_cn_ci, a_gen_cn, a_gen_cn_ci, b_ll_cn, b_gen_cn, and `na`: {field: reason} for every field that is
 * null: a retention when A is not above chance (the Wilson 95% interval of A's accuracy on the paired items does not
 * lie above their mean chance), everything when n = 0.
 * An unbounded interval end (a resample where A is at or below chance) is null.
 */
json_t *ev_compare(const ev_pairs *p, int reps, uint64_t seed);

/* Reads a JSONL file into an array of objects; error names file:line. */
int ev_read_jsonl(const char *path, json_t **out);
/* The same from memory (name for messages). */
int ev_parse_jsonl(const char *name, const char *data, size_t len, json_t **out);

#endif
