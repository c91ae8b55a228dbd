/* store.c - the content-addressed store on disk: atomic commits, flock per key, digests, runs, gc. */
#include "engine/hx/store.h"

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
#include "engine/hx/canon.h"

int hx_store_is_key(const char *k)
{
    return strlen(k) == 64 && strspn(k, "0123456789abcdef") == 64;
}

int hx_store_open(hx_store *s, const char *root)
{
    memset(s, 0, sizeof *s);
    s->root = xstrdup(root);
    static const char *const dirs[] = {"store", "partial", "locks", "runs", "quarantine"};
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
    if (!hx_store_is_key(key)) return 0;
    char *m = manifest_path(s, key);
    int ok = hx_file_exists(m);
    free(m);
    return ok;
}

json_t *hx_store_manifest(const hx_store *s, const char *key)
{
    if (!hx_store_is_key(key)) return (void)error("'%s' is not a store key (64 hex digits)", key), NULL;
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
            if (hx_store_is_key(e->d_name) && !strncmp(e->d_name, prefix, n)) {
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
    /* group-writable (under umask 002): in a store shared by a group, every member locks every key. Opened for
     * writing because NFS turns flock into a POSIX write lock, which needs a writable descriptor. */
    l->fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (l->fd < 0) {
        error("cannot open lock '%s': %s", p, strerror(errno));
        free(p);
        return -1;
    }
    int told = 0;
    for (;;) {
        if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            /* NFS mounted with nolock, Lustre without -o flock: no lock would mean executing keys twice */
            error("cannot lock '%s': %s%s", p, strerror(errno),
                  errno == ENOLCK || errno == EOPNOTSUPP ? " (the store's file system does not support flock: "
                                                           "docs/cluster.md says which mounts do)" : "");
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

/* The pin file of KEY: readers hold it shared, removers (gc, discard, quarantine) exclusively. */
static int pin_open(const hx_store *s, const char *key)
{
    char *p = xstrfmt("%s/locks/%s.pin", s->root, key);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) error("cannot open pin '%s': %s", p, strerror(errno));
    free(p);
    return fd;
}

int hx_store_pin(const hx_store *s, const char *key, hx_lock *l)
{
    l->fd = pin_open(s, key);
    if (l->fd < 0) return -1;
    /* A remover holds the pin exclusively only for the moment it renames the entry away. */
    while (flock(l->fd, LOCK_SH) < 0)
        if (errno != EINTR) {
            int e = errno;
            hx_store_unlock(l);
            return error("cannot pin %.12s: %s", key, strerror(e));
        }
    return 0;
}

/* 0: no reader holds KEY (the pin is now held exclusively in *l), 1: a stage is reading it, -1: error. */
static int pin_exclusive(const hx_store *s, const char *key, hx_lock *l)
{
    l->fd = pin_open(s, key);
    if (l->fd < 0) return -1;
    if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) return 0;
    hx_store_unlock(l);
    return 1;
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


/* Regular files under DIR/REL, relative paths appended to *list; subdirectories synced when do_sync. */
static int list_files(const char *dir, const char *rel, char ***list, size_t *n, size_t *cap, int depth, int do_sync)
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
            else rc = list_files(dir, r, list, n, cap, depth + 1, do_sync);
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
    if (rc == 0 && *rel && do_sync) rc = hx_fsync_dir(full);
    free(full);
    return rc;
}

static long long mtime_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Committed outputs are read-only: files 0444, directories 0555 (TOP itself too when top is set). */
static int seal_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    mode_t mode = flag == FTW_DP || flag == FTW_D ? 0555 : S_ISREG(st->st_mode) ? 0444 : 0;
    if (mode && chmod(path, mode) < 0) return error("cannot make '%s' read-only: %s", path, strerror(errno));
    return 0;
}

static int seal_tree(const char *dir)
{
    return nftw(dir, seal_fn, 32, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

/* Give the owner write permission back on every directory under DIR (so it can be renamed or removed). */
static int unseal_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D && chmod(path, (st->st_mode & 07777) | S_IWUSR) < 0)
        return error("cannot make '%s' writable: %s", path, strerror(errno));
    return 0;
}

