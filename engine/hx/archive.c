/* archive.c - hx export / hx import: the tar.zst layout, export with re-hashed outputs, staged and verified import. */
#include "engine/hx/archive.h"

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
#include <openssl/evp.h>

#include "base/base.h"
#include "base/sort.h"
#include "engine/hx/canon.h"
#include "engine/hx/exec.h"

#define CHUNK (1 << 20)
#define MAX_META ((la_int64_t)64 << 20) /* index, manifests and run records are read into memory */


int hx_archive_safe_relpath(const char *p)
{
    size_t n = strlen(p);
    if (!n || n > 4096 || p[0] == '/') return 0;
    for (const char *c = p; *c;) {
        size_t k = strcspn(c, "/");
        if (k == 0 || k > 255) return 0;
        if ((k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.')) return 0;
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f || c[i] == '\\') return 0;
        c += k;
        if (*c == '/' && !*++c) return 0; /* trailing '/' */
    }
    return 1;
}

hx_member_kind hx_archive_member(const char *name, char key[65], char id[32], const char **rel)
{
    if (!strcmp(name, HX_ARCHIVE_INDEX)) return HX_MEMBER_INDEX;
    if (!strncmp(name, "runs/", 5)) {
        const char *p = name + 5, *slash = strchr(p, '/');
        if (!slash || slash - p != 21 || strcmp(slash, "/run.json")) return HX_MEMBER_BAD;
        memcpy(id, p, 21);
        id[21] = 0;
        return hx_store_is_run_id(id) ? HX_MEMBER_RUN : HX_MEMBER_BAD;
    }
    if (!strncmp(name, "store/", 6)) {
        const char *p = name + 6; /* xx/<64 hex>/rel */
        if (strlen(p) < 69 || p[2] != '/' || p[67] != '/') return HX_MEMBER_BAD;
        memcpy(key, p + 3, 64);
        key[64] = 0;
        if (!hx_store_is_key(key) || strncmp(p, key, 2)) return HX_MEMBER_BAD;
        const char *r = p + 68;
        if (!hx_archive_safe_relpath(r)) return HX_MEMBER_BAD;
        if (rel) *rel = r;
        return strcmp(r, "manifest.json") ? HX_MEMBER_OUTPUT : HX_MEMBER_MANIFEST;
    }
    return HX_MEMBER_BAD;
}

/* ---- SHA-256, incrementally (outputs are hashed while they stream through) ---- */

typedef struct sha {
    EVP_MD_CTX *ctx;
} sha;

static void sha_init(sha *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) BUG("EVP sha256 init failed");
}

static void sha_update(sha *h, const void *p, size_t n)
{
    if (EVP_DigestUpdate(h->ctx, p, n) != 1) BUG("EVP sha256 update failed");
}

