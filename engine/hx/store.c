/* store.c - the content-addressed store on disk: atomic commits, flock per key, digests, runs, gc. */
#include "engine/hx/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "base/base.h"
#include "engine/hx/canon.h"

static int is_key(const char *k)
{
    return strlen(k) == 64 && strspn(k, "0123456789abcdef") == 64;
}

int hx_store_open(hx_store *s, const char *root)
{
    memset(s, 0, sizeof *s);
    s->root = xstrdup(root);
    static const char *const dirs[] = {"store", "partial", "locks", "runs"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char *d = hx_path_join(root, dirs[i]);
        int rc = hx_mkdir_p(d);
        free(d);
        if (rc < 0) {
            error_prefix("store '%s'", root);
            hx_store_release(s);
            return -1;
        }
    }
    return 0;
}

void hx_store_release(hx_store *s)
{
    free(s->root);
    s->root = NULL;
}

char *hx_store_entry_dir(const hx_store *s, const char *key)
{
    return xstrfmt("%s/store/%.2s/%s", s->root, key, key);
}

static char *manifest_path(const hx_store *s, const char *key)
{
    return xstrfmt("%s/store/%.2s/%s/manifest.json", s->root, key, key);
}

int hx_store_has(const hx_store *s, const char *key)
{
    if (!is_key(key)) return 0;
    char *m = manifest_path(s, key);
    int ok = hx_file_exists(m);
    free(m);
    return ok;
}

json_t *hx_store_manifest(const hx_store *s, const char *key)
{
    if (!is_key(key)) return (void)error("'%s' is not a store key (64 hex digits)", key), NULL;
    char *m = manifest_path(s, key);
    json_t *v = hx_read_json(m, 0);
    free(m);
    return v;
}

char *hx_store_find_key(const hx_store *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n < 4 || n > 64 || strspn(prefix, "0123456789abcdef") != n)
        return (void)error("'%s' is neither a run id nor a key (at least 4 hex digits)", prefix), NULL;
    char *dir = xstrfmt("%s/store/%.2s", s->root, prefix);
    DIR *d = opendir(dir);
    char *found = NULL;
    int count = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (is_key(e->d_name) && !strncmp(e->d_name, prefix, n)) {
                if (!found) found = xstrdup(e->d_name);
                count++;
            }
        closedir(d);
    }
    free(dir);
    if (count == 1) return found;
    free(found);
    if (count == 0) return (void)error("no store entry with key %s in %s", prefix, s->root), NULL;
    return (void)error("key prefix %s is ambiguous (%d entries); give more digits", prefix, count), NULL;
}

/* ---- locks ---- */

int hx_store_lock(const hx_store *s, const char *key, int wait, volatile int *interrupted, hx_lock *l)
{
    char *p = xstrfmt("%s/locks/%s.lock", s->root, key);
    l->fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        error("cannot open lock '%s': %s", p, strerror(errno));
        free(p);
        return -1;
    }
    int told = 0;
    for (;;) {
        if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            error("cannot lock '%s': %s", p, strerror(errno));
            close(l->fd);
            l->fd = -1;
            free(p);
            return -1;
        }
        if (!wait) {
            close(l->fd);
            l->fd = -1;
            free(p);
            return 1;
        }
        if (interrupted && *interrupted) {
            close(l->fd);
            l->fd = -1;
            free(p);
            return error("interrupted while waiting for the lock of %.12s", key);
        }
        if (!told++) log_info("waiting for %.12s: another hx process is executing it", key);
        usleep(20000);
    }
    free(p);
    return 0;
}

void hx_store_unlock(hx_lock *l)
{
    if (l->fd >= 0) close(l->fd); /* closing releases the flock */
    l->fd = -1;
}

/* ---- outputs ---- */

static int hash_file(const char *path, char hex[65], int do_sync)
{
    if (hx_sha256_file_hex(path, hex) < 0) return -1;
    if (do_sync) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0) {
            int e = errno;
            if (fd >= 0) close(fd);
            return error("cannot sync '%s': %s", path, strerror(e));
        }
        close(fd);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Regular files under DIR/REL, relative paths appended to *list; subdirectories synced. */
