/* store_internal.h - what the store's files share (store.c, store_entry.c, store_runs.c, store_gc.c). */
#ifndef HX_STORE_INTERNAL_H
#define HX_STORE_INTERNAL_H

#include <jansson.h>
#include "base/base.h"
#include "interp/store.h"

/* store/<k[0:2]>/<k>/manifest.json (xmalloc'd). */
char *hx_store_manifest_path(const hx_store *s, const char *key);
/* 0: no reader holds KEY (the pin is now held exclusively in *l), 1: a stage is reading it, -1: error. */
int hx_store_pin_exclusive(const hx_store *s, const char *key, hx_lock *l);
/* Remove a (possibly read-only) entry directory. */
int hx_store_rm_entry(const char *dir);
/* The first problem becomes the error message; every problem is appended to LIST (when given). */
void hx_store_problem(json_t *list, int *n, const char *fmt, ...) HX_PRINTF(3, 4);
/* After records were removed: runs/latest names the newest remaining record, or is gone with the last one. */
void hx_store_repoint_latest(const hx_store *s);

#endif
