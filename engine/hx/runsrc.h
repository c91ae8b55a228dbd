/* runsrc.h - what `hx report` and `hx diff` share: a run reference resolved in the store, and the store as the
 * reports' data source (rp_source). CLI layer: failures die() with the command's name. */
#ifndef HX_RUNSRC_H
#define HX_RUNSRC_H

#include <jansson.h>
#include "engine/hx/store.h"
#include "reports/report.h"

/* The run record of ref (run id, unique prefix, or "latest"); dies with "hx <cmd>: ..." if there is none. */
json_t *hx_runsrc_open_run(const hx_store *s, const char *ref, const char *cmd);
/* rp_source over the store: a stored entry's file parsed (JSON, or JSONL as an array). */
rp_source hx_runsrc_source(const hx_store *s);

#endif
