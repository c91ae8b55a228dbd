/* report.h - tables from run records and eval artifacts (LL vs generation, gap, retention, ranking reversals),
 * renderers (md, json, tex, html) and the diff of two runs. Works from run records and stored artifacts only. */
#ifndef RP_REPORT_H
#define RP_REPORT_H

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

/*
 * The report of a run record (runs/<id>/run.json): one table per `report.tables` entry of the recipe
 * ({name, stage, rows: axes.X, columns: [...], split: eval, task: NAME, baseline: STAGE}), or, when the
 * recipe has none, one table per stage of kind `eval` over all its instances. JSON document (docs/eval.md):
 *   {run_id, recipe, status, tables: [{name, stage, rows_axis, split, task, columns, baseline,
 *     rows: [{label, axes, key, state, teacher, values: {col: num|null}, ci: {col: [lo, hi]}}],
 *     ranking: {ll: [[tied labels], ...best first], gen: [...], kendall_tau}, reversals: [{a, b, ll: [a, b], gen: [a, b], ll_p, gen_p}],
 *     notes: [..]}]}
 * NULL + error() on a malformed table spec (naming the table and field) or run record.
 */
json_t *rp_report_build(const json_t *run, const rp_source *src);

/* Renders a report document as "md", "json", "tex" or "html". *out xmalloc'd. 0 or error(). */
int rp_render(const json_t *report, const char *format, char **out);

/*
 * The difference of two run records: recipe and overrides, parameters per stage instance (matched by stage
 * name and axis values), keys, and for each pair of eval instances the metrics with deltas (B - A), a paired
 * confidence statement (McNemar exact test on per-item correctness, paired bootstrap interval of the delta)
 * and the flipped items. seed: the bootstrap's. NULL + error() on malformed records.
 */
json_t *rp_diff(const json_t *run_a, const json_t *run_b, const rp_source *src, unsigned long long seed);
/* Human-readable text of rp_diff's document; at most max_flips flipped items listed per direction. xmalloc'd. */
char *rp_diff_text(const json_t *diff, int max_flips);

/* ---- shared by report and diff ---- */

/* Column names a table may ask for, and whether a column is a rate shown in percent. */
int rp_column_known(const char *col);

/*
 * Pairs the outcomes of two items.jsonl arrays on (task, doc_id), restricted to SPLIT and TASK (NULL: all
 * tasks), on the boolean FIELD ("ll_correct" or "gen_correct"). n: paired items; b10: right in A only,
 * b01: right in B only. flips_a / flips_b (may be NULL) get the A-only / B-only outcome pairs
 * {task, doc_id, a: outcome A, b: outcome B}. xa, xb (may be NULL): xmalloc'd 0/1 vectors of the pairs.
 */
void rp_pair(const json_t *items_a, const json_t *items_b, const char *split, const char *task, const char *field,
             int *n, int *b10, int *b01, json_t *flips_a, json_t *flips_b, double **xa, double **xb);

#endif
