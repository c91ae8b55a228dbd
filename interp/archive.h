/* archive.h - hx export / hx import: store entries and run records as one tar.zst (libarchive), verified on arrival. */
#ifndef HX_ARCHIVE_H
#define HX_ARCHIVE_H

#include <jansson.h>
#include "interp/store.h"

/*
 * An export is a pax tar compressed with zstd. Every member is a regular file, in this order:
 *   hx-export.json                      the index: {"hx_export": 1, "hx": {version, commit, build},
 *                                       "entries": [{key, stage, kind, outputs, manifest_sha256}],
 *                                       "runs": [{id, recipe, sha256}]}
 *   store/<k[0:2]>/<k>/manifest.json    one per entry, entries sorted by key
 *   store/<k[0:2]>/<k>/<path>           the outputs, in manifest order (entries with outputs: true)
 *   runs/<id>/run.json                  run records, sorted by id
 * An entry with outputs: false carries its manifest only (provenance of an exported key); import
 * verifies it but does not add it to the store. Member headers are fixed (mode 0644, owner 0, mtime
 * of the output or 0), so exporting the same thing twice gives the same bytes.
 */
#define HX_ARCHIVE_INDEX "hx-export.json"
#define HX_ARCHIVE_CHUNK (1 << 20) /* bytes per read and write while members stream through */

/*
 * Write PATH (atomically: a temporary file renamed at the end) with the run records RUNS and every
 * store entry they reference, plus the entries KEYS (full keys). The inputs of KEYS come as manifests
 * only, transitively; with_inputs exports them whole. Outputs are re-hashed while they are copied and
 * must match their manifest. ONLY_KINDS (comma-separated stage kinds, NULL: all): of the runs' entries only
 * those of these kinds are exported whole (the rest as the manifests of their inputs, provenance).
 * REPORT gets {entries, with_outputs, manifests_only, runs, bytes, missing}.
 */
int hx_archive_export(const hx_store *s, const char *const *runs, int n_runs, const char *const *keys, int n_keys,
                      int with_inputs, const char *only_kinds, const char *path, json_t *report);

/*
 * Read PATH into the store: every member is staged under partial/.import-*, then every manifest is
 * checked against the index and every output against its manifest, and only then (unless dry_run)
 * each entry is moved into store/ under its key's lock (an entry already there is kept), and the run
 * records are added. A hostile, truncated or altered archive changes nothing in the store.
 * REPORT gets {added: [{key, stage}], present: [...], provenance: [...], runs_added: [id],
 * runs_present: [id], bytes}.
 */
int hx_archive_import(const hx_store *s, const char *path, int dry_run, json_t *report);

/* What an archive member's name is; key/id/rel are filled for the kinds that have them. */
typedef enum {
    HX_MEMBER_BAD = 0,
    HX_MEMBER_INDEX,    /* hx-export.json */
    HX_MEMBER_RUN,      /* runs/<id>/run.json: id */
    HX_MEMBER_MANIFEST, /* store/<xx>/<k>/manifest.json: key */
    HX_MEMBER_OUTPUT,   /* store/<xx>/<k>/<rel>: key, rel (points into name) */
} hx_member_kind;
hx_member_kind hx_archive_member(const char *name, char key[65], char id[32], const char **rel);

#endif
