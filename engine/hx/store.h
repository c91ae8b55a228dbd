/* store.h - the content-addressed store: entries, per-key locks, atomic commits, run records, gc. */
#ifndef HX_STORE_H
#define HX_STORE_H

#include <jansson.h>

/*
 * Layout under the root (DESIGN.md section 3):
 *   store/<k[0:2]>/<k>/manifest.json + outputs   done iff manifest.json exists
 *   partial/<k>/out, partial/<k>/ckpt            work in progress; ckpt survives a killed run
 *   locks/<k>.lock                                one flock per key, never a store-wide lock
 *   runs/<id>/run.json, runs/latest -> <id>       run records
 *   partial/.import-<pid>-<n>/                    hx import's staging (engine/hx/archive.c)
 */
typedef struct hx_store {
    char *root;
} hx_store;

int hx_store_open(hx_store *s, const char *root); /* creates the layout; 0 or error */
void hx_store_release(hx_store *s);

char *hx_store_entry_dir(const hx_store *s, const char *key); /* xmalloc'd store/<k[0:2]>/<k> */
int hx_store_has(const hx_store *s, const char *key);         /* manifest exists */
json_t *hx_store_manifest(const hx_store *s, const char *key); /* new reference, or NULL + error */
/* Resolve a full key or a unique prefix (at least 4 hex digits) to a key (xmalloc'd), or NULL + error. */
char *hx_store_find_key(const hx_store *s, const char *prefix);

/* Per-key lock. wait: poll until free (checking *interrupted); else return 1 when busy. */
typedef struct hx_lock {
    int fd;
} hx_lock;
int hx_store_lock(const hx_store *s, const char *key, int wait, volatile int *interrupted, hx_lock *l);
void hx_store_unlock(hx_lock *l);

/*
 * Check an entry against its manifest's output digests. Cheap by default: size and mtime first, a
 * re-hash only of files whose mtime differs; full=1 re-hashes everything. Returns 0 (intact), 1
 * (corrupted: the reason is in hx_last_error()), -1 (cannot read the manifest).
 */
int hx_store_verify(const hx_store *s, const char *key, int full);
/* Remove a corrupted entry (under its lock) so it can be executed again. */
int hx_store_discard(const hx_store *s, const char *key);

/* Prepare partial/<k>/out and partial/<k>/ckpt (kept from an earlier attempt); xmalloc'd paths. */
int hx_store_begin(const hx_store *s, const char *key, char **out_dir, char **ckpt_dir);
/*
 * Commit partial/<k>/out: digest every output once, add "outputs" to MANIFEST, write it, fsync,
 * rename into store/, then drop partial/<k>. The caller holds the key's lock.
 * HX_TEST_COMMIT_SLEEP=seconds pauses between the manifest write and the rename (crash tests).
 */
int hx_store_commit(const hx_store *s, const char *key, json_t *manifest);

/*
 * hx import's commit: move DIR (manifest.json + outputs, already verified and synced, on the store's
 * file system) into store/ as KEY's entry, then drop partial/<k>. The caller holds the key's lock and
 * has seen that the entry is absent.
 */
int hx_store_adopt(const hx_store *s, const char *key, const char *dir);

/* Run records. */
char *hx_store_new_run_id(const hx_store *s);                              /* YYYYmmdd-HHMMSS-mmmxx, sortable */
int hx_store_write_run(const hx_store *s, const char *id, const json_t *run); /* atomic; updates latest */
int hx_store_update_run(const hx_store *s, const char *id, const json_t *run); /* atomic; latest left as is */
json_t *hx_store_read_run(const hx_store *s, const char *id);              /* "latest" accepted */
json_t *hx_store_list_runs(const hx_store *s);                             /* ids, oldest first */
/* A run record made elsewhere (hx import), kept byte for byte: runs/<id>/run.json written atomically;
 * runs/latest moves to ID only if ID is newer than it (or there is none). 0 added, 1 already there. */
int hx_store_add_run(const hx_store *s, const char *id, const char *text, size_t len);
/* The newest record of each (stage, axes) of recipe NAME that ran or was cached: {"stage|axes": rec}
 * where rec is the run's stage record plus "run_id". Reads at most max_runs run records. */
json_t *hx_store_history(const hx_store *s, const char *recipe_name, int max_runs);

/* Remove run records beyond the newest KEEP (KEEP < 0: keep all), then every store entry and partial
 * work no kept run references. REPORT gets {runs_removed, entries_removed, bytes_freed}. */
int hx_store_gc(const hx_store *s, int keep, int dry_run, json_t *report);

#endif