static int list_files(const char *dir, const char *rel, char ***list, size_t *n, size_t *cap, int depth)
{
    char *full = *rel ? hx_path_join(dir, rel) : xstrdup(dir);
    DIR *d = opendir(full);
    if (!d) {
        error("cannot read directory '%s': %s", full, strerror(errno));
        free(full);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!*rel && !strcmp(e->d_name, "manifest.json")) continue;
        char *r = *rel ? xstrfmt("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
        char *p = hx_path_join(dir, r);
        struct stat st;
        if (lstat(p, &st) < 0) rc = error("cannot stat '%s': %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode)) {
            if (depth > 32) rc = error("'%s': outputs nested too deeply", p);
            else rc = list_files(dir, r, list, n, cap, depth + 1);
            free(r);
            r = NULL;
        } else if (S_ISREG(st.st_mode)) {
            if (*n == *cap) *list = xrealloc(*list, (*cap = *cap ? 2 * *cap : 16) * sizeof **list);
            (*list)[(*n)++] = r;
            r = NULL;
        } else {
            rc = error("'%s': a stage's outputs must be regular files and directories", p);
        }
        free(r);
        free(p);
    }
    closedir(d);
    if (rc == 0 && *rel) rc = hx_fsync_dir(full);
    free(full);
    return rc;
}

static long long mtime_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

int hx_store_verify(const hx_store *s, const char *key, int full)
{
    json_t *m = hx_store_manifest(s, key);
    if (!m) return -1;
    char *dir = hx_store_entry_dir(s, key);
    json_t *outs = json_object_get(m, "outputs");
    int rc = 0;
    if (!json_is_array(outs)) rc = error("%s/manifest.json: no 'outputs' list", dir), rc = 1;
    for (size_t i = 0; rc == 0 && i < json_array_size(outs); i++) {
        json_t *o = json_array_get(outs, i);
        const char *rel = json_string_value(json_object_get(o, "path"));
        const char *want = json_string_value(json_object_get(o, "sha256"));
        if (!rel || !want) {
            rc = 1, error("%s/manifest.json: output %zu has no path or sha256", dir, i);
            break;
        }
        char *p = hx_path_join(dir, rel);
        struct stat st;
        if (stat(p, &st) < 0) rc = 1, error("%s: missing (recorded in the manifest)", p);
        else if ((long long)st.st_size != json_integer_value(json_object_get(o, "size")))
            rc = 1, error("%s: size %lld, the manifest recorded %lld", p, (long long)st.st_size,
                          (long long)json_integer_value(json_object_get(o, "size")));
        else if (full || mtime_ns(&st) != json_integer_value(json_object_get(o, "mtime_ns"))) {
            char hex[65];
            if (hash_file(p, hex, 0) < 0) rc = 1;
            else if (strcmp(hex, want)) rc = 1, error("%s: sha256 %.12s..., the manifest recorded %.12s...", p, hex, want);
        }
        free(p);
    }
    free(dir);
    json_decref(m);
    return rc;
}

int hx_store_discard(const hx_store *s, const char *key)
{
    char *dir = hx_store_entry_dir(s, key);
    char *aside = xstrfmt("%s/partial/%s.corrupt-%ld", s->root, key, (long)getpid());
    int rc = 0;
    /* Rename first: the entry stops being "done" atomically, then the files go. */
    if (rename(dir, aside) < 0) rc = error("cannot move '%s' aside: %s", dir, strerror(errno));
    else rc = hx_rm_rf(aside);
    free(dir);
    free(aside);
    return rc;
}

int hx_store_begin(const hx_store *s, const char *key, char **out_dir, char **ckpt_dir)
{
    *out_dir = xstrfmt("%s/partial/%s/out", s->root, key);
    *ckpt_dir = xstrfmt("%s/partial/%s/ckpt", s->root, key);
    /* A manifest left by a commit killed before its rename is not trusted: it is rewritten. */
    char *m = hx_path_join(*out_dir, "manifest.json");
    unlink(m);
    free(m);
    if (hx_mkdir_p(*out_dir) < 0 || hx_mkdir_p(*ckpt_dir) < 0) {
        free(*out_dir);
        free(*ckpt_dir);
        *out_dir = *ckpt_dir = NULL;
        return -1;
    }
    return 0;
}

