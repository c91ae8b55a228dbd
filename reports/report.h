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
 * ({name, stage, rows: axes.X, arms: [values of X], columns: [...], split: eval, task: NAME, baseline: STAGE};
 * `arms` keeps only the rows whose X is listed), or, when the
 * recipe has none, one table per stage of kind `eval` over all its instances. JSON document (docs/eval.md):
 *   {run_id, recipe, status, started, tables: [{name, stage, rows_axis, split, task, columns, baseline, n_pairs,
 *     rows: [{label, axes, key, state, teacher, n, ll_acc, ll_acc_ci, gen_acc, gen_acc_ci, ll_cn, gen_cn, gap, gap_ci,
 *             gap_raw, ..., n_paired, only_row, only_teacher, delta_ll, delta_ll_ci, delta_gen, delta_gen_ci, did,
 *             did_ci, did_p, ll_retention, ll_retention_ci, gen_retention, gen_retention_ci, delta_ll_raw,
 *             delta_gen_raw, letters, na: {field: reason}}],
 *     ranking: {ll: [[tied labels], ...best first], gen: [...], kendall_tau: num|null} | null,
 *     interactions: [{a, b, ll: [a, b], gen: [a, b], reversed, n_paired, did_diff, did_diff_ci, p, p_holm, significant}],
 *     reversals: [the significant reversed interactions], largest_nonsignificant_reversal: {..}|null,
 *     notes: [..]}],
 *   training: [{stage, kind, instances: [{label, key, axes, log: {step: [..], loss: [..], <each logged quantity>: [..]}}]}],
 *   findings: rp_findings' document | {error} (when the recipe has report.findings)}
 * (training: every non-eval stage instance whose store entry holds a train_log.jsonl, as columns).
 * A null number is n/a; `na` says why. NULL + error() on a malformed table spec (naming the table and field) or
 * run record.
 */
json_t *rp_report_build(const json_t *run, const rp_source *src);

/*
 * The pre-registered findings of docs/results.md (P1, P2, F1-F6) from the recipe's `report.findings` SPEC
 * ({stage, teacher, axis, baseline, split, control, axes: {design axis: [arms]}, helps: [{id, finding, a, b}],
 * largest: AXIS, retention: [lo, hi]}), the run and its items; TABLES: the report's tables (F2 reads the
 * reversals of the tables named as SPEC.axes' keys). {preconditions: [{id, test, passed, ..}], findings: [{id,
 * finding, verdict, verdict_by_rule, numbers}], preconditions_passed}, or NULL + error().
 */
json_t *rp_findings(const json_t *run, const json_t *spec, const json_t *tables, const rp_source *src);

/*
 * Renders a report document as "md", "json", "tex", "html" (the tables with the figures inline), "csv" (one long
 * table, rp_csv), "svg" (every figure in one SVG document, stacked) or "pgf" (a LaTeX document of every figure as
 * a TikZ picture; pdflatex). *out xmalloc'd. 0 or error().
 */
int rp_render(const json_t *report, const char *format, char **out);
/*
 * Writes the report folder DIR (created if needed): report.md, report.html (figures inline), report.json,
 * report.csv, report.tex, figures.tex (pgf) and one <figure>.svg per figure, each replaced atomically; appends
 * each path written to the array WRITTEN. 0, or error() naming the file.
 */
int rp_write_dir(const json_t *report, const char *dir, json_t *written);
/* Whether rp_render knows FORMAT; the list of formats for messages. */
int rp_format_known(const char *format);
#define RP_FORMATS "md, json, tex, html, csv, svg or pgf"
/* The format a file name asks for by its extension (.md .json .tex .html .csv .svg; .pgf or .tikz: pgf), or NULL. */
const char *rp_format_of_path(const char *path);

/*
 * The report as one long-format CSV table (RFC 4180: CRLF line ends, fields with a comma, quote or line break
 * quoted, quotes doubled), one line per (table, row, metric): columns run, recipe, table, stage, <every axis of the
 * rows, one column each, empty where the row has none>, label, seeds, teacher, task, split, metric, value, ci_lo,
 * ci_hi, n. A row over seeds (seeds = k) is followed by its seeds' own rows (seeds = 1, the seed column set). value
 * and ci empty when n/a; an unbounded interval end is -inf / inf. xmalloc'd.
 */
char *rp_csv(const json_t *report);

/* The figures of a report (reports/figure.c): per table `<table>-accuracy` (LL vs generation accuracy per model),
 * `<table>-deltas` (Δ LL and Δ Gen vs the teacher per arm), `<table>-letters` (letter distributions), per training
 * stage `train-<stage>` (its train_log.jsonl quantities by step, instances overlaid); a figure without data is left
 * out. Each is one SVG element or one tikzpicture (tikz = 1). */
typedef struct rp_figure {
    char *name;  /* file-name safe */
    char *table; /* the table it belongs to, or NULL (training) */
    char *text;
    double w, h; /* points */
} rp_figure;
typedef struct rp_figures {
    rp_figure *fig;
    int n;
} rp_figures;
void rp_figures_build(const json_t *report, int tikz, rp_figures *f);
void rp_figures_release(rp_figures *f);

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

/*
 * The many-run table of `hx runs --metrics`. RUNS: run records, in the order to show. Each run's headline report
 * table (the first of its `report.tables` over all tasks, else its first eval stage's) is built by rp_report_build,
 * so every number and interval is `hx report`'s; each of its rows (teacher, arms) is one row here, with the run's
 * parameters (params.* and -S overrides outside params) and the row's axes (axes.*) as text. RECIPE keeps the runs
 * of that recipe name; WHERE (KEY=VALUE, all must hold; numbers compare by value) keeps the rows whose KEY has
 * VALUE. Document: {columns: [the keys whose value is not the same in every row], rows: [{run_id, recipe, started,
 * status, table, label, teacher, axes, key, params: {key: text}, ll_acc, ll_acc_ci, gen_acc, gen_acc_ci, delta_ll,
 * delta_ll_ci, delta_gen, delta_gen_ci, did, did_ci, did_p, n, n_paired, na}], skipped: [{run_id, why}]}.
 * NULL + error() on a malformed WHERE or a KEY that no row has (listing the keys there are).
 */
typedef struct rp_runs_filter {
    const char *recipe;       /* NULL: every recipe */
    const char *const *where; /* "KEY=VALUE" */
    int n_where;
} rp_runs_filter;
json_t *rp_runs_table(const json_t *runs, const rp_runs_filter *f, const rp_source *src);
/* The table as aligned text, one line per row, then a note on units and the runs not shown. xmalloc'd. */
char *rp_runs_text(const json_t *table);

/* ---- shared by report and diff ---- */

/* One cell of a report row as every renderer prints it: "19.2 [8.1, 35.0]", "+3.1 [-2.0, 8.4]", "—", "n/a".
 * xmalloc'd. */
char *rp_cell(const json_t *row, const char *col);

/* Column names a table may ask for. */
int rp_column_known(const char *col);

/* The bootstrap stream of the comparison of store entries KA (the baseline) and KB on SPLIT and TASK (NULL: all):
 * a report row and `hx diff` of the same two evals resample alike, so they print the same intervals. */
uint64_t rp_pair_seed(unsigned long long seed, const char *ka, const char *kb, const char *split, const char *task);

#endif