static void sha_final(sha *h, char hex[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, d, &n) != 1 || n != 32) BUG("EVP sha256 final failed");
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void sha_abort(sha *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

/* ================================ export ================================ */

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
static int select_entries(const hx_store *s, json_t *const *runs, int n_runs, const char *const *keys, int n_keys,
                          int with_inputs, json_t *want, json_t *missing)
{
    for (int r = 0; r < n_runs; r++) {
        json_t *stages = json_object_get(runs[r], "stages");
        for (size_t j = 0; j < json_array_size(stages); j++) {
            json_t *st = json_array_get(stages, j);
            const char *k = hx_json_str(st, "key"), *state = hx_json_str(st, "state");
            if (!k || !hx_store_is_key(k)) continue;
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
    if (!rel || !want || !hx_archive_safe_relpath(rel))
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
    sha h;
    sha_init(&h);
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            sha_abort(&h);
            error("%s: %s", p, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        if (total + n > size) n = (ssize_t)(size - total); /* grew meanwhile: the digest check says so */
        sha_update(&h, buf, (size_t)n);
        if (n && archive_write_data(a, buf, (size_t)n) != n) {
            sha_abort(&h);
            error("member '%s': %s", name, archive_error_string(a));
            goto out;
        }
        total += n;
        if (total == size) break;
    }
    char hex[65];
    sha_final(&h, hex);
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
                      int with_inputs, const char *path, json_t *report)
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

    if (select_entries(s, runs, (int)nr, keys, n_keys, with_inputs, want, missing) < 0) goto out;
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
    buf = xmalloc(CHUNK);
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

/* ================================ import ================================ */

typedef struct importer {
    const hx_store *s;
    const char *path;   /* the archive, for messages */
    char *stage;        /* partial/.import-<pid>-<n> */
    json_t *index;
    json_t *entries;    /* key -> index entry */
    json_t *runs;       /* id -> index run */
    json_t *got;        /* key -> {rel: {sha256, size}}; "runs/<id>" -> {sha256, size} */
    char *buf;
} importer;

/* Staging directories of import processes that no longer exist (killed) are removed. */
static void sweep_stale_staging(const hx_store *s)
{
    char *pdir = xstrfmt("%s/partial", s->root);
    DIR *d = opendir(pdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        if (strncmp(e->d_name, ".import-", 8) || sscanf(e->d_name + 8, "%ld-", &pid) != 1 || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *p = hx_path_join(pdir, e->d_name);
        if (hx_rm_rf(p) == 0) log_info("removed the staging of an interrupted import: %s", p);
        free(p);
    }
    if (d) closedir(d);
    free(pdir);
}

/* Stream the current member to DEST (created, never overwritten), hashing it. */
static int receive_file(importer *im, struct archive *a, const char *dest, la_int64_t size, const char *where,
                        char hex[65])
{
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST) return error("%s: appears twice in the archive", where);
        return error("%s: cannot create '%s': %s", where, dest, strerror(errno));
    }
    sha h;
    sha_init(&h);
    la_int64_t total = 0;
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, im->buf, CHUNK);
        if (n < 0) {
            rc = error("%s: %s (truncated or corrupt archive)", where, archive_error_string(a));
            break;
        }
        if (n == 0) break;
        sha_update(&h, im->buf, (size_t)n);
        for (la_ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, im->buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                rc = error("%s: cannot write '%s': %s", where, dest, strerror(errno));
                break;
            }
            off += w;
        }
        if (rc) break;
        total += n;
    }
    if (rc == 0 && total != size)
        rc = error("%s: %lld of %lld bytes (truncated archive)", where, (long long)total, (long long)size);
    if (rc == 0 && fsync(fd) < 0) rc = error("cannot sync '%s': %s", dest, strerror(errno));
    close(fd);
    if (rc == 0) sha_final(&h, hex);
    else sha_abort(&h);
    return rc;
}

/* The index: shape checked, entries and runs tabled by key and id. */
static int load_index(importer *im, const char *text, size_t len)
{
    json_error_t je;
    im->index = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!im->index) return error("%s: %s:%d:%d: %s", im->path, HX_ARCHIVE_INDEX, je.line, je.column, je.text);
    json_t *ents = json_object_get(im->index, "entries"), *runs = json_object_get(im->index, "runs");
    if (json_integer_value(json_object_get(im->index, "hx_export")) != 1 || !json_is_array(ents) || !json_is_array(runs))
        return error("%s: %s is not an hx export index of format 1 (made by a newer hx?)", im->path, HX_ARCHIVE_INDEX);
    size_t i;
    json_t *v;
    json_array_foreach(ents, i, v) {
        const char *k = hx_json_str(v, "key"), *d = hx_json_str(v, "manifest_sha256");
        if (!k || !hx_store_is_key(k) || !d || !hx_store_is_key(d) || !json_is_boolean(json_object_get(v, "outputs")))
            return error("%s: %s: entries[%zu] needs key, manifest_sha256 (64 hex digits) and outputs", im->path,
                         HX_ARCHIVE_INDEX, i);
        if (json_object_get(im->entries, k)) return error("%s: %s: entry %s is listed twice", im->path, HX_ARCHIVE_INDEX, k);
        json_object_set(im->entries, k, v);
    }
    json_array_foreach(runs, i, v) {
        const char *id = hx_json_str(v, "id"), *d = hx_json_str(v, "sha256");
        if (!id || !hx_store_is_run_id(id) || !d || !hx_store_is_key(d))
            return error("%s: %s: runs[%zu] needs id (a run id) and sha256", im->path, HX_ARCHIVE_INDEX, i);
        if (json_object_get(im->runs, id)) return error("%s: %s: run %s is listed twice", im->path, HX_ARCHIVE_INDEX, id);
        json_object_set(im->runs, id, v);
    }
    return 0;
}