static int unseal_tree(const char *dir)
{
    if (!hx_file_exists(dir)) return 0;
    return nftw(dir, unseal_fn, 32, FTW_PHYS) ? -1 : 0;
}

/* Remove a (possibly read-only) entry directory. */
static int rm_entry(const char *dir)
{
    if (unseal_tree(dir) < 0) return -1;
    return hx_rm_rf(dir);
}

/* A manifest's output path names a file inside its entry: relative, no empty, "." or ".." component. */
static int safe_rel(const char *rel)
{
    size_t n = strlen(rel);
    if (!n || n > 4000 || rel[0] == '/' || rel[n - 1] == '/') return 0;
    for (const char *p = rel; *p;) {
        size_t k = strcspn(p, "/");
        if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.')) return 0;
        p += k;
        if (*p) p++;
    }
    return 1;
}

/* The first problem becomes the error message; every problem is appended to LIST (when given). */
static void problem(json_t *list, int *n, const char *fmt, ...) HX_PRINTF(3, 4);
static void problem(json_t *list, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    if (!*n) error("%s", msg ? msg : "?");
    if (list) json_array_append_new(list, json_string(msg ? msg : "?"));
    free(msg);
    (*n)++;
}

int hx_store_manifest_key(const json_t *m, char key[65])
{
    const char *kind = json_string_value(json_object_get(m, "kind"));
    json_t *kv = json_object_get(m, "kind_version"), *w = json_object_get(m, "with"), *in = json_object_get(m, "inputs");
    json_t *ext = json_object_get(m, "external");
    if (!kind || !json_is_integer(kv) || !json_is_object(w) || !json_is_object(in) || (ext && !json_is_object(ext)))
        return error("the manifest lacks kind, kind_version, with or inputs");
    return hx_canon_key_ext(kind, (int)json_integer_value(kv), w, in, ext,
                            json_string_value(json_object_get(m, "hx_binary")), key);
}

/* Check KEY's entry; full: re-hash everything, recompute the key, and compare the files on disk with the
 * manifest's list exactly. Returns the number of problems found (each appended to LIST). */
