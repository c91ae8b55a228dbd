/* items.h - the benchmark items an eval asks: bench/<task>.jsonl of one or more artifacts, chosen by task and split. */
#ifndef EV_ITEMS_H
#define EV_ITEMS_H

#include <jansson.h>

/* The items of an eval and the parsed views of them. */
typedef struct ev_itemset {
    json_t *all_docs;   /* every item of the chosen tasks (shot pools), as read */
    json_t *sel_docs;   /* the items to evaluate: `splits`, then the first `limit` per (task, split) */
    json_t *n_original; /* {lm task (ev_lm_task): items of that task and split in the files} */
    int n_all, n;
    struct ev_item *all, *it; /* parsed all_docs / sel_docs (strings borrowed from them) */
} ev_itemset;

/*
 * Reads <dir>/bench/<task>.jsonl of each of n_dirs artifact directories, the inputs named roles[] in messages (a task
 * name may come from one directory only), keeping tasks that match one of the `tasks` globs ([] = all), items of the `splits` ([] = all), the first
 * `limit` per task and split (0 = all). `who` names the stage in messages. 0, or error() naming the file and line.
 */
int ev_items_load(ev_itemset *s, const char *const *dirs, const char *const *roles, int n_dirs, json_t *tasks,
                  json_t *splits, int limit, const char *who);
void ev_items_release(ev_itemset *s);

#endif
