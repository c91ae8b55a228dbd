/* store.h - the content-addressed store: entries, per-key locks, atomic commits, run records, gc. */
#ifndef HX_STORE_H
#define HX_STORE_H

#include <jansson.h>

/*
 * Layout under the root (docs/design.md section 3):
 *   store/<k[0:2]>/<k>/manifest.json + outputs   done iff manifest.json exists
 *   partial/<k>/out, partial/<k>/ckpt            work in progress; ckpt survives a killed run
 *   locks/<k>.lock                                one flock per key, never a store-wide lock
 *   runs/<id>/run.json, runs/latest -> <id>       run records
 *   locks/<k>.pin                                 held shared by stages reading <k>; gc and repairs need it alone
 *   partial/.import-<pid>-<n>/                    hx import's staging (interp/archive.c)
 *   quarantine/<k>.<time>-<pid>, quarantine/runs/ entries and run records found bad (never removed by hx)
 *   cache/external/                               digests of external inputs by path, size, mtime, ctime, inode
 * Committed entries are read-only (files 0444, directories 0555); hx makes them writable only to remove them.
 */
typedef struct hx_store {
    char *root;
} hx_store;

int hx_store_open(hx_store *s, const char *root); /* creates the layout; 0 or error */
void hx_store_release(hx_store *s);

/* The store's names: a key is 64 lowercase hex digits, a run id YYYYmmdd-HHMMSS-mmmxx (hx_store_new_run_id). */
int hx_store_is_key(const char *k);
int hx_store_is_run_id(const char *id);
/* The one rule for a path inside an entry (a manifest's output, an archive member's tail, a file a stage wrote):
 * relative, at most HX_STORE_REL_MAX bytes, components of 1 to 255 bytes, none "." or "..", no leading, doubled
 * or trailing '/', no backslash or control characters (so it is the same path on every machine and in a tar).
 * 1 or 0. */
#define HX_STORE_REL_MAX 4000
int hx_store_rel_ok(const char *rel);
char *hx_store_entry_dir(const hx_store *s, const char *key); /* xmalloc'd store/<k[0:2]>/<k> */
char *hx_store_report_dir(const hx_store *s, const char *run_id); /* xmalloc'd reports/<run>: hx report's folder of a
                                                                  * run (derived from the store; gc removes it with the run) */
char *hx_store_live_path(const hx_store *s, const char *key);  /* xmalloc'd partial/<k>/progress.json: a running
                                                                * stage's progress (exec.c writes, hx runs reads) */
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
/* Pin KEY's entry while a stage reads it (a shared flock on locks/<k>.pin, waiting): gc, discard and
 * quarantine leave a pinned entry alone. Release with hx_store_unlock. */
int hx_store_pin(const hx_store *s, const char *key, hx_lock *l);

/*
 * Check an entry against its manifest. Cheap (full=0): every listed path is a regular file inside the
 * entry with the recorded size; only files whose mtime differs are re-hashed. full=1 (run --verify,
 * fsck) also re-hashes everything, recomputes the key from the manifest and requires the files on
 * disk to be exactly the listed ones. Returns 0 (intact) or 1 (the first problem in hx_last_error()).
 */
int hx_store_verify(const hx_store *s, const char *key, int full);
/* hx fsck: the full check, every problem appended to PROBLEMS (strings). 0 intact, 1 problems, -1 error. */
int hx_store_check(const hx_store *s, const char *key, json_t *problems);
/* Remove a corrupted or stale entry (under its lock) so it can be executed again; refuses a pinned one. */
int hx_store_discard(const hx_store *s, const char *key);
/* Move a bad entry to quarantine/ (never deleted by hx); *where (xmalloc'd) names it. Refuses a pinned one. */
int hx_store_quarantine(const hx_store *s, const char *key, char **where);
/* The key a manifest hashes to (kind, kind_version, with, inputs, external, hx_binary). */
int hx_store_manifest_key(const json_t *m, char key[65]);
/* Content digest of an entry: sha256 of the canonical [[path, sha256], ...] of its manifest's outputs.
 * Manifests record it for every input a stage read ("input_digests"). */
int hx_store_content_digest(const hx_store *s, const char *key, char hex[65]);

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

/* Run records, ordered by their recorded start ("started", UTC), checked for sanity: a missing,
 * malformed or future start (more than 10 minutes ahead) is not believed and sorts as the oldest. */
char *hx_store_new_run_id(const hx_store *s);                              /* YYYYmmdd-HHMMSS-mmmxx */
int hx_store_write_run(const hx_store *s, const char *id, const json_t *run); /* atomic; updates latest */
int hx_store_update_run(const hx_store *s, const char *id, const json_t *run); /* atomic; latest left as is */
json_t *hx_store_read_run(const hx_store *s, const char *id);              /* "latest" accepted */
json_t *hx_store_list_runs(const hx_store *s);                             /* ids, oldest first */
long long hx_store_run_time(const json_t *run); /* believable start (s since 1970), or -1 */
/* A run record made elsewhere (hx import), kept byte for byte: runs/<id>/run.json written atomically;
 * runs/latest moves to ID only if its start is believable and newer than latest's. 0 added, 1 already there. */
int hx_store_add_run(const hx_store *s, const char *id, const char *text, size_t len);
/* {pid, host, boot_id, start_ticks} of this process, recorded as a run's "process". */
json_t *hx_store_process_self(void);
/* A "running" record whose process lives: 1 alive, 0 gone (or not running), -1 cannot tell (another host, or a
 * Slurm run: its jobs do the work). gc keeps what a run with a nonzero answer uses. */
int hx_store_run_alive(const json_t *run);
/* hx fsck of runs/: every malformed record appended to PROBLEMS, its directory name to BAD. 0 or 1. */
int hx_store_check_runs(const hx_store *s, json_t *problems, json_t *bad);
/* Move runs/NAME to quarantine/runs/ (latest follows the newest remaining record). */
int hx_store_quarantine_run(const hx_store *s, const char *name, char **where);
/* The newest record of each (stage, axes) of recipe NAME that ran or was cached: {"stage|axes": rec}
 * where rec is the run's stage record plus "run_id". Reads at most max_runs run records. */
json_t *hx_store_history(const hx_store *s, const char *recipe_name, int max_runs);

/* Remove run records beyond the newest KEEP (KEEP < 0: keep all), except those of runs still in
 * progress (hx_store_run_alive != 0), then every store entry and partial work no kept run references,
 * skipping locked and pinned keys. Never touches quarantine/. REPORT gets {runs_removed,
 * entries_removed, bytes_freed, runs_kept, runs_live}. */
int hx_store_gc(const hx_store *s, int keep, int dry_run, json_t *report);

#endif
