/* runsrc.h - what `hx report`, `hx diff` and the model commands share: run and stage references resolved in the
 * store, and the store as the reports' data source (rp_source). CLI layer: failures die() with the command's name. */
#ifndef HX_RUNSRC_H
#define HX_RUNSRC_H

#include <jansson.h>
#include "interp/store.h"
#include "reports/report.h"

/* The run record of ref (run id, unique prefix, or "latest"); dies with "hx <cmd>: ..." if there is none. */
json_t *hx_runsrc_open_run(const hx_store *s, const char *ref, const char *cmd);
/* rp_source over the store: a stored entry's file parsed (JSON, or JSONL as an array). */
rp_source hx_runsrc_source(const hx_store *s);

/*
 * One stage instance of a run: "RUN:STAGE" or "RUN:STAGE[axis=value,...]" (RUN: a run id, a unique prefix or
 * latest; values compare as text, numbers by value). Returns the run record's entry for it (new reference:
 * stage, axes, key, state, ...), or NULL + error() naming the stages, or the instances and their axes, that
 * exist. The one resolver of stage references: hx generate / hx score (hx_runsrc_model_dir) and hx diff.
 */
json_t *hx_runsrc_stage(const hx_store *s, const char *ref);

/*
 * The directory of a model given to a command: an existing directory as it is, else a store reference
 * (RUN:STAGE[axis=value,...] through hx_runsrc_stage, or a store key prefix of 4+ hex digits) in the store
 * STORE_DIR. xmalloc'd; dies "hx CMD: ..." listing the forms when REF is none of them.
 */
char *hx_runsrc_model_dir(const char *ref, const char *store_dir, const char *cmd);

#endif
