/* report_internal.h - what the report's files share (report.c, report_seeds.c, report_rank.c, report_pairs.c,
 * findings.c). */
#ifndef RP_REPORT_INTERNAL_H
#define RP_REPORT_INTERNAL_H

#include <stdint.h>
#include <jansson.h>
#include "reports/report.h"

/* What the tables and findings of one report share (report_pairs.c): each entry's items.jsonl as loaded, and each
 * paired comparison, so each is read and computed once. */
typedef struct rp_shared {
    const rp_source *src;
    json_t *items; /* {key: items array | the error message of its load} */
    json_t *cmps;  /* {"KA KB SPLIT TASK": {cmp: ev_compare's object, only_a, only_b}} */
} rp_shared;
void rp_shared_init(rp_shared *sh, const rp_source *src);
void rp_shared_release(rp_shared *sh);
/* The items.jsonl of store entry KEY, loaded once (borrowed), or NULL + error() (the load's message, every time). */
json_t *rp_shared_items(rp_shared *sh, const char *key);
/*
 * ev_compare of entry KB's items IB against the baseline KA's IA on SPLIT and TASK (NULL: every task) with
 * RP_BOOT_REPS resamples of the stream rp_pair_seed(0, KA, KB, SPLIT, TASK): computed once per report, a new
 * object each call; *only_a, *only_b (may be NULL): the items without a partner. NULL + error() when the item sets
 * cannot be paired (ev_pair_items).
 */
json_t *rp_compare(rp_shared *sh, const char *ka, const char *kb, const char *split, const char *task, const json_t *ia,
                   const json_t *ib, int *only_a, int *only_b);
/* Computes the comparisons of KA[i] against KB[i] (i < m; NULL keys skipped) that rp_compare will be asked for, in
 * parallel (OpenMP; each on its own stream, so the numbers do not depend on the threads). A pair whose items are
 * missing or cannot be paired is skipped: rp_compare reports it where the report uses it. */
void rp_compare_prefetch(rp_shared *sh, const char *const *ka, const char *const *kb, int m, const char *split,
                         const char *task);

/* What one table build shares: the source, the table's selection, the items it used by store key, the notes. */
typedef struct rp_tab {
    const rp_source *src;
    const char *split, *task;
    json_t *items; /* {key: items array (rp_shared's) | null (could not load: noted once per table)} */
    json_t *notes;
    rp_shared *sh;
} rp_tab;

/* The number O[K] (0 when absent or not a number). */
double rp_num(const json_t *o, const char *k);
/* The items.jsonl of a store entry, loaded once per table; NULL (and a note) when it cannot be read. */
json_t *rp_items_of(rp_tab *c, const char *key, const char *label);
/* Sets ROW.na[FIELD] = WHY unless a reason is there already. */
void rp_set_na(json_t *row, const char *field, const char *why);

/* One row of the instance REC, paired with the teacher's eval TREC (none when NULL or TEACHER) (report.c). */
json_t *rp_make_row(rp_tab *c, json_t *rec, json_t *trec, int teacher, const json_t *label_axes);
/* A row over k >= 2 seeds of one arm; TRECS[s]: the teacher eval of seed s (report_seeds.c). */
json_t *rp_seed_row(rp_tab *c, json_t **recs, json_t **trecs, int k, const json_t *label_axes);
/* ROW's seeds and their store keys (set by rp_seed_row, or for a one-seed arm by build_table) as arrays; k. */
int rp_row_seeds(const json_t *row, const json_t **seeds, const json_t **keys);
/* The interaction of two arms over their common seeds (>= 2), as ev_compare's {n, did, did_ci, did_p}; NULL when
 * they share fewer than two seeds (report_seeds.c). */
json_t *rp_seed_interaction(rp_tab *c, const json_t *ra, const json_t *rb);
/* The table TAB's ranking, interactions, reversals and n_pairs from its ROWS (report_rank.c). */
void rp_rankings(rp_tab *c, json_t *rows, json_t *tab);

/* rp_findings with the report's shared items and comparisons (findings.c). */
json_t *rp_findings_shared(const json_t *run, const json_t *spec, const json_t *tables, rp_shared *sh);

#endif
