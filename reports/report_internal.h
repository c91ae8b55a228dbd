/* report_internal.h - what the report table's files share (report.c, report_seeds.c, report_rank.c). */
#ifndef RP_REPORT_INTERNAL_H
#define RP_REPORT_INTERNAL_H

#include <stdint.h>
#include <jansson.h>
#include "reports/report.h"

/* What one table build shares: the source, the table's selection, the loaded items by store key, the notes. */
typedef struct rp_tab {
    const rp_source *src;
    const char *split, *task;
    json_t *items; /* {key: items array | null (could not load)} */
    json_t *notes;
} rp_tab;

/* The number O[K] (0 when absent or not a number). */
double rp_num(const json_t *o, const char *k);
/* The items.jsonl of a store entry, loaded once per table; NULL (and a note) when it cannot be read. */
json_t *rp_items_of(rp_tab *c, const char *key, const char *label);
/* The bootstrap stream of the table's comparison of store entries KA (the baseline) and KB (rp_pair_seed). */
uint64_t rp_tab_seed(const rp_tab *c, const char *ka, const char *kb);
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

#endif