static int check_entry(const hx_store *s, const char *key, int full, json_t *list)
{
    int n = 0;
    char *dir = hx_store_entry_dir(s, key), *mp = manifest_path(s, key);
    struct stat mst;
    int mreg = lstat(mp, &mst) == 0 && S_ISREG(mst.st_mode);
    free(mp);
    json_t *m = mreg ? hx_store_manifest(s, key) : NULL;
    if (!mreg) error("%s/manifest.json: missing, or not a regular file", dir);
    if (!m) {
        problem(list, &n, "%s", hx_last_error());
        free(dir);
        return n;
    }
    const char *mk = json_string_value(json_object_get(m, "key"));
    if (!mk || strcmp(mk, key)) problem(list, &n, "%s/manifest.json: key '%s' is not the entry's key", dir, mk ? mk : "");
    if (full) {
        char k2[65];
        if (hx_store_manifest_key(m, k2) < 0)
            problem(list, &n, "%s/manifest.json: %s", dir, hx_last_error());
        else if (strcmp(k2, key))
            problem(list, &n, "%s/manifest.json: kind, with, inputs and external hash to %.12s..., not to its key (an "
                    "edited manifest, or a --strict entry made before manifests recorded the binary)", dir, k2);
    }
    json_t *outs = json_object_get(m, "outputs"), *listed = json_object();
    char *realdir = realpath(dir, NULL);
    if (!json_is_array(outs)) problem(list, &n, "%s/manifest.json: no 'outputs' list", dir);
    for (size_t i = 0; i < json_array_size(outs); i++) {
        json_t *o = json_array_get(outs, i);
        const char *rel = json_string_value(json_object_get(o, "path"));
        const char *want = json_string_value(json_object_get(o, "sha256"));
        json_t *size = json_object_get(o, "size");
        if (!rel || !want || !hx_store_is_key(want) || !json_is_integer(size)) {
            problem(list, &n, "%s/manifest.json: output %zu has no path, sha256 or size", dir, i);
            continue;
        }
        if (!safe_rel(rel) || !strcmp(rel, "manifest.json")) {
            problem(list, &n, "%s/manifest.json: output path '%s' is not a file inside the entry", dir, rel);
            continue;
        }
        if (json_object_get(listed, rel)) {
            problem(list, &n, "%s/manifest.json: output '%s' is listed twice", dir, rel);
            continue;
        }
        json_object_set_new(listed, rel, json_true());
        char *p = hx_path_join(dir, rel), *real = realpath(p, NULL);
        struct stat st;
        size_t dl = realdir ? strlen(realdir) : 0;
        if (lstat(p, &st) < 0) problem(list, &n, "%s: missing (recorded in the manifest)", p);
        else if (!S_ISREG(st.st_mode)) problem(list, &n, "%s: not a regular file", p);
        else if (!real || !realdir || strncmp(real, realdir, dl) || real[dl] != '/')
            problem(list, &n, "%s: resolves outside the entry (a symbolic link on the way)", p);
        else if ((long long)st.st_size != json_integer_value(size))
            problem(list, &n, "%s: size %lld, the manifest recorded %lld", p, (long long)st.st_size,
                    (long long)json_integer_value(size));
        else if (full || mtime_ns(&st) != json_integer_value(json_object_get(o, "mtime_ns"))) {
            char hex[65];
            if (hash_file(p, hex, 0) < 0) problem(list, &n, "%s", hx_last_error());
            else if (strcmp(hex, want)) problem(list, &n, "%s: sha256 %.12s..., the manifest recorded %.12s...", p, hex, want);
        }
        free(real);
        free(p);
    }
    if (full) {
        char **files = NULL;
        size_t nf = 0, cap = 0;
        if (list_files(dir, "", &files, &nf, &cap, 0, 0) < 0) problem(list, &n, "%s", hx_last_error());
        for (size_t i = 0; i < nf; i++) {
            if (!json_object_get(listed, files[i]))
                problem(list, &n, "%s/%s: a file the manifest does not list", dir, files[i]);
            free(files[i]);
        }
        free(files);
    }
    free(realdir);
    json_decref(listed);
    json_decref(m);
    free(dir);
    return n;
}

int hx_store_verify(const hx_store *s, const char *key, int full)
{
    return check_entry(s, key, full, NULL) ? 1 : 0;
}

int hx_store_check(const hx_store *s, const char *key, json_t *problems)
{
    if (!hx_store_is_key(key)) return error("'%s' is not a store key (64 hex digits)", key);
    return check_entry(s, key, 1, problems) ? 1 : 0;
}

int hx_store_content_digest(const hx_store *s, const char *key, char hex[65])
{
    json_t *m = hx_store_manifest(s, key);
    if (!m) return -1;
    json_t *outs = json_object_get(m, "outputs"), *o, *pairs = json_array();
    size_t i;
    json_array_foreach(outs, i, o) json_array_append_new(pairs, json_pack("[O,O]", json_object_get(o, "path"),
                                                                          json_object_get(o, "sha256")));
    char *text = hx_canon_dump(pairs);
    json_decref(pairs);
    json_decref(m);
    if (!text) return error_prefix("content digest of %.12s", key);
    hx_sha256_hex(text, strlen(text), hex);
    free(text);
    return 0;
}

int hx_store_discard(const hx_store *s, const char *key)
{
    hx_lock pin;
    int busy = pin_exclusive(s, key, &pin);
    if (busy) return busy < 0 ? -1 : error("store entry %.12s is being read by a running stage; run again when it ends", key);
    char *dir = hx_store_entry_dir(s, key);
    char *aside = xstrfmt("%s/partial/%s.corrupt-%ld", s->root, key, (long)getpid());
    int rc = 0;
    /* Rename first: the entry stops being "done" atomically, then the files go. */
    if (unseal_tree(dir) < 0) rc = -1;
    else if (rename(dir, aside) < 0) rc = error("cannot move '%s' aside: %s", dir, strerror(errno));
    else rc = rm_entry(aside);
    hx_store_unlock(&pin);
    free(dir);
    free(aside);
    return rc;
}

