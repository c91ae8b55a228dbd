/* report.h - tables from run records and eval artifacts (teacher-student deltas under LL and generation, did,
 * retention, letter distributions, significance-gated ranking reversals), renderers (md, json, tex, html) and the
 * diff of two runs or two evals. Works from run records and stored artifacts only. */
#ifndef RP_REPORT_H
#define RP_REPORT_H

#include <stdint.h>
#include <jansson.h>

/*
 * Where artifacts come from: load(ud, key, file) returns the stored file FILE of the store entry KEY,
 * parsed (a *.json file: its value; a *.jsonl file: an array of its objects), as a new reference,
 * or NULL + error() when the entry or the file is absent or malformed. The CLI wires it to the store.
 */
typedef struct rp_source {
    json_t *(*load)(void *ud, const char *key, const char *file);
    void *ud;
} rp_source;

/* The run id that REF names among IDS (an array of run id strings): an exact id, or a unique prefix.
 * xmalloc'd, or NULL + error() saying what matched. ("latest" is the store's business.) */
char *rp_resolve_run(const json_t *ids, const char *ref);
/* "x=1,y=b" of an axes object, in the object's order: strings as they are, other values as compact JSON ("" when
 * shared). xmalloc'd. */
char *rp_axes_label(const json_t *axes);

/* Bootstrap resamples of every paired comparison of a report or a diff (p-values down to 2 / (RP_BOOT_REPS + 1)). */
#define RP_BOOT_REPS 10000

/*
 * The report of a run record (runs/<id>/run.json): one table per `report.tables` entry of the recipe
 * ({name, stage, rows: axes.X, columns: [...], split: eval, task: NAME, baseline: STAGE}), or, when the
 * recipe has none, one table per stage of kind `eval` over all its instances. JSON document (docs/eval.md):
 *   {run_id, recipe, status, started, tables: [{name, stage, rows_axis, split, task, columns, baseline, n_pairs,
 *     rows: [{label, axes, key, state, teacher, n, ll_acc, ll_acc_ci, gen_acc, gen_acc_ci, ll_cn, gen_cn, gap, gap_ci,
 *             gap_raw, ..., n_paired, only_row, only_teacher, delta_ll, delta_ll_ci, delta_gen, delta_gen_ci, did,
 *             did_ci, did_p, ll_retention, ll_retention_ci, gen_retention, gen_retention_ci, delta_ll_raw,
 *             delta_gen_raw, letters, na: {field: reason}}],
 *     ranking: {ll: [[tied labels], ...best first], gen: [...], kendall_tau: num|null} | null,
 *     interactions: [{a, b, ll: [a, b], gen: [a, b], reversed, n_paired, did_diff, did_diff_ci, p, p_holm, significant}],
 *     reversals: [the significant reversed interactions], largest_nonsignificant_reversal: {..}|null,
 *     notes: [..]}]}
 * A null number is n/a; `na` says why. NULL + error() on a malformed table spec (naming the table and field) or
 * run record.
 */
json_t *rp_report_build(const json_t *run, const rp_source *src);

/* Renders a report document as "md", "json", "tex" or "html". *out xmalloc'd. 0 or error(). */
int rp_render(const json_t *report, const char *format, char **out);

/*
 * The difference of two run records: recipe and overrides, parameters per stage instance (matched by stage
 * name and axis values), keys, and for each pair of eval instances rp_diff_evals' comparison. seed: the
 * bootstrap's. NULL + error() on malformed records.
 */
json_t *rp_diff(const json_t *run_a, const json_t *run_b, const rp_source *src, unsigned long long seed);

/*
 * The stage instance of a run record that REF names: "STAGE" or "STAGE[axis=value,...]" (every axis given must
 * match, by the value's text; the instance must be unique). NULL + error() listing the candidates.
 */
json_t *rp_find_instance(const json_t *run, const char *ref);

/*
 * Two eval instances compared, A the baseline: {instance, key_a, key_b, same_key, splits: {split: {ll_acc, gen_acc
 * (each {n_paired, a, b, delta, delta_ci, a_only, b_only, mcnemar_p, significant}), gap, paired (ev_compare of
 * B against A: delta_ll, .., did, did_ci, did_p, retention), only_a, only_b, tasks, flips: {gen, ll}}}}
 * or {.., error} when an artifact is missing. ID names the pair in messages.
 */
json_t *rp_diff_evals(const char *id, const json_t *rec_a, const json_t *rec_b, const rp_source *src,
                      unsigned long long seed);
/* rp_diff of two eval instances (hx diff RUN:STAGE[..] RUN:STAGE[..]): {a, b (run heads with `instance`), evals: [..]}. */
json_t *rp_diff_instances(const json_t *run_a, const json_t *rec_a, const json_t *run_b, const json_t *rec_b,
                          const rp_source *src, unsigned long long seed);
/* Human-readable text of rp_diff's or rp_diff_instances' document; at most max_flips flipped items listed per
 * direction. xmalloc'd. */
char *rp_diff_text(const json_t *diff, int max_flips);

/* ---- shared by report and diff ---- */

/* Column names a table may ask for. */
int rp_column_known(const char *col);

/* The bootstrap stream of the comparison of store entries KA (the baseline) and KB on SPLIT and TASK (NULL: all):
 * a report row and `hx diff` of the same two evals resample alike, so they print the same intervals. */
uint64_t rp_pair_seed(unsigned long long seed, const char *ka, const char *kb, const char *split, const char *task);

#endif
