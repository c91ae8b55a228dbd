/* archive_export.c - hx export: run records and store entries into one tar.zst, outputs re-hashed as they are copied. */
#include "interp/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sort.h"
#include "interp/canon.h"
#include "interp/exec.h"

typedef struct xentry {
    char *key;
    int full;
    char *text; /* manifest.json as stored, byte for byte */
    size_t len;
    json_t *m;
    char sha[65];
} xentry;

typedef struct xrun {
    char *id;
    char *text;
    size_t len;
    json_t *run;
    char sha[65];
} xrun;

static json_t *read_manifest_raw(const hx_store *s, const char *key, char **text, size_t *len)
{
    char *dir = hx_store_entry_dir(s, key), *p = hx_path_join(dir, "manifest.json");
    json_t *m = NULL;
    *text = NULL;
    if (hx_read_file(p, text, len) == 0) {
        json_error_t je;
        m = json_loadb(*text, *len, 0, &je);
        if (!m) {
            error("%s:%d:%d: %s", p, je.line, je.column, je.text);
            free(*text);
            *text = NULL;
        }
    }
    free(dir);
    free(p);
    return m;
}

static void note_missing(json_t *missing, const char *what)
{
    log_warn("hx export: %s", what);
    json_array_append_new(missing, json_string(what));
}

/*
 * The entries to export: WANT maps key -> true (whole) or false (manifest only). Whole entries are the
 * runs' entries in the store and KEYS; with_inputs closes them over inputs; then every input of a
 * whole entry not already whole is added as a manifest, transitively (provenance).
 */
/* Whether KIND is in the comma-separated LIST (NULL: every kind). */
static int kind_listed(const char *list, const char *kind)
{
    if (!list) return 1;
    if (!kind) return 0;
    size_t n = strlen(kind);
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, kind, n)) return 1;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

static int select_entries(const hx_store *s, json_t *const *runs, int n_runs, const char *const *keys, int n_keys,
                          int with_inputs, const char *only_kinds, json_t *want, json_t *missing)
{
    for (int r = 0; r < n_runs; r++) {
        json_t *stages = json_object_get(runs[r], "stages");
        for (size_t j = 0; j < json_array_size(stages); j++) {
            json_t *st = json_array_get(stages, j);
            const char *k = hx_json_str(st, "key"), *state = hx_json_str(st, "state");
            if (!k || !hx_store_is_key(k) || !kind_listed(only_kinds, hx_json_str(st, "kind"))) continue;
            if (hx_store_has(s, k)) json_object_set_new(want, k, json_true());
            else if (state && (!strcmp(state, "executed") || !strcmp(state, "cached"))) {
                char *msg = xstrfmt("run %s: stage %s: entry %.12s is not in the store (removed by hx gc?); not exported",
                                    hx_json_str(runs[r], "run_id"), hx_json_str(st, "stage"), k);
                note_missing(missing, msg);
                free(msg);
            }
        }
    }
    for (int i = 0; i < n_keys; i++) json_object_set_new(want, keys[i], json_true());
    /* Two passes over a growing queue: whole inputs (with_inputs), then manifests of the rest. */
    for (int pass = with_inputs ? 0 : 1; pass < 2; pass++) {
        json_t *queue = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v) if (json_is_true(v)) json_array_append_new(queue, json_string(k));
        for (size_t i = 0; i < json_array_size(queue); i++) {
            const char *key = json_string_value(json_array_get(queue, i));
            json_t *m = hx_store_manifest(s, key);
            if (!m) {
                error_prefix("store entry %.12s", key); /* before the decref: KEY lives in QUEUE */
                json_decref(queue);
                return -1;
            }
            json_t *in = json_object_get(m, "inputs");
            json_object_foreach(in, k, v) {
                const char *ik = json_string_value(v);
                if (!ik || !hx_store_is_key(ik) || json_object_get(want, ik)) continue;
                if (!hx_store_has(s, ik)) {
                    char *msg = xstrfmt("entry %.12s: input %s (%.12s) is not in the store; its provenance ends there",
                                        key, k, ik);
                    note_missing(missing, msg);
                    free(msg);
                    continue;
                }
                json_object_set_new(want, ik, json_boolean(pass == 0));
                json_array_append_new(queue, json_string(ik));
            }
            json_decref(m);
        }
        json_decref(queue);
    }
    return 0;
}

static int put_header(struct archive *a, const char *name, la_int64_t size, time_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) return error("member '%s': %s", name, archive_error_string(a));
    return 0;
}

static int put_bytes(struct archive *a, const char *name, const void *data, size_t len)
{
    if (put_header(a, name, (la_int64_t)len, 0) < 0) return -1;
    if (len && archive_write_data(a, data, len) != (la_ssize_t)len)
        return error("member '%s': %s", name, archive_error_string(a));
    return 0;
}