static void note_got(importer *im, const char *group, const char *rel, const char *hex, la_int64_t size)
{
    json_t *g = json_object_get(im->got, group);
    if (!g) json_object_set_new(im->got, group, g = json_object());
    json_object_set_new(g, rel, json_pack("{s:s,s:I}", "sha256", hex, "size", (json_int_t)size));
}

/* Read every member into the staging directory, refusing anything outside the layout. */
static int read_members(importer *im)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_none(a);
    archive_read_support_format_tar(a);
    int fd = hx_open_input(im->path, HX_IN_STREAM, NULL); /* a FIFO or device would never end */
    if (fd < 0 || archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
        int rc = fd < 0 ? -1 : error("%s: %s (not a tar.zst, or truncated or corrupt)", im->path, archive_error_string(a));
        archive_read_free(a);
        if (fd >= 0) close(fd);
        return rc;
    }
    int rc = 0;
    for (int nm = 1;; nm++) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            if (nm == 1) rc = error("%s: an empty archive (no %s)", im->path, HX_ARCHIVE_INDEX);
            break;
        }
        if (r != ARCHIVE_OK) {
            rc = error("%s: member %d: %s (truncated or corrupt archive)", im->path, nm, archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(e);
        char *where = xstrfmt("%s: member %d '%s'", im->path, nm, name ? name : "?");
        char key[65], id[32], hex[65];
        const char *rel = NULL;
        hx_member_kind kind = name ? hx_archive_member(name, key, id, &rel) : HX_MEMBER_BAD;
        la_int64_t size = archive_entry_size(e);
        json_t *ie = NULL;
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e))
            rc = error("%s: not a regular file (links, directories and devices are refused)", where);
        else if (!archive_entry_size_is_set(e) || size < 0)
            rc = error("%s: no size", where);
        else if (kind == HX_MEMBER_BAD)
            rc = error("%s: outside the hx export layout (absolute paths, '..' and unknown names are refused)", where);
        else if ((nm == 1) != (kind == HX_MEMBER_INDEX))
            rc = error("%s: the first member must be %s, and only the first (not an hx export?)", where, HX_ARCHIVE_INDEX);
        else if (kind != HX_MEMBER_OUTPUT && size > MAX_META)
            rc = error("%s: %lld bytes, more than any index, manifest or run record may have", where, (long long)size);
        else if (kind == HX_MEMBER_INDEX) {
            char *text = xmalloc((size_t)size + 1);
            la_ssize_t got = 0, n = 1;
            while (got < size && (n = archive_read_data(a, text + got, (size_t)(size - got))) > 0) got += n;
            if (got != size)
                rc = error("%s: %s (truncated or corrupt archive)", where, n < 0 ? archive_error_string(a) : "short read");
            else
                rc = load_index(im, text, (size_t)size);
            free(text);
        } else if (kind == HX_MEMBER_RUN) {
            if (!json_object_get(im->runs, id)) rc = error("%s: run %s is not in the index", where, id);
            else {
                char *dest = xstrfmt("%s/runs/%s.json", im->stage, id);
                rc = receive_file(im, a, dest, size, where, hex);
                if (rc == 0) note_got(im, "runs", id, hex, size);
                free(dest);
            }
        } else if (!(ie = json_object_get(im->entries, key))) {
            rc = error("%s: entry %.12s is not in the index", where, key);
        } else if (kind == HX_MEMBER_OUTPUT && !json_is_true(json_object_get(ie, "outputs"))) {
            rc = error("%s: entry %.12s is listed as manifest-only, yet has outputs", where, key);
        } else {
            char *dest = xstrfmt("%s/%s/%s", im->stage, key, rel);
            char *slash = strrchr(dest, '/');
            *slash = 0;
            rc = hx_mkdir_p(dest);
            *slash = '/';
            if (rc == 0) rc = receive_file(im, a, dest, size, where, hex);
            if (rc == 0) note_got(im, key, rel, hex, size);
            free(dest);
        }
        free(where);
        if (rc) break;
    }
    archive_read_free(a);
    close(fd);
    return rc;
}