int hx_store_commit(const hx_store *s, const char *key, json_t *manifest)
{
    char *out = xstrfmt("%s/partial/%s/out", s->root, key);
    char *work = xstrfmt("%s/partial/%s", s->root, key);
    char *shard = xstrfmt("%s/store/%.2s", s->root, key);
    char *dest = hx_store_entry_dir(s, key);
    char **files = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    char *mp = hx_path_join(out, "manifest.json");
    if (hx_file_exists(mp)) {
        error("%s: a stage may not write 'manifest.json' (the store's name for its record)", out);
        goto done;
    }
    if (list_files(out, "", &files, &n, &cap, 0) < 0) goto done;
    if (n) qsort(files, n, sizeof *files, cmp_str); /* qsort(NULL, 0) is undefined */
    json_t *outs = json_array();
    json_object_set_new(manifest, "outputs", outs);
    for (size_t i = 0; i < n; i++) {
        char *p = hx_path_join(out, files[i]);
        struct stat st;
        char hex[65];
        int bad = stat(p, &st) < 0 ? error("cannot stat '%s': %s", p, strerror(errno)) : hash_file(p, hex, 1);
        free(p);
        if (bad) goto done;
        json_array_append_new(outs, json_pack("{s:s,s:I,s:I,s:s}", "path", files[i], "size", (json_int_t)st.st_size,
                                              "mtime_ns", (json_int_t)mtime_ns(&st), "sha256", hex));
    }
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t tl = strlen(text);
    text = xrealloc(text, tl + 2);
    text[tl] = '\n';
    text[tl + 1] = 0;
    int w = hx_write_file(mp, text, tl + 1);
    free(text);
    if (w < 0 || hx_fsync_dir(out) < 0) goto done;
    const char *pause = getenv("HX_TEST_COMMIT_SLEEP");
    if (pause && atof(pause) > 0) usleep((useconds_t)(atof(pause) * 1e6));
    if (hx_mkdir_p(shard) < 0) goto done;
    if (hx_is_dir(dest)) {
        /* An entry directory without a manifest is debris (not done by definition): replace it. */
        char *m = manifest_path(s, key);
        int has = hx_file_exists(m);
        free(m);
        if (has) {
            error("store entry %s appeared while this process held its lock", key);
            goto done;
        }
        if (hx_rm_rf(dest) < 0) goto done;
    }
    if (rename(out, dest) < 0) {
        error("cannot move '%s' to '%s': %s", out, dest, strerror(errno));
        goto done;
    }
    /* The entry is in place: its work directory goes even when the sync fails (which is still reported). */
    int synced = hx_fsync_dir(shard);
    rc = synced < 0 ? (hx_rm_rf(work), -1) : hx_rm_rf(work);
done:
    for (size_t i = 0; i < n; i++) free(files[i]);
    free(files);
    free(mp);
    free(out);
    free(work);
    free(shard);
    free(dest);
    return rc;
}

int hx_store_adopt(const hx_store *s, const char *key, const char *dir)
{
    if (!is_key(key)) return error("'%s' is not a store key (64 hex digits)", key);
    char *shard = xstrfmt("%s/store/%.2s", s->root, key);
    char *dest = hx_store_entry_dir(s, key);
    char *work = xstrfmt("%s/partial/%s", s->root, key);
    int rc = -1;
    if (hx_fsync_dir(dir) < 0 || hx_mkdir_p(shard) < 0) goto done;
    if (hx_is_dir(dest)) {
        /* Same rule as hx_store_commit: a directory without a manifest is debris. */
        if (hx_store_has(s, key)) {
            error("store entry %s appeared while this process held its lock", key);
            goto done;
        }
        if (hx_rm_rf(dest) < 0) goto done;
    }
    if (rename(dir, dest) < 0) {
        error("cannot move '%s' to '%s': %s", dir, dest, strerror(errno));
        goto done;
    }
    if (hx_fsync_dir(shard) < 0) goto done;
    /* Work toward this key (a killed run's checkpoints) is moot now. */
    rc = hx_is_dir(work) ? hx_rm_rf(work) : 0;
done:
    free(shard);
    free(dest);
    free(work);
    return rc;
}

/* ---- run records ---- */

