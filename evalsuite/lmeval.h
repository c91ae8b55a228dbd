/* lmeval.h - an eval's results in lm-evaluation-harness 0.4.x's files: results.json and samples_<task>.jsonl. */
#ifndef EV_LMEVAL_H
#define EV_LMEVAL_H

#include <jansson.h>

#include "evalsuite/prompt.h"

/* Python's repr() of a float ("0.1", "1e-05", "-2.5", "100.0", "nan", "inf"): the shortest digits that read back
 * to v, fixed notation for 1e-4 <= |v| < 1e16, else d.ddde+XX. Writes at most 32 bytes to buf; returns buf. */
char *ev_py_float(double v, char buf[32]);

/* Python's json.dumps(o, ensure_ascii=False) (indent < 0: one line, ", " and ": ") or with indent=N: the bytes
 * lm-eval hashes and writes. Floats as repr; NaN / Infinity as Python writes them. xmalloc'd. */
char *ev_py_json(const json_t *o, int indent);

/* The lm-eval task name of an item: its task for split `eval`, "<task>_<split>" otherwise. xmalloc'd. */
char *ev_lm_task(const ev_item *it);

/* What one eval produced, item by item (the selected items, in order). */
typedef struct ev_lm_run {
    int n;
    const ev_item *items;
    json_t *const *docs;          /* the document as read: the item's "doc" (original benchmark row) or the item */
    json_t *outcomes;             /* items.jsonl objects (ev_grade_outcome), in item order */
    const char *const *ll_ctx;    /* per LL request (items' choices in order): the context and continuation */
    const char *const *ll_cont;   /*   as passed to the scorer (ev_ll_prompt, ev_ll_target) */
    const double *ll_logp;        /* per LL request: the summed log-likelihood */
    const int *ll_greedy;         /*   and is_greedy */
    const char *const *gen_prompt;/* per item */
    json_t *n_original;           /* {lm task: items of that task and split in the benchmark files} */
    int shots, chat;              /* chat: the LL context's EV_CHAT flags (target_delimiter "" when wrapped) */
    double version;               /* `versions` of every task (the eval kind's version) */
    json_t *config;               /* results.json "config" (borrowed) */
    json_t *task_params;          /* the eval parameters, under configs.<task>.metadata.hx (borrowed) */
} ev_lm_run;

/*
 * Writes dir/results.json (lm-eval's aggregated schema: results {"acc,none", "acc_stderr,none", "acc_norm,none",
 * "acc_norm_stderr,none", "gen_acc,none", "gen_acc_stderr,none", ...}, group_subtasks, configs, versions, n-shot,
 * higher_is_better, n-samples {original, effective}, config, task_hashes) and dir/samples_<task>.jsonl per lm task
 * (--log_samples: doc_id, doc, target, arguments, resps, filtered_resps, filter, metrics, doc_hash, prompt_hash,
 * target_hash, the metric values, then hx's gen_* fields). stderr = sample standard deviation / sqrt(n), "N/A"
 * for n < 2 (lm_eval/api/metrics.py mean_stderr). 0 or error().
 */
int ev_lmeval_write(const char *dir, const ev_lm_run *r);

#endif