/* Every manifest against the index, every output against its manifest, every run against the index. */
static int verify_staged(importer *im)
{
    size_t ei;
    json_t *ie;
    json_array_foreach(json_object_get(im->index, "entries"), ei, ie) {
        const char *key = hx_json_str(ie, "key");
        const char *stage = hx_json_str(ie, "stage") ? hx_json_str(ie, "stage") : "?";
        json_t *got = json_object_get(im->got, key);
        json_t *gm = json_object_get(got, "manifest.json");
        if (!gm)
            return error("%s: entry %.12s (stage %s): no manifest in the archive (truncated?)", im->path, key, stage);
        if (strcmp(hx_json_str(gm, "sha256"), hx_json_str(ie, "manifest_sha256")))
            return error("%s: entry %.12s (stage %s): manifest.json has sha256 %.12s..., the index recorded %.12s...: "
                         "the archive is corrupt or was altered",
                         im->path, key, stage, hx_json_str(gm, "sha256"), hx_json_str(ie, "manifest_sha256"));
        char *mp = xstrfmt("%s/%s/manifest.json", im->stage, key);
        json_error_t je;
        json_t *m = json_load_file(mp, 0, &je);
        free(mp);
        if (!m)
            return error("%s: entry %.12s (stage %s): manifest.json:%d:%d: %s", im->path, key, stage, je.line, je.column,
                         je.text);
        int rc = 0;
        json_t *outs = json_object_get(m, "outputs");
        if (strcmp(hx_json_str(m, "key") ? hx_json_str(m, "key") : "", key))
            rc = error("%s: entry %.12s (stage %s): its manifest names key %s", im->path, key, stage,
                       hx_json_str(m, "key") ? hx_json_str(m, "key") : "(none)");
        else if (!json_is_array(outs))
            rc = error("%s: entry %.12s (stage %s): its manifest has no 'outputs' list", im->path, key, stage);
        int full = json_is_true(json_object_get(ie, "outputs"));
        size_t seen = 1; /* manifest.json */
        for (size_t j = 0; rc == 0 && full && j < json_array_size(outs); j++) {
            json_t *o = json_array_get(outs, j);
            const char *rel = hx_json_str(o, "path"), *want = hx_json_str(o, "sha256");
            json_t *g = rel ? json_object_get(got, rel) : NULL;
            if (!rel || !want || !hx_archive_safe_relpath(rel) || !strcmp(rel, "manifest.json"))
                rc = error("%s: entry %.12s (stage %s): manifest output %zu has no sha256 or an unsafe path", im->path,
                           key, stage, j);
            else if (!g)
                rc = error("%s: entry %.12s (stage %s): output %s is missing from the archive (truncated?)", im->path,
                           key, stage, rel);
            else if (json_integer_value(json_object_get(g, "size")) != json_integer_value(json_object_get(o, "size")) ||
                     strcmp(hx_json_str(g, "sha256"), want))
                rc = error("%s: entry %.12s (stage %s): output %s has sha256 %.12s... (%lld bytes), its manifest "
                           "recorded %.12s... (%lld bytes): the archive is corrupt or was altered",
                           im->path, key, stage, rel, hx_json_str(g, "sha256"),
                           (long long)json_integer_value(json_object_get(g, "size")), want,
                           (long long)json_integer_value(json_object_get(o, "size")));
            else
                seen++;
        }
        if (rc == 0 && json_object_size(got) != seen)
            rc = error("%s: entry %.12s (stage %s): the archive has files its manifest does not list", im->path, key,
                       stage);
        if (rc == 0) {
            /* Keys are content addresses: one that its manifest does not hash to is either a --strict
             * key made before manifests recorded the binary's digest, or an edited manifest. */
            char k2[65];
            if (hx_store_manifest_key(m, k2) < 0 || strcmp(k2, key))
                log_warn("entry %.12s (stage %s): its manifest does not hash to its key (a --strict run, or an edited "
                         "manifest)",
                         key, stage);
        }
        json_decref(m);
        if (rc) return rc;
    }
    json_t *ir;
    json_t *gr = json_object_get(im->got, "runs");
    json_array_foreach(json_object_get(im->index, "runs"), ei, ir) {
        const char *id = hx_json_str(ir, "id");
        json_t *g = json_object_get(gr, id);
        if (!g) return error("%s: run %s: no run record in the archive (truncated?)", im->path, id);
        if (strcmp(hx_json_str(g, "sha256"), hx_json_str(ir, "sha256")))
            return error("%s: run %s: run.json has sha256 %.12s..., the index recorded %.12s...: the archive is corrupt "
                         "or was altered",
                         im->path, id, hx_json_str(g, "sha256"), hx_json_str(ir, "sha256"));
        char *p = xstrfmt("%s/runs/%s.json", im->stage, id);
        json_error_t je;
        json_t *run = json_load_file(p, 0, &je);
        free(p);
        if (!run) return error("%s: run %s: run.json:%d:%d: %s", im->path, id, je.line, je.column, je.text);
        int bad = strcmp(hx_json_str(run, "run_id") ? hx_json_str(run, "run_id") : "", id);
        json_decref(run);
        if (bad) return error("%s: run %s: its record names another run id", im->path, id);
    }
    return 0;
}