/* One output of entry KEY, re-hashed as it is copied: it must still be what its manifest says. */
static int put_output(struct archive *a, const hx_store *s, const char *key, const json_t *o, char *buf,
                      long long *bytes)
{
    const char *rel = hx_json_str(o, "path"), *want = hx_json_str(o, "sha256");
    json_int_t size = json_integer_value(json_object_get(o, "size"));
    if (!rel || !want || !hx_store_rel_ok(rel))
        return error("store entry %.12s: manifest output '%s' has no sha256 or an unsafe path", key, rel ? rel : "?");
    char *dir = hx_store_entry_dir(s, key), *p = hx_path_join(dir, rel);
    char *name = xstrfmt("store/%.2s/%s/%s", key, key, rel);
    int fd = hx_open_input(p, HX_IN_STREAM, NULL), rc = -1; /* a FIFO put in the store must not hang export */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0) error("store entry %.12s: cannot read '%s': %s", key, p, strerror(errno));
        else error_prefix("store entry %.12s", key);
        goto out;
    }
    if (st.st_size != size) {
        error("%s: %lld bytes, its manifest recorded %lld; 'hx run --verify' rebuilds a corrupted entry", p,
              (long long)st.st_size, (long long)size);
        goto out;
    }
    long long mt = json_integer_value(json_object_get(o, "mtime_ns"));
    if (put_header(a, name, (la_int64_t)size, (time_t)(mt / 1000000000LL)) < 0) goto out;
    hx_sha256 h;
    hx_sha256_init(&h);
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, HX_ARCHIVE_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            hx_sha256_abort(&h);
            error("%s: %s", p, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        if (total + n > size) n = (ssize_t)(size - total); /* grew meanwhile: the digest check says so */
        hx_sha256_update(&h, buf, (size_t)n);
        if (n && archive_write_data(a, buf, (size_t)n) != n) {
            hx_sha256_abort(&h);
            error("member '%s': %s", name, archive_error_string(a));
            goto out;
        }
        total += n;
        if (total == size) break;
    }
    char hex[65];
    hx_sha256_final(&h, hex);
    if (total != size || strcmp(hex, want)) {
        error("%s: sha256 %.12s..., its manifest recorded %.12s...: the store entry is corrupted; 'hx run --verify' "
              "rebuilds it",
              p, hex, want);
        goto out;
    }
    *bytes += total;
    rc = 0;
out:
    if (fd >= 0) close(fd);
    free(dir);
    free(p);
    free(name);
    return rc;
}

static json_t *build_index(const xentry *es, size_t ne, const xrun *rs, size_t nr)
{
    json_t *entries = json_array(), *runs = json_array();
    for (size_t i = 0; i < ne; i++)
        json_array_append_new(entries, json_pack("{s:s,s:s?,s:s?,s:b,s:s}", "key", es[i].key, "stage", hx_json_str(es[i].m, "stage"),
                                                 "kind", hx_json_str(es[i].m, "kind"), "outputs", es[i].full,
                                                 "manifest_sha256", es[i].sha));
    for (size_t i = 0; i < nr; i++)
        json_array_append_new(runs, json_pack("{s:s,s:s?,s:s}", "id", rs[i].id,
                                              "recipe", hx_json_str(json_object_get(rs[i].run, "recipe"), "name"), "sha256",
                                              rs[i].sha));
    return json_pack("{s:i,s:{s:s,s:s,s:s},s:o,s:o}", "hx_export", 1, "hx", "version", HX_VERSION, "commit",
                     hx_build_commit(), "build", hx_build_flags(), "entries", entries, "runs", runs);
}

