/* store_gc.c - hx gc: run records beyond --keep, then every entry and partial no kept record references. */
#include "interp/store_internal.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "base/sort.h"
#include "interp/canon.h"

/* ---- gc ---- */

static long long du(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return 0;
    if (!S_ISDIR(st.st_mode)) return st.st_size;
    long long total = 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = hx_path_join(path, e->d_name);
        total += du(p);
        free(p);
    }
    closedir(d);
    return total;
}

/* Remove DIR (an entry or a partial work directory of KEY) unless its key is referenced, locked or pinned; LIST
 * gets {key|name, stage?, bytes} of what was removed (or would be, with dry_run). */
static int gc_one(const hx_store *s, const char *key, const char *dir, const json_t *keep, int dry_run,
                  long long *removed, long long *bytes, json_t *list)
{
    if (json_object_get(keep, key)) return 0;
    hx_lock l, pin = {-1};
    if (hx_store_is_key(key)) {
        int r = hx_store_lock(s, key, 0, NULL, &l);
        if (r != 0) return r < 0 ? -1 : 0; /* busy: someone is working on it */
        r = hx_store_pin_exclusive(s, key, &pin);
        if (r != 0) {
            hx_store_unlock(&l);
            return r < 0 ? -1 : 0; /* a running stage is reading it */
        }
    } else {
        l.fd = -1;
    }
    long long b = du(dir);
    json_t *m = list && hx_store_is_key(key) ? hx_store_manifest(s, key) : NULL; /* an entry's manifest names its stage */
    json_t *what = json_pack("{s:s,s:I}", hx_store_is_key(key) ? "key" : "name", key, "bytes", (json_int_t)b);
    if (json_is_string(json_object_get(m, "stage"))) json_object_set(what, "stage", json_object_get(m, "stage"));
    json_decref(m);
    hx_clear_error();
    int rc = 0;
    if (!dry_run) rc = hx_store_rm_entry(dir);
    if (rc == 0) {
        (*removed)++;
        *bytes += b;
        if (list) json_array_append(list, what);
    }
    json_decref(what);
    hx_store_unlock(&pin);
    hx_store_unlock(&l);
    return rc;
}

/* After records were removed: runs/latest names the newest remaining record, or is gone with the last one. */
void hx_store_repoint_latest(const hx_store *s)
{
    json_t *cur = hx_store_read_run(s, "latest");
    hx_clear_error();
    if (cur) {
        json_decref(cur);
        return;
    }
    json_t *ids = hx_store_list_runs(s);
    char *l = xstrfmt("%s/runs/latest", s->root), *tmp = xstrfmt("%s/runs/.latest.%ld", s->root, (long)getpid());
    size_t n = json_array_size(ids);
    unlink(tmp);
    if (!n) unlink(l);
    else if (symlink(json_string_value(json_array_get(ids, n - 1)), tmp) < 0 || rename(tmp, l) < 0) {
        log_warn("gc: cannot point '%s' at the newest run: %s", l, strerror(errno));
        unlink(tmp);
    }
    free(l);
    free(tmp);
    json_decref(ids);
}