/* Outputs get their recorded mtimes back, so the store's cheap check (size + mtime) holds without re-hashing. */
static int restore_mtimes(importer *im, const char *key)
{
    char *mp = xstrfmt("%s/%s/manifest.json", im->stage, key);
    json_t *m = json_load_file(mp, 0, NULL);
    free(mp);
    json_t *outs = json_object_get(m, "outputs");
    int rc = 0;
    for (size_t j = 0; rc == 0 && j < json_array_size(outs); j++) {
        json_t *o = json_array_get(outs, j);
        long long ns = json_integer_value(json_object_get(o, "mtime_ns"));
        if (ns <= 0) continue;
        char *p = xstrfmt("%s/%s/%s", im->stage, key, hx_json_str(o, "path"));
        struct timespec ts[2] = {{ns / 1000000000LL, ns % 1000000000LL}, {ns / 1000000000LL, ns % 1000000000LL}};
        if (utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
            rc = error("cannot set the time of '%s': %s", p, strerror(errno));
        free(p);
    }
    json_decref(m);
    return rc;
}

static int commit_staged(importer *im, int dry_run, json_t *report)
{
    json_t *added = json_array(), *present = json_array(), *prov = json_array();
    json_t *runs_added = json_array(), *runs_present = json_array();
    long long bytes = 0;
    int rc = 0;
    size_t i;
    json_t *ie;
    json_array_foreach(json_object_get(im->index, "entries"), i, ie) {
        const char *key = hx_json_str(ie, "key");
        json_t *row = json_pack("{s:s,s:s?}", "key", key, "stage", hx_json_str(ie, "stage"));
        if (!json_is_true(json_object_get(ie, "outputs"))) {
            json_array_append_new(prov, row);
            continue;
        }
        if (dry_run) {
            json_array_append_new(hx_store_has(im->s, key) ? present : added, row);
            continue;
        }
        hx_lock l;
        if (hx_store_lock(im->s, key, 1, NULL, &l) < 0) {
            json_decref(row);
            rc = -1;
            break;
        }
        if (hx_store_has(im->s, key)) {
            json_array_append_new(present, row);
        } else {
            char *dir = xstrfmt("%s/%s", im->stage, key);
            rc = restore_mtimes(im, key);
            if (rc == 0) rc = hx_store_adopt(im->s, key, dir);
            free(dir);
            if (rc == 0) {
                json_t *g;
                const char *rel;
                json_object_foreach(json_object_get(im->got, key), rel, g) bytes += json_integer_value(json_object_get(g, "size"));
                json_array_append_new(added, row);
            } else {
                error_prefix("entry %.12s", key);
                json_decref(row);
            }
        }
        hx_store_unlock(&l);
        if (rc) break;
    }
    /* Run records last: a record never names an entry that is not in the store yet. */
    json_t *ir;
    json_array_foreach(json_object_get(im->index, "runs"), i, ir) {
        if (rc) break;
        const char *id = hx_json_str(ir, "id");
        char *p = xstrfmt("%s/runs/%s.json", im->stage, id), *text = NULL;
        size_t len = 0;
        if (dry_run) {
            char *dst = xstrfmt("%s/runs/%s/run.json", im->s->root, id);
            json_array_append_new(hx_file_exists(dst) ? runs_present : runs_added, json_string(id));
            free(dst);
        } else if ((rc = hx_read_file(p, &text, &len)) == 0) {
            int r = hx_store_add_run(im->s, id, text, len);
            if (r < 0) rc = -1;
            else json_array_append_new(r ? runs_present : runs_added, json_string(id));
        }
        free(text);
        free(p);
    }
    if (report) {
        json_object_set_new(report, "added", added);
        json_object_set_new(report, "present", present);
        json_object_set_new(report, "provenance", prov);
        json_object_set_new(report, "runs_added", runs_added);
        json_object_set_new(report, "runs_present", runs_present);
        json_object_set_new(report, "bytes", json_integer(bytes));
        json_object_set_new(report, "dry_run", json_boolean(dry_run));
    } else {
        json_decref(added);
        json_decref(present);
        json_decref(prov);
        json_decref(runs_added);
        json_decref(runs_present);
    }
    return rc;
}

int hx_archive_import(const hx_store *s, const char *path, int dry_run, json_t *report)
{
    sweep_stale_staging(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    importer im = {
        .s = s,
        .path = path,
        .stage = xstrfmt("%s/partial/.import-%ld-%ld", s->root, (long)getpid(), (long)(ts.tv_nsec ^ ts.tv_sec)),
        .entries = json_object(),
        .runs = json_object(),
        .got = json_object(),
        .buf = xmalloc(CHUNK),
    };
    char *runs_dir = hx_path_join(im.stage, "runs");
    int rc = hx_mkdir_p(runs_dir);
    if (rc == 0) rc = read_members(&im);
    if (rc == 0) rc = verify_staged(&im);
    if (rc == 0) rc = commit_staged(&im, dry_run, report);
    if (hx_is_dir(im.stage) && hx_rm_rf(im.stage) < 0 && rc == 0) rc = -1;
    free(runs_dir);
    free(im.stage);
    free(im.buf);
    json_decref(im.index);
    json_decref(im.entries);
    json_decref(im.runs);
    json_decref(im.got);
    return rc;
}
