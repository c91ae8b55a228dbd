/* metrics.h - from per-item outcomes (items.jsonl) to metrics.json: accuracies, gap, intervals, per task and split. */
#ifndef EV_METRICS_H
#define EV_METRICS_H

#include <stdint.h>
#include <jansson.h>

/*
 * results: array of item outcomes as written to items.jsonl (docs/eval.md), each with at least
 * task, split, n_choices, ll_correct (bool) and gen_correct (bool); optional ll_norm_correct (bool|null),
 * gen_em (bool|null), gen_rule (string). Returns the metrics.json object:
 *   {"version": 1, "confidence": 0.95, "bootstrap": reps,
 *    "<split>": {"all": M, "macro": {ll_acc, gen_acc, gap, tasks}, "tasks": {task: M}} for each split present,
 *    "n", "ll_acc", "gen_acc", "gap": the headline numbers (split "eval", all tasks)}
 *   M = {n, chance, ll_acc, ll_ci, gen_acc, gen_ci, gap, gap_ci, mcnemar_p, both, ll_only, gen_only, neither
 *        [, ll_acc_norm, ll_norm_ci, n_norm] [, gen_em, n_open] [, gen_invalid, n_letter]}
 * ll_ci/gen_ci: Wilson 95%; gap_ci: paired percentile bootstrap (reps resamples, seeded) of ll - gen;
 * mcnemar_p: exact McNemar of LL vs generation correctness on the same items.
 * NULL + error() naming the item index on a malformed outcome.
 */
json_t *ev_metrics(const json_t *results, int reps, uint64_t seed);

/* Reads a JSONL file into an array of objects; error names file:line. */
int ev_read_jsonl(const char *path, json_t **out);
/* The same from memory (name for messages). */
int ev_parse_jsonl(const char *name, const char *data, size_t len, json_t **out);

#endif