int hx_store_gc(const hx_store *s, int keep_n, int dry_run, json_t *report)
{
    json_t *ids = hx_store_list_runs(s), *keep = json_object();
    size_t n = json_array_size(ids);
    long long runs_removed = 0, removed = 0, bytes = 0, live = 0;
    json_t *l_runs = json_array(), *l_entries = json_array(), *l_partials = json_array();
    int rc = 0;
    size_t first_kept = keep_n < 0 || (size_t)keep_n >= n ? 0 : n - (size_t)keep_n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *run = hx_store_read_run(s, id);
        if (!run) {
            /* An unreadable record keeps nothing alive, but is not deleted either: say so. */
            log_warn("gc: %s (hx fsck lists it; --repair moves it to quarantine/)", hx_last_error());
            continue;
        }
        /* A run still in progress pins every entry of its plan, whatever --keep says. */
        int alive = hx_store_run_alive(run) != 0;
        if (i < first_kept && !alive) {
            char *d = xstrfmt("%s/runs/%s", s->root, id);
            if (!dry_run) rc = hx_rm_rf(d);
            runs_removed++;
            json_array_append_new(l_runs, json_string(id));
            free(d);
            json_decref(run);
            continue;
        }
        live += i < first_kept;
        json_t *stages = json_object_get(run, "stages");
        for (size_t j = 0; j < json_array_size(stages); j++) {
            const char *k = json_string_value(json_object_get(json_array_get(stages, j), "key"));
            if (k) json_object_set_new(keep, k, json_true());
        }
        json_decref(run);
    }
    if (!dry_run && runs_removed) hx_store_repoint_latest(s);
    /* store/<xx>/<key> */
    char *sdir = xstrfmt("%s/store", s->root);
    DIR *d = rc == 0 ? opendir(sdir) : NULL;
    struct dirent *e;
    while (d && rc == 0 && (e = readdir(d))) {
        if (strlen(e->d_name) != 2) continue;
        char *shard = hx_path_join(sdir, e->d_name);
        DIR *d2 = opendir(shard);
        struct dirent *e2;
        while (d2 && rc == 0 && (e2 = readdir(d2))) {
            if (!hx_store_is_key(e2->d_name)) continue;
            char *p = hx_path_join(shard, e2->d_name);
            rc = gc_one(s, e2->d_name, p, keep, dry_run, &removed, &bytes, l_entries);
            free(p);
        }
        if (d2) closedir(d2);
        free(shard);
    }
    if (d) closedir(d);
    free(sdir);
    /* partial/<key> (work of no kept run) and partial/<key>.corrupt-* (always debris) */
    char *pdir = xstrfmt("%s/partial", s->root);
    d = rc == 0 ? opendir(pdir) : NULL;
    while (d && rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = hx_path_join(pdir, e->d_name);
        long long dummy = 0;
        rc = gc_one(s, e->d_name, p, keep, dry_run, hx_store_is_key(e->d_name) ? &removed : &dummy, &bytes, l_partials);
        free(p);
    }
    if (d) closedir(d);
    free(pdir);
    /* reports/<run>: a report folder is derived from its run record and goes with it (also one left by a gc of
     * an earlier version); a name that is no run id is the user's, and stays */
    json_t *l_reports = json_array();
    char *rdir = xstrfmt("%s/reports", s->root);
    d = rc == 0 ? opendir(rdir) : NULL;
    while (d && rc == 0 && (e = readdir(d))) {
        if (!hx_store_is_run_id(e->d_name)) continue;
        char *rec = xstrfmt("%s/runs/%s", s->root, e->d_name);
        int gone = !hx_is_dir(rec);
        for (size_t i = 0; !gone && i < json_array_size(l_runs); i++)
            gone = !strcmp(json_string_value(json_array_get(l_runs, i)), e->d_name);
        free(rec);
        if (!gone) continue;
        char *p = hx_path_join(rdir, e->d_name);
        long long b = du(p);
        if (!dry_run) rc = hx_rm_rf(p);
        if (rc == 0) {
            bytes += b;
            json_array_append_new(l_reports, json_pack("{s:s,s:I}", "name", e->d_name, "bytes", (json_int_t)b));
        }
        free(p);
    }
    if (d) closedir(d);
    free(rdir);
    if (report) {
        json_object_set(report, "removed_reports", l_reports);
        json_object_set_new(report, "runs_removed", json_integer(runs_removed));
        json_object_set_new(report, "entries_removed", json_integer(removed));
        json_object_set_new(report, "bytes_freed", json_integer(bytes));
        json_object_set_new(report, "runs_kept", json_integer((json_int_t)(n - first_kept) + live));
        json_object_set_new(report, "runs_live", json_integer(live));
        json_object_set(report, "removed_runs", l_runs);
        json_object_set(report, "removed_entries", l_entries);
        json_object_set(report, "removed_partials", l_partials);
    }
    json_decref(l_runs);
    json_decref(l_entries);
    json_decref(l_partials);
    json_decref(l_reports);
    json_decref(ids);
    json_decref(keep);
    return rc;
}