int hx_store_quarantine(const hx_store *s, const char *key, char **where)
{
    hx_lock pin;
    int busy = pin_exclusive(s, key, &pin);
    if (busy) return busy < 0 ? -1 : error("store entry %.12s is being read by a running stage; repair it when it ends", key);
    char *dir = hx_store_entry_dir(s, key);
    char *dest = xstrfmt("%s/quarantine/%s.%ld-%ld", s->root, key, (long)time(NULL), (long)getpid());
    char *q = xstrfmt("%s/quarantine", s->root);
    int rc = 0;
    /* Only the top directory needs write permission to be moved (its ".." changes). */
    if (hx_mkdir_p(q) < 0) rc = -1;
    else if (chmod(dir, 0755) < 0 || rename(dir, dest) < 0)
        rc = error("cannot move '%s' to '%s': %s", dir, dest, strerror(errno));
    else rc = hx_fsync_dir(q);
    hx_store_unlock(&pin);
    if (rc == 0 && where) *where = xstrdup(dest);
    free(q);
    free(dir);
    free(dest);
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

/* Make the tree at FROM read-only and rename it to TO. The top directory stays writable until it has moved
 * (moving a directory to another parent rewrites its ".."). */
static int move_sealed(const char *from, const char *to)
{
    if (seal_tree(from) < 0) return -1;
    if (chmod(from, 0755) < 0 || rename(from, to) < 0) return error("cannot move '%s' to '%s': %s", from, to, strerror(errno));
    if (chmod(to, 0555) < 0) return error("cannot make '%s' read-only: %s", to, strerror(errno));
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
    if (list_files(out, "", &files, &n, &cap, 0, 1) < 0) goto done;
    if (n) qsort(files, n, sizeof *files, hx_cmp_str); /* qsort(NULL, 0) is undefined */
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
        if (rm_entry(dest) < 0) goto done;
    }
    if (move_sealed(out, dest) < 0) goto done;
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
    if (!hx_store_is_key(key)) return error("'%s' is not a store key (64 hex digits)", key);
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
        if (rm_entry(dest) < 0) goto done;
    }
    if (move_sealed(dir, dest) < 0 || hx_fsync_dir(shard) < 0) goto done;
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

int hx_store_is_run_id(const char *id)
{
    return strlen(id) == 21 && strspn(id, "0123456789-abcdef") == 21 && id[8] == '-' && id[15] == '-';
}

/* runs/<id>/run.json, atomically; runs/latest moves to ID when MOVE_LATEST. */
static int write_run(const hx_store *s, const char *id, const json_t *run, int move_latest)
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
    if (!move_latest) {
        rc = 0;
        goto out;
    }
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

int hx_store_write_run(const hx_store *s, const char *id, const json_t *run) { return write_run(s, id, run, 1); }

int hx_store_update_run(const hx_store *s, const char *id, const json_t *run) { return write_run(s, id, run, 0); }

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
    if (!hx_store_is_run_id(id)) {
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

static void repoint_latest(const hx_store *s);

/* ---- process identity: is the process that wrote a "running" record still alive? ---- */

static void read_line(const char *path, char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, (int)n, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
}

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22), or -1. */
static long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    read_line(path, buf, sizeof buf);
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p) return -1;
    long long v = -1;
    int field = 2;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
        if (++field == 22) {
            v = atoll(t);
            break;
        }
    return v;
}

json_t *hx_store_process_self(void)
{
    char host[256] = "?", boot[64];
    gethostname(host, sizeof host - 1);
    read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    return json_pack("{s:I,s:s,s:s,s:I}", "pid", (json_int_t)getpid(), "host", host, "boot_id", boot, "start_ticks",
                     (json_int_t)proc_start((long)getpid()));
}

