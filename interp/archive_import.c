/* archive_import.c - hx import: every member staged, checked against the index and the manifests, then committed. */
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

#define MAX_META ((la_int64_t)64 << 20) /* index, manifests and run records are read into memory */

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
    hx_sha256 h;
    hx_sha256_init(&h);
    la_int64_t total = 0;
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, im->buf, HX_ARCHIVE_CHUNK);
        if (n < 0) {
            rc = error("%s: %s (truncated or corrupt archive)", where, archive_error_string(a));
            break;
        }
        if (n == 0) break;
        hx_sha256_update(&h, im->buf, (size_t)n);
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
    if (rc == 0) hx_sha256_final(&h, hex);
    else hx_sha256_abort(&h);
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
            if (!rel || !want || !hx_store_rel_ok(rel) || !strcmp(rel, "manifest.json"))
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
    long long bytes = 0, bytes_present = 0; /* unpacked outputs added (or to add), and of entries already there */
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
        /* the entry's unpacked size: its files (outputs and manifest) as verified in the staging directory */
        long long eb = 0;
        json_t *g;
        const char *rel;
        json_object_foreach(json_object_get(im->got, key), rel, g) eb += json_integer_value(json_object_get(g, "size"));
        json_object_set_new(row, "bytes", json_integer(eb));
        if (dry_run) {
            int have = hx_store_has(im->s, key);
            if (have) bytes_present += eb;
            else bytes += eb;
            json_array_append_new(have ? present : added, row);
            continue;
        }
        hx_lock l;
        if (hx_store_lock(im->s, key, 1, NULL, &l) < 0) {
            json_decref(row);
            rc = -1;
            break;
        }
        if (hx_store_has(im->s, key)) {
            bytes_present += eb;
            json_array_append_new(present, row);
        } else {
            char *dir = xstrfmt("%s/%s", im->stage, key);
            rc = restore_mtimes(im, key);
            if (rc == 0) rc = hx_store_adopt(im->s, key, dir);
            free(dir);
            if (rc == 0) {
                bytes += eb;
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
        json_object_set_new(report, "bytes_present", json_integer(bytes_present));
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
        .buf = xmalloc(HX_ARCHIVE_CHUNK),
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