int hx_archive_export(const hx_store *s, const char *const *run_ids, int n_runs, const char *const *keys, int n_keys,
                      int with_inputs, const char *only_kinds, const char *path, json_t *report)
{
    json_t *want = json_object(), *missing = json_array();
    json_t **runs = xcalloc((size_t)n_runs + 1, sizeof *runs);
    xentry *es = NULL;
    xrun *rs = xcalloc((size_t)n_runs + 1, sizeof *rs);
    size_t ne = 0, nr = 0;
    char *tmp = xstrfmt("%s.tmp-%ld", path, (long)getpid()), *buf = NULL;
    struct archive *a = NULL;
    int fd = -1, rc = -1;
    long long bytes = 0;

    /* Run records, byte for byte, sorted by id, each once. */
    char **ids = xcalloc((size_t)n_runs + 1, sizeof *ids);
    for (int i = 0; i < n_runs; i++) ids[i] = (char *)run_ids[i];
    qsort(ids, (size_t)n_runs, sizeof *ids, hx_cmp_str);
    for (int i = 0; i < n_runs; i++) {
        if (i && !strcmp(ids[i], ids[i - 1])) continue;
        xrun *r = &rs[nr];
        char *p = xstrfmt("%s/runs/%s/run.json", s->root, ids[i]);
        json_error_t je;
        if (!hx_store_is_run_id(ids[i])) {
            error("'%s' is not a run id", ids[i]);
        } else if (hx_read_file(p, &r->text, &r->len) == 0 && !(r->run = json_loadb(r->text, r->len, 0, &je))) {
            error("%s:%d:%d: %s", p, je.line, je.column, je.text);
        }
        free(p);
        if (!r->run) goto out;
        r->id = xstrdup(ids[i]);
        hx_sha256_hex(r->text, r->len, r->sha);
        runs[nr++] = r->run;
    }

    if (select_entries(s, runs, (int)nr, keys, n_keys, with_inputs, only_kinds, want, missing) < 0) goto out;
    const char *k;
    json_t *v;
    char **sorted = xcalloc(json_object_size(want) + 1, sizeof *sorted);
    json_object_foreach(want, k, v) sorted[ne++] = (char *)k;
    qsort(sorted, ne, sizeof *sorted, hx_cmp_str);
    es = xcalloc(ne + 1, sizeof *es);
    for (size_t i = 0; i < ne; i++) {
        es[i].key = xstrdup(sorted[i]);
        es[i].full = json_is_true(json_object_get(want, sorted[i]));
    }
    free(sorted);
    for (size_t i = 0; i < ne; i++) {
        es[i].m = read_manifest_raw(s, es[i].key, &es[i].text, &es[i].len);
        if (!es[i].m) goto out;
        hx_sha256_hex(es[i].text, es[i].len, es[i].sha);
        if (es[i].full && !json_is_array(json_object_get(es[i].m, "outputs"))) {
            error("store entry %.12s: its manifest has no 'outputs' list", es[i].key);
            goto out;
        }
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error("cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    a = archive_write_new();
    if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        error("%s: %s", tmp, archive_error_string(a));
        goto out;
    }
    json_t *index = build_index(es, ne, rs, nr);
    char *itext = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(index);
    int ir = put_bytes(a, HX_ARCHIVE_INDEX, itext, strlen(itext));
    free(itext);
    if (ir < 0) goto out;
    buf = xmalloc(HX_ARCHIVE_CHUNK);
    for (size_t i = 0; i < ne; i++) {
        char *name = xstrfmt("store/%.2s/%s/manifest.json", es[i].key, es[i].key);
        int r = put_bytes(a, name, es[i].text, es[i].len);
        free(name);
        if (r < 0) goto out;
        json_t *outs = json_object_get(es[i].m, "outputs");
        for (size_t j = 0; es[i].full && j < json_array_size(outs); j++)
            if (put_output(a, s, es[i].key, json_array_get(outs, j), buf, &bytes) < 0) goto out;
    }
    for (size_t i = 0; i < nr; i++) {
        char *name = xstrfmt("runs/%s/run.json", rs[i].id);
        int r = put_bytes(a, name, rs[i].text, rs[i].len);
        free(name);
        if (r < 0) goto out;
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        error("%s: %s", tmp, archive_error_string(a));
        goto out;
    }
    if (fsync(fd) < 0) {
        error("cannot sync '%s': %s", tmp, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || rename(tmp, path) < 0) {
        error("cannot move '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
    if (report) {
        long long full = 0;
        for (size_t i = 0; i < ne; i++) full += es[i].full;
        json_object_set_new(report, "entries", json_integer((json_int_t)ne));
        json_object_set_new(report, "with_outputs", json_integer(full));
        json_object_set_new(report, "manifests_only", json_integer((json_int_t)ne - full));
        json_object_set_new(report, "runs", json_integer((json_int_t)nr));
        json_object_set_new(report, "output_bytes", json_integer(bytes));
        json_object_set_new(report, "bytes", json_integer((json_int_t)st.st_size));
        json_object_set(report, "missing", missing);
    }
out:
    if (a) archive_write_free(a);
    if (fd >= 0) close(fd);
    if (rc < 0) unlink(tmp);
    for (size_t i = 0; i < ne; i++) {
        free(es[i].key);
        free(es[i].text);
        json_decref(es[i].m);
    }
    for (size_t i = 0; i < nr; i++) {
        free(rs[i].id);
        free(rs[i].text);
        json_decref(rs[i].run);
    }
    if (nr < (size_t)n_runs && rs[nr].run == NULL) free(rs[nr].text); /* the record that failed to parse */
    free(es);
    free(rs);
    free(runs);
    free(ids);
    free(buf);
    free(tmp);
    json_decref(want);
    json_decref(missing);
    return rc;
}