int hx_store_run_alive(const json_t *run)
{
    const char *st = json_string_value(json_object_get(run, "status"));
    json_t *pr = json_object_get(run, "process");
    if (!st || strcmp(st, "running")) return 0;
    /* A Slurm run's work is its jobs, not the submitting process (--detach ends it): its record is refreshed
     * from the scheduler (hx runs, hx show), and until it ends its entries stay pinned. */
    const char *ex = json_string_value(json_object_get(run, "executor"));
    if (ex && !strcmp(ex, "slurm")) return -1;
    if (!json_is_object(pr)) return 0; /* a record from before hx wrote its process: nothing to go by */
    char host[256] = "?", boot[64];
    gethostname(host, sizeof host - 1);
    read_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    const char *rh = json_string_value(json_object_get(pr, "host")), *rb = json_string_value(json_object_get(pr, "boot_id"));
    if (!rh || strcmp(rh, host)) return -1; /* another machine: cannot tell */
    if (!rb || strcmp(rb, boot)) return 0;  /* this machine rebooted since */
    long pid = (long)json_integer_value(json_object_get(pr, "pid"));
    if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) return 0;
    return proc_start(pid) == json_integer_value(json_object_get(pr, "start_ticks")); /* else: the pid was reused */
}

/* ---- run records in time order ---- */

#define FUTURE_SLACK_S 600 /* clocks of two machines may differ; a start further ahead is not believed */

long long hx_store_run_time(const json_t *run)
{
    const char *t = json_string_value(json_object_get(run, "started"));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = t ? strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end) return -1;
    long long v = (long long)timegm(&tm);
    if (v < 946684800LL || v > (long long)time(NULL) + FUTURE_SLACK_S) return -1; /* before 2000 or in the future */
    return v;
}

typedef struct run_ord {
    char *id;
    long long t; /* recorded start, -1 when missing or not believable (sorts first: oldest) */
} run_ord;

static int cmp_run(const void *a, const void *b)
{
    const run_ord *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return strcmp(x->id, y->id);
}

json_t *hx_store_list_runs(const hx_store *s)
{
    char *dir = xstrfmt("%s/runs", s->root);
    DIR *d = opendir(dir);
    free(dir);
    json_t *out = json_array();
    if (!d) return out;
    run_ord *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (hx_store_is_run_id(e->d_name)) {
            if (n == cap) ids = xrealloc(ids, (cap = cap ? 2 * cap : 16) * sizeof *ids);
            ids[n].id = xstrdup(e->d_name);
            json_t *run = hx_store_read_run(s, e->d_name);
            ids[n].t = run ? hx_store_run_time(run) : -1;
            json_decref(run);
            n++;
        }
    closedir(d);
    hx_clear_error();
    if (n) qsort(ids, n, sizeof *ids, cmp_run);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, json_string(ids[i].id));
        free(ids[i].id);
    }
    free(ids);
    return out;
}