char *hx_store_new_run_id(const hx_store *s)
{
    (void)s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    hx_rng r;
    hx_rng_seed(&r, (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
    /* Milliseconds, then a random byte: ids sort in creation order, also within one second. */
    return xstrfmt("%s-%03ld%02x", buf, ts.tv_nsec / 1000000, (unsigned)(hx_rng_u64(&r) & 0xff));
}

static int is_run_id(const char *id)
{
    return strlen(id) == 21 && strspn(id, "0123456789-abcdef") == 21 && id[8] == '-' && id[15] == '-';
}

int hx_store_write_run(const hx_store *s, const char *id, const json_t *run)
{
    char *dir = xstrfmt("%s/runs/%s", s->root, id);
    char *file = hx_path_join(dir, "run.json");
    char *tmp = xstrfmt("%s/runs/.latest.%ld", s->root, (long)getpid());
    char *latest = xstrfmt("%s/runs/latest", s->root);
    int rc = -1;
    char *text = json_dumps(run, JSON_INDENT(2));
    if (hx_mkdir_p(dir) < 0) goto out;
    size_t tl = strlen(text);
    text = xrealloc(text, tl + 2);
    memcpy(text + tl, "\n", 2);
    if (hx_write_file_atomic(file, text, tl + 1) < 0) goto out;
    unlink(tmp);
    if (symlink(id, tmp) < 0 || rename(tmp, latest) < 0) {
        error("cannot point '%s' at %s: %s", latest, id, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(text);
    free(dir);
    free(file);
    free(tmp);
    free(latest);
    return rc;
}

json_t *hx_store_read_run(const hx_store *s, const char *id_in)
{
    char *id = NULL;
    if (!strcmp(id_in, "latest")) {
        char *l = xstrfmt("%s/runs/latest", s->root), buf[64];
        ssize_t n = readlink(l, buf, sizeof buf - 1);
        free(l);
        if (n <= 0) return (void)error("no runs yet in %s", s->root), NULL;
        buf[n] = 0;
        id = xstrdup(buf);
    } else {
        id = xstrdup(id_in);
    }
    if (!is_run_id(id)) {
        error("'%s' is not a run id (YYYYmmdd-HHMMSS-mmmxx)", id);
        free(id);
        return NULL;
    }
    char *p = xstrfmt("%s/runs/%s/run.json", s->root, id);
    json_t *v = hx_read_json(p, 0);
    free(p);
    free(id);
    return v;
}

json_t *hx_store_list_runs(const hx_store *s)
{
    char *dir = xstrfmt("%s/runs", s->root);
    DIR *d = opendir(dir);
    free(dir);
    json_t *out = json_array();
    if (!d) return out;
    char **ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_run_id(e->d_name)) {
            if (n == cap) ids = xrealloc(ids, (cap = cap ? 2 * cap : 16) * sizeof *ids);
            ids[n++] = xstrdup(e->d_name);
        }
    closedir(d);
    if (n) qsort(ids, n, sizeof *ids, cmp_str); /* qsort(NULL, 0) is undefined */
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, json_string(ids[i]));
        free(ids[i]);
    }
    free(ids);
    return out;
}

int hx_store_add_run(const hx_store *s, const char *id, const char *text, size_t len)
{
    if (!is_run_id(id)) return error("'%s' is not a run id (YYYYmmdd-HHMMSS-mmmxx)", id);
    char *dir = xstrfmt("%s/runs/%s", s->root, id);
    char *file = hx_path_join(dir, "run.json");
    char *latest = xstrfmt("%s/runs/latest", s->root);
    char *tmp = xstrfmt("%s/runs/.latest.%ld", s->root, (long)getpid());
    int rc = -1;
    if (hx_file_exists(file)) {
        rc = 1;
        goto out;
    }
    if (hx_mkdir_p(dir) < 0 || hx_write_file_atomic(file, text, len) < 0) goto out;
    char cur[64];
    ssize_t n = readlink(latest, cur, sizeof cur - 1);
    if (n > 0) cur[n] = 0;
    rc = 0;
    if (n <= 0 || strcmp(id, cur) > 0) {
        unlink(tmp);
        if (symlink(id, tmp) < 0 || rename(tmp, latest) < 0) {
            rc = error("cannot point '%s' at %s: %s", latest, id, strerror(errno));
            unlink(tmp);
        }
    }
out:
    free(dir);
    free(file);
    free(latest);
    free(tmp);
    return rc;
}

json_t *hx_store_history(const hx_store *s, const char *recipe_name, int max_runs)
{
    json_t *ids = hx_store_list_runs(s), *out = json_object();
    int read = 0;
    for (size_t i = json_array_size(ids); i-- > 0 && read < max_runs;) {
        const char *id = json_string_value(json_array_get(ids, i));
        json_t *run = hx_store_read_run(s, id);
        read++;
        if (!run) continue;
        const char *name = json_string_value(json_object_get(json_object_get(run, "recipe"), "name"));
        json_t *stages = json_object_get(run, "stages");
        if (name && !strcmp(name, recipe_name))
            for (size_t j = 0; j < json_array_size(stages); j++) {
                json_t *rec = json_array_get(stages, j);
                const char *st = json_string_value(json_object_get(rec, "state"));
                if (!st || (strcmp(st, "executed") && strcmp(st, "cached"))) continue;
                char *axes = hx_canon_dump(json_object_get(rec, "axes"));
                const char *stage = json_string_value(json_object_get(rec, "stage"));
                char *k = xstrfmt("%s|%s", stage ? stage : "", axes ? axes : "{}");
                if (!json_object_get(out, k)) {
                    json_t *c = json_deep_copy(rec);
                    json_object_set_new(c, "run_id", json_string(id));
                    json_object_set_new(out, k, c);
                }
                free(k);
                free(axes);
            }
        json_decref(run);
    }
    json_decref(ids);
    hx_clear_error();
    return out;
}

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

/* Remove DIR (an entry or a partial work directory of KEY) unless its key is referenced or locked. */
static int gc_one(const hx_store *s, const char *key, const char *dir, const json_t *keep, int dry_run,
                  long long *removed, long long *bytes)
{
    if (json_object_get(keep, key)) return 0;
    hx_lock l;
    if (is_key(key)) {
        int r = hx_store_lock(s, key, 0, NULL, &l);
        if (r != 0) return r < 0 ? -1 : 0; /* busy: someone is working on it */
    } else {
        l.fd = -1;
    }
    long long b = du(dir);
    int rc = 0;
    if (!dry_run) rc = hx_rm_rf(dir);
    if (rc == 0) {
        (*removed)++;
        *bytes += b;
    }
    hx_store_unlock(&l);
    return rc;
}

int hx_store_gc(const hx_store *s, int keep_n, int dry_run, json_t *report)
{
    json_t *ids = hx_store_list_runs(s), *keep = json_object();
    size_t n = json_array_size(ids);
    long long runs_removed = 0, removed = 0, bytes = 0;
    int rc = 0;
    size_t first_kept = keep_n < 0 || (size_t)keep_n >= n ? 0 : n - (size_t)keep_n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (i < first_kept) {
            char *d = xstrfmt("%s/runs/%s", s->root, id);
            if (!dry_run) rc = hx_rm_rf(d);
            runs_removed++;
            free(d);
            continue;
        }
        json_t *run = hx_store_read_run(s, id);
        if (!run) {
            /* An unreadable record keeps nothing alive, but is not deleted either: say so. */
            log_warn("gc: %s", hx_last_error());
            continue;
        }
        json_t *stages = json_object_get(run, "stages");
        for (size_t j = 0; j < json_array_size(stages); j++) {
            const char *k = json_string_value(json_object_get(json_array_get(stages, j), "key"));
            if (k) json_object_set_new(keep, k, json_true());
        }
        json_decref(run);
    }
    if (first_kept == n && n > 0 && keep_n == 0 && !dry_run) {
        char *l = xstrfmt("%s/runs/latest", s->root);
        unlink(l);
        free(l);
    }
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
            if (!is_key(e2->d_name)) continue;
            char *p = hx_path_join(shard, e2->d_name);
            rc = gc_one(s, e2->d_name, p, keep, dry_run, &removed, &bytes);
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
        rc = gc_one(s, e->d_name, p, keep, dry_run, is_key(e->d_name) ? &removed : &dummy, &bytes);
        free(p);
    }
    if (d) closedir(d);
    free(pdir);
    if (report) {
        json_object_set_new(report, "runs_removed", json_integer(runs_removed));
        json_object_set_new(report, "entries_removed", json_integer(removed));
        json_object_set_new(report, "bytes_freed", json_integer(bytes));
        json_object_set_new(report, "runs_kept", json_integer((json_int_t)(n - first_kept)));
    }
    json_decref(ids);
    json_decref(keep);
    return rc;
}