int hx_store_add_run(const hx_store *s, const char *id, const char *text, size_t len)
{
    if (!hx_store_is_run_id(id)) return error("'%s' is not a run id (YYYYmmdd-HHMMSS-mmmxx)", id);
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
    rc = 0;
    /* latest moves only to a record whose recorded start is believable and newer than latest's. */
    json_t *mine = hx_store_read_run(s, id), *cur = hx_store_read_run(s, "latest");
    long long tm = mine ? hx_store_run_time(mine) : -1, tc = cur ? hx_store_run_time(cur) : -1;
    int have_latest = cur != NULL;
    json_decref(mine);
    json_decref(cur);
    hx_clear_error();
    if (tm >= 0 && (!have_latest || tm > tc)) {
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

int hx_store_check_runs(const hx_store *s, json_t *problems, json_t *bad)
{
    char *dir = xstrfmt("%s/runs", s->root);
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *id = e->d_name;
        if (id[0] == '.' || !strcmp(id, "latest")) continue;
        int before = count;
        if (!hx_store_is_run_id(id)) {
            problem(problems, &count, "%s/%s: not a run id (YYYYmmdd-HHMMSS-mmmxx)", dir, id);
        } else {
            json_t *run = hx_store_read_run(s, id);
            if (!run) {
                problem(problems, &count, "%s", hx_last_error());
            } else {
                const char *rid = json_string_value(json_object_get(run, "run_id"));
                const char *st = json_string_value(json_object_get(run, "status"));
                json_t *stages = json_object_get(run, "stages");
                if (!rid || strcmp(rid, id)) problem(problems, &count, "%s/%s/run.json: run_id '%s' is not its directory's name", dir, id, rid ? rid : "");
                if (hx_store_run_time(run) < 0)
                    problem(problems, &count, "%s/%s/run.json: started '%s' is missing, malformed or in the future", dir, id,
                            json_string_value(json_object_get(run, "started")) ?: "");
                if (!st) problem(problems, &count, "%s/%s/run.json: no status", dir, id);
                if (!json_is_array(stages)) problem(problems, &count, "%s/%s/run.json: no stages list", dir, id);
                for (size_t j = 0; j < json_array_size(stages); j++) {
                    const char *k = json_string_value(json_object_get(json_array_get(stages, j), "key"));
                    if (!k || !hx_store_is_key(k)) {
                        problem(problems, &count, "%s/%s/run.json: stage %zu has no valid key", dir, id, j);
                        break;
                    }
                }
                json_decref(run);
            }
        }
        if (count > before && bad) json_array_append_new(bad, json_string(id));
    }
    if (d) closedir(d);
    char *l = xstrfmt("%s/latest", dir), target[128];
    ssize_t n = readlink(l, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        char *f = xstrfmt("%s/%s/run.json", dir, target);
        if (!hx_store_is_run_id(target) || !hx_file_exists(f))
            problem(problems, &count, "%s -> %s: no such run record", l, target);
        free(f);
    }
    free(l);
    free(dir);
    return count ? 1 : 0;
}

int hx_store_quarantine_run(const hx_store *s, const char *name, char **where)
{
    if (strchr(name, '/') || name[0] == '.') return error("'%s' is not a run record's directory", name);
    char *src = xstrfmt("%s/runs/%s", s->root, name);
    char *q = xstrfmt("%s/quarantine/runs", s->root);
    char *dest = xstrfmt("%s/%s.%ld-%ld", q, name, (long)time(NULL), (long)getpid());
    int rc = hx_mkdir_p(q) < 0 ? -1 : rename(src, dest) < 0 ? error("cannot move '%s' to '%s': %s", src, dest, strerror(errno)) : 0;
    if (rc == 0) repoint_latest(s);
    if (rc == 0 && where) *where = xstrdup(dest);
    free(src);
    free(q);
    free(dest);
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

/* Remove DIR (an entry or a partial work directory of KEY) unless its key is referenced, locked or pinned. */
static int gc_one(const hx_store *s, const char *key, const char *dir, const json_t *keep, int dry_run,
                  long long *removed, long long *bytes)
{
    if (json_object_get(keep, key)) return 0;
    hx_lock l, pin = {-1};
    if (hx_store_is_key(key)) {
        int r = hx_store_lock(s, key, 0, NULL, &l);
        if (r != 0) return r < 0 ? -1 : 0; /* busy: someone is working on it */
        r = pin_exclusive(s, key, &pin);
        if (r != 0) {
            hx_store_unlock(&l);
            return r < 0 ? -1 : 0; /* a running stage is reading it */
        }
    } else {
        l.fd = -1;
    }
    long long b = du(dir);
    int rc = 0;
    if (!dry_run) rc = rm_entry(dir);
    if (rc == 0) {
        (*removed)++;
        *bytes += b;
    }
    hx_store_unlock(&pin);
    hx_store_unlock(&l);
    return rc;
}

/* After records were removed: runs/latest names the newest remaining record, or is gone with the last one. */
static void repoint_latest(const hx_store *s)
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
    if (!dry_run && runs_removed) repoint_latest(s);
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
        rc = gc_one(s, e->d_name, p, keep, dry_run, hx_store_is_key(e->d_name) ? &removed : &dummy, &bytes);
        free(p);
    }
    if (d) closedir(d);
    free(pdir);
    if (report) {
        json_object_set_new(report, "runs_removed", json_integer(runs_removed));
        json_object_set_new(report, "entries_removed", json_integer(removed));
        json_object_set_new(report, "bytes_freed", json_integer(bytes));
        json_object_set_new(report, "runs_kept", json_integer((json_int_t)(n - first_kept) + live));
        json_object_set_new(report, "runs_live", json_integer(live));
    }
    json_decref(ids);
    json_decref(keep);
    return rc;
}
